-- restock.lua: put stock back (or add new stock) for several items at once,
-- all or nothing: the inverse of reserve.lua.
--
-- Each KEYS[i] is a stock counter (a missing key holds 0) and ARGV[i] the
-- quantity to add with INCRBY, which keeps the key's expiry. If any counter
-- would leave [-(2^53-1), 2^53-1], or holds something other than an integer,
-- nothing changes.
--
-- KEYS[1..n]  stock counters (1 <= n <= 1000; one {hash tag} on Redis Cluster)
-- ARGV[1..n]  quantities (integers, 1 <= q <= 2^53-1)
--
-- Reply: {remaining_1, ..., remaining_n}, the counters after the call.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV; "SLUICE_WRONGVALUE ..." for a
-- counter that is not an integer in range; "SLUICE_OUTOFRANGE ..." when a
-- counter would pass 2^53-1.

local MAX = 9007199254740991

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

local n = #KEYS
if n < 1 or n > 1000 or #ARGV ~= n then
  return redis.error_reply('SLUICE_BADARG restock: want 1..1000 keys and one quantity per key')
end

local after = {}
for i = 1, n do
  local key = KEYS[i]
  local q = int(ARGV[i], 1, MAX)
  if q == nil then
    return redis.error_reply('SLUICE_BADARG restock: quantity ' .. i .. ' must be an integer in [1, 2^53-1]')
  end
  if after[key] == nil then
    local raw = redis.call('GET', key)
    local v = 0
    if raw then
      v = int(raw, -MAX, MAX)
      if v == nil then
        return redis.error_reply('SLUICE_WRONGVALUE restock: ' .. key .. ' does not hold an integer in [-(2^53-1), 2^53-1]')
      end
    end
    after[key] = v
  end
  after[key] = after[key] + q
  if after[key] > MAX then
    return redis.error_reply('SLUICE_OUTOFRANGE restock: ' .. key .. ' would pass 2^53-1')
  end
end

local reply = {}
for i = 1, n do
  reply[#reply + 1] = redis.call('INCRBY', KEYS[i], ARGV[i])
end
return reply
