package rediscmd

import (
	"context"
	_ "embed" // the scripts are embedded .lua files
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/lua"
)

// Errors returned by the commands (CappedIncr, WeightedAverage, Percentile,
// the Leaderboard calls, Reserve, Restock and RecordSample). They are wrapped
// with details, so test with errors.Is.
var (
	// ErrInvalidArgument reports a call whose arguments cannot be used: an
	// empty key, a number outside its documented range, mismatched lengths or too
	// many keys. Every function checks its arguments before sending anything
	// to Redis.
	ErrInvalidArgument = errors.New("rediscmd: invalid argument")

	// ErrWrongValue reports a key that holds a value the command cannot use:
	// a counter that is not an integer, a hash field that is not a number, a
	// key of another Redis type (WRONGTYPE). Every command reads stored
	// numbers by one rule (docs/commands.md, "Numbers"): a decimal such as
	// "-12", "0.5" or "1e3"; never hex, spaces, "inf" or "nan"; an integer
	// written as INCRBY writes one. The same malformed data is ErrWrongValue
	// from every command that reads it. Nothing was changed.
	ErrWrongValue = errors.New("rediscmd: key holds a value the command cannot use")

	// ErrOutOfRange reports a result that would leave the range a command
	// keeps exact, such as a leaderboard score past 2^53-1, or a sum or
	// product that overflows a float64 on the way. Nothing was changed.
	ErrOutOfRange = errors.New("rediscmd: result out of range")

	// ErrEmpty reports a percentile asked of an empty or missing sorted set.
	ErrEmpty = errors.New("rediscmd: empty sorted set")

	// ErrNotFound reports a member that is not on a leaderboard.
	ErrNotFound = errors.New("rediscmd: member not found")

	// ErrShortage is matched (with errors.Is) by every *ShortageError.
	ErrShortage = errors.New("rediscmd: insufficient stock")

	// ErrCrossSlot reports keys of one call that Redis Cluster stores in
	// different hash slots. A script can only touch keys of one slot, so all
	// keys of one call must share a {hash tag}: the part of the key between the
	// first '{' and the next '}', which is all Cluster hashes when present
	// (StockKey and lua.TagKey build such keys).
	ErrCrossSlot = errors.New("rediscmd: keys of one call must share a {hash tag} on Redis Cluster (CROSSSLOT)")
)

// MaxKeys is the most keys one WeightedAverage, Reserve or Restock call takes,
// and the most entries one LeaderboardTop call returns. It bounds how long one
// script blocks the server.
const MaxKeys = 1000

// MaxInt is the largest integer the commands' counters, quantities and
// scores hold: 2^53-1, the largest integer a Lua number (a double) holds
// exactly, so no arithmetic inside a script ever rounds.
const MaxInt = 1<<53 - 1

// ttlMillis checks a call's ttl and returns it in whole milliseconds,
// rounded up: 0 leaves expiries alone, a negative ttl is an error.
func ttlMillis(fn string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("%w: %s: negative TTL %v", ErrInvalidArgument, fn, ttl)
	}
	return int64((ttl + time.Millisecond - 1) / time.Millisecond), nil
}

var (
	//go:embed numbers.lua
	numbersSrc string
	//go:embed capped_incr.lua
	cappedIncrSrc string
	//go:embed weighted_avg.lua
	weightedAvgSrc string
	//go:embed percentile.lua
	percentileSrc string
	//go:embed leaderboard_add.lua
	leaderboardAddSrc string
	//go:embed leaderboard_get.lua
	leaderboardGetSrc string
	//go:embed leaderboard_top.lua
	leaderboardTopSrc string
	//go:embed reserve.lua
	reserveSrc string
	//go:embed restock.lua
	restockSrc string
	//go:embed record_sample.lua
	recordSampleSrc string
)

var (
	cappedIncr     = mustCommand("sluice_capped_incr", 1, cappedIncrSrc)
	weightedAvg    = mustCommand("sluice_weighted_avg", lua.AnyKeys, weightedAvgSrc)
	percentile     = mustCommand("sluice_percentile", 1, percentileSrc)
	leaderboardAdd = mustCommand("sluice_leaderboard_add", 2, leaderboardAddSrc)
	leaderboardGet = mustCommand("sluice_leaderboard_get", 2, leaderboardGetSrc)
	leaderboardTop = mustCommand("sluice_leaderboard_top", 1, leaderboardTopSrc)
	reserve        = mustCommand("sluice_reserve", lua.AnyKeys, reserveSrc)
	restock        = mustCommand("sluice_restock", lua.AnyKeys, restockSrc)
	recordSample   = mustCommand("sluice_record_sample", 1, recordSampleSrc)
)

// mustCommand makes a catalogue command of a script, with numbers.lua in
// front of it.
func mustCommand(name string, keys int, src string) *lua.Command {
	c, err := lua.NewCommand(name, keys, numbersSrc+"\n"+src)
	if err != nil {
		panic(err) // only for the embedded scripts, which are never empty
	}
	return c
}

// Commands returns the package's commands, sorted by name, for listing their
// names and SHAs or for adding them to a lua.Registry that also holds an
// application's own commands:
//
//	sluice_capped_incr      CappedIncr
//	sluice_leaderboard_add  LeaderboardAdd
//	sluice_leaderboard_get  LeaderboardGet
//	sluice_leaderboard_top  LeaderboardTop
//	sluice_percentile       Percentile
//	sluice_record_sample    RecordSample
//	sluice_reserve          Reserve
//	sluice_restock          Restock
//	sluice_weighted_avg     WeightedAverage
//
// Call them through the typed functions, which validate arguments and decode
// replies. sluice_weighted_avg, sluice_reserve and sluice_restock take any
// number of keys (their Keys is lua.AnyKeys; the typed functions accept 1 to
// MaxKeys).
func Commands() []*lua.Command {
	return []*lua.Command{cappedIncr, leaderboardAdd, leaderboardGet, leaderboardTop, percentile, recordSample, reserve, restock, weightedAvg}
}

