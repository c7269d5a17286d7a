// Package lua runs an application's own Redis Lua scripts as named commands
// through go-redis, in the spirit of ioredis's defineCommand.
//
// A Command is a named script with a key count. Run sends EVALSHA and falls
// back to EVAL when the server answers NOSCRIPT (go-redis's redis.Script does
// both), so a restart, a failover or SCRIPT FLUSH never reaches the caller. A
// Registry holds an application's commands by name, defined once. Preload (and
// Registry.Preload) caches scripts with SCRIPT LOAD at start-up, on every
// master of a Redis Cluster or every shard of a Ring, so that the first calls
// skip the NOSCRIPT round trip.
//
// A script must touch only the keys passed in KEYS, so that Redis Cluster can
// route the call; keys of one call must share a {hash tag}, or Cluster answers
// CROSSSLOT. TagKey builds such keys and Slot computes a key's hash slot.
//
// Package rediscmd builds ready-made commands (capped increment, leaderboard,
// percentile, stock reservation...) on this package, and store/redisstore
// runs its own scripts through it.
package lua
