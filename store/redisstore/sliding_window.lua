-- sliding_window.lua: an exact sliding-window log.
--
-- Records ARGV[3] hits in the sorted set KEYS[1] if the hits already in the
-- window (now - window, now] plus that cost stay within the limit; otherwise
-- records nothing. Each hit is one member scored with its time in
-- microseconds; members are unique because the caller passes a unique id
-- (math.random is reseeded on every script before Redis 7 and would collide).
--
-- KEYS[1]  the window's sorted set
-- ARGV[1]  limit: hits allowed in one window (integer, 1 <= limit <= 4096)
-- ARGV[2]  window length in microseconds (integer >= 1000)
-- ARGV[3]  cost: hits to record (integer, 1 <= cost <= min(limit, 256))
-- ARGV[4]  hit id, unique per call; members are id (cost 1) or id#1..id#cost
-- ARGV[5]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--
-- The caller enforces the bounds on limit and cost (store.MaxLimit and
-- store.MaxCost), so that no call writes or drops more than a few thousand
-- members: each call holds Redis for well under a millisecond.
--
-- Reply: {allowed (1|0), remaining, retry_after_us, reset_after_us, 0}, or
-- that reply packed into one integer (see reply.lua)
--   remaining       limit minus the hits in the window after this call
--   retry_after_us  when denied, time until enough hits leave for cost to fit
--   reset_after_us  time until the oldest hit leaves the window (0 if empty)
--   0               the receipt id is the caller's hit id, not the script's
--
-- The functions below (log_*) are also the sliding log's part of stack.lua
-- and undo.lua. Every algorithm has the same three functions, which pass the
-- state they read as multiple values (few closures, calls and tables: each
-- costs server time on every call):
--   check(key, limit, window, cost, extra, now) reads the state and returns
--     fits (whether cost fits now), then the state's values;
--   finish(record, key, limit, window, cost, now, fits, ...) records the hits
--     of a checked state that fits if record is true, and returns {allowed,
--     remaining, retry_after_us, reset_after_us, receipt_id}: after
--     recording, or as the state stands (retry_after_us set only if cost did
--     not fit);
--   undo(key, limit, window, cost, id, now) removes recorded hits and returns
--     how much changed.
-- extra is the algorithm's own argument: here the hit id.
--
-- Numbers go to redis.call as strings ('0', string.format('%d', n)): Redis
-- formats a Lua number argument with %.17g, which costs about as much as a
-- small command itself (the other algorithms' scripts do the same). Lua's
-- %d formats a C long, which holds times in microseconds on the 64-bit
-- builds of Redis; a 32-bit build is not supported.

-- Time until the hit at 0-based rank (oldest first) leaves the window.
local function log_leaves_after(key, window, now, rank)
  local r = '0'
  if rank ~= 0 then r = string.format('%d', rank) end
  local m = redis.call('ZRANGE', key, r, r, 'WITHSCORES')
  if m[2] == nil then
    return 0
  end
  local d = tonumber(m[2]) + window - now
  if d < 0 then d = 0 end
  if d > window then d = window end
  return d
end

-- Reads the two oldest hits first: in the common cases they tell what is
-- needed without dropping anything (the window's oldest hit, for the reset
-- time; whether one or more hits have left the window; the count of a log of
-- one hit). Hits at or before now - window have left the window: if the
-- oldest has and the second has not, that one hit is dropped only when hits
-- are recorded (a denial writes nothing); if both have, all that left are
-- dropped now. The state: count (hits in the window), id, oldest (the time
-- of the window's oldest hit; false if unknown or none), stale (the member
-- of the one hit that has left the window and is still in the log, or
-- false; never nil, so that stack.lua can keep the state in a table).
local function log_check(key, limit, window, cost, extra, now)
  local cutoff = now - window
  local m = redis.call('ZRANGE', key, '0', '1', 'WITHSCORES')
  local count, oldest, stale = 0, false, false
  if m[2] ~= nil then
    local t = tonumber(m[2])
    if t > cutoff then
      oldest = t
      if m[4] == nil then count = 1 else count = redis.call('ZCARD', key) end
    elseif m[4] == nil then
      stale = m[1]
    else
      t = tonumber(m[4])
      if t > cutoff then
        oldest, stale = t, m[1]
        count = redis.call('ZCARD', key) - 1
      else
        redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', cutoff))
        count = redis.call('ZCARD', key)
      end
    end
  end
  return count + cost <= limit, count, extra, oldest, stale
end

local function log_finish(record, key, limit, window, cost, now, fits, count, id, oldest, stale)
  local allowed, reset_after, retry_after = 0, 0, 0
  if record then
    if stale then
      redis.call('ZREM', key, stale)
      stale = false
    end
    local at = string.format('%d', now)
    if cost == 1 then
      redis.call('ZADD', key, at, id)
    else
      -- ZADD in bounded batches: unpack has a stack limit.
      local batch = {}
      for i = 1, cost do
        batch[#batch + 1] = at
        batch[#batch + 1] = id .. '#' .. i
        if #batch >= 512 or i == cost then
          redis.call('ZADD', key, unpack(batch))
          batch = {}
        end
      end
    end
    -- The log is useless once its newest hit has left the window.
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(window / 1000)))
    allowed = 1
    if count == 0 then
      -- The window held nothing before: its oldest hits are the ones just
      -- recorded at now.
      reset_after = window
    end
    count = count + cost
  end
  if count > 0 and reset_after == 0 then
    if oldest then
      -- Hits recorded at now leave after window, no earlier than this one.
      reset_after = oldest + window - now
      if reset_after > window then reset_after = window end
    else
      -- Only after the drop of every hit that left: rank 0 is in the window.
      reset_after = log_leaves_after(key, window, now, 0)
    end
  end
  if not fits then
    -- The (count + cost - limit)-th oldest hit in the window must leave
    -- before cost fits; for the oldest, that is the reset time already read.
    -- A hit that left and is still in the log comes before them all.
    local rank = count + cost - limit - 1
    if rank == 0 then
      retry_after = reset_after
    else
      if stale then rank = rank + 1 end
      retry_after = log_leaves_after(key, window, now, rank)
    end
  end
  return {allowed, limit - count, retry_after, reset_after, 0}
end

-- Removes the members of hit id (cost of them) and returns how many there
-- were.
local function log_undo(key, limit, window, cost, id, now)
  if cost == 1 then
    return redis.call('ZREM', key, id)
  end
  local removed = 0
  local batch = {}
  for i = 1, cost do
    batch[#batch + 1] = id .. '#' .. i
    if #batch >= 512 or i == cost then
      removed = removed + redis.call('ZREM', key, unpack(batch))
      batch = {}
    end
  end
  return removed
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
local fits, count, id, oldest, stale = log_check(key, limit, window, cost, ARGV[4], now)
return hit_reply(log_finish(fits, key, limit, window, cost, now, fits, count, id, oldest, stale))
