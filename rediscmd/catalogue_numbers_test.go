package rediscmd_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluicehq/sluice/internal/redistest"
	"github.com/sluicehq/sluice/lua"
	"github.com/sluicehq/sluice/rediscmd"
)

// catNumbers lists strings and whether the catalogue's number rule
// (docs/commands.md, "Numbers") reads them as a number: a decimal with an
// optional sign, digits, an optional '.' and digits and an optional exponent,
// whose value is a finite double.
var catNumbers = []struct {
	s  string
	ok bool
}{
	{"0", true},
	{"5", true},
	{"-5", true},
	{"+5", true},
	{"-0", true},
	{"007", true},
	{"1.5", true},
	{"-0.25", true},
	{"0.1", true},
	{"1e3", true},
	{"1E3", true},
	{"1e+3", true},
	{"1e-3", true},
	{"2.5e-3", true},
	{"-1.5E+10", true},
	{"9007199254740991", true},
	{"9007199254740993", true},
	{"123456789012345678901234567890", true},
	{"1.7976931348623157e308", true},
	{"4.9e-324", true},
	{"1e-400", true}, // underflows to 0, as strtod and ParseFloat both read it

	{"", false},
	{" 5", false},
	{"5 ", false},
	{" 5 ", false},
	{"\t5", false},
	{"5\n", false},
	{"0x10", false},
	{"0X10", false},
	{"0x1p4", false},
	{"0x1.8p1", false},
	{"0b101", false},
	{"1_000", false},
	{"inf", false},
	{"-inf", false},
	{"Infinity", false},
	{"nan", false},
	{"NaN", false},
	{"1e999", false},
	{"-1e999", false},
	{".5", false},
	{"5.", false},
	{"-.5", false},
	{"1e", false},
	{"1e+", false},
	{"e3", false},
	{"--5", false},
	{"+-5", false},
	{"1,5", false},
	{"1.5.5", false},
	{"1e3.5", false},
	{"five", false},
}

// catCanonicalInt matches an integer as INCRBY writes it.
var catCanonicalInt = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)

// catInt reports whether s is an integer the catalogue keeps in a counter,
// stock or time: written as INCRBY writes it, within [lo, hi].
func catInt(s string, lo, hi int64) bool {
	if !catCanonicalInt.MatchString(s) {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n >= lo && n <= hi
}

// TestNumberRuleStoredValues checks that every command reads a stored value by
// the same rule: a string a command cannot use is ErrWrongValue from every
// command that reads it, never a number from one and an error from another.
func TestNumberRuleStoredValues(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		for i, tc := range catNumbers {
			t.Run(strconv.Quote(tc.s), func(t *testing.T) {
				goValue, goOK := rediscmd.ParseNumber(tc.s)
				assert.Equal(t, tc.ok, goOK, "the Go side reads it by the same rule")
				h := tg.Key("h:" + strconv.Itoa(i))
				require.NoError(t, tg.Client.HSet(ctx, h, "value", tc.s).Err())
				got, err := rediscmd.WeightedAverage(ctx, tg.Client, []string{h}, []float64{1}, "value")
				if tc.ok {
					want, perr := strconv.ParseFloat(tc.s, 64)
					require.NoError(t, perr)
					require.NoError(t, err)
					assert.Equal(t, want, got)
					assert.Equal(t, want, goValue)
				} else {
					assert.ErrorIs(t, err, rediscmd.ErrWrongValue)
				}

				// Counters and stock: integers as INCRBY writes them.
				isInt := catInt(tc.s, -rediscmd.MaxInt, rediscmd.MaxInt)
				c := tg.Key("c:" + strconv.Itoa(i))
				require.NoError(t, tg.Client.Set(ctx, c, tc.s, 0).Err())
				_, err = rediscmd.CappedIncr(ctx, tg.Client, c, 0, 10, 0)
				assert.Equal(t, !isInt, errors.Is(err, rediscmd.ErrWrongValue), "CappedIncr: %v", err)
				_, err = rediscmd.Reserve(ctx, tg.Client, []rediscmd.Item{{Key: c, Quantity: 1}})
				assert.Equal(t, !isInt, errors.Is(err, rediscmd.ErrWrongValue), "Reserve: %v", err)
				_, err = rediscmd.Restock(ctx, tg.Client, []rediscmd.Item{{Key: c, Quantity: 1}})
				assert.Equal(t, !isInt, errors.Is(err, rediscmd.ErrWrongValue), "Restock: %v", err)

				// A leaderboard's companion times: Unix ms as INCRBY writes them.
				isTime := catInt(tc.s, 0, 9999999999999)
				board := tg.Key("lb:" + strconv.Itoa(i))
				times, err := rediscmd.LeaderboardTimesKey(board)
				require.NoError(t, err)
				require.NoError(t, tg.Client.HSet(ctx, times, "x", tc.s).Err())
				_, err = rediscmd.LeaderboardGet(ctx, tg.Client, board, "x")
				if isTime {
					assert.ErrorIs(t, err, rediscmd.ErrNotFound, "a time whose member is not on the board")
				} else {
					assert.ErrorIs(t, err, rediscmd.ErrWrongValue, "LeaderboardGet")
				}
				_, err = rediscmd.LeaderboardAdd(ctx, tg.Client, board, "x", 1, time.UnixMilli(1), 0)
				assert.Equal(t, !isTime, errors.Is(err, rediscmd.ErrWrongValue), "LeaderboardAdd: %v", err)
			})
		}
	})
}

