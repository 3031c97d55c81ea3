-- census.lua: one session's share of /v1/stats. KEYS: session hash, expiries.
-- Returns {members, unexpired messages}, or {} when the session is gone.
local h = load()
if not h then
  return {}
end
local members = 0
for f, v in pairs(h) do
  if string.sub(f, 1, 2) == 'm:' and active(h, string.sub(f, 3), member(v).seen) then
    members = members + 1
  end
end
return { members, redis.call('ZCOUNT', KEYS[2], '(' .. int(now), '+inf') }
