package limiter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/limiter"
	"github.com/sluicehq/sluice/store/memstore"
)

func request(remote string, hdr ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, h := range hdr {
		name, value, _ := strings.Cut(h, ":")
		r.Header.Add(name, strings.TrimSpace(value))
	}
	return r
}

func TestClientIP(t *testing.T) {
	cases := []struct {
		remote string
		want   string // "" = ErrNoKey
	}{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::ffff]:443", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::7", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[::1]:80", "::/64"},
		{"", ""},
		{"@", limiter.UnixSocketKey},
		{"/run/app.sock", limiter.UnixSocketKey},
		{"[2001:db8::1:80", ""},
		{"not-an-ip:80", ""},
		{"192.0.2.256:80", ""},
		{"01.2.3.4:80", ""},
		{"[2001:db8:1:2::9]", "2001:db8:1:2::/64"},
		{"[::1]junk", ""},
		{"[::1]:80junk", ""},
		{"[::1]:", ""},
		{"[::1]80", ""},
		{"192.0.2.1:abc", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:65536", ""},
		{"192.0.2.1:-1", ""},
		{"192.0.2.1:80:80", ""},
		{"[192.0.2.1]:80", ""},
		{"[192.0.2.1]", ""},
		{"192.0.2.1junk", ""},
	}
	for _, c := range cases {
		t.Run(c.remote, func(t *testing.T) {
			got, err := limiter.ClientIP(request(c.remote, "X-Forwarded-For: 203.0.113.1", "X-Real-IP: 203.0.113.2"))
			if c.want == "" {
				require.ErrorIs(t, err, limiter.ErrNoKey)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got, "forwarding headers must be ignored")
		})
	}
}

