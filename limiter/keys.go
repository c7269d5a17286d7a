package limiter

import (
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
)

// KeyFunc picks the key a request is counted under: who the client is (an
// address, an API key, a user). It is also what a lockguard.Guard locks: the
// resource a request works on (an order id, PathValueKey). An error (or an
// empty key) means the request cannot be attributed; the Policy (or Guard)
// then answers 400 instead of guessing, reports the error, and never panics.
// Keys may be long (a 32 KB header is fine): stores hash them.
type KeyFunc func(r *http.Request) (string, error)

// ClientIP is the default KeyFunc: the address of the peer that connected
// (http.Request.RemoteAddr), with the port dropped. An IPv4 address (also
// one written as an IPv4-mapped IPv6 address) is its own key; an IPv6 address
// is grouped by its /64 prefix ("2001:db8:1:2::/64"), because one host
// usually holds a whole /64 and could otherwise rotate addresses to escape
// its limit (ClientIPPrefix chooses another prefix length).
// X-Forwarded-For and X-Real-IP are ignored: behind a reverse proxy use
// TrustedProxyIP. A peer on a Unix socket (RemoteAddr "@", or a
// path such as "/run/app.sock") has no address of its own: every such peer
// is counted under the one key UnixSocketKey. Any other RemoteAddr that is
// not an IP address is an error wrapping ErrNoKey.
func ClientIP(r *http.Request) (string, error) { return clientIP(r, defaultIPv6Bits) }

// defaultIPv6Bits is the prefix length ClientIP and TrustedProxyIP group IPv6
// addresses by.
const defaultIPv6Bits = 64

// clientIP is ClientIP with IPv6 addresses grouped by their /bits prefix.
func clientIP(r *http.Request, bits int) (string, error) {
	a, raw, ok := parseHost(r.RemoteAddr)
	if !ok {
		if isUnixPeer(r.RemoteAddr) {
			return UnixSocketKey, nil
		}
		return "", fmt.Errorf("%w: remote address is not an IP address", ErrNoKey)
	}
	return ipKey(a, raw, bits), nil
}

// ClientIPPrefix returns a KeyFunc that keys requests as ClientIP does, or as
// TrustedProxyIP(trusted...) does when trusted holds entries, but groups IPv6
// addresses by their first bits bits instead of 64: 48 counts a whole site
// (a typical allocation to a customer) as one client, 128 every address
// apart (for networks where many users share one /64). IPv4 addresses are
// their own keys whatever bits is. A bits outside 1..128, or a malformed
// trusted entry, is an error wrapping ErrInvalidConfig.
func ClientIPPrefix(bits int, trusted ...string) (KeyFunc, error) {
	if bits < 1 || bits > 128 {
		return nil, fmt.Errorf("%w: IPv6 prefix length %d outside 1..128", ErrInvalidConfig, bits)
	}
	tp, err := parseTrusted(trusted)
	if err != nil {
		return nil, err
	}
	tp.bits = bits
	switch {
	case len(tp.nets) > 0 || tp.unix:
		return tp.key, nil
	case bits == defaultIPv6Bits:
		return ClientIP, nil
	}
	return func(r *http.Request) (string, error) { return clientIP(r, bits) }, nil
}

// PathValueKey returns a KeyFunc that counts requests by the route parameter
// name as net/http's ServeMux sets it (r.PathValue, "{id}" in the pattern
// "/items/{id}"); the echo and gin adapters copy their route parameters into
// the request's path values, so it works under them too. The key is
// "param:<name>:<value>", so a parameter never shares a counter with an
// address, a header or another parameter. A missing or empty parameter is an
// error wrapping ErrNoKey. With net/http, wrap the route's handler, not the
// ServeMux: path values are set once the mux has matched the pattern.
func PathValueKey(name string) KeyFunc {
	prefix := "param:" + name + ":"
	return func(r *http.Request) (string, error) {
		if v := r.PathValue(name); v != "" {
			return prefix + v, nil
		}
		return "", fmt.Errorf("%w: path value %q is empty", ErrNoKey, name)
	}
}

// UnixSocketKey is the key ClientIP gives every peer of a Unix socket: such
// peers have no address, so they share one quota. They are usually a local
// reverse proxy: TrustedProxyIP("unix") believes its X-Forwarded-For, so
// that the clients behind it are counted apart.
const UnixSocketKey = "unix:"

// isUnixPeer reports whether a RemoteAddr is that of a Unix-socket peer: "@"
// (what net/http reports for an unnamed peer) or an absolute path.
func isUnixPeer(addr string) bool {
	return addr == "@" || strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@/")
}

