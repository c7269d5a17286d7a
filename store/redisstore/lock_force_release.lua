-- lock_force_release.lua: delete a lock whoever holds it
-- (store.LockStore.ForceRelease).
--
-- The fence counter is left alone, so the next acquire's fence is above
-- every fence issued before.
--
-- KEYS[1]  lock key
--
-- Reply: 1 if a lock was deleted, 0 if none was held.

return redis.call('DEL', KEYS[1])
