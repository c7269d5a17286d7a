-- minimal_log.lua: the smallest sliding-window log, the yardstick of the
-- benchmarks: four commands (and TIME when asked), no reset or retry times.
--
-- KEYS[1]  the window's sorted set
-- ARGV[1]  limit
-- ARGV[2]  window in microseconds
-- ARGV[3]  now in microseconds, or "" to read Redis TIME
-- ARGV[4]  member
--
-- Reply: 1 allowed, 0 denied.
local key = KEYS[1]
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < tonumber(ARGV[1]) then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return 1
end
return 0
