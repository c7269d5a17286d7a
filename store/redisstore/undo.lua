-- undo.lua: remove the hits that receipts identify (store.WindowStore.Undo),
-- one part or several: the parts of a stack recorded on one Cluster slot
-- when another slot denied it.
--
-- scripts.go puts the functions of sliding_window.lua, sliding_counter.lua
-- and gcra.lua before this file.
--
-- KEYS[i]  part i's key
-- ARGV[1]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--          (read only for a GCRA part: the others need no clock)
-- ARGV[2 + 5*(i-1) ..] part i, five values:
--          algorithm: "s" sliding log, "c" sliding-window counter, "g" GCRA
--          limit, window in microseconds, cost, and id: the hit id of a
--          sliding log, the receipt id (fixed window index + 1) of a counter,
--          "" for GCRA
--
-- Reply: how much changed (members removed from a log, plus one per counter
-- or bucket changed); 0 when the hits had already left.

local undo = {s = log_undo, c = counter_undo, g = gcra_undo}

-- Only GCRA needs the time; read it before any write.
local now
for i = 1, #KEYS do
  if ARGV[2 + (i - 1) * 5] == 'g' then
    if ARGV[1] ~= '' then
      now = tonumber(ARGV[1])
    else
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    break
  end
end

local changed = 0
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 5
  changed = changed + undo[ARGV[a]](KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), ARGV[a + 4], now)
end
return changed
