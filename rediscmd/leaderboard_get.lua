-- leaderboard_get.lua: read one member's rank, score and time from a
-- leaderboard written by leaderboard_add.lua (see there for the encoding).
-- Read-only.
--
-- KEYS[1]  board: sorted set
-- KEYS[2]  times: hash id -> t (same {hash tag} as KEYS[1])
-- ARGV[1]  id
--
-- Reply: nil when id is not on the board; otherwise {rank (1-based), score, t}
-- with the score as a string.
-- Errors: "SLUICE_WRONGVALUE ..." when the board or hash holds data
-- leaderboard_add.lua did not write, as leaderboard_add.lua answers it.

local MAX = 9007199254740991
local MAXT = 9999999999999

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local id = ARGV[1]
local raw = redis.call('HGET', KEYS[2], id)
if not raw then
  return false
end
local t = int(raw, 0, MAXT)
if t == nil then
  return redis.error_reply('SLUICE_WRONGVALUE leaderboard_get: ' .. KEYS[2] .. ' holds a bad time for ' .. id)
end
local member = string.format('%013.0f', MAXT - t) .. ':' .. id
local score = redis.call('ZSCORE', KEYS[1], member)
if not score then
  return false
end
local v = num(score)
if v == nil or v ~= math.floor(v) or v > MAX or v < -MAX then
  return redis.error_reply('SLUICE_WRONGVALUE leaderboard_get: ' .. KEYS[1] .. ' holds a non-integer score for ' .. id)
end
local rank = redis.call('ZREVRANK', KEYS[1], member)
return {rank + 1, score, t}
