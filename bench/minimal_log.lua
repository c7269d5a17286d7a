-- minimal_log.lua: the smallest sliding-window log, the yardstick of the
-- benchmarks: four commands, the caller's time, no reset or retry times.
--
-- KEYS[1]  the window's sorted set
-- ARGV[1]  limit
-- ARGV[2]  window in microseconds
-- ARGV[3]  now in microseconds
-- ARGV[4]  member
--
-- Reply: 1 allowed, 0 denied.
local key = KEYS[1]
local now = tonumber(ARGV[3])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < tonumber(ARGV[1]) then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return 1
end
return 0
