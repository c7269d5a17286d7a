-- lock_inspect.lua: a lock's state for operators (store.LockStore.Inspect).
--
-- Reads only; never replies the holder's token.
--
-- KEYS[1]  lock key
-- KEYS[2]  fence counter key (same hash tag as KEYS[1])
--
-- Reply: {held (1|0), pttl_ms, fence}
--   pttl_ms  the lock's remaining TTL in milliseconds; 0 when not held
--   fence    the last fence issued, as the counter holds it; 0 when there is
--            no counter (never acquired, or the counter expired)

local held, pttl = 1, redis.call('PTTL', KEYS[1])
if pttl == -2 then
  held, pttl = 0, 0
elseif pttl < 0 then
  pttl = 0
end
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
return {held, pttl, fence}