func TestTrustedProxyIP(t *testing.T) {
	kf, err := limiter.TrustedProxyIP(" 10.0.0.0/8 ", "", "192.0.2.7", "2001:db8:ffff::/48", "::ffff:172.16.0.0/108")
	require.NoError(t, err)
	cases := []struct {
		name   string
		remote string
		hdr    []string
		want   string
	}{
		{"untrusted peer: headers ignored", "198.51.100.1:1", []string{"X-Forwarded-For: 203.0.113.1", "X-Real-IP: 203.0.113.2"}, "198.51.100.1"},
		{"trusted peer, no headers: the peer", "10.1.1.1:1", nil, "10.1.1.1"},
		{"single hop", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1"}, "203.0.113.1"},
		{"right-most untrusted", "10.1.1.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.1, 10.2.2.2, 192.0.2.7"}, "203.0.113.1"},
		{"no spaces", "10.1.1.1:1", []string{"X-Forwarded-For: 198.51.100.9,203.0.113.1,10.2.2.2"}, "203.0.113.1"},
		{"several lines in order", "10.1.1.1:1", []string{"X-Forwarded-For: 198.51.100.9", "X-Forwarded-For: 203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"later line wins", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1", "X-Forwarded-For: 203.0.113.2"}, "203.0.113.2"},
		{"empty members skipped", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, , 10.2.2.2,"}, "203.0.113.1"},
		{"all trusted: left-most", "10.1.1.1:1", []string{"X-Forwarded-For: 10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"malformed: the hop that sent it", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, garbage, 10.2.2.2"}, "10.2.2.2"},
		{"malformed last: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, unknown"}, "10.1.1.1"},
		{"entry with port", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1:5555"}, "203.0.113.1"},
		{"bracketed IPv6 entry with port", "10.1.1.1:1", []string{"X-Forwarded-For: [2001:db8:1:2::9]:5555"}, "2001:db8:1:2::/64"},
		{"bracketed IPv6 entry without port", "10.1.1.1:1", []string{"X-Forwarded-For: [2001:db8:1:2::9]"}, "2001:db8:1:2::/64"},
		{"junk after brackets: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, [2001:db8:1:2::9]junk"}, "10.1.1.1"},
		{"junk after bracketed port: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, [2001:db8:1:2::9]:80x"}, "10.1.1.1"},
		{"non-numeric port: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, 198.51.100.9:abc"}, "10.1.1.1"},
		{"empty port: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, 198.51.100.9:"}, "10.1.1.1"},
		{"port out of range: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, 198.51.100.9:70000"}, "10.1.1.1"},
		{"bracketed IPv4: the peer", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1, [198.51.100.9]:80"}, "10.1.1.1"},
		{"junk port mid-list: the hop that sent it", "10.1.1.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.1:abc, 10.2.2.2"}, "10.2.2.2"},
		{"X-Real-IP with junk port: the peer", "10.1.1.1:1", []string{"X-Real-IP: 203.0.113.3:abc"}, "10.1.1.1"},
		{"X-Real-IP with port", "10.1.1.1:1", []string{"X-Real-IP: 203.0.113.3:443"}, "203.0.113.3"},
		{"IPv6 client grouped", "10.1.1.1:1", []string{"X-Forwarded-For: 2001:db8:1:2::9"}, "2001:db8:1:2::/64"},
		{"trusted IPv6 proxy", "[2001:db8:ffff::1]:1", []string{"X-Forwarded-For: 203.0.113.1, 2001:db8:ffff:0:1::2"}, "203.0.113.1"},
		{"IPv4-mapped peer is IPv4", "[::ffff:10.1.1.1]:1", []string{"X-Forwarded-For: 203.0.113.1"}, "203.0.113.1"},
		{"IPv4-mapped prefix trusts IPv4", "172.16.0.5:1", []string{"X-Forwarded-For: 203.0.113.1"}, "203.0.113.1"},
		{"IPv4-mapped client", "10.1.1.1:1", []string{"X-Forwarded-For: ::ffff:203.0.113.1"}, "203.0.113.1"},
		{"X-Real-IP without X-Forwarded-For", "10.1.1.1:1", []string{"X-Real-IP: 203.0.113.3"}, "203.0.113.3"},
		{"X-Forwarded-For wins over X-Real-IP", "10.1.1.1:1", []string{"X-Forwarded-For: 203.0.113.1", "X-Real-IP: 203.0.113.3"}, "203.0.113.1"},
		{"bad X-Real-IP: the peer", "10.1.1.1:1", []string{"X-Real-IP: nope"}, "10.1.1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := kf(request(c.remote, c.hdr...))
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	t.Run("peer not an IP", func(t *testing.T) {
		_, err := kf(request("not-an-address", "X-Forwarded-For: 203.0.113.1"))
		require.ErrorIs(t, err, limiter.ErrNoKey)
		got, err := kf(request("@", "X-Forwarded-For: 203.0.113.1"))
		require.NoError(t, err)
		assert.Equal(t, limiter.UnixSocketKey, got, "an untrusted Unix-socket peer, as under ClientIP")
	})
}

func TestTrustedProxyIPConfig(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "10.0.0", "nope", "10.0.0.0/8/8"} {
		_, err := limiter.TrustedProxyIP("127.0.0.1", bad)
		require.ErrorIs(t, err, limiter.ErrInvalidConfig, bad)
	}
	kf, err := limiter.TrustedProxyIP("", " ")
	require.NoError(t, err)
	got, err := kf(request("10.1.1.1:1", "X-Forwarded-For: 203.0.113.1"))
	require.NoError(t, err)
	assert.Equal(t, "10.1.1.1", got, "no trusted proxies: X-Forwarded-For ignored")
}

