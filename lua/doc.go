// Package lua holds sluice's Redis Lua scripts as embedded .lua files and runs
// them through go-redis.
//
// Every script is a Command: a named source with a key count, run with
// EVALSHA and retried with EVAL when the server answers NOSCRIPT (go-redis's
// redis.Script does both), so a restart, failover or SCRIPT FLUSH never reaches
// the caller. Load preloads scripts with SCRIPT LOAD on every master of a Redis
// Cluster. A Registry holds user-defined commands the same way, in the spirit of
// ioredis's defineCommand.
//
// The catalogue (Catalogue, CappedIncr, WeightedAverage, Percentile,
// RecordSample, LeaderboardAdd, LeaderboardGet, LeaderboardTop, Reserve and
// Restock) offers ready-made commands as typed calls that validate their
// arguments before anything is sent; docs/commands.md describes each.
//
// Every script touches only the keys passed in KEYS; where a script takes
// several keys they must share a {hash tag} so that Redis Cluster never answers
// CROSSSLOT.
package lua
