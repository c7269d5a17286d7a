-- del.lua: delete one key: a key's state under one rule
-- (store.WindowStore.Reset), or a lock whoever holds it
-- (store.LockStore.ForceRelease; the fence counter is another key, left
-- alone, so the next acquire's fence is above every fence issued before).
--
-- KEYS[1]  the state's key (a sorted set, or a string of the counter or
--          GCRA), or the lock's key
--
-- Reply: 1 if the key was there, 0 if not.

return redis.call('DEL', KEYS[1])
