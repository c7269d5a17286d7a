-- window_undo.lua: remove the hits one sliding_window.lua call recorded.
--
-- KEYS[1]  the window's sorted set
-- ARGV[1]  hit id the recording call used
-- ARGV[2]  cost that call recorded (integer >= 1); members are id (cost 1) or
--          id#1..id#cost, as sliding_window.lua writes them
--
-- Reply: the number of members removed (0 if they already left the window).

local id = ARGV[1]
local cost = tonumber(ARGV[2])
if cost == 1 then
  return redis.call('ZREM', KEYS[1], id)
end
local removed = 0
local batch = {}
for i = 1, cost do
  batch[#batch + 1] = id .. '#' .. i
  if #batch >= 512 or i == cost then
    removed = removed + redis.call('ZREM', KEYS[1], unpack(batch))
    batch = {}
  end
end
return removed
