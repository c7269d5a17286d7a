-- reserve.lua: take stock of several items at once, all or nothing.
--
-- Each KEYS[i] is a stock counter (a string holding a decimal integer, as
-- INCRBY keeps it; a missing key holds 0) and ARGV[i] the quantity to take.
-- If every counter holds at least its quantity (a key listed twice must hold
-- the sum), every counter is decremented with DECRBY, which keeps its expiry;
-- otherwise nothing changes and the reply names the first item short. Stock
-- never goes negative, however many callers reserve at once.
--
-- KEYS[1..n]  stock counters (1 <= n <= 1000; one {hash tag} on Redis Cluster)
-- ARGV[1..n]  quantities (integers, 1 <= q <= 2^53-1)
--
-- Reply: {1, remaining_1, ..., remaining_n} when reserved;
--        {0, i, available, requested} when KEYS[i] holds too little, with
--        requested the total asked of that key.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV; "SLUICE_WRONGVALUE ..." when a
-- counter holds something other than an integer in [-(2^53-1), 2^53-1].

local MAX = 9007199254740991

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local n = #KEYS
if n < 1 or n > 1000 or #ARGV ~= n then
  return redis.error_reply('SLUICE_BADARG reserve: want 1..1000 keys and one quantity per key')
end

local need = {}
for i = 1, n do
  local q = int(ARGV[i], 1, MAX)
  if q == nil then
    return redis.error_reply('SLUICE_BADARG reserve: quantity ' .. i .. ' must be an integer in [1, 2^53-1]')
  end
  need[KEYS[i]] = (need[KEYS[i]] or 0) + q
end

local have = {}
for i = 1, n do
  local key = KEYS[i]
  if have[key] == nil then
    local raw = redis.call('GET', key)
    local v = 0
    if raw then
      v = int(raw, -MAX, MAX)
      if v == nil then
        return redis.error_reply('SLUICE_WRONGVALUE reserve: ' .. key .. ' does not hold an integer in [-(2^53-1), 2^53-1]')
      end
    end
    have[key] = v
  end
  if have[key] < need[key] then
    return {0, i, have[key], need[key]}
  end
end

local reply = {1}
for i = 1, n do
  reply[#reply + 1] = redis.call('DECRBY', KEYS[i], ARGV[i])
end
return reply
