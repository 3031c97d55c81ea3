-- join.lua: adds a member. KEYS: session hash. ARGV[6..]: agent id, sha256 of its new key.
-- Returns {'joined', fields} or {'gone'} / {'taken'} / {'full'}.
local h = load()
if not h then
  return { 'gone' }
end
prune(h)
local outcome = add_member(h, ARGV[6], ARGV[7])
if outcome ~= 'joined' then
  return { outcome }
end
return { 'joined', flat(h) }
