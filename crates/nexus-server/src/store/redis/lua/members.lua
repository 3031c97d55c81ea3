-- members.lua: loading a session and its members (store/redis/scripts.rs adds it after
-- prelude.lua for the scripts that need it): deadlines checked on access, inactivity pruning,
-- joins.

-- The session's fields, or nil when it does not exist or is past its expiry.
local function load()
  local flat = redis.call('HGETALL', S)
  if #flat == 0 then
    return nil
  end
  local h = {}
  for i = 1, #flat, 2 do
    h[flat[i]] = flat[i + 1]
  end
  if tonumber(h.x) <= now then
    return nil
  end
  return h
end

local function flat(h)
  local out = {}
  for f, v in pairs(h) do
    out[#out + 1] = f
    out[#out + 1] = v
  end
  return out
end

local function active(h, agent, seen)
  return inactivity <= 0 or h.cr == agent or now < seen + inactivity
end

-- Removes members past their inactivity deadline (never the creator) and wakes waiters if any was.
local function prune(h)
  if inactivity <= 0 then
    return
  end
  local removed = false
  for f, v in pairs(h) do
    if string.sub(f, 1, 2) == 'm:' and not active(h, string.sub(f, 3), member(v).seen) then
      redis.call('HDEL', S, f)
      h[f] = nil
      removed = true
    end
  end
  if removed then
    wake('-')
  end
end

local function member_count(h)
  local n = 0
  for f in pairs(h) do
    if string.sub(f, 1, 2) == 'm:' then
      n = n + 1
    end
  end
  return n
end

-- Adds a member (join and claim): 'joined', 'taken' or 'full'.
local function add_member(h, agent, key_digest)
  local f = 'm:' .. agent
  if h[f] then
    return 'taken'
  end
  if member_count(h) >= tonumber(h.max) then
    return 'full'
  end
  local seq = int(redis.call('HINCRBY', S, 'ms', 1))
  local v = seq .. ' ' .. int(now) .. ' ' .. int(now) .. ' ' .. key_digest
  redis.call('HSET', S, f, v)
  h[f] = v
  h.ms = seq
  return 'joined'
end
