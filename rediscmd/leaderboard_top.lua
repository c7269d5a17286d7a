-- leaderboard_top.lua: the first n entries of a leaderboard written by
-- leaderboard_add.lua, best first. Read-only.
--
-- KEYS[1]  board: sorted set
-- ARGV[1]  n (integer, 1 <= n <= 1000)
--
-- Reply: {member_1, score_1, member_2, score_2, ...} as ZREVRANGE ... WITHSCORES
-- returns them; each member is the 13-digit (9999999999999 - t), ':' and the id.
-- Errors: "SLUICE_BADARG ..." for a malformed n.

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

local n = int(ARGV[1], 1, 1000)
if n == nil then
  return redis.error_reply('SLUICE_BADARG leaderboard_top: n must be an integer in [1, 1000]')
end
return redis.call('ZREVRANGE', KEYS[1], '0', string.format('%d', n - 1), 'WITHSCORES')
