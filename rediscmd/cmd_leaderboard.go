package rediscmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxTimeMS is the latest achievement time a leaderboard records, in Unix
// milliseconds (2286-11-20T17:46:39.999Z): times are written as 13 digits.
const maxTimeMS = 9999999999999

// LeaderboardEntry is one member's place on a leaderboard.
type LeaderboardEntry struct {
	// Member is the id passed to LeaderboardAdd.
	Member string
	// Score is the member's total points.
	Score int64
	// Rank is the 1-based position: highest score first, and among equal
	// scores whoever reached the score first.
	Rank int64
	// AchievedAt is when the member reached Score, in UTC with millisecond
	// precision.
	AchievedAt time.Time
}

// LeaderboardAdd adds by points to member on the leaderboard at key and
// returns the member's new entry (rank, score, time), in one atomic script
// (leaderboard_add.lua). Members rank by score, highest first; among equal
// scores, whoever reached the score first ranks first; among equal scores
// reached in the same millisecond, the greater member id ranks first.
//
// The sorted set's score is the member's exact score, with no time folded in,
// so the tie-break is exact over the whole range: scores in [-MaxInt, MaxInt]
// (2^53-1) and times in Unix milliseconds 0 to 9999999999999 (1970 to 2286).
// The time is kept in the sorted-set member instead (the 13 digits of
// 9999999999999 minus the time, ':' and the id), with a companion hash
// (LeaderboardTimesKey) mapping each id to its time; read the board with
// LeaderboardTop and LeaderboardGet, and change it only with LeaderboardAdd.
//
// by is in [-MaxInt, MaxInt]; negative points lower the score. Any change sets
// the achievement time: at if it is not the zero time.Time, else the Redis
// server's TIME, so every application instance uses one clock; a non-zero at
// must lie between the Unix epoch and 2286-11-20 (Unix milliseconds 0 to
// 9999999999999). A call with by == 0 on a member already on the board changes
// neither its score nor its time; on a new member it adds it with score 0. A
// new score outside [-MaxInt, MaxInt] is an ErrOutOfRange error and changes
// nothing. member must be non-empty.
//
// A ttl above 0 gives the board expiry ttl when it has none after the call (a
// weekly board; an expiry it has is kept); with 0 expiries are left alone.
// The companion hash always expires with the board. ttl is rounded up to whole
// milliseconds; a negative ttl is an ErrInvalidArgument error.
//
// On Redis Cluster the board and its companion hash must share a slot:
// LeaderboardTimesKey derives one that does from any key that has a {hash tag}
// or contains no '}'; other keys are ErrInvalidArgument errors.
func LeaderboardAdd(ctx context.Context, client redis.Scripter, key, member string, by int64, at time.Time, ttl time.Duration) (LeaderboardEntry, error) {
	const fn = "LeaderboardAdd"
	ttlMS, err := ttlMillis(fn, ttl)
	if err != nil {
		return LeaderboardEntry{}, err
	}
	times, err := LeaderboardTimesKey(key)
	if err != nil {
		return LeaderboardEntry{}, err
	}
	if member == "" {
		return LeaderboardEntry{}, fmt.Errorf("%w: %s: empty member", ErrInvalidArgument, fn)
	}
	if err := checkInt(fn, "by", by, -MaxInt, MaxInt); err != nil {
		return LeaderboardEntry{}, err
	}
	atMS := ""
	if !at.IsZero() {
		ms := at.UnixMilli()
		if ms < 0 || ms > maxTimeMS {
			return LeaderboardEntry{}, fmt.Errorf("%w: %s: time %v outside 1970-01-01..2286-11-20 (Unix ms 0..%d)", ErrInvalidArgument, fn, at, int64(maxTimeMS))
		}
		atMS = formatInt(ms)
	}
	v, err := runScript(ctx, client, leaderboardAdd, []string{key, times}, member, formatInt(by), atMS, formatInt(ttlMS))
	if err != nil {
		return LeaderboardEntry{}, err
	}
	return entryReply(leaderboardAdd.Name(), member, v)
}

