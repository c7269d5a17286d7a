package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store"
)

// ErrInvalidConfig is wrapped by every error about the file's content: a
// field with a bad value, a name used but not declared, a route given twice.
var ErrInvalidConfig = errors.New("config: invalid configuration")

// MaxFileSize is the largest file Load and Parse accept.
const MaxFileSize = 1 << 20

// File is a parsed and validated configuration file. Build makes what it
// declares; a File is not changed by Build and may be built again over
// another store.
type File struct {
	name     string
	trusted  []string
	policies []*policySpec
	guards   []*guardSpec
	routes   []*routeSpec
}

// keySpec says who (policies) or what (guards) is counted.
type keySpec struct {
	kind     string // "ip", "header", "param" or "context"
	name     string // the header, parameter or context value's name
	known    string // header: the validator's name
	auth     bool   // header: believed as it is
	fallback bool   // header, context: count by address when absent
	line     int
}

type policySpec struct {
	name      string
	line      int
	limit     int
	window    time.Duration
	key       keySpec
	count     string
	fail      limiter.FailMode
	algorithm store.Algorithm
	burst     int
	cost      int
	timeout   time.Duration
}

type guardSpec struct {
	name string
	line int
	key  keySpec
	ttl  time.Duration
	fail limiter.FailMode
	wait time.Duration
}

type routeSpec struct {
	pattern string // as written
	method  string // "" for any
	host    string
	path    string // the path in ServeMux syntax
	canon   string // the path with parameters unnamed and {$} dropped, for matching
	prefix  bool   // the path ends with / (not {$}): every path below it
	exact   bool   // the path ends with {$}
	params  []string
	limit   []string
	guard   string
	line    int

	limitLines []int // the line of each name in limit
	guardLine  int   // the line of guard
}

// Load reads, parses and validates the file at path (see Parse).
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration file's content; name is the
// file's name in error messages. It reports every mistake it finds, each as
// "name:line: what", joined into one error that wraps ErrInvalidConfig.
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalidConfig, name, MaxFileSize)
	}
	p := &parser{file: &File{name: name}, policyNames: map[string]bool{}, guardNames: map[string]bool{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err == nil {
		var next yaml.Node
		if dec.Decode(&next) != io.EOF {
			p.errorf(next.Line, "a second YAML document (after ---): the file holds one")
		}
	}
	switch {
	case err == io.EOF:
		p.errorf(1, "the file is empty")
	case err != nil:
		p.syntaxError(err)
	case len(doc.Content) == 0:
		p.errorf(1, "the file is empty")
	case doc.Content[0].Kind != yaml.MappingNode:
		p.errorf(doc.Content[0].Line, "the file must be a mapping of trusted_proxies, policies, guards and routes")
	default:
		p.top(doc.Content[0])
	}
	if len(p.errs) > 0 {
		return nil, &Error{File: name, Problems: p.errs}
	}
	return p.file, nil
}

// Error lists what is wrong in a file. Its text names each problem with
// its line; it wraps ErrInvalidConfig.
type Error struct {
	// File is the file's name as given to Parse or Load.
	File string
	// Problems are the mistakes, in the order of the file.
	Problems []Problem
}

// Problem is one mistake in a file.
type Problem struct {
	// Line is the 1-based line of the value at fault.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error returns "name:line: msg" for each problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Msg)
	}
	return b.String()
}

// Unwrap returns ErrInvalidConfig.
func (e *Error) Unwrap() error { return ErrInvalidConfig }

type parser struct {
	file *File
	errs []Problem
	// Names declared, valid or not: a route that names a policy with a
	// mistake is not reported a second time.
	policyNames, guardNames map[string]bool
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// yamlLine finds the line in the YAML parser's messages ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError reports what the YAML parser refused, at its line.
func (p *parser) syntaxError(err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		line := 1
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		}
		p.errorf(line, "%s", strings.TrimPrefix(msg, "yaml: "))
	}
}

// deref follows an alias (*name) to the node its anchor (&name) marks.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// null reports whether n is absent or YAML's null (a key with no value).
func null(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// pairs returns a mapping's key and value nodes, with the entries of merge
// keys (<<: *defaults) after the mapping's own, so that the own win.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if k.Tag != "!!merge" {
			own = append(own, [2]*yaml.Node{k, v})
			continue
		}
		from := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			from = v.Content
		}
		for _, m := range from {
			if m = deref(m); m.Kind == yaml.MappingNode {
				merged = append(merged, pairs(m)...)
			}
		}
	}
	return append(own, merged...)
}

