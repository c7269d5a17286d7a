package config

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/adapters/httpmw"
	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/store"
)

// Option configures Build with what a file cannot say: functions and Go
// values.
type Option func(*options)

type options struct {
	clientIP limiter.KeyFunc
	known    map[string]func(string) bool
	ctxKeys  map[string]any
	observer limiter.Observer
	logger   *slog.Logger
}

// WithClientIP sets how the ip key (and the ip fallback of header and
// context keys) finds the client, instead of the file's trusted_proxies:
// for instance limiter.TrustedProxyIP with proxies the environment names.
func WithClientIP(fn limiter.KeyFunc) Option {
	return func(o *options) { o.clientIP = fn }
}

// WithKnown names a validator for header keys: a key
// {header: X-API-Key, known: name} counts a request by its header only when
// valid accepts the value (it must be safe for concurrent use), and by the
// client's address otherwise. Build fails if the file names a validator
// that no WithKnown gives.
func WithKnown(name string, valid func(value string) bool) Option {
	return func(o *options) {
		if o.known == nil {
			o.known = map[string]func(string) bool{}
		}
		o.known[name] = valid
	}
}

// WithContextKey says under which Go context key the value a context key
// names is stored: {context: user} with WithContextKey("user", userKey{})
// reads ctx.Value(userKey{}). Without it, the name itself (a string) is
// the context key, as gin's c.Set stores values.
func WithContextKey(name string, key any) Option {
	return func(o *options) {
		if o.ctxKeys == nil {
			o.ctxKeys = map[string]any{}
		}
		o.ctxKeys[name] = key
	}
}

// WithObserver is told every decision of the policies and every lock event
// of the guards (limiter.WithObserver, lockguard.WithObserver), for metrics.
func WithObserver(o limiter.Observer) Option {
	return func(opts *options) { opts.observer = o }
}

// WithLogger sets the logger of the policies and guards (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Routes are a file's policies and guards, made over one store, and the
// routes they apply to. Mount them with Handler, echoconfig.Mount or
// ginconfig.Mount.
type Routes struct {
	routes   []*Route
	policies map[string]*limiter.Policy
	guards   map[string]*lockguard.Guard
	stacks   []*limiter.Policy

	mu    sync.RWMutex
	match map[matchKey]*Route // framework route path → route, as asked
}

// Route is one route of a file and what applies to it.
type Route struct {
	// Pattern is the route as the file writes it.
	Pattern string
	// Method is the pattern's method, or "" for every method.
	Method string
	// Policy limits the route, or is nil: the file's policy, or a
	// limiter.Stack of its policies when the route names several.
	Policy *limiter.Policy
	// Guard guards the route, or is nil.
	Guard *lockguard.Guard

	spec *routeSpec
}

type matchKey struct{ method, path string }

// Build makes the file's policies and guards over st and returns them with
// their routes. The policies' names must be new on st (see
// limiter.NewPolicy): build a file once per store. Close the Routes to
// release what Build made.
func (f *File) Build(st store.Store, opts ...Option) (rt *Routes, err error) {
	if st == nil {
		return nil, fmt.Errorf("%w: Build needs a store", ErrInvalidConfig)
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.clientIP == nil {
		o.clientIP = limiter.ClientIP
		if len(f.trusted) > 0 {
			if o.clientIP, err = limiter.TrustedProxyIP(f.trusted...); err != nil {
				return nil, fmt.Errorf("%w: %s: trusted_proxies: %v", ErrInvalidConfig, f.name, err)
			}
		}
	}
	rt = &Routes{
		policies: map[string]*limiter.Policy{},
		guards:   map[string]*lockguard.Guard{},
		match:    map[matchKey]*Route{},
	}
	made := rt
	defer func() {
		if err != nil {
			_ = made.Close()
		}
	}()
	for _, ps := range f.policies {
		p, err := ps.build(st, &o)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: policy %q: %w", f.name, ps.line, ps.name, err)
		}
		rt.policies[ps.name] = p
	}
	var locker *lockguard.Locker
	for _, gs := range f.guards {
		if locker == nil {
			if locker, err = lockguard.New(st); err != nil {
				return nil, err
			}
		}
		g, err := gs.build(locker, &o)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: guard %q: %w", f.name, gs.line, gs.name, err)
		}
		rt.guards[gs.name] = g
	}
	stacks := map[string]*limiter.Policy{}
	for _, rs := range f.routes {
		r := &Route{Pattern: rs.pattern, Method: rs.method, spec: rs}
		switch len(rs.limit) {
		case 0:
		case 1:
			r.Policy = rt.policies[rs.limit[0]]
		default:
			// A route group that names the same policies shares one stack.
			id := strings.Join(rs.limit, ",")
			if r.Policy = stacks[id]; r.Policy == nil {
				members := make([]*limiter.Policy, len(rs.limit))
				for i, name := range rs.limit {
					members[i] = rt.policies[name]
				}
				if r.Policy, err = limiter.Stack(members...); err != nil {
					return nil, fmt.Errorf("%s:%d: route %q: %w", f.name, rs.line, rs.pattern, err)
				}
				stacks[id] = r.Policy
				rt.stacks = append(rt.stacks, r.Policy)
			}
		}
		if rs.guard != "" {
			r.Guard = rt.guards[rs.guard]
		}
		rt.routes = append(rt.routes, r)
	}
	return rt, nil
}

