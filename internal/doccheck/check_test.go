package doccheck

import (
	"errors"
	"strings"
	"testing"
)

// goSrc writes region markers as "//@begin NAME" and "//@end", so that the
// scan of this repository does not take the samples for regions.
func goSrc(s string) string { return strings.ReplaceAll(s, "//@", "// snippet:") }

const sampleGo = `package p

func Example() {
	x := 1
	//@begin add
	y := x + 1
	if y > 1 {
		println(y)
	}
	//@end
}

//@begin lua
func define() string {
	return ` + "`" + `
local v = redis.call('GET', KEYS[1])
return v` + "`" + `
}

//@end
`

func noDecls(string, []string) (string, error) { return "", errors.New("no declarations here") }

func TestCheck(t *testing.T) {
	goFiles := map[string]string{"p/p_test.go": goSrc(sampleGo)}
	for _, c := range []struct {
		name     string
		md       string
		problems []string // substrings, one per problem, in order
		diff     []string // substrings of the one diff
	}{{
		name: "matching blocks",
		md: "# Doc\n\n<!-- snippet: add -->\n```go\ny := x + 1\nif y > 1 {\n\tprintln(y)\n}\n```\n\n" +
			"1. A list item:\n\n   <!-- snippet: lua -->\n   ```go\n   func define() string {\n   \treturn `\n" +
			"local v = redis.call('GET', KEYS[1])\nreturn v`\n   }\n   ```\n\n```sh\ngo test\n```\n",
	}, {
		name:     "no marker",
		md:       "<!-- snippet: add -->\n```go\ny := x + 1\nif y > 1 {\n\tprintln(y)\n}\n```\n\n```go\nx := 2\n```\n",
		problems: []string{"doc.md:9: ```go block without a marker", `region "lua" is shown by no Markdown block`},
	}, {
		name:     "unknown region",
		md:       "<!-- snippet: sub -->\n```go\ny := x - 1\n```\n",
		problems: []string{`doc.md:2: no region "sub"`, `"add" is shown by no`, `"lua" is shown by no`},
	}, {
		name:     "difference",
		md:       "<!-- snippet: add -->\n```go\ny := x + 1\nif y > 2 {\n\tprintln(y)\n}\n```\n",
		problems: []string{`"lua" is shown by no`},
		diff:     []string{"first difference: doc.md:4 vs p/p_test.go:7", "-if y > 2 {", "+if y > 1 {", " y := x + 1"},
	}, {
		name:     "malformed and dangling markers",
		md:       "<!-- snippet add -->\n\n<!-- snippet: add -->\n```sh\nls\n```\n\n<!-- snippet: lua -->\ntext\n",
		problems: []string{"doc.md:1: malformed marker", "doc.md:3: <!-- snippet: add --> is not followed", "doc.md:8: <!-- snippet: lua --> is not followed", `"add" is shown by no`, `"lua" is shown by no`},
	}, {
		name:     "a fence inside a longer fence",
		md:       "````md\n<!-- snippet: add -->\n```go\nwrong\n```\n````\n",
		problems: []string{`"add" is shown by no`, `"lua" is shown by no`},
	}} {
		t.Run(c.name, func(t *testing.T) {
			res := check(goFiles, map[string]string{"doc.md": c.md}, noDecls)
			if len(res.problems) != len(c.problems) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(res.problems, "\n"), len(c.problems))
			}
			for i, want := range c.problems {
				if !strings.Contains(res.problems[i], want) {
					t.Errorf("problem %d: %s\nwant it to contain %q", i, res.problems[i], want)
				}
			}
			if len(c.diff) == 0 {
				if len(res.diffs) != 0 {
					t.Fatalf("unexpected diffs:\n%s", strings.Join(res.diffs, "\n"))
				}
				return
			}
			if len(res.diffs) != 1 {
				t.Fatalf("diffs: %q, want one", res.diffs)
			}
			for _, want := range c.diff {
				if !strings.Contains(res.diffs[0], want) {
					t.Errorf("diff:\n%s\nwant it to contain %q", res.diffs[0], want)
				}
			}
		})
	}
}

func TestCheckUpdate(t *testing.T) {
	goFiles := map[string]string{"p/p_test.go": goSrc(sampleGo)}
	md := "Intro.\n\n- Item:\n\n  <!-- snippet: add -->\n  ```go\n  old\n  ```\n\n<!-- snippet: lua -->\n```go\nfunc define() string {\n\treturn `\nlocal v = redis.call('GET', KEYS[1])\nreturn v`\n}\n```\nEnd.\n"
	want := "Intro.\n\n- Item:\n\n  <!-- snippet: add -->\n  ```go\n  y := x + 1\n  if y > 1 {\n  \tprintln(y)\n  }\n  ```\n\n<!-- snippet: lua -->\n```go\nfunc define() string {\n\treturn `\nlocal v = redis.call('GET', KEYS[1])\nreturn v`\n}\n```\nEnd.\n"
	res := check(goFiles, map[string]string{"doc.md": md}, noDecls)
	if len(res.problems) != 0 {
		t.Fatal(res.problems)
	}
	if got := res.updated["doc.md"]; got != want {
		t.Errorf("updated:\n%s\nwant:\n%s", got, want)
	}
	if res := check(goFiles, map[string]string{"doc.md": want}, noDecls); len(res.diffs)+len(res.problems) != 0 || len(res.updated) != 0 {
		t.Errorf("the updated file does not pass: %q %q", res.problems, res.diffs)
	}
}

func TestRegionProblems(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"//@begin a\nx\n", `a.go:1: region "a" has no "// snippet:end"`},
		{"x\n//@end\n", `a.go:2: "// snippet:end" without`},
		{"//@begin a\n//@begin b\n//@end\n", `a.go:2: region "b" begins inside region "a"`},
		{"//@begin a\n\n//@end\n", `a.go:1: region "a" is empty`},
		{"//@begin a b\nx\n//@end\n", `a.go:1: region name "a b"`},
		{"//@start a\n", `a.go:1: malformed marker`},
	} {
		_, problems := regions("a.go", goSrc(c.src))
		if len(problems) == 0 || !strings.Contains(problems[0], c.want) {
			t.Errorf("%q: problems %q, want %q", c.src, problems, c.want)
		}
	}
	res := check(map[string]string{"a.go": goSrc("//@begin a\nx\n//@end\n"), "b/b.go": goSrc("//@begin a\ny\n//@end\n")},
		map[string]string{"doc.md": "<!-- snippet: a -->\n```go\nx\n```\n"}, noDecls)
	if len(res.problems) != 1 || !strings.Contains(res.problems[0], `region "a" is defined 2 times: a.go:1, b/b.go:1`) {
		t.Errorf("problems %q, want one for the region defined twice", res.problems)
	}
}

func TestRenderDecls(t *testing.T) {
	src := map[string]string{"a.go": `package a

import "context"

// Item is a thing.
type Item struct {
	// Key names it.
	Key string
	// Quantity counts it.
	Quantity int64
}

// Take takes items.
func Take(ctx context.Context, items []Item) (int, error) {
	return 0, nil
}

func Name() string { return "a" }

func (Item) Method() {}
`}
	got, err := renderDecls(src, []string{"Take", "Name", "Item"})
	if err != nil {
		t.Fatal(err)
	}
	want := "func Take(ctx context.Context, items []Item) (int, error)\nfunc Name() string\n\ntype Item struct {\n\tKey      string\n\tQuantity int64\n}"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := renderDecls(src, []string{"Method"}); err == nil || !strings.Contains(err.Error(), "Method") {
		t.Errorf("a method is not a top-level name: got %v", err)
	}
}