// fields returns the mapping's values by key, reporting keys not in allowed
// and anything that is not a mapping. what names the mapping in messages.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s must be a mapping", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for _, kv := range pairs(n) { // the mapping's own keys first
		k, v := kv[0], kv[1]
		if _, dup := out[k.Value]; dup {
			if containsNode(n, k) { // not a merged default the mapping overrides
				p.errorf(k.Line, "%s: %s given twice", what, k.Value)
			}
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errorf(k.Line, "%s: unknown field %q (want %s)", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

// containsNode reports whether k is one of n's own keys (not merged).
func containsNode(n, k *yaml.Node) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i] == k {
			return true
		}
	}
	return false
}

// scalar returns n's value if n is a non-empty scalar, else reports it.
func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || strings.TrimSpace(n.Value) == "" {
		p.errorf(n.Line, "%s must be a value", what)
		return "", false
	}
	return strings.TrimSpace(n.Value), true
}

// names returns the names of a scalar or a sequence of scalars.
// names reads one name or a list of names, and returns each with the line
// it is on.
func (p *parser) names(n *yaml.Node, what string) (names []string, lines []int) {
	n = deref(n)
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			p.errorf(n.Line, "%s is an empty list", what)
		}
		for _, c := range n.Content {
			if s, ok := p.scalar(c, what); ok {
				names, lines = append(names, s), append(lines, c.Line)
			}
		}
		return names, lines
	}
	if s, ok := p.scalar(n, what); ok {
		return []string{s}, []int{n.Line}
	}
	return nil, nil
}

func (p *parser) top(n *yaml.Node) {
	f := p.fields(n, "the file", "trusted_proxies", "policies", "guards", "routes")
	if v := f["trusted_proxies"]; !null(v) {
		for _, c := range p.list(v, "trusted_proxies") {
			s, ok := p.scalar(c, "trusted_proxies")
			if !ok {
				continue
			}
			if _, err := netip.ParsePrefix(s); err != nil && s != limiter.UnixSocketKey && s != "unix" {
				if _, err := netip.ParseAddr(s); err != nil {
					p.errorf(c.Line, "trusted_proxies: %q is neither a CIDR, an address nor unix", s)
					continue
				}
			}
			p.file.trusted = append(p.file.trusted, s)
		}
	}
	if v := f["policies"]; !null(v) {
		p.eachNamed(v, "policies", func(name string, line int, body *yaml.Node) {
			p.policyNames[name] = true
			if ps := p.policy(name, line, body); ps != nil {
				p.file.policies = append(p.file.policies, ps)
			}
		})
	}
	if v := f["guards"]; !null(v) {
		p.eachNamed(v, "guards", func(name string, line int, body *yaml.Node) {
			p.guardNames[name] = true
			if gs := p.guard(name, line, body); gs != nil {
				p.file.guards = append(p.file.guards, gs)
			}
		})
	}
	if v := f["routes"]; !null(v) {
		for _, c := range p.list(v, "routes") {
			if rs := p.route(c); rs != nil {
				p.file.routes = append(p.file.routes, rs)
			}
		}
	}
	p.crossCheck()
}

// list returns a sequence's items, reporting anything else.
func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, "%s must be a list", what)
		return nil
	}
	return n.Content
}

// eachNamed calls fn for every entry of a mapping of names to bodies.
func (p *parser) eachNamed(n *yaml.Node, what string, fn func(name string, line int, body *yaml.Node)) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, "%s must be a mapping of names", what)
		return
	}
	seen := map[string]int{}
	for _, kv := range pairs(n) {
		k, v := kv[0], kv[1]
		name := k.Value
		if first, dup := seen[name]; dup {
			if containsNode(n, k) {
				p.errorf(k.Line, "%s: %q is declared twice (first at line %d)", what, name, first)
			}
			continue
		}
		seen[name] = k.Line
		fn(name, k.Line, v)
	}
}

