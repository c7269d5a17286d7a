-- lock_ttl.lua: remaining TTL of a lock, if the token holds it.
--
-- KEYS[1]  lock key
-- ARGV[1]  owner token
--
-- Reply: the remaining TTL in milliseconds if the token holds the lock, -1 otherwise.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 then pttl = 0 end
  return pttl
end
return -1
