// Package rediscmd offers typed Go calls for classic custom Redis commands,
// each one Lua script that runs atomically inside Redis:
//
//   - CappedIncr: an increment that never passes a maximum;
//   - WeightedAverage: the weighted average of a numeric field across hashes;
//   - Percentile and RecordSample: the nearest-rank percentile of a sorted
//     set of samples;
//   - LeaderboardAdd, LeaderboardGet and LeaderboardTop: a leaderboard on
//     which equal scores rank by who reached them first;
//   - Reserve and Restock: all-or-nothing stock reservation over several
//     counters, and giving the stock back.
//
// Every call takes any go-redis v9 client that implements redis.Scripter
// (*redis.Client, also Sentinel's failover client, *redis.ClusterClient and
// *redis.Ring), checks its arguments before anything is sent
// (ErrInvalidArgument), and runs its script with EVALSHA, falling back to
// EVAL when the server answers NOSCRIPT (after a restart, a failover or
// SCRIPT FLUSH), so a flushed script cache never reaches the caller. Preload
// caches the scripts on every master at start-up; Commands lists them.
//
// Every script touches only the keys passed in KEYS; where a call takes
// several keys they must share a {hash tag} so that Redis Cluster never
// answers CROSSSLOT (ErrCrossSlot; StockKey and lua.TagKey build such keys).
// Stored numbers are read by one rule, the same in every script;
// docs/commands.md describes it and the guarantees, limits and ranges of each
// command. Package lua, under this one, defines and preloads an application's
// own commands the same way.
package rediscmd
