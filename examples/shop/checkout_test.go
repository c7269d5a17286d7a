package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/lockguard"
)

var seeded = map[string]int64{"apple": 10, "fig": 2, "pear": 5}

func TestCheckoutReservesAndDecrementsStock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))
		require.Equal(t, seeded, stock(t, srv))

		r := checkout(t, srv, "c1", "u1", `{"apple":2,"pear":1}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		var got checkoutResponse
		r.json(t, &got)
		assert.Equal(t, "c1", got.Cart)
		assert.Equal(t, "u1", got.User)
		assert.Equal(t, map[string]int64{"apple": 2, "pear": 1}, got.Reserved)
		assert.Equal(t, map[string]int64{"apple": 8, "pear": 4}, got.Stock)
		assert.Positive(t, got.Fence)
		assert.Equal(t, map[string]int64{"apple": 8, "fig": 2, "pear": 4}, stock(t, srv))

		// The rate-limit headers show the per-user quota.
		assert.Equal(t, "5", r.header.Get("X-RateLimit-Limit"))
		assert.Equal(t, "4", r.header.Get("X-RateLimit-Remaining"))

		// A second checkout of the same cart, once the first is done, takes
		// the lock again with a greater fence.
		r = checkout(t, srv, "c1", "u1", `{"fig":2}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		var again checkoutResponse
		r.json(t, &again)
		assert.Greater(t, again.Fence, got.Fence)
		assert.Equal(t, map[string]int64{"fig": 0}, again.Stock)
	})
}

func TestCheckoutShortageChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))

		r := checkout(t, srv, "c1", "u1", `{"apple":2,"pear":6,"fig":3}`)
		require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
		var got shortageResponse
		r.json(t, &got)
		// fig and pear are both short; the first in item order is named.
		assert.Equal(t, shortageResponse{Error: "insufficient stock", Item: "fig", Available: 2, Requested: 3}, got)
		assert.Equal(t, seeded, stock(t, srv), "a refused checkout reserves nothing")

		r = checkout(t, srv, "c1", "u1", `{"apple":2,"pear":6}`)
		require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
		r.json(t, &got)
		assert.Equal(t, shortageResponse{Error: "insufficient stock", Item: "pear", Available: 5, Requested: 6}, got)
		assert.Equal(t, seeded, stock(t, srv))
	})
}

// Twenty checkouts of one apple race for ten apples: the reservation is
// atomic, so exactly ten are sold and the stock ends at 0, never below.
func TestConcurrentCheckoutsSellExactlyTheStock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))

		const n = 20
		var (
			wg      sync.WaitGroup
			replies [n]reply
			errs    [n]error
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i], errs[i] = doErr(context.Background(), http.MethodPost,
					fmt.Sprintf("%s/carts/cart%d/checkout", srv.URL, i), fmt.Sprintf("user%d", i),
					`{"items":{"apple":1}}`)
			}()
		}
		wg.Wait()

		sold, short := 0, 0
		for i, r := range replies {
			require.NoError(t, errs[i])
			switch r.status {
			case http.StatusOK:
				sold++
			case http.StatusConflict:
				var s shortageResponse
				r.json(t, &s)
				assert.Equal(t, shortageResponse{Error: "insufficient stock", Item: "apple", Available: 0, Requested: 1}, s)
				short++
			default:
				t.Errorf("checkout %d: status %d, body %s", i, r.status, r.body)
			}
		}
		assert.Equal(t, 10, sold)
		assert.Equal(t, 10, short)
		assert.Equal(t, int64(0), stock(t, srv)["apple"])
	})
}

// While one checkout of a cart runs, a second one of the same cart gets 409
// from the cart's lock; other carts go on.
func TestCheckoutOfBusyCartIsRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		entered := make(chan string, 4)
		release := make(chan struct{})
		cfg := testConfig(b)
		cfg.beforeReserve = func(ctx context.Context) error {
			lock, ok := lockguard.FromContext(ctx)
			if !ok {
				return errors.New("checkout runs without its cart's lock")
			}
			entered <- lock.Key()
			if lock.Key() != "cart:param:cart:busy" {
				return nil
			}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		_, srv := startShop(t, b, cfg)

		first := make(chan reply, 1)
		go func() {
			r, err := doErr(context.Background(), http.MethodPost, srv.URL+"/carts/busy/checkout", "u1", `{"items":{"apple":1}}`)
			if err != nil {
				r = reply{status: -1, body: []byte(err.Error())}
			}
			first <- r
		}()
		require.Equal(t, "cart:param:cart:busy", <-entered)

		r := checkout(t, srv, "busy", "u2", `{"apple":1}`)
		require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
		assert.Equal(t, "resource is locked", r.errorMsg(t))
		retry, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, retry, 1)

		// Another cart is not held up by the busy one.
		r = checkout(t, srv, "other", "u3", `{"apple":1}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		require.Equal(t, "cart:param:cart:other", <-entered)

		close(release)
		r = <-first
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)

		// The lock was released with the first checkout.
		r = checkout(t, srv, "busy", "u2", `{"apple":1}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		require.Equal(t, "cart:param:cart:busy", <-entered)
		assert.Equal(t, int64(7), stock(t, srv)["apple"])
	})
}

func TestCheckoutRateLimitPerUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))

		for i := range 5 {
			r := checkout(t, srv, fmt.Sprintf("c%d", i), "u1", `{"apple":1}`)
			require.Equal(t, http.StatusOK, r.status, "checkout %d: body %s", i, r.body)
			assert.Equal(t, strconv.Itoa(4-i), r.header.Get("X-RateLimit-Remaining"))
		}
		r := checkout(t, srv, "c6", "u1", `{"apple":1}`)
		require.Equal(t, http.StatusTooManyRequests, r.status, "body %s", r.body)
		var denied struct {
			Error      string `json:"error"`
			Policy     string `json:"policy"`
			RetryAfter int    `json:"retry_after"`
		}
		r.json(t, &denied)
		assert.Equal(t, "too many requests", denied.Error)
		assert.Equal(t, "checkout", denied.Policy)
		assert.Equal(t, strconv.Itoa(denied.RetryAfter), r.header.Get("Retry-After"))
		assert.Positive(t, denied.RetryAfter)
		assert.LessOrEqual(t, denied.RetryAfter, 60)
		assert.Equal(t, int64(5), stock(t, srv)["apple"], "a denied checkout reserves nothing")

		// The limit is per user.
		r = checkout(t, srv, "c7", "u2", `{"apple":1}`)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	})
}

func TestCheckoutBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))

		tests := []struct {
			name   string
			user   string
			body   string
			status int
			error  string
		}{
			{"no X-User header", "", `{"items":{"apple":1}}`, 400, "missing X-User header"},
			{"malformed JSON", "u", `{"items":{"apple":1}`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"not an object", "u", `[1,2]`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"trailing data", "u", `{"items":{"apple":1}} {}`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"unknown field", "u", `{"user":"u2","items":{"apple":1}}`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"fractional quantity", "u", `{"items":{"apple":1.5}}`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"string quantity", "u", `{"items":{"apple":"1"}}`, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"empty body", "u", ``, 400, `invalid JSON body: want {"items":{"apple":2,...}}`},
			{"no items", "u", `{}`, 400, "empty cart"},
			{"null items", "u", `{"items":null}`, 400, "empty cart"},
			{"empty cart", "u", `{"items":{}}`, 400, "empty cart"},
			{"unknown item", "u", `{"items":{"apple":1,"kiwi":1}}`, 400, "unknown item"},
			{"zero quantity", "u", `{"items":{"apple":0}}`, 400, "quantity must be a positive integer"},
			{"negative quantity", "u", `{"items":{"pear":-1}}`, 400, "quantity must be a positive integer"},
			{"quantity past 2^53-1", "u", `{"items":{"apple":9007199254740992}}`, 400, "quantity must be a positive integer"},
			{"body too large", "u", `{"items":{"apple":1},"x":"` + strings.Repeat("x", maxBody) + `"}`, 413, "request body too large"},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				user := tt.user
				if user != "" {
					user += strconv.Itoa(i) // keep clear of the per-user limit
				}
				r := do(t, http.MethodPost, srv.URL+"/carts/c1/checkout", user, tt.body)
				require.Equal(t, tt.status, r.status, "body %s", r.body)
				assert.Equal(t, tt.error, r.errorMsg(t))
			})
		}
		// The item is named for an unknown item and a bad quantity.
		r := checkout(t, srv, "c1", "named", `{"kiwi":1}`)
		assert.JSONEq(t, `{"error":"unknown item","item":"kiwi"}`, string(r.body))
		r = checkout(t, srv, "c1", "named", `{"fig":-2}`)
		assert.JSONEq(t, `{"error":"quantity must be a positive integer","item":"fig"}`, string(r.body))

		assert.Equal(t, seeded, stock(t, srv), "bad input reserves nothing")
	})
}

// A checkout abandoned by its client releases the cart: the handler's
// context ends, nothing is reserved, and the next checkout of the cart gets
// through.
func TestAbandonedCheckoutReleasesCart(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		entered := make(chan struct{})
		var calls atomic.Int32
		cfg := testConfig(b)
		cfg.beforeReserve = func(ctx context.Context) error {
			if calls.Add(1) > 1 {
				return nil
			}
			close(entered)
			<-ctx.Done() // a payment that never answers
			return context.Cause(ctx)
		}
		_, srv := startShop(t, b, cfg)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := doErr(ctx, http.MethodPost, srv.URL+"/carts/c1/checkout", "u1", `{"items":{"apple":1}}`)
			done <- err
		}()
		<-entered
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		// The server notices the hang-up, ends the handler and releases the
		// lock; until then the cart answers 409.
		var (
			r     reply
			tries int
		)
		require.Eventually(t, func() bool {
			tries++
			var err error
			r, err = doErr(context.Background(), http.MethodPost, srv.URL+"/carts/c1/checkout",
				"retry"+strconv.Itoa(tries), `{"items":{"apple":1}}`)
			return err == nil && r.status != http.StatusConflict
		}, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
		assert.Equal(t, int64(9), stock(t, srv)["apple"], "only the second checkout reserved")
	})
}
