// Package config declares sluice's rate limits and guards in a YAML file
// and mounts them on routes, so that changing a limit needs no release.
//
// A file names policies (rate limits), guards (one request at a time per
// resource) and the routes they apply to:
//
//	# sluice.yaml
//	trusted_proxies: [10.0.0.0/8]      # whose X-Forwarded-For is believed
//
//	policies:
//	  api:
//	    rate: 100/1m                   # 100 per minute
//	    key: {header: X-API-Key, known: api-keys}
//	  login:
//	    rate: 3/60s
//	    count: failures                # successful logins are not counted
//	    fail: closed                   # 503 while the store is down
//	  daily:
//	    rate: 1000/24h
//	    algorithm: sliding-counter     # O(1) memory per client
//	  burst: {rate: 3/10s}
//
//	guards:
//	  order:
//	    key: {param: id}
//	    ttl: 5s
//
//	routes:
//	  - {route: GET /api/hello, limit: api}
//	  - {route: GET /api/export, limit: [burst, daily]}   # decided together
//	  - {route: POST /login, limit: login}
//	  - {route: "POST /orders/{id}/pay", guard: order}   # quoted: { } in a pattern
//
// Load (or Parse) validates the whole file and reports every mistake with its
// line, as "sluice.yaml:12: policy "login": ...", each wrapping
// ErrInvalidConfig. File.Build makes the policies and guards over one store;
// Routes.Handler mounts them in front of an http.ServeMux (or any
// http.Handler) in one call:
//
//	f, err := config.Load("sluice.yaml")
//	...
//	routes, err := f.Build(st, config.WithKnown("api-keys", isAPIKey))
//	...
//	http.ListenAndServe(":8080", routes.Handler(mux))
//
// The packages echoconfig and ginconfig mount the same Routes on an echo
// instance or a gin engine. Only this module imports the YAML parser: a user
// of sluice who declares limits in Go never builds it.
//
// # Policies
//
// Each policy is a limiter.Policy named by its key in the file:
//
//	rate       required: "<limit>/<window>", the window a Go duration
//	           ("5/10s", "1000/24h") or a bare unit ("60/m"; s, m, h, d)
//	key        who is counted: ip (the default), {header: NAME, known: V}
//	           (a credential that validator V, given to Build with
//	           WithKnown, accepts; other requests count by address),
//	           {header: NAME, authenticated: true} (a header a gateway has
//	           checked already), {param: NAME} (a route parameter) or
//	           {context: NAME} (a value an earlier middleware stored; see
//	           WithContextKey). header and context keys take
//	           fallback: ip (the default) or none (such requests get 400)
//	count      all (the default), failures (skip successful responses, for
//	           logins) or successes (skip failed ones)
//	fail       open (the default: serve unlimited while the store fails)
//	           or closed (503)
//	algorithm  sliding-log (the default, exact), sliding-counter or gcra
//	burst      gcra only: the bucket's capacity (default: the limit)
//	cost       hits each request counts (default 1)
//	timeout    the store call's deadline (default 500ms)
//
// # Guards
//
// Each guard is a lockguard.Guard named by its key in the file, with lock
// keys "<name>:<key>":
//
//	key   required, as for policies, except that header and context keys
//	      refuse a request without the value (400) unless they say
//	      fallback: ip: usually {param: id}
//	ttl   required: the lock's time to live, kept alive while the request
//	      runs
//	fail  closed (the default: 503 while the store fails) or open
//	wait  how long a request waits for a held lock before 409 (default 0)
//
// # Routes
//
// Each route names a pattern and a limit (one policy, or a list decided
// together as one limiter.Stack), a guard, or both; the limit runs first, so
// a denied request never takes the lock. Patterns use http.ServeMux syntax
// ("POST /orders/{id}/pay"; a path that ends with / names every path below
// it, and {$} ends an exact one); echo and gin users may write their own
// (":id", "*path") as well. A policy named by several routes counts them
// together: that is a route group. A key that reads a route parameter
// must be on routes whose pattern has it.
//
// YAML anchors, aliases and merge keys (<<: *defaults) share settings
// between entries. The file is one YAML document.
package config
