-- numbers.lua: the catalogue's number rule (docs/commands.md, "Numbers").
--
-- rediscmd puts this file in front of every catalogue script, so that each
-- reads numbers the same way; it defines two local functions and touches
-- no key.

-- num reads a decimal: an optional sign, digits, an optional '.' and
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
