-- stack.lua: decide several rules together (store.WindowStore.HitAll):
-- record every part's hits if each part fits under its rule, and none
-- otherwise.
--
-- scripts.go puts the functions of sliding_window.lua, sliding_counter.lua
-- and gcra.lua before this file, so each algorithm decides here exactly as
-- its own script does. Every part is checked against the state as it stands,
-- then all parts are recorded or none. No two parts share a key.
--
-- KEYS[i]  part i's key (on a Redis Cluster, the keys share a hash tag)
-- ARGV[1]  now in microseconds since the Unix epoch, or "" to read Redis TIME
-- ARGV[2]  mode: "0" to decide; "1" to decide and also reply how each part
--          stood before this call if the stack is recorded (for a caller
--          that may have to undo it); "2" to record nothing and reply how the
--          parts stand
-- ARGV[3 + 5*(i-1) ..] part i, five values:
--          algorithm: "s" sliding log, "c" sliding-window counter, "g" GCRA
--          limit, window in microseconds, cost, and extra: the hit id of a
--          sliding log, the burst of GCRA, "" for the counter
--
-- Reply: seven integers per part, in KEYS order:
--   allowed, remaining, retry_after_us, reset_after_us, receipt_id
--          as the algorithm's own script replies them: every part allowed
--          and recorded, or none allowed with the values as the part stands
--          (retry_after_us set on the parts that did not fit, 0 on others)
--   remaining, reset_after_us
--          as the part stood before this call, if the stack was recorded in
--          mode "1"; 0, 0 otherwise

-- check and finish of each algorithm.
local algorithms = {
  s = {log_check, log_finish},
  c = {counter_check, counter_finish},
  g = {gcra_check, gcra_finish},
}

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Check every part; states[i] holds fits and the state's values.
local n = #KEYS
local algs, limits, windows, costs, states = {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local a = 3 + (i - 1) * 5
  local alg = algorithms[ARGV[a]]
  local limit, window, cost = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local st = {alg[1](KEYS[i], limit, window, cost, ARGV[a + 4], now)}
  algs[i], limits[i], windows[i], costs[i], states[i] = alg, limit, window, cost, st
  if not st[1] then all = false end
end

-- Record all or none, and reply.
local record = all and ARGV[2] ~= '2'
local before = record and ARGV[2] == '1'
local out = {}
for i = 1, n do
  local alg, key, limit, window, cost, st = algs[i], KEYS[i], limits[i], windows[i], costs[i], states[i]
  local was
  if before then was = alg[2](false, key, limit, window, cost, now, unpack(st)) end
  local r = alg[2](record, key, limit, window, cost, now, unpack(st))
  for j = 1, 5 do out[#out + 1] = r[j] end
  if was then
    out[#out + 1] = was[2]
    out[#out + 1] = was[4]
  else
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
return out
