-- weighted_avg.lua: weighted average of one numeric field across hashes.
--
-- Reads field ARGV[1] of every hash KEYS[i] and returns
-- sum(value_i * weight_i) / sum(weight_i). A missing hash or field counts as
-- value 0 and still contributes its weight. A weight sum of 0 returns "0"
-- without dividing. The result is a string so that its decimals survive
-- (Redis turns a Lua number reply into an integer). Read-only.
--
-- KEYS[1..n]     hashes (1 <= n <= 1000; one {hash tag} on Redis Cluster)
-- ARGV[1]        field name
-- ARGV[1+i]      weight of KEYS[i] (finite number >= 0)
--
-- Reply: the average as a string formatted with %.17g (round-trips a double).
-- Errors: "SLUICE_BADARG ..." for a wrong argument count or a bad weight;
-- "SLUICE_WRONGVALUE ..." for a field that is not a finite number;
-- "SLUICE_OUTOFRANGE ..." when a product, the weighted sum or the total
-- weight overflows a double on the way.

local n = #KEYS
if n < 1 or n > 1000 or #ARGV ~= n + 1 then
  return redis.error_reply('SLUICE_BADARG weighted_avg: want 1..1000 keys, a field and one weight per key')
end

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local field = ARGV[1]
local sum, total = 0, 0
for i = 1, n do
  local w = num(ARGV[i + 1])
  if w == nil or w < 0 then
    return redis.error_reply('SLUICE_BADARG weighted_avg: weight ' .. i .. ' must be a finite number >= 0')
  end
  local v = 0
  local raw = redis.call('HGET', KEYS[i], field)
  if raw then
    v = num(raw)
    if v == nil then
      return redis.error_reply('SLUICE_WRONGVALUE weighted_avg: field ' .. field .. ' of ' .. KEYS[i] .. ' is not a finite number')
    end
  end
  sum = sum + v * w
  total = total + w
  if sum - sum ~= 0 or total - total ~= 0 then
    return redis.error_reply('SLUICE_OUTOFRANGE weighted_avg: the weighted sum or the total weight overflows a double')
  end
end

if total == 0 then
  return '0'
end
local avg = sum / total
if avg - avg ~= 0 then
  return redis.error_reply('SLUICE_OUTOFRANGE weighted_avg: the average overflows a double')
end
return string.format('%.17g', avg)
