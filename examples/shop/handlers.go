package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lockguard"
	"github.com/sluicehq/sluice/rediscmd"
)

const (
	maxBody        = 64 << 10 // bytes of a JSON request body
	maxPlayerLen   = 64       // bytes of a player name
	maxLeaderboard = 100      // most players GET /leaderboard returns
)

// checkoutResponse is the 200 answer of POST /carts/{cart}/checkout.
type checkoutResponse struct {
	Cart     string           `json:"cart"`
	User     string           `json:"user"`
	Reserved map[string]int64 `json:"reserved"` // item -> quantity taken
	Stock    map[string]int64 `json:"stock"`    // item -> what is left of it
	Fence    int64            `json:"fence"`    // the cart lock's fencing token
}

// shortageResponse is the 409 answer when an item is short; nothing was
// reserved.
type shortageResponse struct {
	Error     string `json:"error"`
	Item      string `json:"item"`
	Available int64  `json:"available"`
	Requested int64  `json:"requested"`
}

// handleCheckout reserves a cart's items, all or nothing. The rate limit
// (per X-User) and the cart's lock are already taken by the middleware.
func (s *shop) handleCheckout(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var body struct {
		Items map[string]int64 `json:"items"`
	}
	if !decodeJSON(w, r, &body, `want {"items":{"apple":2,...}}`) {
		return
	}
	if len(body.Items) == 0 {
		writeError(w, http.StatusBadRequest, "empty cart")
		return
	}
	// One line per item, in the inventory's order, so that a shortage
	// always names the same item first.
	var lines []rediscmd.Item
	var names []string
	for _, item := range s.items {
		q, ok := body.Items[item]
		if !ok {
			continue
		}
		if q < 1 || q > rediscmd.MaxInt {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "quantity must be a positive integer", "item": item})
			return
		}
		lines = append(lines, rediscmd.Item{Key: s.stockKey(item), Quantity: q})
		names = append(names, item)
	}
	if len(lines) != len(body.Items) {
		for item := range body.Items {
			if _, ok := s.cfg.inventory[item]; !ok {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unknown item", "item": item})
				return
			}
		}
	}

	ctx := r.Context() // cancelled if the client leaves or the cart's lock is lost
	if s.cfg.beforeReserve != nil {
		if err := s.cfg.beforeReserve(ctx); err != nil {
			s.fail(w, r, "before reserve", err)
			return
		}
	}
	// The reservation is a write whose outcome matters, so it runs on a
	// context detached from the request, with a deadline of its own: a client
	// that hangs up while Redis is slow must not leave stock taken in Redis
	// and unaccounted for here. Its outcome is acted on below whether or not
	// anyone still waits for the answer.
	reserveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.reserveTimeout)
	left, err := rediscmd.Reserve(reserveCtx, s.client, lines)
	cancel()
	var short *rediscmd.ShortageError
	switch {
	case errors.As(err, &short):
		s.recordLatency(r, start)
		writeJSON(w, http.StatusConflict, shortageResponse{
			Error:     "insufficient stock",
			Item:      names[short.Index],
			Available: short.Available,
			Requested: short.Requested,
		})
		return
	case err != nil:
		s.reserveFailed(r, names, lines, err)
		writeStoreError(w, err)
		return
	}
	if cause := context.Cause(ctx); cause != nil {
		// Reserved, but the order cannot be completed: the client hung up
		// and will never learn of it, or the cart's lock was lost and another
		// checkout of the cart may be running. The stock goes back.
		s.restock(r, names, lines, cause)
		writeError(w, http.StatusServiceUnavailable, "checkout interrupted")
		return
	}
	s.recordLatency(r, start)

	resp := checkoutResponse{
		Cart:     r.PathValue("cart"),
		User:     r.Header.Get("X-User"),
		Reserved: make(map[string]int64, len(lines)),
		Stock:    make(map[string]int64, len(lines)),
	}
	for i, item := range names {
		resp.Reserved[item] = lines[i].Quantity
		resp.Stock[item] = left[i]
	}
	if lock, ok := lockguard.FromContext(ctx); ok {
		resp.Fence = lock.Fence()
	}
	writeJSON(w, http.StatusOK, resp)
}