// ClientIPPrefix groups IPv6 clients by the prefix length it is given,
// directly and behind trusted proxies; IPv4 clients are their own keys under
// every length.
func TestClientIPPrefix(t *testing.T) {
	cases := []struct {
		bits     int
		remote   string
		same     []string // remote addresses with the same key
		apart    []string // remote addresses with another key
		want     string
		wantIPv4 string
	}{
		{48, "[2001:db8:1:2::1]:443", []string{"[2001:db8:1:ffff::9]:1", "2001:db8:1::"}, []string{"[2001:db8:2::1]:1"}, "2001:db8:1::/48", "192.0.2.1"},
		{64, "[2001:db8:1:2::1]:443", []string{"[2001:db8:1:2:ffff::9]:1"}, []string{"[2001:db8:1:3::1]:1"}, "2001:db8:1:2::/64", "192.0.2.1"},
		{128, "[2001:db8:1:2::1]:443", []string{"[2001:db8:1:2::1%eth0]:1", "2001:db8:1:2:0:0:0:1"}, []string{"[2001:db8:1:2::2]:1"}, "2001:db8:1:2::1/128", "192.0.2.1"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.bits), func(t *testing.T) {
			direct, err := limiter.ClientIPPrefix(tc.bits)
			require.NoError(t, err)
			proxied, err := limiter.ClientIPPrefix(tc.bits, "10.0.0.0/8")
			require.NoError(t, err)
			key := func(kf limiter.KeyFunc, r *http.Request) string {
				t.Helper()
				k, err := kf(r)
				require.NoError(t, err)
				return k
			}
			// Behind a trusted proxy the client is in X-Forwarded-For.
			viaProxy := func(addr string) *http.Request {
				host := strings.TrimPrefix(addr, "[")
				if i := strings.LastIndex(host, "]"); i >= 0 {
					host = host[:i]
				}
				return request("10.0.0.1:80", "X-Forwarded-For: "+host)
			}

			assert.Equal(t, tc.want, key(direct, request(tc.remote, "X-Forwarded-For: 203.0.113.1")), "forwarding headers ignored")
			assert.Equal(t, tc.want, key(proxied, viaProxy(tc.remote)))
			for _, o := range tc.same {
				assert.Equal(t, tc.want, key(direct, request(o)), "%s shares %s", o, tc.want)
				assert.Equal(t, tc.want, key(proxied, viaProxy(o)), "%s via the proxy", o)
			}
			for _, o := range tc.apart {
				assert.NotEqual(t, tc.want, key(direct, request(o)), "%s is another client", o)
				assert.NotEqual(t, tc.want, key(proxied, viaProxy(o)), "%s via the proxy", o)
			}
			assert.Equal(t, tc.wantIPv4, key(direct, request("192.0.2.1:80")), "IPv4 unaffected")
			assert.Equal(t, tc.wantIPv4, key(direct, request("[::ffff:192.0.2.1]:80")), "IPv4-mapped unaffected")
			assert.Equal(t, tc.wantIPv4, key(proxied, request("10.0.0.1:80", "X-Forwarded-For: 192.0.2.1")))
			assert.Equal(t, "10.0.0.1", key(proxied, request("10.0.0.1:80")), "the proxy itself, without a header")
			assert.Equal(t, limiter.UnixSocketKey, key(direct, request("@")))
		})
	}

	t.Run("64 is ClientIP", func(t *testing.T) {
		kf, err := limiter.ClientIPPrefix(64)
		require.NoError(t, err)
		for _, remote := range []string{"[2001:db8:1:2::1]:443", "192.0.2.1:80", "[fe80::1%eth0]:80"} {
			want, err := limiter.ClientIP(request(remote))
			require.NoError(t, err)
			got, err := kf(request(remote))
			require.NoError(t, err)
			assert.Equal(t, want, got, remote)
		}
	})

	t.Run("bad values", func(t *testing.T) {
		for _, bits := range []int{-1, 0, 129, 1 << 20} {
			var kf limiter.KeyFunc
			var err error
			require.NotPanics(t, func() { kf, err = limiter.ClientIPPrefix(bits) })
			require.ErrorIs(t, err, limiter.ErrInvalidConfig, "bits %d", bits)
			assert.Contains(t, err.Error(), "IPv6 prefix length "+strconv.Itoa(bits)+" outside 1..128")
			assert.Nil(t, kf)
		}
		_, err := limiter.ClientIPPrefix(48, "10.0.0.0/33")
		require.ErrorIs(t, err, limiter.ErrInvalidConfig, "a malformed trusted entry")
	})
}

func TestHeaderKey(t *testing.T) {
	long := strings.Repeat("k", 32<<10)
	withIP := limiter.HeaderKey("x-api-key", limiter.ClientIP)
	got, err := withIP(request("192.0.2.1:1", "X-API-Key: "+long))
	require.NoError(t, err)
	assert.Equal(t, "X-Api-Key:"+long, got)

	got, err = withIP(request("192.0.2.1:1", "X-API-Key:   "))
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1", got, "blank header: fallback")

	got, err = withIP(request("192.0.2.1:1", "X-API-Key: 192.0.2.9"))
	require.NoError(t, err)
	assert.NotEqual(t, "192.0.2.9", got, "a header value never poses as an address")

	_, err = limiter.HeaderKey("X-API-Key", nil)(request("192.0.2.1:1"))
	require.ErrorIs(t, err, limiter.ErrNoKey)
}

