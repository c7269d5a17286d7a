-- percentile.lua: nearest-rank percentile of a sorted set's scores.
--
-- The p-th percentile of n scores sorted ascending is the score at 1-based rank
-- ceil(p/100 * n), so p95 of 1..10 is 10 and p50 is 5. Computed with doubles
-- that rank can be one off when p/100 * n is an integer (16.1% of 1000 is
-- 161.00000000000003 as a double), so the script returns the scores around it
-- and the caller, which holds p as an exact decimal, picks the exact rank.
-- Read-only.
--
-- KEYS[1]  sorted set
-- ARGV[1]  p, the percentile (number, 0 < p <= 100)
--
-- Reply: nil when the set is empty or missing; otherwise
--   {n, first_rank, score_first_rank, score_first_rank+1, ...}
-- with the scores (as strings) of the ranks first_rank..last_rank, which
-- include ceil(p/100 * n) computed exactly; first_rank >= 1, last_rank <= n.
-- Errors: "SLUICE_BADARG ..." for p outside (0, 100].

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local p = num(ARGV[1])
if p == nil or p <= 0 or p > 100 then
  return redis.error_reply('SLUICE_BADARG percentile: p must be a number in (0, 100]')
end

local n = redis.call('ZCARD', KEYS[1])
if n == 0 then
  return false
end

local rank = math.ceil(p * n / 100)
local first, last = rank - 1, rank + 1
if first < 1 then first = 1 end
if last > n then last = n end
if first > last then first = last end

local r = redis.call('ZRANGE', KEYS[1], string.format('%d', first - 1),
  string.format('%d', last - 1), 'WITHSCORES')
local reply = {n, first}
for i = 2, #r, 2 do
  reply[#reply + 1] = r[i]
end
return reply
