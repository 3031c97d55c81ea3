-- leave.lua: removes a member after checking its key. KEYS: session hash. ARGV[6..]: agent id,
-- sha256 of the key presented. The digests are compared, never the keys: whatever the timing of
-- Lua's string comparison reveals is about a SHA-256 output the caller cannot steer.
-- Returns 'removed', 'gone', 'not_member' or 'bad_key'.
local h = load()
if not h then
  return 'gone'
end
prune(h)
local f = 'm:' .. ARGV[6]
if not h[f] then
  return 'not_member'
end
if member(h[f]).kd ~= ARGV[7] then
  return 'bad_key'
end
redis.call('HDEL', S, f)
wake('-')
return 'removed'