// TrustedProxyIP returns a KeyFunc for an application behind reverse proxies
// or load balancers whose addresses are in trusted, a list of CIDR prefixes
// ("10.0.0.0/8", "2001:db8::/32") or single addresses ("192.0.2.7"); empty
// entries are ignored and a malformed one is an error wrapping
// ErrInvalidConfig.
//
// If the connecting peer (RemoteAddr) is not trusted, the request came
// straight from the client and forwarding headers are ignored, so a client
// cannot choose its own key by sending them. If the peer is trusted, the
// client is the right-most address in X-Forwarded-For (all its header lines,
// in order) that is not trusted: each trusted proxy appends the address it
// received the request from, so the entries left of the first untrusted one,
// reading from the right, were written by the client and prove nothing.
// Entries may carry a port ("192.0.2.1:80", "[2001:db8::1]:80"). An entry
// that is not an IP address (one with trailing junk such as "[2001:db8::1]x",
// or a port that is not a number from 0 to 65535, is not) stops the walk and
// the request is counted under the hop that handed it over (the entry to its
// right, or the peer), which the client cannot choose. When every entry is
// trusted the left-most one is the client. Without X-Forwarded-For,
// X-Real-IP set by the trusted peer is used if it holds an IP address;
// otherwise the peer itself is the client. Addresses are grouped as ClientIP
// groups them. The entry "unix" trusts the peers of a Unix socket (a reverse
// proxy on the same host); untrusted, they share UnixSocketKey as under
// ClientIP. With no trusted entries at all the KeyFunc behaves as ClientIP.
// IPv6 addresses are grouped by /64; ClientIPPrefix takes another length.
func TrustedProxyIP(trusted ...string) (KeyFunc, error) {
	return ClientIPPrefix(defaultIPv6Bits, trusted...)
}

