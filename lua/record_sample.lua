-- record_sample.lua: add one measurement (a latency, a price...) to a sorted
-- set of samples, for percentile.lua to read.
--
-- A sorted set keeps one score per member, so every sample needs a member of
-- its own: the caller passes a unique one (math.random is reseeded on every
-- script before Redis 7 and would collide).
--
-- KEYS[1]  sorted set of samples
-- ARGV[1]  value (finite number), stored as the score
-- ARGV[2]  member, unique per sample (non-empty string)
-- ARGV[3]  TTL in milliseconds (integer >= 0): when > 0, a set without an
--          expiry gets this one; 0 leaves expiries alone
--
-- Reply: the number of samples in the set after the call.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV.

local v = tonumber(ARGV[1])
local ttl = tonumber(ARGV[3])
if v == nil or v ~= v or v == math.huge or v == -math.huge
  or ARGV[2] == nil or ARGV[2] == ''
  or ttl == nil or ttl < 0 or ttl ~= math.floor(ttl) then
  return redis.error_reply('SLUICE_BADARG record_sample: want a finite value, a non-empty member and a ttl >= 0')
end

redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
