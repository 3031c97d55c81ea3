-- code_state.lua: what a pairing code looks like now. KEYS: session hash, the code's record.
-- Returns {'pending', expiresAt}, {'claimed'}, {'expired'} or {'unknown'}.
local code = redis.call('HMGET', KEYS[2], 'ex', 'fg', 'cl')
if not code[1] or tonumber(code[2]) <= now then
  return { 'unknown' }
end
if code[3] then
  return { 'claimed' }
end
local x = redis.call('HGET', S, 'x')
if tonumber(code[1]) <= now or not x or tonumber(x) <= now then
  return { 'expired' }
end
return { 'pending', code[1] }