// reserveFailed logs a Reserve call that returned an error, whether or not the
// client is still there. When Redis answered with an error the script changed
// nothing; a timeout or a broken connection after the call was sent leaves
// the outcome unknown, so the line then names the items for whoever
// reconciles the stock.
func (s *shop) reserveFailed(r *http.Request, names []string, lines []rediscmd.Item, err error) {
	var answered redis.Error
	if errors.As(err, &answered) || errors.Is(err, rediscmd.ErrInvalidArgument) || errors.Is(err, rediscmd.ErrWrongValue) {
		s.log.ErrorContext(r.Context(), "shop: reserve", "path", r.URL.Path, "err", err)
		return
	}
	s.log.ErrorContext(r.Context(), "shop: reserve: outcome unknown, the items may have been taken",
		"path", r.URL.Path, "user", r.Header.Get("X-User"), "items", itemMap(names, lines), "err", err)
}

// restock gives back the stock of a reservation that will not become an
// order, on a context detached from the request (which has ended). If that
// fails too, the log line names the items for whoever reconciles the stock.
func (s *shop) restock(r *http.Request, names []string, lines []rediscmd.Item, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.reserveTimeout)
	defer cancel()
	items := itemMap(names, lines)
	if _, err := rediscmd.Restock(ctx, s.client, lines); err != nil {
		s.log.ErrorContext(ctx, "shop: checkout interrupted; its stock may not have been returned",
			"path", r.URL.Path, "user", r.Header.Get("X-User"), "items", items, "cause", cause, "err", err)
		return
	}
	s.log.InfoContext(ctx, "shop: checkout interrupted; its stock was returned",
		"path", r.URL.Path, "user", r.Header.Get("X-User"), "items", items, "cause", cause)
}

// itemMap pairs item names with their quantities, for a log line.
func itemMap(names []string, lines []rediscmd.Item) map[string]int64 {
	m := make(map[string]int64, len(names))
	for i, name := range names {
		m[name] = lines[i].Quantity
	}
	return m
}

// recordLatency adds the time since start to the checkout latencies. It runs
// before the response is written, so a client that has its answer finds its
// checkout in /stats/latency; a failure is logged, never sent to the client.
func (s *shop) recordLatency(r *http.Request, start time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
	defer cancel()
	if _, err := s.latency.record(ctx, s.client, time.Since(start)); err != nil {
		s.log.ErrorContext(r.Context(), "shop: record checkout latency", "err", err)
	}
}

// handleStock answers GET /stock: {"stock":{"apple":8,...}}.
func (s *shop) handleStock(w http.ResponseWriter, r *http.Request) {
	keys := make([]string, len(s.items))
	for i, item := range s.items {
		keys[i] = s.stockKey(item)
	}
	// One MGET: the counters share a hash tag, so this works on Cluster too.
	vals, err := s.client.MGet(r.Context(), keys...).Result()
	if err != nil {
		s.fail(w, r, "read stock", err)
		return
	}
	stock := make(map[string]int64, len(s.items))
	for i, item := range s.items {
		switch v := vals[i].(type) {
		case nil: // no counter: nothing in stock
			stock[item] = 0
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				s.fail(w, r, "read stock", fmt.Errorf("%w: counter of %s is %q", rediscmd.ErrWrongValue, item, v))
				return
			}
			stock[item] = n
		default:
			s.fail(w, r, "read stock", fmt.Errorf("%w: MGET replied %T", rediscmd.ErrWrongValue, vals[i]))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"stock": stock})
}

// entry is one player's place on the leaderboard.
type entry struct {
	Rank       int64     `json:"rank"`
	Player     string    `json:"player"`
	Score      int64     `json:"score"`
	AchievedAt time.Time `json:"achieved_at"`
}

func toEntry(e rediscmd.LeaderboardEntry) entry {
	return entry{Rank: e.Rank, Player: e.Member, Score: e.Score, AchievedAt: e.AchievedAt}
}

