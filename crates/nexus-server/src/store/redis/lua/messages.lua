-- messages.lua: dropping expired messages (after prelude.lua). `n` in the session hash counts the
-- messages held and `ne` is the earliest expiry among them, so a send checks the quota and whether
-- anything expired from the fields it reads anyway, without touching the sorted sets.

-- Drops messages past their own expiry from the messages (M, by cursor) and expiries (E, by
-- expiresAt) sorted sets, raises `lt` (lost through) to the highest cursor dropped, and updates
-- `n` and `ne`. Returns the number of messages still held and the new `ne` (false when none).
local function drop_expired(M, E)
  local gone = redis.call('ZRANGEBYSCORE', E, '-inf', int(now))
  if #gone == 0 then
    return redis.call('ZCARD', M), redis.call('HGET', S, 'ne')
  end
  local top = 0
  for _, c in ipairs(gone) do
    local n = tonumber(c)
    if n > top then
      top = n
    end
  end
  if redis.call('ZCOUNT', M, '-inf', int(top)) == #gone then
    -- The usual case: the expired messages are the oldest ones.
    redis.call('ZREMRANGEBYSCORE', M, '-inf', int(top))
  else
    for _, c in ipairs(gone) do
      redis.call('ZREMRANGEBYSCORE', M, c, c)
    end
  end
  redis.call('ZREMRANGEBYSCORE', E, '-inf', int(now))
  if top > tonumber(redis.call('HGET', S, 'lt') or '0') then
    redis.call('HSET', S, 'lt', int(top))
  end
  local held = redis.call('ZCARD', M)
  local first = redis.call('ZRANGE', E, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('HSET', S, 'n', held, 'ne', first[2])
    return held, first[2]
  end
  redis.call('HSET', S, 'n', held)
  redis.call('HDEL', S, 'ne')
  return held, false
end

-- Drops expired messages if the earliest expiry `ne` (the field, false when absent) has passed.
-- Returns the number held and `ne`, as drop_expired; the fields as they are when nothing expired.
local function drop_if_due(M, E, ne, n)
  if ne and tonumber(ne) <= now then
    return drop_expired(M, E)
  end
  return tonumber(n) or redis.call('ZCARD', M), ne
end