func (ps *policySpec) build(st store.Store, o *options) (*limiter.Policy, error) {
	key, err := ps.key.build(o)
	if err != nil {
		return nil, err
	}
	opts := []limiter.Option{
		limiter.WithKey(key),
		limiter.WithFailMode(ps.fail),
		limiter.WithAlgorithm(ps.algorithm),
		limiter.WithCost(ps.cost),
	}
	switch ps.count {
	case "failures":
		opts = append(opts, limiter.WithSkipSuccessful())
	case "successes":
		opts = append(opts, limiter.WithSkipFailed())
	}
	if ps.burst > 0 {
		opts = append(opts, limiter.WithBurst(ps.burst))
	}
	if ps.timeout > 0 {
		opts = append(opts, limiter.WithTimeout(ps.timeout))
	}
	if o.observer != nil {
		opts = append(opts, limiter.WithObserver(o.observer))
	}
	if o.logger != nil {
		opts = append(opts, limiter.WithLogger(o.logger))
	}
	return limiter.NewPolicy(ps.name, ps.limit, ps.window, st, opts...)
}

func (gs *guardSpec) build(locker *lockguard.Locker, o *options) (*lockguard.Guard, error) {
	key, err := gs.key.build(o)
	if err != nil {
		return nil, err
	}
	opts := []lockguard.GuardOption{lockguard.WithFailMode(gs.fail)}
	if gs.wait > 0 {
		opts = append(opts, lockguard.WithWait(gs.wait))
	}
	if o.observer != nil {
		opts = append(opts, lockguard.WithObserver(o.observer))
	}
	if o.logger != nil {
		opts = append(opts, lockguard.WithLogger(o.logger))
	}
	return lockguard.NewGuard(gs.name, locker, key, gs.ttl, opts...)
}

func (ks keySpec) build(o *options) (limiter.KeyFunc, error) {
	var fallback limiter.KeyFunc
	if ks.fallback {
		fallback = o.clientIP
	}
	switch ks.kind {
	case "header":
		if ks.auth {
			return limiter.HeaderKey(ks.name, fallback), nil
		}
		valid, ok := o.known[ks.known]
		if !ok {
			return nil, fmt.Errorf("%w: key: no validator %q: give it to Build with config.WithKnown", ErrInvalidConfig, ks.known)
		}
		return limiter.ValidatedHeaderKey(ks.name, valid, fallback), nil
	case "param":
		return limiter.PathValueKey(ks.name), nil
	case "context":
		var k any = ks.name
		if ck, ok := o.ctxKeys[ks.name]; ok {
			k = ck
		}
		return limiter.ContextKey(k, fallback), nil
	default:
		return o.clientIP, nil
	}
}

// Routes returns the routes in the file's order.
func (rt *Routes) Routes() []*Route { return append([]*Route(nil), rt.routes...) }

// Policy returns the policy the file names name, for an operator's Peek and
// Reset, or nil.
func (rt *Routes) Policy(name string) *limiter.Policy { return rt.policies[name] }