// handleScores answers POST /scores {"player":"p1","points":10}: it adds the
// points (negative ones lower the score) and returns the player's entry.
func (s *shop) handleScores(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Player string `json:"player"`
		Points *int64 `json:"points"`
	}
	if !decodeJSON(w, r, &body, `want {"player":"p1","points":10}`) {
		return
	}
	switch {
	case body.Player == "" || len(body.Player) > maxPlayerLen:
		writeError(w, http.StatusBadRequest, "player must be 1 to 64 bytes")
		return
	case body.Points == nil:
		writeError(w, http.StatusBadRequest, "points is required")
		return
	case *body.Points < -rediscmd.MaxInt || *body.Points > rediscmd.MaxInt:
		writeError(w, http.StatusBadRequest, "points out of range")
		return
	}
	var at time.Time // zero: the Redis server's clock
	if s.cfg.now != nil {
		at = s.cfg.now()
	}
	e, err := rediscmd.LeaderboardAdd(r.Context(), s.client, s.board, body.Player, *body.Points, at, s.cfg.boardTTL)
	switch {
	case errors.Is(err, rediscmd.ErrOutOfRange):
		writeError(w, http.StatusConflict, "score would leave the range ±(2^53-1)")
		return
	case err != nil:
		s.fail(w, r, "leaderboard add", err)
		return
	}
	writeJSON(w, http.StatusOK, toEntry(e))
}

// handleLeaderboard answers GET /leaderboard?n=10 (n in 1..100, default 10):
// the best players, highest score first and, among equal scores, whoever
// reached the score first.
func (s *shop) handleLeaderboard(w http.ResponseWriter, r *http.Request) {
	n := 10
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxLeaderboard {
			writeError(w, http.StatusBadRequest, "n must be an integer from 1 to 100")
			return
		}
	}
	top, err := rediscmd.LeaderboardTop(r.Context(), s.client, s.board, n)
	if err != nil {
		s.fail(w, r, "leaderboard top", err)
		return
	}
	players := make([]entry, len(top))
	for i, e := range top {
		players[i] = toEntry(e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"players": players})
}

// latencyResponse is the answer of GET /stats/latency. LatencyMS is null,
// with a Message, while no checkout has been recorded.
type latencyResponse struct {
	P         float64  `json:"p"`
	LatencyMS *float64 `json:"latency_ms"`
	Samples   int64    `json:"samples"`
	Message   string   `json:"message,omitempty"`
}

// handleLatency answers GET /stats/latency?p=95 (p in (0, 100], default 95):
// the nearest-rank p-th percentile of the recorded checkout latencies, in ms.
func (s *shop) handleLatency(w http.ResponseWriter, r *http.Request) {
	p := 95.0
	if v := r.URL.Query().Get("p"); v != "" {
		var err error
		if p, err = strconv.ParseFloat(v, 64); err != nil || math.IsNaN(p) || p <= 0 || p > 100 {
			writeError(w, http.StatusBadRequest, "p must be a number in (0, 100]")
			return
		}
	}
	resp := latencyResponse{P: p}
	n, err := s.client.ZCard(r.Context(), s.latency.key).Result()
	if err != nil {
		s.fail(w, r, "latency samples", err)
		return
	}
	if n > 0 {
		v, err := rediscmd.Percentile(r.Context(), s.client, s.latency.key, p)
		switch {
		case errors.Is(err, rediscmd.ErrEmpty): // expired since ZCARD
			n = 0
		case err != nil:
			s.fail(w, r, "latency percentile", err)
			return
		default:
			resp.LatencyMS = &v
		}
	}
	resp.Samples = n
	if n == 0 {
		resp.Message = "no checkout recorded yet"
	}
	writeJSON(w, http.StatusOK, resp)
}

// fail logs err and answers without its details: 500 when a key holds data the
// shop cannot use (rediscmd.ErrWrongValue), 503 when the store failed.
func (s *shop) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	if cause := context.Cause(r.Context()); errors.Is(cause, context.Canceled) {
		return // the client has left: nobody reads the answer, nothing went wrong
	}
	s.log.ErrorContext(r.Context(), "shop: "+op, "path", r.URL.Path, "err", err)
	writeStoreError(w, err)
}

// writeStoreError answers a store error without its details: 500 when a key
// holds data the shop cannot use (rediscmd.ErrWrongValue), 503 otherwise.
func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, rediscmd.ErrWrongValue) {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	writeError(w, http.StatusServiceUnavailable, "store unavailable")
}

// decodeJSON reads r's body, a single JSON object with no unknown fields, into
// v. On failure it answers 400 (413 for a body over maxBody) with want as a
// hint, and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data")
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return false
	}
	writeError(w, http.StatusBadRequest, "invalid JSON body: "+want)
	return false
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
