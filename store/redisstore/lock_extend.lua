-- lock_extend.lua: compare-and-PEXPIRE.
--
-- A missing or expired lock is not re-created.
--
-- KEYS[1]  lock key
-- ARGV[1]  owner token
-- ARGV[2]  new TTL in milliseconds (integer > 0)
--
-- Reply: 1 if the token holds the lock and its TTL was set, 0 otherwise.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
