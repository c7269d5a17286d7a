-- lock_acquire.lua: take a token-checked lock and issue a fencing token.
--
-- The lock is a string key holding the owner's token with a PX expiry (SET NX
-- PX semantics); the same token acquiring again succeeds and renews the TTL,
-- so a retried acquire after a timeout is safe. Every successful acquire
-- increments the fence counter KEYS[2], which shares KEYS[1]'s hash tag so
-- Cluster keeps both in one slot. The fence never drops below Redis TIME in
-- microseconds, so fences keep increasing even after the counter expires.
--
-- KEYS[1]  lock key
-- KEYS[2]  fence counter key (same hash tag as KEYS[1])
-- ARGV[1]  owner token
-- ARGV[2]  lock TTL in milliseconds (integer > 0)
-- ARGV[3]  fence counter TTL in milliseconds (integer > 0, long)
--
-- Reply: {1, fence} when acquired; {0, holder_pttl_ms} when held by another.

local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 then pttl = 0 end
  return {0, pttl}
end

redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])

local t = redis.call('TIME')
local floor = tonumber(t[1]) * 1000000 + tonumber(t[2])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if fence < floor then
  fence = floor
end
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', ARGV[3])
return {1, fence}
