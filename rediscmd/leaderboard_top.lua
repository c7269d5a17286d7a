-- leaderboard_top.lua: the first n entries of a leaderboard written by
-- leaderboard_add.lua, best first. Read-only.
--
-- KEYS[1]  board: sorted set
-- ARGV[1]  n (integer, 1 <= n <= 1000)
--
-- Reply: {member_1, score_1, member_2, score_2, ...} as ZREVRANGE ... WITHSCORES
-- returns them; each member is the 13-digit (9999999999999 - t), ':' and the id.
-- Errors: "SLUICE_BADARG ..." for a malformed n.

-- num and int, the catalogue's number rule, come from numbers.lua, which
-- rediscmd puts in front of every script.

local n = int(ARGV[1], 1, 1000)
if n == nil then
  return redis.error_reply('SLUICE_BADARG leaderboard_top: n must be an integer in [1, 1000]')
end
return redis.call('ZREVRANGE', KEYS[1], '0', string.format('%d', n - 1), 'WITHSCORES')
