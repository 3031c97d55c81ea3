-- read.lua: one page for a member, sliding the expiry and the reader's lastSeenAt. KEYS: session
-- hash, messages, expiries, idempotency. ARGV[6..]: reader, after ('' = from the beginning), limit.
-- Returns {'page', fields, entries, truncated '1'/'0'} or {'gone'} / {'not_member'}.
local M, E, I = KEYS[2], KEYS[3], KEYS[4]
local h = load()
if not h then
  return { 'gone' }
end
prune(h)
local f = 'm:' .. ARGV[6]
if not h[f] then
  return { 'not_member' }
end
local m = member(h[f])
m.seen = now
h[f] = member_string(m)
local x = now + tonumber(h.ttl) * 1000
h.x = int(x)
redis.call('HSET', S, 'x', h.x, f, h[f])
expire(KEYS, x)
drop_if_due(M, E, I, h.ne or false, h.n)
local lost = tonumber(redis.call('HGET', S, 'lt') or '0')
h.lt = int(lost)
local after = ARGV[7]
local truncated = lost > 0 and (after == '' or tonumber(after) < lost)
local min = '-inf'
if after ~= '' then
  min = '(' .. after
end
local entries = redis.call('ZRANGEBYSCORE', M, min, '+inf', 'LIMIT', 0, tonumber(ARGV[8]))
return { 'page', flat(h), entries, truncated and '1' or '0' }
