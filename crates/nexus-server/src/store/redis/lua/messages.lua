-- messages.lua: dropping expired messages (after prelude.lua). `n` in the session hash counts the
-- messages held and `ne` is the earliest expiry among them, so a send checks the quota and whether
-- anything expired from the fields it reads anyway, without touching the sorted sets.

-- A member of the expiries set: '<cursor>', or '<cursor> <field>' when the message was sent with
-- an Idempotency-Key (`field` is its entry in the idempotency hash, see append.lua). Returns the
-- cursor and the field (nil when none).
local function expiry_entry(v)
  local c, field = string.match(v, '^(%d+) (.*)$')
  if c then
    return c, field
  end
  return v, nil
end

-- Fields removed from the idempotency hash per HDEL (unpack has a limit on its results).
local HDEL_CHUNK = 1000

-- Drops messages past their own expiry from the messages (M, by cursor) and expiries (E, by
-- expiresAt) sorted sets, and their Idempotency-Keys from the idempotency hash (I): an entry
-- lives exactly as long as its message, as in the embedded store. Raises `lt` (lost through) to
-- the highest cursor dropped, and updates `n` and `ne`. Returns the number of messages still held
-- and the new `ne` (false when none).
local function drop_expired(M, E, I)
  local gone = redis.call('ZRANGEBYSCORE', E, '-inf', int(now))
  if #gone == 0 then
    return redis.call('ZCARD', M), redis.call('HGET', S, 'ne')
  end
  local top = 0
  local fields = {}
  for i, v in ipairs(gone) do
    local c, field = expiry_entry(v)
    gone[i] = c
    if field then
      fields[#fields + 1] = field
    end
    local n = tonumber(c)
    if n > top then
      top = n
    end
  end
  for i = 1, #fields, HDEL_CHUNK do
    redis.call('HDEL', I, unpack(fields, i, math.min(i + HDEL_CHUNK - 1, #fields)))
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
local function drop_if_due(M, E, I, ne, n)
  if ne and tonumber(ne) <= now then
    return drop_expired(M, E, I)
  end
  return tonumber(n) or redis.call('ZCARD', M), ne
end
