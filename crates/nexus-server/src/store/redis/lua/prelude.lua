-- prelude.lua: prepended to every session script (store/redis/scripts.rs), with members.lua and
-- messages.lua when the script needs them. Owns the argument conventions, the session hash
-- layout and the keys' lifetime.
--
-- Conventions: KEYS[1] is the session hash; ARGV[1] the caller's clock (ms since the epoch),
-- ARGV[2] the inactivity limit (ms, 0 = off), ARGV[3] the grace added to every PEXPIRE (ms),
-- ARGV[4] the wake-up channels' prefix, ARGV[5] the session's tag. Script arguments start at
-- ARGV[6].
--
-- Session hash fields: ttl (s), max (maxAgents), ca (createdAt), x (expiresAt), cr (creator, absent
-- when none), g (greeting, absent when none), c (last cursor), lt (lost through), ms (member
-- sequence), px (when the session's keys leave memory, see expire), n (messages held) and ne (the
-- earliest expiry among them, absent when none; see messages.lua), and one "m:<agentId>" field per
-- member: "<seq> <joinedAt> <lastSeenAt> <sha256(key)>".
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

-- Keeps every key of the session in memory past `deadline` (the session's expiry): all keys share
-- one horizon, `px` in the session hash (caller's clock). It is pushed to deadline + grace only
-- when the deadline comes within grace/2 of it, so a busy session does not PEXPIRE on every send;
-- `force` when a key was just created (it has no lifetime yet). `px`: the field if the caller
-- already read it (false when absent), nil to read it here.
local function expire(keys, deadline, force, px)
  if px == nil then
    px = redis.call('HGET', S, 'px')
  end
  px = tonumber(px) or 0
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