// TestNumberRuleArguments runs the catalogue's scripts directly with numbers
// the typed functions never send: every script refuses the same strings.
func TestNumberRuleArguments(t *testing.T) {
	redistest.EachTarget(t, func(t *testing.T, tg *redistest.Target) {
		ctx := context.Background()
		cmd := func(name string) *lua.Command {
			for _, c := range rediscmd.Commands() {
				if c.Name() == name {
					return c
				}
			}
			t.Fatalf("no command %s", name)
			return nil
		}
		k, k2 := tg.Key("k"), tg.Key("k:times")
		calls := []struct {
			name string
			keys []string
			args func(n string) []any
		}{
			{"sluice_capped_incr", []string{k}, func(n string) []any { return []any{n, "10", "0"} }},
			{"sluice_weighted_avg", []string{k}, func(n string) []any { return []any{"value", n} }},
			{"sluice_percentile", []string{k}, func(n string) []any { return []any{n} }},
			{"sluice_record_sample", []string{k}, func(n string) []any { return []any{n, "m", "0"} }},
			{"sluice_leaderboard_add", []string{k, k2}, func(n string) []any { return []any{"x", n, "", "0"} }},
			{"sluice_leaderboard_top", []string{k}, func(n string) []any { return []any{n} }},
			{"sluice_reserve", []string{k}, func(n string) []any { return []any{n} }},
			{"sluice_restock", []string{k}, func(n string) []any { return []any{n} }},
		}
		for _, c := range calls {
			for _, bad := range []string{"0x10", "0x1p4", " 5 ", "5 ", "inf", "nan", "1e999", ".5"} {
				t.Run(c.name+"/"+strconv.Quote(bad), func(t *testing.T) {
					err := cmd(c.name).Run(ctx, tg.Client, c.keys, c.args(bad)...).Err()
					require.Error(t, err)
					assert.True(t, strings.HasPrefix(err.Error(), "SLUICE_BADARG "), "%v", err)
				})
			}
		}

		// Decimals in any of the rule's forms are read alike.
		require.NoError(t, tg.Client.HSet(ctx, k, "value", "3").Err())
		avg, err := cmd("sluice_weighted_avg").Run(ctx, tg.Client, []string{k}, "value", "2.5E0").Text()
		require.NoError(t, err)
		assert.Equal(t, "3", avg)
		z := tg.Key("z")
		require.NoError(t, tg.Client.ZAdd(ctx, z, redis.Z{Score: 1, Member: "a"}).Err())
		require.NoError(t, cmd("sluice_percentile").Run(ctx, tg.Client, []string{z}, "5e1").Err())
		require.NoError(t, cmd("sluice_record_sample").Run(ctx, tg.Client, []string{z}, "+1e3", "b", "0").Err())
		assert.Equal(t, 1000.0, tg.Client.ZScore(ctx, z, "b").Val())
	})
}

// TestCatalogueScriptsShareNumberRule checks that the number rule is written
// once: numbers.lua stands in front of every script, and nothing else in a
// script reads a number with tonumber or compares with math.huge.
func TestCatalogueScriptsShareNumberRule(t *testing.T) {
	prelude, err := os.ReadFile("numbers.lua")
	require.NoError(t, err)
	for _, c := range rediscmd.Commands() {
		require.True(t, strings.HasPrefix(c.Source(), string(prelude)), "%s starts with numbers.lua", c.Name())
		body := strings.TrimPrefix(c.Source(), string(prelude))
		assert.NotContains(t, body, "local function num(", "%s: num is defined once, in numbers.lua", c.Name())
		assert.NotContains(t, body, "tonumber(", "%s: only num calls tonumber", c.Name())
		assert.NotRegexp(t, `[=<>]=?\s*-?math\.huge|math\.huge\s*[=<>~]`, c.Source(), "%s: math.huge is not infinity in gopher-lua", c.Name())
	}
}
