package doccheck

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the Go blocks of the Markdown files from the regions and declarations they name")

// TestGoBlocks checks every ```go block of the repository's Markdown files
// against the region or declarations its marker names.
func TestGoBlocks(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		// A copy of the root module alone (the module cache) lacks the
		// other modules, whose regions the docs use.
		t.Skipf("not a checkout of the whole repository (no go.work at %s)", root)
	}
	goFiles, mdFiles, err := readTree(root)
	if err != nil {
		t.Fatal(err)
	}
	res := check(goFiles, mdFiles, dirDecls(root))
	for _, p := range res.problems {
		t.Error(p)
	}
	switch {
	case len(res.diffs) == 0:
		if len(res.problems) == 0 {
			t.Logf("%d Go blocks in %d Markdown files match %d regions and %d declaration lists",
				res.blocks, len(mdFiles), res.regions, res.decls)
		}
	case !*update:
		for _, d := range res.diffs {
			t.Error(d)
		}
		t.Errorf("Go blocks that differ from their sources: %d; after changing the code, run: go test ./internal/doccheck -update", len(res.diffs))
	default:
		for _, f := range sortedKeys(res.updated) {
			if err := os.WriteFile(filepath.Join(root, f), []byte(res.updated[f]), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("updated %s", f)
		}
	}
}

// readTree returns the .go and .md files under root, by path relative to
// root (with slashes), skipping hidden directories, testdata and vendor.
func readTree(root string) (goFiles, mdFiles map[string]string, err error) {
	goFiles, mdFiles = map[string]string{}, map[string]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
				name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := filepath.Ext(name)
		if ext != ".go" && ext != ".md" || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if ext == ".go" {
			goFiles[filepath.ToSlash(rel)] = string(b)
		} else {
			mdFiles[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return goFiles, mdFiles, err
}

// A region is the text between "// snippet:begin NAME" and "// snippet:end".
type region struct {
	name  string
	file  string
	line  int      // of the begin marker, 1-based
	lines []string // dedented
	at    []int    // the source line of each of lines
	used  bool
}

func (r *region) where() string { return fmt.Sprintf("%s:%d", r.file, r.line) }

var (
	regionName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]*$`)
	snippetMark  = regexp.MustCompile(`^<!--\s*snippet:\s*(\S+)\s*-->$`)
	declMark     = regexp.MustCompile(`^<!--\s*decl:\s*(\S+)((?:\s+[A-Za-z_][A-Za-z0-9_]*)+)\s*-->$`)
	markerPrefix = regexp.MustCompile(`^<!--\s*(snippet|decl)\b`)
)

const (
	beginMark = "// snippet:begin"
	endMark   = "// snippet:end"
)

// regions finds the regions of one Go file.
func regions(file, src string) ([]*region, []string) {
	var (
		out      []*region
		problems []string
		open     *region
		body     []string
		first    int
	)
	lines := strings.Split(src, "\n")
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if !strings.HasPrefix(trimmed, "// snippet:") {
			if open != nil {
				body = append(body, line)
			}
			continue
		}
		where := fmt.Sprintf("%s:%d", file, i+1)
		switch {
		case strings.HasPrefix(trimmed, beginMark+" "):
			name := strings.TrimSpace(strings.TrimPrefix(trimmed, beginMark))
			if open != nil {
				problems = append(problems, fmt.Sprintf("%s: region %q begins inside region %q (%s)", where, name, open.name, open.where()))
				continue
			}
			if !regionName.MatchString(name) {
				problems = append(problems, fmt.Sprintf("%s: region name %q: use letters, digits and _ . / -", where, name))
				continue
			}
			open, body, first = &region{name: name, file: file, line: i + 1}, nil, i+2
		case trimmed == endMark:
			if open == nil {
				problems = append(problems, fmt.Sprintf("%s: %q without %q", where, endMark, beginMark))
				continue
			}
			open.lines, open.at = dedent(body, first)
			if len(open.lines) == 0 {
				problems = append(problems, fmt.Sprintf("%s: region %q is empty", open.where(), open.name))
			} else {
				out = append(out, open)
			}
			open = nil
		default:
			problems = append(problems, fmt.Sprintf("%s: malformed marker %q: write %q or %q", where, trimmed, beginMark+" NAME", endMark))
		}
	}
	if open != nil {
		problems = append(problems, fmt.Sprintf("%s: region %q has no %q", open.where(), open.name, endMark))
	}
	return out, problems
}

// dedent removes the indentation common to lines (blank lines and lines that
// continue a raw string literal aside) and the leading and trailing blank
// lines. first is the source line of lines[0]; the result says the source
// line of each line it keeps.
func dedent(lines []string, first int) ([]string, []int) {
	raw := rawContinuations(strings.Join(lines, "\n"))
	prefix, set := "", false
	for i, l := range lines {
		if raw[i] || strings.TrimSpace(l) == "" {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if !set {
			prefix, set = indent, true
			continue
		}
		for !strings.HasPrefix(indent, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		switch {
		case raw[i]:
			out[i] = l
		case strings.TrimSpace(l) == "":
			out[i] = ""
		default:
			out[i] = strings.TrimPrefix(l, prefix)
		}
	}
	at := make([]int, len(lines))
	for i := range at {
		at[i] = first + i
	}
	lo, hi := 0, len(out)
	for lo < hi && out[lo] == "" && !raw[lo] {
		lo++
	}
	for hi > lo && out[hi-1] == "" && !raw[hi-1] {
		hi--
	}
	return out[lo:hi], at[lo:hi]
}

// rawContinuations reports, by line index, the lines of src that begin
// inside a raw string literal: their indentation is part of the string.
func rawContinuations(src string) map[int]bool {
	cont := map[int]bool{}
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(f, []byte(src), func(token.Position, string) {}, scanner.ScanComments)
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return cont
		}
		if tok == token.STRING && strings.HasPrefix(lit, "`") {
			start := f.Line(pos) - 1
			for i := 1; i <= strings.Count(lit, "\n"); i++ {
				cont[start+i] = true
			}
		}
	}
}

