-- session.lua: the session as it is now (inactive members removed). KEYS: session hash.
-- Returns the hash's fields and values, or nil when the session is gone.
local h = load()
if not h then
  return false
end
prune(h)
return flat(h)