func (p *parser) policy(name string, line int, n *yaml.Node) *policySpec {
	what := fmt.Sprintf("policy %q", name)
	f := p.fields(n, what, "rate", "key", "count", "fail", "algorithm", "burst", "cost", "timeout")
	if f == nil {
		return nil
	}
	before := len(p.errs)
	if name == "" || len(name) > limiter.MaxNameLen || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r > '~' }) {
		p.errorf(line, "%s: a policy's name is 1 to %d bytes of printable ASCII", what, limiter.MaxNameLen)
	}
	ps := &policySpec{name: name, line: line, key: keySpec{kind: "ip", line: line}, count: "all", cost: 1}
	if v := f["rate"]; v == nil {
		p.errorf(line, "%s: rate is required, as <limit>/<window> (5/10s)", what)
	} else if s, ok := p.scalar(v, what+": rate"); ok {
		limit, window, err := ParseRate(s)
		if err != nil {
			p.errorf(v.Line, "%s: %v", what, err)
		}
		ps.limit, ps.window = limit, window
	}
	if v := f["key"]; v != nil {
		ps.key = p.key(v, what, true)
	}
	if v := f["count"]; v != nil {
		if s, ok := p.scalar(v, what+": count"); ok {
			if !slices.Contains([]string{"all", "failures", "successes"}, s) {
				p.errorf(v.Line, "%s: count %q: want all, failures or successes", what, s)
			}
			ps.count = s
		}
	}
	ps.fail = p.failMode(f["fail"], what, limiter.FailOpen)
	if v := f["algorithm"]; v != nil {
		if s, ok := p.scalar(v, what+": algorithm"); ok {
			switch s {
			case store.SlidingLog.String():
				ps.algorithm = store.SlidingLog
			case store.SlidingCounter.String():
				ps.algorithm = store.SlidingCounter
			case store.GCRA.String():
				ps.algorithm = store.GCRA
			default:
				p.errorf(v.Line, "%s: algorithm %q: want sliding-log, sliding-counter or gcra", what, s)
			}
		}
	}
	if v := f["burst"]; v != nil {
		ps.burst = p.positive(v, what+": burst")
		if ps.algorithm != store.GCRA {
			p.errorf(v.Line, "%s: burst is for algorithm gcra only", what)
		}
	}
	if v := f["cost"]; v != nil {
		ps.cost = p.positive(v, what+": cost")
	}
	if v := f["timeout"]; v != nil {
		ps.timeout = p.duration(v, what+": timeout")
	}
	if len(p.errs) > before {
		return nil
	}
	// What the store would refuse (a limit too large for the algorithm, a
	// cost above the limit), told with the line now rather than at Build.
	rule := store.Rule{Name: name, Limit: ps.limit, Window: ps.window, Algorithm: ps.algorithm, Burst: ps.burst}
	if err := rule.Validate(); err != nil {
		p.errorf(line, "%s: %s", what, strings.TrimPrefix(err.Error(), "store: "))
		return nil
	}
	switch {
	case ps.cost > rule.Capacity() && rule.Capacity() != rule.Limit:
		p.errorf(f["cost"].Line, "%s: cost %d is more than the burst %d", what, ps.cost, rule.Capacity())
		return nil
	case ps.cost > rule.Capacity():
		p.errorf(f["cost"].Line, "%s: cost %d is more than the limit %d", what, ps.cost, rule.Capacity())
		return nil
	case ps.algorithm == store.SlidingLog && ps.cost > store.MaxCost:
		p.errorf(f["cost"].Line, "%s: cost %d is more than %d, the most hits the sliding log records at once", what, ps.cost, store.MaxCost)
		return nil
	}
	return ps
}

func (p *parser) guard(name string, line int, n *yaml.Node) *guardSpec {
	what := fmt.Sprintf("guard %q", name)
	f := p.fields(n, what, "key", "ttl", "fail", "wait")
	if f == nil {
		return nil
	}
	before := len(p.errs)
	gs := &guardSpec{name: name, line: line}
	if v := f["key"]; v == nil {
		p.errorf(line, "%s: key is required ({param: id})", what)
	} else {
		gs.key = p.key(v, what, false)
	}
	if v := f["ttl"]; v == nil {
		p.errorf(line, "%s: ttl is required (5s)", what)
	} else if gs.ttl = p.duration(v, what+": ttl"); gs.ttl < time.Millisecond && len(p.errs) == before {
		p.errorf(v.Line, "%s: ttl must be at least 1ms", what)
	}
	gs.fail = p.failMode(f["fail"], what, limiter.FailClosed)
	if v := f["wait"]; v != nil {
		gs.wait = p.duration(v, what+": wait")
	}
	if len(p.errs) > before {
		return nil
	}
	return gs
}

