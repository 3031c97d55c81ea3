-- append.lua: a send, in one round trip. KEYS: session hash, messages (by cursor), expiries (by
-- expiresAt), idempotency. ARGV[6..]: sender, sha256 of the X-Session-Key presented ('' = none),
-- require a key ('1'/'0'), quota, idempotency field ('' = none), sha256 of the request body, and
-- the message payload (JSON made by the node).
--
-- Membership, key, idempotency, quota, the cursor (HINCRBY of the session's counter), the append,
-- the sliding expiry, the sender's lastSeenAt and the wake-up all happen in this one atomic step.
-- Key check: digests are compared, never keys (see leave.lua).
--
-- The fields read first (HMGET) hold all it needs in the usual case: the quota is `n`, expired
-- messages are looked for only when `ne` has passed, the keys' lifetime is pushed only when `px`
-- comes near (see prelude.lua and messages.lua).
--
-- Returns {'stored', cursor, verified, expiresAt}, {'repeated', entry}, or {'gone'} /
-- {'not_member'} / {'bad_key'} / {'missing_key'} / {'reused'} / {'quota'}.
local M, E, I = KEYS[2], KEYS[3], KEYS[4]
local agent = ARGV[6]
local f = 'm:' .. agent
local fields = redis.call('HMGET', S, 'x', 'ttl', 'cr', f, 'px', 'n', 'ne')
local x, ttl, cr, mv, px, n, ne = unpack(fields, 1, 7)
if not x or tonumber(x) <= now then
  return { 'gone' }
end
if not mv then
  return { 'not_member' }
end
local m = member(mv)
if inactivity > 0 and cr ~= agent and now >= m.seen + inactivity then
  redis.call('HDEL', S, f)
  wake('-')
  return { 'not_member' }
end
local verified = '0'
if ARGV[7] ~= '' then
  if ARGV[7] ~= m.kd then
    return { 'bad_key' }
  end
  verified = '1'
elseif ARGV[8] == '1' then
  return { 'missing_key' }
end
local held
held, ne = drop_if_due(M, E, I, ne, n)
local idem = ARGV[10]
if idem ~= '' then
  local seen = redis.call('HGET', I, idem)
  if seen then
    local digest, c = string.match(seen, '^(%x+) (%d+)$')
    local original = redis.call('ZRANGEBYSCORE', M, c, c)
    -- A key is remembered as long as the message it produced is held: dropping the message
    -- removes the entry (messages.lua); the check covers entries written before that was so.
    if #original > 0 then
      if digest ~= ARGV[11] then
        return { 'reused' }
      end
      return { 'repeated', original[1] }
    end
  end
end
if held >= tonumber(ARGV[9]) then
  return { 'quota' }
end
-- The messages (and expiries) keys are created by this send when empty, the idempotency hash when
-- this is its first entry: they need a lifetime at once.
local fresh = held == 0 or (idem ~= '' and redis.call('EXISTS', I) == 0)
local c = int(redis.call('HINCRBY', S, 'c', 1))
local expires = now + tonumber(ttl) * 1000
if not ne or tonumber(ne) > expires then
  ne = int(expires)
end
m.seen = now
redis.call('HSET', S, 'x', int(expires), f, member_string(m), 'n', held + 1, 'ne', ne)
redis.call('ZADD', M, c, c .. ' ' .. verified .. ' ' .. int(expires) .. ' ' .. ARGV[12])
if idem ~= '' then
  -- The expiries entry names the key, so that dropping the message forgets it (messages.lua).
  redis.call('ZADD', E, int(expires), c .. ' ' .. idem)
  redis.call('HSET', I, idem, ARGV[11] .. ' ' .. c)
else
  redis.call('ZADD', E, int(expires), c)
end
expire(KEYS, expires, fresh, px)
wake(c)
return { 'stored', c, verified, int(expires) }