// parseTrusted parses the entries of TrustedProxyIP.
func parseTrusted(trusted []string) (trustedProxies, error) {
	tp := trustedProxies{bits: defaultIPv6Bits}
	for _, s := range trusted {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if s == "unix" {
			tp.unix = true
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			return tp, fmt.Errorf("%w: trusted proxy %q: not a CIDR prefix or IP address", ErrInvalidConfig, s)
		}
		tp.nets = append(tp.nets, p)
	}
	return tp, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trustedProxies are the hops whose forwarding headers are believed: the
// prefixes, and with unix the peers of a Unix socket; bits is the prefix
// length IPv6 clients are grouped by.
type trustedProxies struct {
	nets []netip.Prefix
	unix bool
	bits int
}

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range t.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (t trustedProxies) key(r *http.Request) (string, error) {
	peer, peerRaw, ok := parseHost(r.RemoteAddr)
	var last string // the key of the nearest hop known to be genuine
	switch {
	case ok && !t.contains(peer):
		return ipKey(peer, peerRaw, t.bits), nil
	case ok:
		last = ipKey(peer, peerRaw, t.bits)
	case isUnixPeer(r.RemoteAddr) && !t.unix:
		return UnixSocketKey, nil
	case isUnixPeer(r.RemoteAddr):
		last = UnixSocketKey
	default:
		return "", fmt.Errorf("%w: remote address is not an IP address", ErrNoKey)
	}
	lines := r.Header.Values("X-Forwarded-For")
	seen := false
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for end := len(line); end >= 0; {
			start := strings.LastIndexByte(line[:end], ',') + 1
			entry := strings.TrimSpace(line[start:end])
			end = start - 1
			if entry == "" {
				continue
			}
			seen = true
			a, raw, ok := parseHost(entry)
			if !ok {
				return last, nil
			}
			if !t.contains(a) {
				return ipKey(a, raw, t.bits), nil
			}
			last = ipKey(a, raw, t.bits)
		}
	}
	if !seen {
		if a, raw, ok := parseHost(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ok {
			return ipKey(a, raw, t.bits), nil
		}
	}
	return last, nil
}

// HeaderKey returns a KeyFunc that counts requests by the value of the
// request header name (for instance "X-API-Key"). When the header is absent
// or blank it calls fallback (for instance ClientIP), or fails with ErrNoKey
// if fallback is nil. Header keys are namespaced by the header's name, so a
// client cannot send another client's IP address as its key and use up that
// client's quota.
//
// HeaderKey believes whatever the client sends. Unless the header is
// authenticated before the limiter runs (a gateway or an earlier middleware
// that rejects unknown keys), it is a bypass: a client that sends a fresh
// value with every request is a new client every time and is never limited.
// Use ValidatedHeaderKey when the limiter itself must tell a known credential
// from an invented one.
func HeaderKey(name string, fallback KeyFunc) KeyFunc {
	return headerKey(name, nil, fallback)
}

// ValidatedHeaderKey returns a KeyFunc that counts requests by the value of
// the request header name (for instance "X-API-Key") only when valid reports
// that the value is a known credential; valid receives the value with
// surrounding spaces trimmed and must be safe for concurrent use. A request
// whose header is absent, blank or not valid is counted by fallback (for
// instance ClientIP), so a client that invents a new key per request shares
// one quota with its own address; with a nil fallback such a request fails
// with ErrNoKey. A nil valid accepts no value. Keys are namespaced by the
// header's name as HeaderKey's are (the same credential is the same key under
// both), so a valid key never shares a counter with an address.
func ValidatedHeaderKey(name string, valid func(value string) bool, fallback KeyFunc) KeyFunc {
	if valid == nil {
		valid = func(string) bool { return false }
	}
	return headerKey(name, valid, fallback)
}

// headerKey is HeaderKey, or ValidatedHeaderKey when valid is not nil.
func headerKey(name string, valid func(string) bool, fallback KeyFunc) KeyFunc {
	canon := http.CanonicalHeaderKey(name)
	prefix := canon + ":"
	return func(r *http.Request) (string, error) {
		v := strings.TrimSpace(r.Header.Get(canon))
		if v != "" && (valid == nil || valid(v)) {
			return prefix + v, nil
		}
		if fallback != nil {
			return fallback(r)
		}
		if v != "" {
			return "", fmt.Errorf("%w: header %s holds no known credential", ErrNoKey, canon)
		}
		return "", fmt.Errorf("%w: header %s missing", ErrNoKey, canon)
	}
}

// ContextKey returns a KeyFunc that counts requests by a value an earlier
// middleware stored in the request's context under k, typically the
// authenticated user's id. The value may be a fmt.Stringer, a non-empty
// value of a string type, or of any integer type (an int64 user id); for
// anything else, or no value, fallback is called (for instance ClientIP for
// anonymous requests), or the KeyFunc fails with ErrNoKey if fallback is nil. Context keys are
// namespaced apart from addresses and headers. Under adapters/ginmw, a value
// stored with gin's c.Set under a string key k is found too, as
// *gin.Context.Value finds it; echo's c.Set values are not in the request's
// context: read them with echomw.WithKey.
func ContextKey(k any, fallback KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		if v := contextKeyString(r.Context().Value(k)); v != "" {
			return "ctx:" + v, nil
		}
		if fallback != nil {
			return fallback(r)
		}
		return "", fmt.Errorf("%w: no value in request context", ErrNoKey)
	}
}

// contextKeyString returns the key ContextKey reads from a context value: a
// fmt.Stringer's String (unless it is a nil pointer), the text of a string
// type, the decimal form of an integer type; "" for anything else.
func contextKeyString(v any) string {
	if x, ok := v.(fmt.Stringer); ok {
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return "" // a nil pointer is no identity (and may not be callable)
		}
		return x.String()
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	}
	return ""
}

// parseHost parses an address with or without a port ("192.0.2.1",
// "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80"),
// returning the address and the text it was parsed from. Anything else is
// not an address: trailing bytes ("[::1]junk", "192.0.2.1junk"), a port that
// is not a number from 0 to 65535 ("192.0.2.1:abc", "192.0.2.1:"), brackets
// around an IPv4 address.
func parseHost(s string) (netip.Addr, string, bool) {
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"): // IPv6 without a port
		host := s[1 : len(s)-1]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return netip.Addr{}, "", false
		}
		return a, host, true
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1: // with a port
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, "", false
		}
		host := s[:strings.LastIndexByte(s, ':')]
		if host[0] == '[' {
			host = host[1 : len(host)-1]
		}
		return ap.Addr(), host, true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, "", false
	}
	return a, s, true
}

// ipKey is the key of an address: IPv4 as written (ParseAddr accepts only
// the canonical dotted form, so raw needs no copy), IPv6 as its /bits prefix.
func ipKey(a netip.Addr, raw string, bits int) string {
	if a.Is4() {
		return raw
	}
	if a.Is4In6() {
		return a.Unmap().String()
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil { // unreachable: bits is 1..128 and a is IPv6
		return a.WithZone("").String()
	}
	return p.String()
}
