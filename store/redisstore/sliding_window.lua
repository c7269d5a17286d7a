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
--
-- The caller enforces the bounds on limit and cost (store.MaxLimit and
-- store.MaxCost), so that no call writes or drops more than a few thousand
-- members: each call holds Redis for well under a millisecond.
-- ARGV[4]  hit id, unique per call; members are id (cost 1) or id#1..id#cost
-- ARGV[5]  now in microseconds since the Unix epoch, or "" to read Redis TIME
--
-- Reply: {allowed (1|0), remaining, retry_after_us, reset_after_us}
--   remaining       limit minus the hits in the window after this call
--   retry_after_us  when denied, time until enough hits leave for cost to fit
--   reset_after_us  time until the oldest hit leaves the window (0 if empty)

local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local id = ARGV[4]

local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Hits at or before now - window have left the window.
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)

local allowed = 0
if count + cost <= limit then
  allowed = 1
  if cost == 1 then
    redis.call('ZADD', key, now, id)
  else
    -- ZADD in bounded batches: unpack has a stack limit.
    local batch = {}
    for i = 1, cost do
      batch[#batch + 1] = now
      batch[#batch + 1] = id .. '#' .. i
      if #batch >= 512 or i == cost then
        redis.call('ZADD', key, unpack(batch))
        batch = {}
      end
    end
  end
  count = count + cost
  -- The log is useless once its newest hit has left the window.
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
end

-- Time until the hit at 0-based rank (oldest first) leaves the window.
local function leaves_after(rank)
  local m = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  if m[2] == nil then
    return 0
  end
  local d = tonumber(m[2]) + window - now
  if d < 0 then d = 0 end
  if d > window then d = window end
  return d
end

local reset_after = 0
if count > 0 then
  if allowed == 1 and count == cost then
    -- The window held nothing before: its oldest hits are the ones just
    -- recorded at now.
    reset_after = window
  else
    reset_after = leaves_after(0)
  end
end

local retry_after = 0
if allowed == 0 then
  -- The (count + cost - limit)-th oldest hit must leave before cost fits;
  -- for the oldest, that is the reset time already read.
  local rank = count + cost - limit - 1
  if rank == 0 then
    retry_after = reset_after
  else
    retry_after = leaves_after(rank)
  end
end

return {allowed, limit - count, retry_after, reset_after}
