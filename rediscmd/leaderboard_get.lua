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

-- The catalogue's number rule (docs/commands.md, "Numbers"), the same in every
-- script. num reads a decimal: an optional sign, digits, an optional '.' and
-- digits, an optional exponent (e or E, an optional sign, digits); anything
-- else (hex, spaces, inf, nan, a value past the largest double) is nil. x - x
-- is 0 for every finite x and NaN for +-inf and NaN, on Redis's Lua and on
-- gopher-lua alike (whose math.huge is the largest double, not infinity).
local function num(s)
  if type(s) ~= 'string' then return nil end
  local i, f, e = string.match(s, '^([-+]?%d+)(%.?%d*)(.*)$')
  if i == nil or f == '.' or (e ~= '' and not string.match(e, '^[eE][-+]?%d+$')) then
    return nil
  end
  if f == '' then f = '.0' end -- gopher-lua's tonumber reads exponents after a '.' only
  local v = tonumber(i .. f .. e)
  if v == nil or v - v ~= 0 then return nil end
  return v
end

-- int reads an integer in [lo, hi] written as INCRBY writes one: '0', or
-- digits without a leading zero after an optional '-'; anything else is nil.
local function int(s, lo, hi)
  if type(s) ~= 'string' or #s > 17 or not (s == '0' or string.match(s, '^%-?[1-9]%d*$')) then
    return nil
  end
  local v = num(s)
  if v < lo or v > hi then return nil end
  return v
end

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
