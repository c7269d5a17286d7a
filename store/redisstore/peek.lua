-- peek.lua: the state of one key under one rule, recording nothing
-- (store.WindowStore.Peek): what a hit of cost 1 would be told, without the
-- hit. The script writes nothing at all.
--
-- scripts.go puts the functions of sliding_window.lua, sliding_counter.lua
-- and gcra.lua before this file. The counter and GCRA are read by their own
-- check, which only reads, and described by their own finish, which writes
-- only when told to record. The sliding log's check drops the hits that left
-- the window, so the log is read here without that: its window is counted
-- with ZCOUNT over (now - window, +inf], the hits log_check would keep.
--
-- KEYS[1]  the state's key
-- ARGV[1]  algorithm: "s" sliding log, "c" sliding-window counter, "g" GCRA
-- ARGV[2]  limit (integer)
-- ARGV[3]  window length in microseconds (integer >= 1000)
-- ARGV[4]  the burst of GCRA (integer); "" for the others
-- ARGV[5]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--
-- Reply: {fits (1|0), remaining, retry_after_us, reset_after_us}
--   fits            whether a hit of cost 1 would be recorded now
--   remaining       the hits the rule takes now: when a hit fits, one more
--                   than the remaining it would be told (which the float
--                   arithmetic of the counter and GCRA need not make exactly
--                   one less than the count as it stands)
--   retry_after_us  when a hit does not fit, the time until it would; else 0
--   reset_after_us  as the state stands, as the algorithm's script replies

-- Time until the hit at 0-based rank among those after cutoff leaves the
-- window; log_leaves_after without the pruning before it.
local function peek_log_leaves_after(key, window, now, cutoff, rank)
  local m = redis.call('ZRANGEBYSCORE', key, cutoff, '+inf', 'WITHSCORES', 'LIMIT', rank, 1)
  if m[2] == nil then
    return 0
  end
  local d = tonumber(m[2]) + window - now
  if d < 0 then d = 0 end
  if d > window then d = window end
  return d
end

-- log_check and log_finish for cost 1, reading only.
local function peek_log(key, limit, window, now)
  -- An exclusive minimum, written out in full (Lua's own conversion of
  -- a number to a string keeps 14 digits).
  local cutoff = string.format('(%.0f', now - window)
  local count = redis.call('ZCOUNT', key, cutoff, '+inf')
  local fits = count + 1 <= limit
  local retry_after, reset_after = 0, 0
  if count > 0 then
    reset_after = peek_log_leaves_after(key, window, now, cutoff, 0)
  end
  if not fits then
    -- The (count + 1 - limit)-th oldest hit must leave before one fits.
    local rank = count - limit
    if rank == 0 then
      retry_after = reset_after
    else
      retry_after = peek_log_leaves_after(key, window, now, cutoff, rank)
    end
  end
  return fits, limit - count, retry_after, reset_after
end

-- For the counter and GCRA, when the hit fits, remaining is what their finish
-- would tell the hit, plus one: finish describing the state the hit would
-- leave (count + 1, curr + 1; new_tat), which it writes nowhere.
local function peek_counter(key, limit, window, now)
  local fits, idx, e, curr, prev, count = counter_check(key, limit, window, 1, '', now)
  local r = counter_finish(false, key, limit, window, 1, now, fits, idx, e, curr, prev, count)
  if fits then
    local after = counter_finish(false, key, limit, window, 1, now, true, idx, e, curr + 1, prev, count + 1)
    r[2] = after[2] + 1
  end
  return fits, r[2], r[3], r[4]
end

local function peek_gcra(key, limit, window, burst, now)
  local fits, tat, new_tat, t, b = gcra_check(key, limit, window, 1, burst, now)
  local r = gcra_finish(false, key, limit, window, 1, now, fits, tat, new_tat, t, b)
  if fits then
    local after = gcra_finish(false, key, limit, window, 1, now, true, new_tat, new_tat, t, b)
    r[2] = after[2] + 1
  end
  return fits, r[2], r[3], r[4]
end

local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local key, alg, limit, window = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local fits, remaining, retry_after, reset_after
if alg == 's' then
  fits, remaining, retry_after, reset_after = peek_log(key, limit, window, now)
elseif alg == 'c' then
  fits, remaining, retry_after, reset_after = peek_counter(key, limit, window, now)
else
  fits, remaining, retry_after, reset_after = peek_gcra(key, limit, window, ARGV[4], now)
end
if fits then
  return {1, remaining, 0, reset_after}
end
return {0, remaining, retry_after, reset_after}