type userKey struct{}

type userID int

type namedUser struct{ name string }

func (u *namedUser) String() string { return u.name }

func (u userID) String() string { return "u" + string(rune('0'+u)) }

func TestContextKey(t *testing.T) {
	kf := limiter.ContextKey(userKey{}, limiter.ClientIP)
	r := request("192.0.2.1:1")
	got, err := kf(r.WithContext(context.WithValue(r.Context(), userKey{}, "alice")))
	require.NoError(t, err)
	assert.Equal(t, "ctx:alice", got)

	got, err = kf(r.WithContext(context.WithValue(r.Context(), userKey{}, userID(7))))
	require.NoError(t, err)
	assert.Equal(t, "ctx:u7", got)

	type accountID int64
	for _, id := range []any{int64(42), int(42), uint32(42), uint64(42), accountID(42)} {
		got, err = kf(r.WithContext(context.WithValue(r.Context(), userKey{}, id)))
		require.NoError(t, err)
		assert.Equal(t, "ctx:42", got, "%T", id)
	}
	got, err = kf(r.WithContext(context.WithValue(r.Context(), userKey{}, (*namedUser)(nil))))
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1", got, "a nil user is no identity: fallback, no panic")
	got, err = kf(r.WithContext(context.WithValue(r.Context(), userKey{}, 3.5)))
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1", got, "a float is no identity: fallback")

	got, err = kf(r)
	require.NoError(t, err)
	assert.Equal(t, "192.0.2.1", got, "anonymous: fallback")

	_, err = limiter.ContextKey(userKey{}, nil)(r.WithContext(context.WithValue(r.Context(), userKey{}, "")))
	require.ErrorIs(t, err, limiter.ErrNoKey)
}

