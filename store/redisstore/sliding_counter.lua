-- sliding_counter.lua: a sliding-window counter.
--
-- Time is cut into fixed windows of length W aligned to multiples of W since
-- the Unix epoch. The state is one string "idx:curr:prev": the index of the
-- fixed window it was written in and the hits counted in that window and in
-- the one before. With e the time since the start of the current window, the
-- weighted count is prev*(W-e)/W + curr, and cost hits are recorded
-- (curr += cost) iff the weighted count plus cost is at most the limit.
-- The key expires at the end of the fixed window after the current one, when
-- its counts no longer weigh.
--
-- KEYS[1]  the counter's string key
-- ARGV[1]  limit (integer, 1 <= limit <= 1e9)
-- ARGV[2]  window length W in microseconds (integer >= 1000)
-- ARGV[3]  cost (integer, 1 <= cost <= limit)
-- ARGV[4]  unused ("")
-- ARGV[5]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--
-- Reply: {allowed (1|0), remaining, retry_after_us, reset_after_us, receipt_id}
--   remaining       limit minus the weighted count rounded up, at least 0
--   retry_after_us  when denied, the least time after which the same request
--                   would be recorded if nothing else arrived
--   reset_after_us  the least time after which the weighted count rounded up
--                   drops by one (0 when it is 0)
--   receipt_id      idx + 1, for undo
--
-- The functions below (counter_*) are also the counter's part of stack.lua
-- and undo.lua; sliding_window.lua describes them. The state: idx (the
-- current fixed window), e (the time since its start), curr and prev as of
-- now, and count, the weighted count.

-- The weighted count at time t (after now, nothing arriving) of the counts
-- curr and prev of fixed window idx.
local function counter_count_at(idx, curr, prev, window, t)
  local tidx = math.floor(t / window)
  local te = t - tidx * window
  if tidx == idx then
    return prev * (window - te) / window + curr
  elseif tidx == idx + 1 then
    return curr * (window - te) / window
  end
  return 0
end

-- The least d >= 1 (microseconds) such that the weighted count at now + d
-- plus cost is at most lim. The closed form is the first guess; float
-- rounding may put it far off when the counts dwarf a microsecond's share of
-- the weight, so the exact answer is found against counter_count_at itself,
-- which never grows with time and fits at 2W - e: galloping from the guess
-- in doubling steps, then bisecting, a few dozen tests at most (memstore
-- searches the same way and so finds the same d).
local function counter_wait(idx, e, curr, prev, window, now, cost, lim)
  local d
  if curr + cost <= lim then
    -- Within this fixed window (then prev > 0).
    d = math.ceil((window - (lim - curr - cost) * window / prev) - e)
  else
    -- In the next one, where curr weighs as prev (then curr > 0).
    local e2 = window - (lim - cost) * window / curr
    if e2 < 0 then e2 = 0 end
    d = (window - e) + math.ceil(e2)
  end
  local hi = 2 * window - e
  if d < 1 then d = 1 end
  if d > hi then d = hi end
  local function fits(x)
    return counter_count_at(idx, curr, prev, window, now + x) + cost <= lim
  end
  local lo = 0 -- fits(lo) is false, or lo is 0
  if fits(d) then
    hi = d
    local step = 1
    while true do
      if hi - step < 1 then
        lo = 0
        break
      end
      if not fits(hi - step) then
        lo = hi - step
        break
      end
      hi = hi - step
      step = step * 2
    end
  else
    lo = d
    local step = 1
    while lo + step < hi do
      if fits(lo + step) then
        hi = lo + step
        break
      end
      lo = lo + step
      step = step * 2
    end
  end
  while hi - lo > 1 do
    local mid = lo + math.floor((hi - lo) / 2)
    if fits(mid) then hi = mid else lo = mid end
  end
  return hi
end

local function counter_check(key, limit, window, cost, extra, now)
  local idx = math.floor(now / window)
  local e = now - idx * window
  local curr, prev = 0, 0
  local v = redis.call('GET', key)
  if v then
    local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
    local sidx = tonumber(a)
    if sidx == idx then
      curr, prev = tonumber(b), tonumber(c)
    elseif sidx == idx - 1 then
      prev = tonumber(b)
    end
  end
  local count = prev * (window - e) / window + curr
  return count + cost <= limit, idx, e, curr, prev, count
end

-- Recording writes (idx, curr + cost, prev), to expire at the end of the
-- next fixed window.
local function counter_finish(record, key, limit, window, cost, now, fits, idx, e, curr, prev, count)
  local allowed, retry_after, reset_after = 0, 0, 0
  if record then
    curr = curr + cost
    count = count + cost
    redis.call('SET', key, string.format('%d:%d:%d', idx, curr, prev),
      'PX', string.format('%d', math.ceil(((window - e) + window) / 1000)))
    allowed = 1
  elseif not fits then
    retry_after = counter_wait(idx, e, curr, prev, window, now, cost, limit)
  end
  local r = math.ceil(count)
  if r > 0 then
    reset_after = counter_wait(idx, e, curr, prev, window, now, 0, r - 1)
  end
  local remaining = limit - r
  if remaining < 0 then remaining = 0 end
  return {allowed, remaining, retry_after, reset_after, idx + 1}
end

-- Takes cost back from the fixed window id - 1 the hits were recorded in,
-- if the state still counts it (as curr, or as prev one window later).
-- Needs no clock; the key keeps its expiry.
local function counter_undo(key, limit, window, cost, id, now)
  id = tonumber(id)
  local v = redis.call('GET', key)
  if not v then
    return 0
  end
  local a, b, c = string.match(v, '^(%d+):(%d+):(%d+)$')
  local sidx, curr, prev = tonumber(a), tonumber(b), tonumber(c)
  if sidx == id - 1 then
    curr = math.max(0, curr - cost)
  elseif sidx == id then
    prev = math.max(0, prev - cost)
  else
    return 0
  end
  if curr == 0 and prev == 0 then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%d:%d:%d', sidx, curr, prev), 'KEEPTTL')
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
local fits, idx, e, curr, prev, count = counter_check(key, limit, window, cost, ARGV[4], now)
return counter_finish(fits, key, limit, window, cost, now, fits, idx, e, curr, prev, count)