// Guard returns the guard the file names name, or nil.
func (rt *Routes) Guard(name string) *lockguard.Guard { return rt.guards[name] }

// Match returns the route for a request's method and the route path a
// router matched, in echo's or gin's syntax ("/orders/:id/pay", as
// echo.Context.Path and gin.Context.FullPath give it) or ServeMux's, or nil.
// A route whose path is the same wins; else the longest route whose path
// ends with / (every path below it, as in a ServeMux). Among those, a route
// of the request's method wins over one for every method, and a HEAD
// request also matches a GET route. Routes with a host never match.
func (rt *Routes) Match(method, path string) *Route {
	k := matchKey{method, path}
	rt.mu.RLock()
	r, ok := rt.match[k]
	rt.mu.RUnlock()
	if ok {
		return r
	}
	r = rt.find(method, canonPath(path))
	if standardMethod(method) { // a bounded set of keys
		rt.mu.Lock()
		if len(rt.match) < maxMatchCache {
			rt.match[k] = r
		}
		rt.mu.Unlock()
	}
	return r
}

// maxMatchCache bounds the routes Match remembers: a router has a bounded
// set of route paths, but a caller might pass request paths.
const maxMatchCache = 4096

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func (rt *Routes) find(method, canon string) *Route {
	methods := []string{method, ""}
	if method == http.MethodHead {
		methods = []string{method, http.MethodGet, ""}
	}
	for _, m := range methods {
		for _, r := range rt.routes {
			if r.spec.host == "" && r.Method == m && !r.spec.prefix && r.spec.canon == canon {
				return r
			}
		}
	}
	var best *Route
	for _, m := range methods {
		for _, r := range rt.routes {
			if r.spec.host == "" && r.Method == m && r.spec.prefix && strings.HasPrefix(canon, r.spec.canon) &&
				(best == nil || len(r.spec.canon) > len(best.spec.canon)) {
				best = r
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// Handler returns next behind the file's routes: a request that matches a
// route's pattern (as an http.ServeMux would match it, path parameters
// included) passes the route's policy and then its guard before next
// serves it; every other request goes straight to next. next is usually
// the ServeMux that serves the same patterns. Mount Handler inside any
// middleware that puts values in the request's context for context keys.
func (rt *Routes) Handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	for _, r := range rt.routes {
		h := next
		if r.Guard != nil {
			h = httpmw.Guard(r.Guard)(h)
		}
		if r.Policy != nil {
			h = httpmw.RateLimit(r.Policy)(h)
		}
		rh := &routeHandler{Handler: h, segs: strings.Split(r.spec.path[1:], "/")}
		if err := register(mux, r.spec.muxPattern(), rh); err != nil {
			panic("config: " + err.Error()) // Parse registered the same patterns
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mux's own answers (redirects to a cleaned path, 404, 405)
		// are next's to give: only a route's handler counts.
		h, _ := mux.Handler(r)
		rh, ok := h.(*routeHandler)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		rh.setPathValues(r)
		rh.ServeHTTP(w, r)
	})
}

// routeHandler is a route's chain in Handler's mux, with the segments of
// its path in ServeMux syntax.
type routeHandler struct {
	http.Handler
	segs []string
}

// setPathValues sets the request's path values as the mux would for the
// route (mux.Handler finds the route but does not set them): each {name}
// is its segment unescaped, a final {name...} the rest of the path.
func (rh *routeHandler) setPathValues(r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	for _, seg := range rh.segs {
		if !strings.HasPrefix(seg, "{") || seg == "{$}" {
			_, rest, _ = strings.Cut(rest, "/")
			continue
		}
		name, multi := strings.CutSuffix(seg[1:len(seg)-1], "...")
		part := rest
		if !multi {
			part, rest, _ = strings.Cut(rest, "/")
		}
		if v, err := url.PathUnescape(part); err == nil {
			r.SetPathValue(name, v)
		}
		if multi {
			return
		}
	}
}

// Close closes the policies and stacks Build made.
func (rt *Routes) Close() error {
	for _, s := range rt.stacks {
		_ = s.Close()
	}
	for _, p := range rt.policies {
		_ = p.Close()
	}
	return nil
}
