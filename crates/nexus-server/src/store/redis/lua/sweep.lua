-- sweep.lua: reclaims one session's memory. KEYS: session hash, messages, expiries, idempotency.
-- A session past its expiry loses every key at once (0 is returned); a live one drops its expired
-- messages and returns its expiry, so the sessions index can be corrected.
local fields = redis.call('HMGET', S, 'x', 'ne', 'n')
local x = fields[1]
if not x or tonumber(x) <= now then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
  return 0
end
drop_if_due(KEYS[2], KEYS[3], KEYS[4], fields[2], fields[3])
return tonumber(x)
