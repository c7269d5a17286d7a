package main

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// recordLatencySource is the shop's own command, defined beside rediscmd's
// commands with a lua.Registry (see record_latency.lua for KEYS and ARGV).
//
//go:embed record_latency.lua
var recordLatencySource string

// latencyLog keeps the newest samples of one route's latency, for rediscmd's
// nearest-rank Percentile.
//
// rediscmd.RecordSample records samples too, but keeps every one of them until
// the key expires; the shop wants "the last max checkouts", so it defines a
// command that also trims the oldest samples (record_latency.lua).
type latencyLog struct {
	cmd   *lua.Command
	key   string // sorted set: score = latency in ms, member = sample id
	order string // list: the same ids, oldest first
	max   int
	ttl   time.Duration

	prefix string        // random per log, so ids from several processes never collide
	seq    atomic.Uint64 // numbers the samples of this process
}

// newLatencyLog defines the recording command in reg and returns a log kept
// at key (plus key + ":order", same hash tag), holding at most max samples
// and expiring ttl after the newest one.
func newLatencyLog(reg *lua.Registry, key string, max int, ttl time.Duration) (*latencyLog, error) {
	if max < 1 || ttl < time.Millisecond {
		return nil, fmt.Errorf("latency log: want max >= 1 and ttl >= 1ms, got %d and %v", max, ttl)
	}
	cmd, err := reg.Define("shop_record_latency", 2, recordLatencySource)
	if err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &latencyLog{
		cmd:    cmd,
		key:    key,
		order:  key + ":order",
		max:    max,
		ttl:    ttl,
		prefix: hex.EncodeToString(b[:]) + ":",
	}, nil
}

// record adds one sample, in milliseconds, and returns how many are kept.
func (l *latencyLog) record(ctx context.Context, c redis.Scripter, d time.Duration) (int64, error) {
	ms := float64(d.Microseconds()) / 1000
	id := l.prefix + strconv.FormatUint(l.seq.Add(1), 36)
	return l.cmd.Run(ctx, c, []string{l.key, l.order}, ms, id, l.max, l.ttl.Milliseconds()).Int64()
}
