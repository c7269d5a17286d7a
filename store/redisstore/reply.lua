-- reply.lua: the reply of the sliding log's and GCRA's Hit scripts, put
-- before them (scripts.go).
--
-- Redis turns a table that a script returns into an array reply at a cost of
-- about half a microsecond of server time; an integer costs next to nothing.
-- So a reply {allowed, remaining, retry_after_us, reset_after_us, receipt_id}
-- goes back as one integer when the integer holds it:
--   bit 0          allowed
--   bits 1 to 13   remaining (below 8192)
--   bits 14 to 52  reset_after_us (below 2^39, about six days)
-- when allowed with retry_after_us 0, or denied with retry_after_us equal to
-- reset_after_us, remaining and reset_after_us being whole numbers (a
-- fraction would spill into the bits below it). The receipt id is the algorithm's fixed one (0 for the
-- sliding log, 1 for GCRA); window.go's hitReply reads both forms. Any
-- other reply goes back as the table. Below 2^53, the integer is exact in
-- Lua's numbers.
local function hit_reply(r)
  local allowed, remaining, retry_after, reset_after = r[1], r[2], r[3], r[4]
  if remaining >= 0 and remaining < 8192 and reset_after >= 0 and reset_after < 549755813888 and
      reset_after == math.floor(reset_after) and remaining == math.floor(remaining) and
      ((allowed == 1 and retry_after == 0) or (allowed == 0 and retry_after == reset_after)) then
    return allowed + remaining * 2 + reset_after * 16384
  end
  return r
end

