-- claim.lua: claims a pending pairing code and joins the claimer, atomically: two nodes can never
-- both claim one code. KEYS: session hash, the code's record (same hash tag). ARGV[6..]: agent id,
-- sha256 of its new key, how long a claimed code is remembered (ms).
-- Code record fields: ex (expiresAt), fg (forgotten at), cl (claimedAt, absent while pending).
-- Returns {'claimed', fields} or {'unknown'} / {'used'} / {'taken'} / {'full'} (a refused join
-- leaves the code pending).
local C = KEYS[2]
local code = redis.call('HMGET', C, 'ex', 'fg', 'cl')
if not code[1] or tonumber(code[2]) <= now then
  return { 'unknown' }
end
if code[3] then
  return { 'used' }
end
local h = load()
if tonumber(code[1]) <= now or not h then
  return { 'used' }
end
prune(h)
local outcome = add_member(h, ARGV[6], ARGV[7])
if outcome ~= 'joined' then
  return { outcome }
end
local forget = now + tonumber(ARGV[8])
redis.call('HSET', C, 'cl', int(now), 'fg', int(forget))
redis.call('PEXPIRE', C, int(forget - now + grace))
return { 'claimed', flat(h) }
