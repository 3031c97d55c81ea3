-- index_add.lua: reserves a place in the sessions index unless MAX_SESSIONS are listed. Not a
-- session script (no prelude). KEYS: the index. ARGV: max sessions, tag, expiresAt.
-- Returns 1 when listed, 0 when the index is full (stale entries may be corrected and retried).
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