// A block is a ```go block of a Markdown file.
type block struct {
	file       string
	line       int    // of the opening fence, 1-based
	marker     string // the HTML comment before it, "" if none
	markerLine int
	indent     int // spaces before the fence, removed from its lines
	from, to   int // its lines are lines[from:to] of the file (0-based)
	lines      []string
}

// blocks finds the ```go blocks of a Markdown file and their markers.
func blocks(file, src string) ([]*block, []string) {
	var (
		out      []*block
		problems []string
		marker   string
		markerAt int
	)
	lines := strings.Split(src, "\n")
	dangling := func() {
		if marker != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: %s is not followed by a ```go block", file, markerAt, marker))
			marker = ""
		}
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		rest := line[indent:]
		fence := ""
		if indent <= 3 {
			for _, c := range []string{"`", "~"} {
				if strings.HasPrefix(rest, c+c+c) {
					fence = rest[:len(rest)-len(strings.TrimLeft(rest, c))]
				}
			}
		}
		if fence == "" {
			dangling()
			if markerPrefix.MatchString(trimmed) {
				if !snippetMark.MatchString(trimmed) && !declMark.MatchString(trimmed) {
					problems = append(problems, fmt.Sprintf("%s:%d: malformed marker %s: write <!-- snippet: NAME --> or <!-- decl: DIR NAME... -->", file, i+1, trimmed))
					continue
				}
				marker, markerAt = trimmed, i+1
			}
			continue
		}
		info := strings.Fields(rest[len(fence):])
		isGo := len(info) > 0 && info[0] == "go"
		b := &block{file: file, line: i + 1, indent: indent, from: i + 1}
		// The block ends at a fence of the same character, at least as long.
		b.to = len(lines)
		for j := i + 1; j < len(lines); j++ {
			l := strings.TrimRight(lines[j], " \t")
			ind := len(l) - len(strings.TrimLeft(l, " "))
			if ind <= 3 && strings.HasPrefix(l[ind:], fence) && strings.Trim(l[ind:], fence[:1]) == "" {
				b.to = j
				break
			}
		}
		if b.to == len(lines) {
			problems = append(problems, fmt.Sprintf("%s:%d: code block never closed", file, i+1))
		}
		if isGo {
			b.marker, b.markerLine = marker, markerAt
			marker = ""
			for _, l := range lines[b.from:b.to] {
				n := min(indent, len(l)-len(strings.TrimLeft(l, " ")))
				b.lines = append(b.lines, l[n:])
			}
			out = append(out, b)
		} else {
			dangling()
		}
		i = b.to
	}
	dangling()
	return out, problems
}

