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

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

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
