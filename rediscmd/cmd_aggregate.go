package rediscmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// WeightedAverage returns sum(value_i * weights[i]) / sum(weights) where
// value_i is the numeric field field of the hash keys[i], read in one atomic
// script (weighted_avg.lua).
//
// A missing hash or field counts as 0 and still contributes its weight (to
// leave a key out, leave it out of keys). When the weights sum to 0 the result
// is 0; nothing is divided by zero. The result is computed with float64
// arithmetic and keeps its decimals. A field that is not a decimal number with
// a finite value ("12", "-0.5", "1e3"; not "0x10", " 5" or "inf") is an
// ErrWrongValue error. A product, the weighted sum or the sum of the weights
// that overflows a float64 is an ErrOutOfRange error, never an infinite or
// zero result.
//
// keys and weights must have the same length, between 1 and MaxKeys; keys and
// field must be non-empty and weights finite and >= 0. On Redis Cluster all keys must
// share a {hash tag} (build them with lua.TagKey); a *redis.ClusterClient is
// checked before sending, and any CROSSSLOT answer becomes ErrCrossSlot.
func WeightedAverage(ctx context.Context, client redis.Scripter, keys []string, weights []float64, field string) (float64, error) {
	const fn = "WeightedAverage"
	if field == "" {
		return 0, fmt.Errorf("%w: %s: empty field name", ErrInvalidArgument, fn)
	}
	if err := checkKeys(fn, keys); err != nil {
		return 0, err
	}
	if len(weights) != len(keys) {
		return 0, fmt.Errorf("%w: %s: %d keys but %d weights", ErrInvalidArgument, fn, len(keys), len(weights))
	}
	args := make([]any, 0, len(weights)+1)
	args = append(args, field)
	for i, w := range weights {
		if !finite(w) || w < 0 {
			return 0, fmt.Errorf("%w: %s: weight %d is %v, want a finite number >= 0", ErrInvalidArgument, fn, i, w)
		}
		args = append(args, formatFloat(w))
	}
	if err := checkSlots(fn, client, keys); err != nil {
		return 0, err
	}
	v, err := runScript(ctx, client, weightedAvg, keys, args...)
	if err != nil {
		return 0, err
	}
	return replyFloat(weightedAvg.Name(), v)
}

// Percentile returns the p-th percentile of the scores in the sorted set at
// key by the nearest-rank method: the score at 1-based rank ceil(p/100 * n) of
// the n scores in ascending order, read in one atomic script (percentile.lua).
// So over the scores 1..10, p=50 gives 5, p=95 gives 10, p=100 the maximum and
// any tiny p > 0 the minimum. The rank is computed exactly from p's shortest
// decimal form (16.1 means 161/10), never rounded by float arithmetic.
//
// p must be in (0, 100]; 0, a negative p, p > 100 and NaN are ErrInvalidArgument
// errors. An empty or missing set is ErrEmpty, not 0.
//
// Any sorted set works; RecordSample adds samples with unique members.
func Percentile(ctx context.Context, client redis.Scripter, key string, p float64) (float64, error) {
	const fn = "Percentile"
	if err := checkKeys(fn, []string{key}); err != nil {
		return 0, err
	}
	if !(p > 0 && p <= 100) { // also false for NaN
		return 0, fmt.Errorf("%w: %s: p %v outside (0, 100]", ErrInvalidArgument, fn, p)
	}
	v, err := runScript(ctx, client, percentile, []string{key}, formatFloat(p))
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("%w: %s", ErrEmpty, key)
	}
	if err != nil {
		return 0, err
	}
	name := percentile.Name()
	r, err := replySlice(name, v, 3)
	if err != nil {
		return 0, err
	}
	n, err := replyInt(name, r[0])
	if err != nil {
		return 0, err
	}
	first, err := replyInt(name, r[1])
	if err != nil {
		return 0, err
	}
	rank := nearestRank(p, n)
	i := rank - first + 2
	if rank < first || i >= int64(len(r)) {
		return 0, fmt.Errorf("rediscmd: %s: reply holds ranks %d..%d of %d, want %d", name, first, first+int64(len(r))-3, n, rank)
	}
	return replyFloat(name, r[i])
}

// nearestRank returns ceil(p/100 * n) clamped to [1, n], computed exactly from
// the shortest decimal that formats p.
func nearestRank(p float64, n int64) int64 {
	if p == math.Trunc(p) && n <= math.MaxInt64/100 {
		// Whole percentiles (the common case) need no big numbers.
		return min(max((int64(p)*n+99)/100, 1), n)
	}
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(p, 'f', -1, 64))
	if !ok {
		return 1
	}
	r.Mul(r, big.NewRat(n, 100))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	rank := q.Int64()
	if m.Sign() > 0 {
		rank++
	}
	return min(max(rank, 1), n)
}

// RecordSample adds value (a latency, a price...) to the sorted set of samples
// at key, for Percentile, and returns how many samples the set holds. A sorted
// set keeps one score per member, so RecordSample gives every sample a member
// of its own, unique across processes; two equal values are two samples.
// value must be finite (±math.MaxFloat64 included).
//
// A ttl above 0 gives the set expiry ttl when it has none after the call (an
// expiry it has is kept); with 0 expiries are left alone. ttl is rounded up
// to whole milliseconds; a negative ttl is an ErrInvalidArgument error. To
// keep percentiles over a recent window, record into one key per period, for
// example lua.TagKey("latency", route, strconv.FormatInt(time.Now().Unix()/60, 10))
// with ttl 10*time.Minute, and read the current or previous period's key.
func RecordSample(ctx context.Context, client redis.Scripter, key string, value float64, ttl time.Duration) (int64, error) {
	const fn = "RecordSample"
	ttlMS, err := ttlMillis(fn, ttl)
	if err != nil {
		return 0, err
	}
	if err := checkKeys(fn, []string{key}); err != nil {
		return 0, err
	}
	if !finite(value) {
		return 0, fmt.Errorf("%w: %s: value %v is not finite", ErrInvalidArgument, fn, value)
	}
	v, err := runScript(ctx, client, recordSample, []string{key}, formatFloat(value), sampleMember(), formatInt(ttlMS))
	if err != nil {
		return 0, err
	}
	return replyInt(recordSample.Name(), v)
}

var (
	sampleOnce   sync.Once
	samplePrefix string
	sampleSeq    atomic.Uint64
)

// sampleMember returns a member unique to this call: a random per-process
// prefix (64 bits) and a sequence number.
func sampleMember() string {
	sampleOnce.Do(func() {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		samplePrefix = hex.EncodeToString(b[:]) + ":"
	})
	return samplePrefix + strconv.FormatUint(sampleSeq.Add(1), 36)
}
