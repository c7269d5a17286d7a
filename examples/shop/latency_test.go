package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

func latency(t *testing.T, srv *httptest.Server, query string) latencyResponse {
	t.Helper()
	r := do(t, http.MethodGet, srv.URL+"/stats/latency"+query, "", "")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	var l latencyResponse
	r.json(t, &l)
	return l
}

func TestLatencyPercentile(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		const slow = 30 * time.Millisecond
		var calls atomic.Int32
		cfg := testConfig(b)
		cfg.beforeReserve = func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				return sleep(ctx, slow) // the first checkout is the slowest
			}
			return nil
		}
		_, srv := startShop(t, b, cfg)

		r := do(t, http.MethodGet, srv.URL+"/stats/latency", "", "")
		require.Equal(t, http.StatusOK, r.status)
		assert.JSONEq(t, `{"p":95,"latency_ms":null,"samples":0,"message":"no checkout recorded yet"}`, string(r.body))

		for i, cart := range []string{"c1", "c2", "c3", "c4"} {
			r := checkout(t, srv, cart, "u"+cart, `{"apple":1}`)
			require.Equal(t, http.StatusOK, r.status, "checkout %d: body %s", i, r.body)
		}
		// A shortage is a checkout too; bad input is not.
		r = checkout(t, srv, "c5", "u5", `{"fig":3}`)
		require.Equal(t, http.StatusConflict, r.status, "body %s", r.body)
		r = checkout(t, srv, "c6", "u6", `{"kiwi":1}`)
		require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)

		p100 := latency(t, srv, "?p=100")
		assert.Equal(t, float64(100), p100.P)
		assert.Equal(t, int64(5), p100.Samples)
		assert.Empty(t, p100.Message)
		require.NotNil(t, p100.LatencyMS)
		assert.GreaterOrEqual(t, *p100.LatencyMS, float64(slow.Milliseconds()), "p100 is the slowest checkout")

		p20 := latency(t, srv, "?p=20") // rank ceil(0.2*5) = 1: the fastest
		require.NotNil(t, p20.LatencyMS)
		assert.LessOrEqual(t, *p20.LatencyMS, *p100.LatencyMS)
		assert.Positive(t, *p20.LatencyMS)

		def := latency(t, srv, "") // p defaults to 95: rank 5 of 5
		assert.Equal(t, float64(95), def.P)
		assert.Equal(t, *p100.LatencyMS, *def.LatencyMS)
	})
}

func TestLatencySamplesAreBounded(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		cfg := testConfig(b)
		cfg.maxSamples = 3
		cfg.samplesTTL = time.Minute
		s, srv := startShop(t, b, cfg)

		for i, cart := range []string{"c1", "c2", "c3", "c4", "c5"} {
			r := checkout(t, srv, cart, "u"+cart, `{"apple":1}`)
			require.Equal(t, http.StatusOK, r.status, "checkout %d: body %s", i, r.body)
		}
		assert.Equal(t, int64(3), latency(t, srv, "?p=50").Samples)

		ctx := context.Background()
		assert.Equal(t, int64(3), b.client.ZCard(ctx, s.latency.key).Val())
		assert.Equal(t, int64(3), b.client.LLen(ctx, s.latency.order).Val())
		for _, key := range []string{s.latency.key, s.latency.order} {
			ttl := b.client.PTTL(ctx, key).Val()
			assert.Positive(t, ttl, key)
			assert.LessOrEqual(t, ttl, time.Minute, key)
		}
	})
}

// The log keeps the newest samples, whatever their values: a sorted set
// trimmed by rank would keep the largest or the smallest instead.
func TestLatencyLogKeepsNewest(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		l, err := newLatencyLog(lua.NewRegistry(), lua.TagKey("latency", "shoptest-"+b.token, "unit"), 3, time.Minute)
		require.NoError(t, err)

		for i, ms := range []int{5, 1, 4, 2, 3, 3} {
			n, err := l.record(ctx, b.client, time.Duration(ms)*time.Millisecond)
			require.NoError(t, err)
			assert.Equal(t, int64(min(i+1, 3)), n, "samples kept after %d", i+1)
		}
		// Kept: 2, 3, 3 (the last three). Equal values are two samples.
		minimum, err := rediscmd.Percentile(ctx, b.client, l.key, 0.001)
		require.NoError(t, err)
		assert.Equal(t, float64(2), minimum)
		maximum, err := rediscmd.Percentile(ctx, b.client, l.key, 100)
		require.NoError(t, err)
		assert.Equal(t, float64(3), maximum)
		median, err := rediscmd.Percentile(ctx, b.client, l.key, 50)
		require.NoError(t, err)
		assert.Equal(t, float64(3), median)

		// Sub-millisecond latencies keep their microseconds.
		_, err = l.record(ctx, b.client, 1500*time.Microsecond)
		require.NoError(t, err)
		minimum, err = rediscmd.Percentile(ctx, b.client, l.key, 0.001)
		require.NoError(t, err)
		assert.Equal(t, 1.5, minimum)
	})
}

func TestNewLatencyLogRejectsBadBounds(t *testing.T) {
	for _, tt := range []struct {
		name string
		max  int
		ttl  time.Duration
	}{
		{"no samples", 0, time.Minute},
		{"no ttl", 10, 0},
		{"sub-millisecond ttl", 10, time.Microsecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newLatencyLog(lua.NewRegistry(), "latency:{x}:y", tt.max, tt.ttl)
			assert.Error(t, err)
		})
	}
}

func TestLatencyBadPercentile(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		_, srv := startShop(t, b, testConfig(b))
		for _, p := range []string{"0", "-5", "100.5", "x", "NaN", "Inf", "1e3"} {
			t.Run("p="+p, func(t *testing.T) {
				r := do(t, http.MethodGet, srv.URL+"/stats/latency?p="+p, "", "")
				require.Equal(t, http.StatusBadRequest, r.status, "body %s", r.body)
				assert.Equal(t, "p must be a number in (0, 100]", r.errorMsg(t))
			})
		}
	})
}