// result is what check found.
type result struct {
	problems []string          // structural problems: always failures
	diffs    []string          // blocks that differ from their source
	updated  map[string]string // Markdown files as they would be with every block from its source
	blocks   int
	regions  int
	decls    int
}

// check matches the Go blocks of mdFiles with the regions of goFiles and the
// declarations decl renders (a package directory and names).
func check(goFiles, mdFiles map[string]string, decl func(dir string, names []string) (string, error)) result {
	var res result
	byName := map[string][]*region{}
	for _, f := range sortedKeys(goFiles) {
		rs, ps := regions(f, goFiles[f])
		res.problems = append(res.problems, ps...)
		for _, r := range rs {
			byName[r.name] = append(byName[r.name], r)
		}
	}
	for _, name := range sortedKeys(byName) {
		if rs := byName[name]; len(rs) > 1 {
			var at []string
			for _, r := range rs {
				at = append(at, r.where())
			}
			res.problems = append(res.problems, fmt.Sprintf("region %q is defined %d times: %s", name, len(rs), strings.Join(at, ", ")))
		}
	}
	res.regions = len(byName)

	res.updated = map[string]string{}
	for _, f := range sortedKeys(mdFiles) {
		bs, ps := blocks(f, mdFiles[f])
		res.problems = append(res.problems, ps...)
		lines := strings.Split(mdFiles[f], "\n")
		var edits []edit
		for _, b := range bs {
			res.blocks++
			want, wantAt, source, err := b.source(byName, decl)
			if err != nil {
				res.problems = append(res.problems, err.Error())
				continue
			}
			if b.marker != "" && declMark.MatchString(b.marker) {
				res.decls++
			}
			if equal(b.lines, want) {
				continue
			}
			res.diffs = append(res.diffs, diff(b, want, wantAt, source))
			var repl []string
			for _, l := range want {
				if l != "" {
					l = strings.Repeat(" ", b.indent) + l
				}
				repl = append(repl, l)
			}
			edits = append(edits, edit{b.from, b.to, repl})
		}
		if len(edits) > 0 {
			for k := len(edits) - 1; k >= 0; k-- {
				e := edits[k]
				lines = append(lines[:e.from], append(e.lines, lines[e.to:]...)...)
			}
			res.updated[f] = strings.Join(lines, "\n")
		}
	}
	for _, name := range sortedKeys(byName) {
		if r := byName[name][0]; !r.used {
			res.problems = append(res.problems, fmt.Sprintf("%s: region %q is shown by no Markdown block", r.where(), r.name))
		}
	}
	return res
}

type edit struct {
	from, to int
	lines    []string
}

