-- lock_release.lua: compare-and-delete.
--
-- KEYS[1]  lock key
-- ARGV[1]  owner token
--
-- Reply: 1 if the token held the lock and it was deleted, 0 otherwise.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
