-- renew.lua: slides the expiry, with a new ttl if given. KEYS: session hash, messages, expiries,
-- idempotency. ARGV[6]: ttl in seconds ('' = keep). Returns the fields, or nil when gone.
local h = load()
if not h then
  return false
end
prune(h)
if ARGV[6] ~= '' then
  h.ttl = ARGV[6]
end
local x = now + tonumber(h.ttl) * 1000
h.x = int(x)
redis.call('HSET', S, 'ttl', h.ttl, 'x', h.x)
expire(KEYS, x)
return flat(h)
