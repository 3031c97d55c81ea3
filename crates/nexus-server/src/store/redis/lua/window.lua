-- window.lua: one fixed-window counter (rate limit, failed claims). Not a session script. KEYS: the
-- counter of this window. ARGV: limit ('' = count without a limit), lifetime (ms).
-- Returns 1 when counted, 0 when the limit was already reached (nothing counted).
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[1] ~= '' and n >= tonumber(ARGV[1]) then
  return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