// Preload caches every command's script on the server with SCRIPT LOAD: on
// every master of a Redis Cluster, every shard of a Ring, or the one server
// otherwise (lua.Preload). Calling it at start-up saves the first calls a
// NOSCRIPT round trip; it is not required for correctness.
func Preload(ctx context.Context, client redis.Scripter) error {
	return lua.Preload(ctx, client, Commands()...)
}

// runScript runs cmd and maps the scripts' error replies to its sentinel
// errors.
func runScript(ctx context.Context, client redis.Scripter, cmd *lua.Command, keys []string, args ...any) (any, error) {
	v, err := cmd.Run(ctx, client, keys, args...).Result()
	if err != nil {
		return nil, mapError(cmd.Name(), err)
	}
	return v, nil
}

// mapError turns the scripts' error replies into the package's sentinels,
// keeping the server's text.
func mapError(name string, err error) error {
	if errors.Is(err, redis.Nil) {
		return err
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return err // a network or context error: not the server's answer
	}
	msg := err.Error()
	var sentinel error
	switch {
	case strings.HasPrefix(msg, "SLUICE_BADARG "):
		sentinel = ErrInvalidArgument
	case strings.HasPrefix(msg, "SLUICE_WRONGVALUE "):
		sentinel = ErrWrongValue
	case strings.HasPrefix(msg, "SLUICE_OUTOFRANGE "):
		sentinel = ErrOutOfRange
	case strings.HasPrefix(msg, "CROSSSLOT"), strings.Contains(msg, " CROSSSLOT "):
		return fmt.Errorf("%w: %s: %w", ErrCrossSlot, name, err)
	case strings.HasPrefix(msg, "WRONGTYPE"), strings.Contains(msg, "WRONGTYPE "):
		return fmt.Errorf("%w: %s: %w", ErrWrongValue, name, err)
	default:
		return fmt.Errorf("rediscmd: %s: %w", name, err)
	}
	_, detail, _ := strings.Cut(msg, " ")
	return fmt.Errorf("%w: %s", sentinel, detail)
}

// checkKeys rejects empty keys and more than MaxKeys of them.
func checkKeys(fn string, keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: %s: no keys", ErrInvalidArgument, fn)
	}
	if len(keys) > MaxKeys {
		return fmt.Errorf("%w: %s: %d keys, at most %d per call", ErrInvalidArgument, fn, len(keys), MaxKeys)
	}
	for i, k := range keys {
		if k == "" {
			return fmt.Errorf("%w: %s: key %d is empty", ErrInvalidArgument, fn, i)
		}
	}
	return nil
}

// checkInt rejects n outside [lo, hi].
func checkInt(fn, what string, n, lo, hi int64) error {
	if n < lo || n > hi {
		return fmt.Errorf("%w: %s: %s %d outside [%d, %d]", ErrInvalidArgument, fn, what, n, lo, hi)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// parseNumber reads s by the package's number rule, which every script
// applies with its num helper (docs/commands.md, "Numbers"): a decimal made of
// an optional sign, digits, an optional '.' and digits, and an optional
// exponent (e or E, an optional sign, digits), whose value is finite. Hex,
// spaces, "inf", "nan" and values past the largest double are not numbers.
func parseNumber(s string) (float64, bool) {
	digits := func(i int) int {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i
	}
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := digits(i)
	if j == i {
		return 0, false
	}
	if i = j; i < len(s) && s[i] == '.' {
		if j = digits(i + 1); j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if j = digits(i); j == i {
			return 0, false
		}
		i = j
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64) // ErrRange past the largest double
	if err != nil || !finite(f) {
		return 0, false
	}
	return f, true
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// formatFloat formats f so that both Redis's Lua and miniredis's read it back
// exactly: the shortest form that round-trips, with a '.' before any exponent
// ("1.0e+308"), since miniredis's tonumber reads exponents only after a '.'.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if i := strings.IndexByte(s, 'e'); i >= 0 && !strings.Contains(s[:i], ".") {
		s = s[:i] + ".0" + s[i:]
	}
	return s
}

// replyInt reads an integer out of a script reply element: an integer reply,
// or a string (such as a sorted-set score) holding, by the number rule, an
// integer in [-MaxInt, MaxInt].
func replyInt(name string, v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		f, ok := parseNumber(x)
		if ok && f == math.Trunc(f) && math.Abs(f) <= MaxInt {
			return int64(f), nil
		}
	}
	return 0, fmt.Errorf("rediscmd: %s: unexpected reply %#v, want an integer", name, v)
}

// replyFloat reads a number out of a script reply element: an integer reply,
// a string that the number rule reads, or a sorted-set score of +-infinity,
// which Redis writes "inf" and "-inf".
func replyFloat(name string, v any) (float64, error) {
	switch x := v.(type) {
	case string:
		if f, ok := parseNumber(x); ok {
			return f, nil
		}
		switch x {
		case "inf":
			return math.Inf(1), nil
		case "-inf":
			return math.Inf(-1), nil
		}
	case int64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("rediscmd: %s: unexpected reply %#v, want a number", name, v)
}

// replySlice reads an array reply of at least n elements.
func replySlice(name string, v any, n int) ([]any, error) {
	s, ok := v.([]any)
	if !ok || len(s) < n {
		return nil, fmt.Errorf("rediscmd: %s: unexpected reply %#v, want an array of at least %d", name, v, n)
	}
	return s, nil
}