// source returns the text the block must hold, the source line of each of
// its lines (0 for a declaration) and a name of where it comes from.
func (b *block) source(byName map[string][]*region, decl func(string, []string) (string, error)) ([]string, []int, string, error) {
	at := fmt.Sprintf("%s:%d", b.file, b.line)
	if b.marker == "" {
		return nil, nil, "", fmt.Errorf("%s: ```go block without a marker: precede it with <!-- snippet: NAME --> (a region of a .go file) or <!-- decl: DIR NAME... -->", at)
	}
	if m := snippetMark.FindStringSubmatch(b.marker); m != nil {
		rs := byName[m[1]]
		if len(rs) == 0 {
			return nil, nil, "", fmt.Errorf("%s: no region %q: no .go file has \"%s %s\"", at, m[1], beginMark, m[1])
		}
		r := rs[0]
		r.used = true
		return r.lines, r.at, r.file, nil
	}
	m := declMark.FindStringSubmatch(b.marker)
	text, err := decl(m[1], strings.Fields(m[2]))
	if err != nil {
		return nil, nil, "", fmt.Errorf("%s: %s: %v", at, b.marker, err)
	}
	lines := strings.Split(text, "\n")
	return lines, make([]int, len(lines)), "declarations in " + m[1], nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diff describes how block b differs from want: the first differing line,
// with file and line in both, and a unified diff (- the block, + the source).
func diff(b *block, want []string, wantAt []int, source string) string {
	got := b.lines
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	docAt := fmt.Sprintf("%s:%d", b.file, b.from+1+min(i, len(got)))
	srcAt := source
	if i < len(wantAt) && wantAt[i] > 0 {
		srcAt = fmt.Sprintf("%s:%d", source, wantAt[i])
	} else if len(wantAt) > 0 && wantAt[len(wantAt)-1] > 0 {
		srcAt = fmt.Sprintf("%s:%d (end of region)", source, wantAt[len(wantAt)-1])
	}
	var w strings.Builder
	fmt.Fprintf(&w, "%s:%d: the Go block (%s) differs from its source (%s)\n", b.file, b.line, b.marker, source)
	fmt.Fprintf(&w, "first difference: %s vs %s\n", docAt, srcAt)
	fmt.Fprintf(&w, "--- %s (Markdown)\n+++ %s\n", b.file, source)
	for _, l := range unified(got, want, 2) {
		w.WriteString(l + "\n")
	}
	return w.String()
}

// unified returns the lines of a unified diff from a to b with ctx lines of
// context, hunk headers counting from 1.
func unified(a, b []string, ctx int) []string {
	// Longest common subsequence; the texts are a few dozen lines.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		text string
		ai   int // lines of a and b before this one
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	var out []string
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		// A hunk: changes separated by at most 2*ctx unchanged lines.
		start := max(0, k-ctx)
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(len(ops), end+ctx)
				break
			}
			end = run
		}
		var na, nb int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		out = append(out, fmt.Sprintf("@@ -%d,%d +%d,%d @@", ops[start].ai+1, na, ops[start].bi+1, nb))
		for _, o := range ops[start:end] {
			out = append(out, string(o.kind)+o.text)
		}
		k = end
	}
	return out
}

// dirDecls renders declarations of the non-test Go files of a directory
// under root.
func dirDecls(root string) func(dir string, names []string) (string, error) {
	return func(dir string, names []string) (string, error) {
		paths, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(dir), "*.go"))
		if err != nil {
			return "", err
		}
		srcs := map[string]string{}
		for _, p := range paths {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return "", err
			}
			srcs[filepath.Base(p)] = string(b)
		}
		if len(srcs) == 0 {
			return "", fmt.Errorf("no Go files in %s", dir)
		}
		return renderDecls(srcs, names)
	}
}

// renderDecls prints the named top-level functions and types of one
// package's files (name to source) as gofmt would, without comments or
// bodies: one a line, a blank line around a declaration of several lines.
func renderDecls(srcs map[string]string, names []string) (string, error) {
	fset := token.NewFileSet()
	found := map[string]ast.Node{}
	for _, name := range sortedKeys(srcs) {
		f, err := parser.ParseFile(fset, name, srcs[name], parser.SkipObjectResolution)
		if err != nil {
			return "", err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					sig := *d
					sig.Body, sig.Doc = nil, nil
					found[d.Name.Name] = &sig
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, s := range d.Specs {
					ts := s.(*ast.TypeSpec)
					found[ts.Name.Name] = &ast.GenDecl{Tok: token.TYPE, TokPos: ts.Pos(), Specs: []ast.Spec{ts}}
				}
			}
		}
	}
	var out []string
	var missing []string
	for _, name := range names {
		n, ok := found[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		var buf bytes.Buffer
		if err := format.Node(&buf, fset, n); err != nil {
			return "", err
		}
		// The blank lines left where comments were go, and gofmt aligns
		// the fields again.
		var kept []string
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.TrimSpace(l) != "" {
				kept = append(kept, l)
			}
		}
		src, err := format.Source([]byte("package p\n\n" + strings.Join(kept, "\n") + "\n"))
		if err != nil {
			return "", err
		}
		out = append(out, strings.TrimSpace(strings.TrimPrefix(string(src), "package p\n")))
	}
	if len(missing) > 0 {
		return "", errors.New("no top-level function or type named " + strings.Join(missing, ", "))
	}
	var w strings.Builder
	for i, d := range out {
		if i > 0 {
			w.WriteString("\n")
			if strings.Contains(d, "\n") || strings.Contains(out[i-1], "\n") {
				w.WriteString("\n")
			}
		}
		w.WriteString(d)
	}
	return w.String(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
