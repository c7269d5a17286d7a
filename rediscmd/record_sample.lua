-- record_sample.lua: add one measurement (a latency, a price...) to a sorted
-- set of samples, for percentile.lua to read.
--
-- A sorted set keeps one score per member, so every sample needs a member of
-- its own: the caller passes a unique one (math.random is reseeded on every
-- script before Redis 7 and would collide).
--
-- KEYS[1]  sorted set of samples
-- ARGV[1]  value (finite decimal number), stored as the score
-- ARGV[2]  member, unique per sample (non-empty string)
-- ARGV[3]  TTL in milliseconds (integer >= 0): when > 0, a set without an
--          expiry gets this one; 0 leaves expiries alone
--
-- Reply: the number of samples in the set after the call.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV.

local MAX = 9007199254740991

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local v = num(ARGV[1])
local ttl = int(ARGV[3], 0, MAX)
if v == nil or ARGV[2] == nil or ARGV[2] == '' or ttl == nil then
  return redis.error_reply('SLUICE_BADARG record_sample: want a finite value, a non-empty member and a ttl >= 0')
end

-- The score as %.17g (round-trips a double), so that Redis stores exactly v
-- (Redis refuses, for one, a decimal that underflows to 0).
redis.call('ZADD', KEYS[1], string.format('%.17g', v), ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
