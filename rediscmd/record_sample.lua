-- record_sample.lua: add one measurement (a latency, a price...) to a sorted
-- set of samples, for percentile.lua to read.
--
-- A sorted set keeps one score per member, so every sample needs a member of
-- its own: the caller passes a unique one (math.random is reseeded on every
-- script before Redis 7 and would collide).
--
-- KEYS[1]  sorted set of samples
-- ARGV[1]  value (finite decimal number), stored as the score
-- ARGV[2]  member, unique per sample (non-empty string)
-- ARGV[3]  TTL in milliseconds (integer >= 0): when > 0, a set without an
--          expiry gets this one; 0 leaves expiries alone
--
-- Reply: the number of samples in the set after the call.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV.

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

local v = num(ARGV[1])
local ttl = int(ARGV[3], 0, MAX)
if v == nil or ARGV[2] == nil or ARGV[2] == '' or ttl == nil then
  return redis.error_reply('SLUICE_BADARG record_sample: want a finite value, a non-empty member and a ttl >= 0')
end

-- The score as %.17g (round-trips a double), so that Redis stores exactly v
-- (Redis refuses, for one, a decimal that underflows to 0).
redis.call('ZADD', KEYS[1], string.format('%.17g', v), ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