// key parses "ip" or {header|param|context: NAME, ...}. fallback is
// whether header and context keys fall back to the client's address when
// the file does not say.
func (p *parser) key(n *yaml.Node, what string, fallback bool) keySpec {
	n = deref(n)
	ks := keySpec{line: n.Line, fallback: fallback}
	what += ": key"
	if n.Kind == yaml.ScalarNode {
		s, ok := p.scalar(n, what)
		if ok && s != "ip" {
			p.errorf(n.Line, "%s %q: want ip, or a mapping such as {param: id} or {header: X-API-Key, known: api-keys}", what, s)
		}
		ks.kind = "ip"
		return ks
	}
	f := p.fields(n, what, "header", "known", "authenticated", "param", "context", "fallback")
	if f == nil {
		return ks
	}
	var kinds []string
	for _, k := range []string{"header", "param", "context"} {
		if v := f[k]; v != nil {
			kinds = append(kinds, k)
			ks.kind = k
			ks.name, _ = p.scalar(v, what+": "+k)
		}
	}
	if len(kinds) != 1 {
		p.errorf(n.Line, "%s: give exactly one of header, param or context", what)
		return ks
	}
	if v := f["known"]; v != nil {
		if ks.kind != "header" {
			p.errorf(v.Line, "%s: known is for header keys", what)
		}
		ks.known, _ = p.scalar(v, what+": known")
	}
	if v := f["authenticated"]; v != nil {
		if ks.kind != "header" {
			p.errorf(v.Line, "%s: authenticated is for header keys", what)
		}
		var b bool
		if err := v.Decode(&b); err != nil {
			p.errorf(v.Line, "%s: authenticated must be true or false", what)
		}
		ks.auth = b
	}
	if ks.kind == "header" && (ks.known == "") == !ks.auth {
		p.errorf(n.Line, "%s: a header key needs known: <validator> (a credential the server checks) or authenticated: true (checked before sluice runs), not both: "+
			"a header believed unchecked lets a client escape the limit with a fresh value per request", what)
	}
	if ks.kind == "header" && ks.name != "" && !validToken(ks.name) {
		p.errorf(f["header"].Line, "%s: %q is not a header name", what, ks.name)
	}
	if v := f["fallback"]; v != nil {
		if ks.kind == "param" {
			p.errorf(v.Line, "%s: fallback is for header and context keys", what)
		}
		switch s, _ := p.scalar(v, what+": fallback"); s {
		case "ip":
			ks.fallback = true
		case "none":
			ks.fallback = false
		default:
			p.errorf(v.Line, "%s: fallback %q: want ip or none", what, s)
		}
	}
	return ks
}

func (p *parser) failMode(n *yaml.Node, what string, def limiter.FailMode) limiter.FailMode {
	if n == nil {
		return def
	}
	switch s, _ := p.scalar(n, what+": fail"); s {
	case "open":
		return limiter.FailOpen
	case "closed":
		return limiter.FailClosed
	default:
		p.errorf(n.Line, "%s: fail %q: want open or closed", what, s)
		return def
	}
}

func (p *parser) positive(n *yaml.Node, what string) int {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		p.errorf(n.Line, "%s %q: want a whole number of at least 1", what, s)
		return 0
	}
	return v
}

func (p *parser) duration(n *yaml.Node, what string) time.Duration {
	s, ok := p.scalar(n, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		p.errorf(n.Line, "%s %q: want a duration such as 500ms or 5s", what, s)
		return 0
	}
	return d
}

func (p *parser) route(n *yaml.Node) *routeSpec {
	f := p.fields(n, "route", "route", "limit", "guard")
	if f == nil {
		return nil
	}
	before := len(p.errs)
	rs := &routeSpec{line: n.Line}
	if v := f["route"]; v == nil {
		p.errorf(n.Line, "a route needs route: <pattern> (POST /orders/{id}/pay)")
	} else if s, ok := p.scalar(v, "route"); ok {
		rs.pattern = s
		if err := rs.parsePattern(s); err != nil {
			p.errorf(v.Line, "route %q: %v", s, err)
		}
	}
	what := fmt.Sprintf("route %q", rs.pattern)
	if v := f["limit"]; v != nil {
		rs.limit, rs.limitLines = p.names(v, what+": limit")
		if len(rs.limit) > limiter.MaxStack {
			p.errorf(v.Line, "%s: at most %d policies decide together", what, limiter.MaxStack)
		}
		seen := map[string]bool{}
		for i, l := range rs.limit {
			if seen[l] {
				p.errorf(rs.limitLines[i], "%s: policy %q named twice", what, l)
			}
			seen[l] = true
		}
	}
	if v := f["guard"]; v != nil {
		rs.guard, _ = p.scalar(v, what+": guard")
		rs.guardLine = v.Line
	}
	if f["limit"] == nil && f["guard"] == nil {
		p.errorf(n.Line, "%s: give it a limit, a guard or both", what)
	}
	if len(p.errs) > before {
		return nil
	}
	return rs
}

