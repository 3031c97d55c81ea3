-- common.lua: prepended to every session script (store/redis/scripts.rs). Owns the session hash
-- layout and the deadlines applied on access.
--
-- Conventions: KEYS[1] is the session hash; ARGV[1] the caller's clock (ms since the epoch),
-- ARGV[2] the inactivity limit (ms, 0 = off), ARGV[3] the grace added to every PEXPIRE (ms),
-- ARGV[4] the wake-up channels' prefix, ARGV[5] the session's tag. Script arguments start at
-- ARGV[6].
--
-- Session hash fields: ttl (s), max (maxAgents), ca (createdAt), x (expiresAt), cr (creator, absent
-- when none), g (greeting, absent when none), c (last cursor), lt (lost through), ms (member
-- sequence), px (when the session's keys leave memory, see expire), and one "m:<agentId>" field
-- per member: "<seq> <joinedAt> <lastSeenAt> <sha256(key)>".
--
-- Deadlines are checked against the caller's clock, never Redis's: PEXPIRE (deadline + grace) only
-- reclaims memory, so a node's clock (or a test's paused clock) decides what is expired.

local S = KEYS[1]
local now = tonumber(ARGV[1])
local inactivity = tonumber(ARGV[2])
local grace = tonumber(ARGV[3])
local channel = ARGV[4]
local tag = ARGV[5]

local function int(n)
  return string.format('%d', n)
end

-- Tells the waiters on this session, on every node that has some, to re-read: a cursor, or '-'
-- for a membership change. Costs a lookup when no node waits on the session.
local function wake(what)
  redis.call('PUBLISH', channel .. tag, what)
end

local function member(v)
  local seq, joined, seen, kd = string.match(v, '^(%d+) (%d+) (%d+) (%x+)$')
  return { seq = seq, joined = joined, seen = tonumber(seen), kd = kd }
end

local function member_string(m)
  return m.seq .. ' ' .. m.joined .. ' ' .. int(m.seen) .. ' ' .. m.kd
end

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

-- Keeps every key of the session in memory past `deadline` (the session's expiry): all keys share
-- one horizon, `px` in the session hash (caller's clock). It is pushed to deadline + grace only
-- when the deadline comes within grace/2 of it, so a busy session does not PEXPIRE on every send;
-- `force` when a key was just created (it has no lifetime yet).
local function expire(keys, deadline, force)
  local px = tonumber(redis.call('HGET', S, 'px') or '0')
  if not force and deadline + grace / 2 <= px then
    return
  end
  local horizon = deadline + grace
  local ms = int(horizon - now)
  for _, k in ipairs(keys) do
    redis.call('PEXPIRE', k, ms)
  end
  redis.call('HSET', S, 'px', int(horizon))
end

-- Drops messages past their own expiry from the messages (M, by cursor) and expiries (E, by
-- expiresAt) sorted sets, and raises `lt` (lost through) to the highest cursor dropped.
local function drop_expired(M, E)
  local gone = redis.call('ZRANGEBYSCORE', E, '-inf', int(now))
  if #gone == 0 then
    return
  end
  local top = 0
  for _, c in ipairs(gone) do
    local n = tonumber(c)
    if n > top then
      top = n
    end
  end
  if redis.call('ZCOUNT', M, '-inf', int(top)) == #gone then
    -- The usual case: the expired messages are the oldest ones.
    redis.call('ZREMRANGEBYSCORE', M, '-inf', int(top))
  else
    for _, c in ipairs(gone) do
      redis.call('ZREMRANGEBYSCORE', M, c, c)
    end
  end
  redis.call('ZREMRANGEBYSCORE', E, '-inf', int(now))
  if top > tonumber(redis.call('HGET', S, 'lt') or '0') then
    redis.call('HSET', S, 'lt', int(top))
  end
end
