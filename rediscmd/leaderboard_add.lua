-- leaderboard_add.lua: add points to a leaderboard member; rank by score, then
-- by who reached that score first.
--
-- The board is a sorted set scored with the member's points, exactly (an
-- integer in [-(2^53-1), 2^53-1]); no time is folded into the score, so large
-- scores never lose the tie-break. Ties are broken by the sorted-set member
-- itself, which Redis orders lexicographically among equal scores:
--
--   member = string.format('%013d', 9999999999999 - t) .. ':' .. id
--
-- where t is the time in Unix milliseconds at which the member reached its
-- score (0 <= t <= 9999999999999). An earlier t gives a greater member, which
-- ZREVRANGE / ZREVRANK put first. The companion hash KEYS[2] maps id to t so
-- that the current member can be found; it must share KEYS[1]'s hash slot.
-- A call with by = 0 on an existing member changes nothing; any other call
-- sets t, since the member reached a new score.
--
-- KEYS[1]  board: sorted set
-- KEYS[2]  times: hash id -> t (same {hash tag} as KEYS[1])
-- ARGV[1]  id: the player (non-empty string)
-- ARGV[2]  by: points to add (integer, -(2^53-1) <= by <= 2^53-1)
-- ARGV[3]  t in Unix milliseconds (integer in [0, 9999999999999]), or "" to
--          read Redis TIME
-- ARGV[4]  TTL in milliseconds (integer >= 0): when > 0, a board without an
--          expiry gets this one; the times hash always follows the board's
--          expiry, so both vanish together
--
-- Reply: {rank (1-based, highest score first), score, t}.
-- Errors: "SLUICE_BADARG ..." for malformed ARGV; "SLUICE_OUTOFRANGE ..." when
-- the new score would leave [-(2^53-1), 2^53-1] (nothing changes then);
-- "SLUICE_WRONGVALUE ..." when the board or hash holds data this script did
-- not write.

local MAX = 9007199254740991
local MAXT = 9999999999999

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local board, times, id = KEYS[1], KEYS[2], ARGV[1]
local by = int(ARGV[2], -MAX, MAX)
local ttl = int(ARGV[4], 0, MAX)
if id == nil or id == '' or by == nil or ttl == nil then
  return redis.error_reply('SLUICE_BADARG leaderboard_add: want a non-empty id, an integer by in [-(2^53-1), 2^53-1] and a ttl >= 0')
end
local t
if ARGV[3] == '' then
  local now = redis.call('TIME')
  t = num(now[1]) * 1000 + math.floor(num(now[2]) / 1000)
else
  t = int(ARGV[3], 0, MAXT)
  if t == nil then
    return redis.error_reply('SLUICE_BADARG leaderboard_add: time must be Unix milliseconds in [0, 9999999999999]')
  end
end

local function member(at)
  return string.format('%013.0f', MAXT - at) .. ':' .. id
end

local score = 0
local old_member
local old_raw = redis.call('HGET', times, id)
if old_raw then
  local old_t = int(old_raw, 0, MAXT)
  if old_t == nil then
    return redis.error_reply('SLUICE_WRONGVALUE leaderboard_add: ' .. times .. ' holds a bad time for ' .. id)
  end
  local s = redis.call('ZSCORE', board, member(old_t))
  if s then
    score = num(s)
    if score == nil or score ~= math.floor(score) or score > MAX or score < -MAX then
      return redis.error_reply('SLUICE_WRONGVALUE leaderboard_add: ' .. board .. ' holds a non-integer score for ' .. id)
    end
    old_member = member(old_t)
    if by == 0 then
      t = old_t
    end
  end
end

if not (old_member and by == 0) then
  local new = score + by
  if new > MAX or new < -MAX then
    return redis.error_reply('SLUICE_OUTOFRANGE leaderboard_add: the score of ' .. id .. ' would leave [-(2^53-1), 2^53-1]')
  end
  score = new
  -- The new member goes in before the old one leaves: removing a board's
  -- only member first would delete the board, and the ZADD would make a new
  -- one without the board's expiry.
  local new_member = member(t)
  redis.call('ZADD', board, string.format('%.0f', score), new_member)
  if old_member and old_member ~= new_member then
    redis.call('ZREM', board, old_member)
  end
  redis.call('HSET', times, id, string.format('%.0f', t))
end

if ttl > 0 and redis.call('PTTL', board) == -1 then
  redis.call('PEXPIRE', board, string.format('%.0f', ttl))
end
local pttl = redis.call('PTTL', board)
if pttl > 0 then
  redis.call('PEXPIRE', times, pttl)
elseif pttl == -1 then
  redis.call('PERSIST', times)
end

local rank = redis.call('ZREVRANK', board, member(t))
return {rank + 1, score, t}