// LeaderboardGet returns member's entry on the leaderboard at key, or an
// ErrNotFound error when it is not there. Data LeaderboardAdd did not write
// (a time or score that is not an integer in range) is an ErrWrongValue
// error, as it is for LeaderboardAdd and LeaderboardTop.
func LeaderboardGet(ctx context.Context, client redis.Scripter, key, member string) (LeaderboardEntry, error) {
	const fn = "LeaderboardGet"
	times, err := LeaderboardTimesKey(key)
	if err != nil {
		return LeaderboardEntry{}, err
	}
	if member == "" {
		return LeaderboardEntry{}, fmt.Errorf("%w: %s: empty member", ErrInvalidArgument, fn)
	}
	v, err := runScript(ctx, client, leaderboardGet, []string{key, times}, member)
	if errors.Is(err, redis.Nil) {
		return LeaderboardEntry{}, fmt.Errorf("%w: %q on %s", ErrNotFound, member, key)
	}
	if err != nil {
		return LeaderboardEntry{}, err
	}
	return entryReply(leaderboardGet.Name(), member, v)
}

// LeaderboardTop returns the first n entries of the leaderboard at key, best
// first; fewer when the board holds fewer members, none when it is empty or
// missing. n must be in [1, MaxKeys]. A member or score LeaderboardAdd did not
// write is an ErrWrongValue error.
func LeaderboardTop(ctx context.Context, client redis.Scripter, key string, n int) ([]LeaderboardEntry, error) {
	const fn = "LeaderboardTop"
	if err := checkKeys(fn, []string{key}); err != nil {
		return nil, err
	}
	if err := checkInt(fn, "n", int64(n), 1, MaxKeys); err != nil {
		return nil, err
	}
	v, err := runScript(ctx, client, leaderboardTop, []string{key}, formatInt(int64(n)))
	if err != nil {
		return nil, err
	}
	name := leaderboardTop.Name()
	r, err := replySlice(name, v, 0)
	if err != nil {
		return nil, err
	}
	if len(r)%2 != 0 {
		return nil, fmt.Errorf("rediscmd: %s: odd reply length %d", name, len(r))
	}
	out := make([]LeaderboardEntry, 0, len(r)/2)
	for i := 0; i < len(r); i += 2 {
		m, ok := r[i].(string)
		if !ok {
			return nil, fmt.Errorf("rediscmd: %s: unexpected member %#v", name, r[i])
		}
		id, at, err := decodeMember(m)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %w", ErrWrongValue, fn, key, err)
		}
		score, err := replyInt(name, r[i+1])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s holds a score that is not an integer in [-MaxInt, MaxInt] for %q: %w", ErrWrongValue, fn, key, id, err)
		}
		out = append(out, LeaderboardEntry{Member: id, Score: score, Rank: int64(len(out) + 1), AchievedAt: at})
	}
	return out, nil
}

// LeaderboardTimesKey returns the key of the hash in which a leaderboard keeps
// each member's achievement time, which always shares key's Redis Cluster slot:
// key + ":times" when key has a {hash tag}, else "{" + key + "}:times" (whose
// tag is key itself). A key with no tag that contains '}', or an empty key, is
// an ErrInvalidArgument error. Delete both keys to delete a board.
func LeaderboardTimesKey(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty leaderboard key", ErrInvalidArgument)
	}
	if _, tagged := hashTag(key); tagged {
		return key + ":times", nil
	}
	if strings.IndexByte(key, '}') >= 0 {
		return "", fmt.Errorf("%w: leaderboard key %q contains '}' but no {hash tag}; use a key with a tag, such as lua.TagKey(\"board\", name, \"scores\")", ErrInvalidArgument, key)
	}
	return "{" + key + "}:times", nil
}

// decodeMember splits a board member into the id and the time it encodes.
func decodeMember(m string) (string, time.Time, error) {
	if len(m) < 15 || m[13] != ':' {
		return "", time.Time{}, fmt.Errorf("member %q was not written by LeaderboardAdd", m)
	}
	var inv int64
	for _, c := range []byte(m[:13]) {
		if c < '0' || c > '9' {
			return "", time.Time{}, fmt.Errorf("member %q was not written by LeaderboardAdd", m)
		}
		inv = inv*10 + int64(c-'0')
	}
	return m[14:], time.UnixMilli(maxTimeMS - inv).UTC(), nil
}

// entryReply decodes {rank, score, t}.
func entryReply(name, member string, v any) (LeaderboardEntry, error) {
	r, err := replySlice(name, v, 3)
	if err != nil {
		return LeaderboardEntry{}, err
	}
	rank, err := replyInt(name, r[0])
	if err != nil {
		return LeaderboardEntry{}, err
	}
	score, err := replyInt(name, r[1])
	if err != nil {
		return LeaderboardEntry{}, err
	}
	t, err := replyInt(name, r[2])
	if err != nil {
		return LeaderboardEntry{}, err
	}
	return LeaderboardEntry{Member: member, Score: score, Rank: rank, AchievedAt: time.UnixMilli(t).UTC()}, nil
}
