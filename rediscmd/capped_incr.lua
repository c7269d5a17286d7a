-- capped_incr.lua: add to an integer counter, never raising it past a cap.
--
-- The counter is a string key holding a decimal integer, as INCRBY keeps it; a
-- missing key counts as 0. The call adds min(by, max - current) when that is
-- positive. A counter already at or above max is left as it is: an increment
-- never lowers a counter. The write is an INCRBY, so the key keeps its expiry.
-- Lua numbers are doubles, so every value handled is an integer within
-- [-(2^53-1), 2^53-1]; a key holding anything else is an error, not 0.
--
-- KEYS[1]  counter key
-- ARGV[1]  by: amount to add (integer, 0 <= by <= 2^53-1)
-- ARGV[2]  max: the cap (integer, 0 <= max <= 2^53-1)
-- ARGV[3]  TTL in milliseconds (integer >= 0): when > 0, a counter that
--          exists without an expiry gets this one; 0 leaves expiries alone
--
-- Reply: the counter's value after the call (integer).
-- Errors: "SLUICE_BADARG ..." for malformed ARGV; "SLUICE_WRONGVALUE ..." when
-- the counter holds something other than an integer in range.

local MAX = 9007199254740991

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local by = int(ARGV[1], 0, MAX)
local max = int(ARGV[2], 0, MAX)
local ttl = int(ARGV[3], 0, MAX)
if by == nil or max == nil or ttl == nil then
  return redis.error_reply('SLUICE_BADARG capped_incr: by, max and ttl must be integers in [0, 2^53-1]')
end

local cur = 0
local raw = redis.call('GET', KEYS[1])
if raw then
  cur = int(raw, -MAX, MAX)
  if cur == nil then
    return redis.error_reply('SLUICE_WRONGVALUE capped_incr: ' .. KEYS[1] .. ' does not hold an integer in [-(2^53-1), 2^53-1]')
  end
end

local add = max - cur
if add > by then add = by end
if add > 0 then
  redis.call('INCRBY', KEYS[1], string.format('%.0f', add))
  cur = cur + add
end

if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
end
return cur
