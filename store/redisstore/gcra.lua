-- gcra.lua: the generic cell rate algorithm (a token bucket without a timer).
--
-- One token comes every T = W / limit microseconds, up to the burst capacity
-- B. The state is one string, the theoretical arrival time tat (absolute, in
-- microseconds, written with %.17g so that it reads back exactly): the
-- bucket is full when tat <= now and holds (B*T - (tat - now)) / T tokens
-- otherwise. cost tokens are taken (tat = max(tat, now) + cost*T) iff the
-- new tat minus B*T is not after now. The key expires when the bucket is
-- full again.
--
-- KEYS[1]  the bucket's string key
-- ARGV[1]  limit: tokens per window (integer, 1 <= limit <= 1e9)
-- ARGV[2]  window length W in microseconds (integer >= 1000)
-- ARGV[3]  cost (integer, 1 <= cost <= burst)
-- ARGV[4]  burst: the bucket's capacity B (integer, 1 <= burst <= 1e9)
-- ARGV[5]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--
-- Reply: {allowed (1|0), remaining, retry_after_us, reset_after_us, 1}, or
-- that reply packed into one integer (see reply.lua)
--   remaining       whole tokens left
--   retry_after_us  when denied, time until cost tokens are there
--   reset_after_us  time until the bucket is full (0 when it is)
--   1               the receipt id (GCRA need not tell calls apart)
-- Durations are capped at 2^53 microseconds (285 years), which only a burst
-- far above the limit reaches.
--
-- The functions below (gcra_*) are also GCRA's part of stack.lua and
-- undo.lua; sliding_window.lua describes them. The state: tat (as of now,
-- at least now), new_tat (after taking cost tokens), t (W / limit) and the
-- burst.

local gcra_max_us = 9007199254740992

-- GCRA's float times count from 2024-01-01 00:00:00 UTC (in µs since the
-- Unix epoch), as memstore's do: about eight times as precise in a double as
-- times counted from 1970, so a tat built by many additions of a fractional
-- token interval stays within the half microsecond the arithmetic allows.
-- Every gcra_* function takes now since the Unix epoch and shifts it.
local gcra_epoch = 1704067200000000

-- extra is the burst.
local function gcra_check(key, limit, window, cost, extra, now)
  now = now - gcra_epoch
  local t = window / limit
  local burst = tonumber(extra)
  local tat = now
  local v = redis.call('GET', key)
  if v then
    local stored = tonumber(v)
    if stored > now then tat = stored end
  end
  local new_tat = tat + cost * t
  -- Half a microsecond of slack absorbs the float rounding of absolute
  -- times, as in remaining and reset_after below (and in memstore).
  return now + 0.5 >= new_tat - burst * t, tat, new_tat, t, burst
end

local function gcra_finish(record, key, limit, window, cost, now, fits, tat, new_tat, t, burst)
  now = now - gcra_epoch
  local allowed, retry_after = 0, 0
  if record then
    -- tat expires when the bucket is full again: new_tat - now microseconds
    -- (at most 2^53), in milliseconds rounded up, at least 1.
    local ms = math.ceil(math.min(math.ceil(new_tat - now), gcra_max_us) / 1000)
    if ms < 1 then ms = 1 end
    redis.call('SET', key, string.format('%.17g', new_tat), 'PX', string.format('%d', ms))
    allowed, tat = 1, new_tat
  elseif not fits then
    retry_after = math.min(math.max(1, math.ceil(((new_tat - burst * t) - now) - 0.5)), gcra_max_us)
  end
  -- Half a microsecond absorbs the float rounding of absolute times (as
  -- memstore does): a token interval that is not a whole number of
  -- microseconds would otherwise show a token less.
  local remaining = math.floor(((burst * t - (tat - now)) + 0.5) / t)
  if remaining < 0 then
    remaining = 0
  elseif remaining > burst then
    remaining = burst
  end
  -- Full again once it owes at most half a microsecond, as remaining counts.
  local reset_after = math.ceil((tat - now) - 0.5)
  if reset_after < 0 then reset_after = 0 end
  return {allowed, remaining, retry_after, math.min(reset_after, gcra_max_us), 1}
end

-- Gives cost tokens back: tat moves back by cost*T; a bucket that is full
-- again is deleted.
local function gcra_undo(key, limit, window, cost, id, now)
  now = now - gcra_epoch
  local v = redis.call('GET', key)
  if not v then
    return 0
  end
  local tat = tonumber(v) - cost * (window / limit)
  if tat <= now then
    redis.call('DEL', key)
  else
    -- As gcra_finish writes it (tat > now: at least 1ms).
    redis.call('SET', key, string.format('%.17g', tat), 'PX',
      string.format('%d', math.ceil(math.min(math.ceil(tat - now), gcra_max_us) / 1000)))
  end
  return 1
end

-- The script proper follows; scripts.go puts what precedes the next line
-- before stack.lua and undo.lua.
--- script ---

local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local key, limit, window, cost = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fits, tat, new_tat, t, burst = gcra_check(key, limit, window, cost, ARGV[4], now)
return hit_reply(gcra_finish(fits, key, limit, window, cost, now, fits, tat, new_tat, t, burst))