// crossCheck reports names used but not declared, and routes given twice.
func (p *parser) crossCheck() {
	policies, guards := p.policyNames, p.guardNames
	seen := map[string]int{}
	mux := http.NewServeMux()
	for _, rs := range p.file.routes {
		for i, l := range rs.limit {
			if !policies[l] {
				p.errorf(rs.limitLines[i], "route %q: no policy %q%s", rs.pattern, l, declared(policies))
			}
		}
		if rs.guard != "" && !guards[rs.guard] {
			p.errorf(rs.guardLine, "route %q: no guard %q%s", rs.pattern, rs.guard, declared(guards))
		}
		k := rs.method + " " + rs.host + rs.canon
		if rs.prefix {
			k += "…"
		}
		if first, dup := seen[k]; dup {
			p.errorf(rs.line, "route %q: the same route as line %d", rs.pattern, first)
			continue
		}
		seen[k] = rs.line
		if err := register(mux, rs.muxPattern(), http.NotFoundHandler()); err != nil {
			p.errorf(rs.line, "route %q: %v", rs.pattern, err)
		}
		// A key that reads a route parameter the pattern lacks would refuse
		// every request with 400.
		for _, l := range rs.limit {
			if ps := p.policyByName(l); ps != nil && ps.key.kind == "param" && !slices.Contains(rs.params, ps.key.name) {
				p.errorf(rs.line, "route %q: policy %q counts by parameter %q, which the pattern does not have", rs.pattern, l, ps.key.name)
			}
		}
		if gs := p.guardByName(rs.guard); gs != nil && gs.key.kind == "param" && !slices.Contains(rs.params, gs.key.name) {
			p.errorf(rs.line, "route %q: guard %q locks by parameter %q, which the pattern does not have", rs.pattern, rs.guard, gs.key.name)
		}
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
}

func (p *parser) policyByName(name string) *policySpec {
	for _, ps := range p.file.policies {
		if ps.name == name {
			return ps
		}
	}
	return nil
}

func (p *parser) guardByName(name string) *guardSpec {
	for _, gs := range p.file.guards {
		if gs.name == name {
			return gs
		}
	}
	return nil
}

// validToken reports whether s is an HTTP token (a header name, a method).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}

func declared(names map[string]bool) string {
	if len(names) == 0 {
		return " (none is declared)"
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	return " (declared: " + strings.Join(list, ", ") + ")"
}

// ParseRate parses a rate as the file writes it: "<limit>/<window>", the
// window a Go duration ("5/10s", "1000/24h", "3/1m30s") or a count of days
// ("7/1d"), or a bare unit meaning one of it ("60/m", "10/s", "1000/d").
func ParseRate(s string) (limit int, window time.Duration, err error) {
	l, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want <limit>/<window>, such as 5/10s or 1000/24h", s)
	}
	limit, err = strconv.Atoi(strings.TrimSpace(l))
	if err != nil || limit < 1 {
		return 0, 0, fmt.Errorf("rate %q: the limit must be a whole number of at least 1", s)
	}
	w = strings.TrimSpace(w)
	switch {
	case w == "s" || w == "m" || w == "h" || w == "d":
		w = "1" + w
	}
	if days, isDays := strings.CutSuffix(w, "d"); isDays {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > int(math.MaxInt64/int64(24*time.Hour)) {
			return 0, 0, fmt.Errorf("rate %q: the window %q is not a whole number of days", s, w)
		}
		return limit, time.Duration(n) * 24 * time.Hour, nil
	}
	window, err = time.ParseDuration(w)
	if err != nil || window <= 0 {
		return 0, 0, fmt.Errorf("rate %q: the window %q is not a duration such as 10s, 1m or 24h", s, w)
	}
	return limit, window, nil
}