func TestValidatedHeaderKey(t *testing.T) {
	known := map[string]bool{"k-1": true, "192.0.2.9": true}
	kf := limiter.ValidatedHeaderKey("x-api-key", func(v string) bool { return known[v] }, limiter.ClientIP)
	cases := []struct {
		name string
		hdr  []string
		want string
	}{
		{"known key", []string{"X-API-Key: k-1"}, "X-Api-Key:k-1"},
		{"known key, spaces trimmed", []string{"X-API-Key:   k-1  "}, "X-Api-Key:k-1"},
		{"unknown key: the address", []string{"X-API-Key: k-2"}, "192.0.2.1"},
		{"case matters", []string{"X-API-Key: K-1"}, "192.0.2.1"},
		{"blank: the address", []string{"X-API-Key:   "}, "192.0.2.1"},
		{"absent: the address", nil, "192.0.2.1"},
		{"a known key that looks like an address is still a header key", []string{"X-API-Key: 192.0.2.9"}, "X-Api-Key:192.0.2.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := kf(request("192.0.2.1:1", c.hdr...))
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}

	t.Run("same key as HeaderKey", func(t *testing.T) {
		r := request("192.0.2.1:1", "X-API-Key: k-1")
		a, err := kf(r)
		require.NoError(t, err)
		b, err := limiter.HeaderKey("X-API-Key", nil)(r)
		require.NoError(t, err)
		assert.Equal(t, b, a)
	})
	t.Run("nil valid accepts nothing", func(t *testing.T) {
		got, err := limiter.ValidatedHeaderKey("X-API-Key", nil, limiter.ClientIP)(request("192.0.2.1:1", "X-API-Key: k-1"))
		require.NoError(t, err)
		assert.Equal(t, "192.0.2.1", got)
	})
	t.Run("nil fallback", func(t *testing.T) {
		strict := limiter.ValidatedHeaderKey("X-API-Key", func(v string) bool { return known[v] }, nil)
		_, err := strict(request("192.0.2.1:1", "X-API-Key: k-2"))
		require.ErrorIs(t, err, limiter.ErrNoKey, "unknown key")
		_, err = strict(request("192.0.2.1:1"))
		require.ErrorIs(t, err, limiter.ErrNoKey, "no key")
		got, err := strict(request("192.0.2.1:1", "X-API-Key: k-1"))
		require.NoError(t, err)
		assert.Equal(t, "X-Api-Key:k-1", got)
	})
	t.Run("validator sees only present values", func(t *testing.T) {
		var seen []string
		kf := limiter.ValidatedHeaderKey("X-API-Key", func(v string) bool { seen = append(seen, v); return false }, limiter.ClientIP)
		for _, r := range []*http.Request{request("192.0.2.1:1"), request("192.0.2.1:1", "X-API-Key:  "), request("192.0.2.1:1", "X-API-Key: k ")} {
			_, err := kf(r)
			require.NoError(t, err)
		}
		assert.Equal(t, []string{"k"}, seen)
	})
}

// TestInventedHeaderKeys checks what a policy keyed by the header does with
// a client that sends a fresh X-API-Key with every request: HeaderKey gives
// it a fresh quota every time, ValidatedHeaderKey counts it by its address.
func TestInventedHeaderKeys(t *testing.T) {
	known := func(v string) bool { return v == "k-1" }
	for _, c := range []struct {
		name    string
		key     limiter.KeyFunc
		allowed int
	}{
		{"HeaderKey", limiter.HeaderKey("X-API-Key", limiter.ClientIP), 20},
		{"ValidatedHeaderKey", limiter.ValidatedHeaderKey("X-API-Key", known, limiter.ClientIP), 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := memstore.New()
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			l, err := limiter.New("api", 5, time.Minute, st)
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			p, err := limiter.PolicyOf(l, limiter.WithKey(c.key))
			require.NoError(t, err)
			check := func(hdr ...string) int {
				w := httptest.NewRecorder()
				if _, _, rj := p.Admit(w, request("192.0.2.1:1", hdr...), nil); rj != nil {
					rj.Write(w)
				}
				return w.Code
			}

			allowed := 0
			for i := range 20 {
				if check(fmt.Sprintf("X-API-Key: invented-%d", i)) == http.StatusOK {
					allowed++
				}
			}
			assert.Equal(t, c.allowed, allowed, "of 20 requests, each with a new key")
			if c.allowed == 5 {
				assert.Equal(t, http.StatusTooManyRequests, check(), "the invented keys used up the address's quota")
				assert.Equal(t, http.StatusOK, check("X-API-Key: k-1"), "a known key has a quota of its own")
			}
		})
	}
}

func TestPathValueKey(t *testing.T) {
	kf := limiter.PathValueKey("id")
	r := request("192.0.2.1:1")
	r.SetPathValue("id", "203.0.113.7")
	got, err := kf(r)
	require.NoError(t, err)
	assert.Equal(t, "param:id:203.0.113.7", got, "never the key of the client 203.0.113.7")
	_, err = kf(request("192.0.2.1:1"))
	require.ErrorIs(t, err, limiter.ErrNoKey)
}

// TrustedProxyIP("unix") believes X-Forwarded-For from a proxy on a Unix
// socket; without it such peers share UnixSocketKey.
func TestTrustedProxyIPUnixSocket(t *testing.T) {
	trusting, err := limiter.TrustedProxyIP("unix", "10.0.0.0/8")
	require.NoError(t, err)
	plain, err := limiter.TrustedProxyIP("10.0.0.0/8")
	require.NoError(t, err)
	for _, c := range []struct {
		kf   limiter.KeyFunc
		xff  string
		want string
	}{
		{trusting, "203.0.113.9", "203.0.113.9"},
		{trusting, "198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"},
		{trusting, "", limiter.UnixSocketKey},
		{trusting, "junk", limiter.UnixSocketKey},
		{plain, "203.0.113.9", limiter.UnixSocketKey},
	} {
		r := request("@", "X-Forwarded-For: "+c.xff)
		if c.xff == "" {
			r.Header.Del("X-Forwarded-For")
		}
		got, err := c.kf(r)
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "X-Forwarded-For %q", c.xff)
	}
	_, err = trusting(request("not-an-address"))
	require.ErrorIs(t, err, limiter.ErrNoKey)
}
