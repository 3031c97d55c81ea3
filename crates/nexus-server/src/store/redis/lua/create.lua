-- create.lua: stores a new session. KEYS: session hash. ARGV[6..]: ttl, maxAgents, createdAt,
-- expiresAt, creator ('' = none), greeting ('' = none), sha256 of the creator's key.
-- Returns 1, or 0 if the id exists (192 random bits: never).
if redis.call('EXISTS', S) == 1 then
  return 0
end
local created = ARGV[8]
redis.call('HSET', S, 'ttl', ARGV[6], 'max', ARGV[7], 'ca', created, 'x', ARGV[9],
  'c', '0', 'lt', '0', 'ms', '0', 'n', '0')
if ARGV[10] ~= '' then
  redis.call('HSET', S, 'cr', ARGV[10], 'ms', '1',
    'm:' .. ARGV[10], '1 ' .. created .. ' ' .. created .. ' ' .. ARGV[12])
end
if ARGV[11] ~= '' then
  redis.call('HSET', S, 'g', ARGV[11])
end
expire({ S }, tonumber(ARGV[9]), true)
return 1
