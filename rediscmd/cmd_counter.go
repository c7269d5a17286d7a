package rediscmd

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// CappedIncr adds by to the integer counter at key without ever raising it
// past max, and returns the counter's value after the call, all in one atomic
// script (capped_incr.lua). A missing key counts as 0.
//
// It adds min(by, max-current): a counter at max stays at max, and a counter
// already above max (because max was lowered) is left as it is, since an
// increment never lowers a counter. by must be in [0, MaxInt] (0 reads the
// counter and adds nothing; decrements are not supported) and max in
// [0, MaxInt]. A key holding anything but an integer in [-MaxInt, MaxInt]
// written as INCRBY writes one ("42", "-7"; not "042", "+7" or "4.2e1") is an
// ErrWrongValue error, not a silent 0, and a key of another type too.
//
// The counter is written with INCRBY, so it keeps any expiry it has. A ttl
// above 0 gives it expiry ttl when it has none after the call, for counters
// that should reset, such as a daily cap: a counter written with ttl
// 24*time.Hour expires a day after its first write however often it is
// written later (a fixed window, not a sliding one). With ttl 0 expiries are
// left alone and a new counter never expires. ttl is rounded up to whole
// milliseconds; a negative ttl is an ErrInvalidArgument error.
func CappedIncr(ctx context.Context, client redis.Scripter, key string, by, max int64, ttl time.Duration) (int64, error) {
	const fn = "CappedIncr"
	ttlMS, err := ttlMillis(fn, ttl)
	if err != nil {
		return 0, err
	}
	if err := checkKeys(fn, []string{key}); err != nil {
		return 0, err
	}
	if err := checkInt(fn, "by", by, 0, MaxInt); err != nil {
		return 0, err
	}
	if err := checkInt(fn, "max", max, 0, MaxInt); err != nil {
		return 0, err
	}
	v, err := runScript(ctx, client, cappedIncr, []string{key}, formatInt(by), formatInt(max), formatInt(ttlMS))
	if err != nil {
		return 0, err
	}
	return replyInt(cappedIncr.Name(), v)
}
