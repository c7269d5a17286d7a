-- reset.lua: forget one key's state under one rule (store.WindowStore.Reset).
--
-- KEYS[1]  the state's key (a sorted set, or a string of the counter or GCRA)
--
-- Reply: 1 if there was a state, 0 if not.

return redis.call('DEL', KEYS[1])
