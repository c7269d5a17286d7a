-- record_latency.lua: add one latency sample to a bounded set of samples.
--
-- The samples live in a sorted set (score: the latency) that the catalogue's
-- Percentile reads. A sorted set orders its members by score, not by age, so
-- a list beside it remembers the order the samples came in; past the cap the
-- oldest samples leave both. Both keys expire ttl after the newest sample.
--
-- KEYS[1]  sorted set of samples (score: latency in ms; member: unique id)
-- KEYS[2]  list of the same members, oldest first (same hash tag as KEYS[1])
-- ARGV[1]  latency (finite number)
-- ARGV[2]  member, unique per sample (non-empty; made by the caller, since
--          math.random is reseeded on every script before Redis 7)
-- ARGV[3]  cap: the most samples kept (integer >= 1)
-- ARGV[4]  TTL in milliseconds (integer >= 1)
--
-- Reply: the number of samples kept after the call.
-- Errors: "SHOP_BADARG ..." for malformed ARGV.

local v = tonumber(ARGV[1])
local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
if v == nil or v ~= v or v == math.huge or v == -math.huge
  or ARGV[2] == nil or ARGV[2] == ''
  or cap == nil or cap < 1 or cap ~= math.floor(cap)
  or ttl == nil or ttl < 1 or ttl ~= math.floor(ttl) then
  return redis.error_reply('SHOP_BADARG record_latency: want a finite value, a member, a cap >= 1 and a ttl >= 1')
end

redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('RPUSH', KEYS[2], ARGV[2])

-- One sample in, one out once the cap is reached. A lowered cap is caught up
-- 1000 samples per call, so that one call never blocks the server for long.
local drop = math.min(n - cap, 1000)
if drop > 0 then
  local old = redis.call('LRANGE', KEYS[2], 0, drop - 1)
  redis.call('LTRIM', KEYS[2], drop, -1)
  redis.call('ZREM', KEYS[1], unpack(old))
end

redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return redis.call('ZCARD', KEYS[1])
