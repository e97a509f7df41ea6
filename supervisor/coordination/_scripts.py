"""The Lua scripts that make each coordination step atomic in Redis.

Time inside a script is Redis's own (``TIME``), so daemons with skewed clocks agree. Every
script touches only the keys it is given. Scripts are replicated by effect (Redis >= 5).
"""

from __future__ import annotations

__all__ = (
    "ACQUIRE_LEASE",
    "ADMIT_USER_ROOM",
    "COUNT_TURN",
    "HEARTBEAT",
    "RELEASE_FLOOR",
    "RELEASE_LEASE",
    "RENEW_FLOOR",
    "RENEW_LEASE",
    "TAKE_FLOOR",
)

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

ACQUIRE_LEASE = (
    _NOW_MS
    + """
-- KEYS[1] lease, KEYS[2] epoch marker, KEYS[3] live nodes (zset node -> expiry ms),
-- KEYS[4] leases per node (hash), KEYS[5] when the room was first found free;
-- ARGV[1] node id, ARGV[2] ttl ms, ARGV[3] balance grace ms.
-- Returns {1, 0} won, {0, pttl} held by another node, {-1, wait ms} holding off after data
-- loss, {-2, wait ms} left for a less-loaded node.
-- The epoch marker is missing after Redis lost its data (restart without persistence, first
-- start): then nobody takes a new lease for one TTL, so the daemons that held leases re-claim
-- theirs (RENEW_LEASE) before anyone else can.
local ttl = tonumber(ARGV[2])
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], now)
  return {-1, ttl}
end
local wait = tonumber(epoch) + ttl - now
if wait > 0 then
  return {-1, wait}
end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, 0}
end
if holder then
  return {0, redis.call('PTTL', KEYS[1])}
end
-- Balance: for its first ``grace`` ms a free room is left to the least-loaded live nodes.
local grace = tonumber(ARGV[3])
if grace > 0 then
  local mine = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
  local least = mine
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], now, '+inf')) do
    least = math.min(least, tonumber(redis.call('HGET', KEYS[4], node) or '0'))
  end
  if mine > least then
    local since = tonumber(redis.call('GET', KEYS[5]) or '-1')
    if since < 0 then
      since = now
      redis.call('SET', KEYS[5], now, 'PX', 2 * grace)
    end
    if now - since < grace then
      return {-2, grace - (now - since)}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('DEL', KEYS[5])
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
return {1, 0}
"""
)

RENEW_LEASE = """
-- KEYS[1] lease; ARGV[1] node id, ARGV[2] ttl ms.
-- Returns 1 extended, 2 re-claimed (the key was gone: Redis lost its data), 0 lost.
-- Re-claiming is safe: the caller only renews while its lease is valid by its own clock,
-- which ends before Redis would have expired the key, so a missing key was never taken.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

RELEASE_LEASE = """
-- KEYS[1] lease, KEYS[2] leases per node; ARGV[1] node id. Returns 1 released, 0 not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if tonumber(redis.call('HINCRBY', KEYS[2], ARGV[1], -1)) < 0 then
    redis.call('HSET', KEYS[2], ARGV[1], 0)
  end
  return 1
end
return 0
"""

HEARTBEAT = (
    _NOW_MS
    + """
-- KEYS[1] live nodes (zset node -> expiry ms), KEYS[2] leases per node (hash);
-- ARGV[1] node id, ARGV[2] ttl ms, ARGV[3] leases held (-1: the node leaves).
-- Forgets nodes whose heartbeat expired. Returns the number of live nodes.
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
end
if tonumber(ARGV[3]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
return redis.call('ZCARD', KEYS[1])
"""
)

ADMIT_USER_ROOM = (
    _NOW_MS
    + """
-- KEYS[1] the user's rooms (sorted set: room -> expiry ms); ARGV[1] room, ARGV[2] most rooms,
-- ARGV[3] ttl ms. Returns 1 admitted (or refreshed), 0 refused: the user is at the cap.
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1])
    or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
return 0
"""
)

COUNT_TURN = (
    _NOW_MS
    + """
-- KEYS[1] the user's recent turns (sorted set: unique id -> time ms); ARGV[1] most turns,
-- ARGV[2] window ms, ARGV[3] this turn's unique id.
-- Returns 0 counted, or the ms until the oldest turn leaves the window (refused).
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
)

TAKE_FLOOR = (
    """
-- KEYS[1] floor, KEYS[2] fence counter, KEYS[3] last release; ARGV[1] holder (agent:reply),
-- ARGV[2] agent, ARGV[3] ttl ms, ARGV[4] gap ms. Returns {fence, 0} taken (or held already),
-- {0, 0} held by someone else, {0, wait ms} free but another agent spoke until just now.
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, fence = string.match(cur, '^(.*)|(%d+)$')
  if holder == ARGV[1] then
    return {tonumber(fence), 0}
  end
  return {0, 0}
end
"""
    + _NOW_MS
    + """
local last = redis.call('HMGET', KEYS[3], 'agent', 'at')
if last[1] and last[1] ~= ARGV[2] then
  local wait = tonumber(last[2]) + tonumber(ARGV[4]) - now
  if wait > 0 then
    return {0, wait}
  end
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. fence, 'PX', ARGV[3])
return {fence, 0}
"""
)

RENEW_FLOOR = """
-- KEYS[1] floor; ARGV[1] its value (holder|fence), ARGV[2] ttl ms. Returns 1 renewed, 0 lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE_FLOOR = (
    """
-- KEYS[1] floor, KEYS[3] last release; ARGV[1] its value (holder|fence), ARGV[2] agent,
-- ARGV[3] how long the last release is remembered (ms). Returns 1 released, 0 not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
"""
    + _NOW_MS
    + """
redis.call('HSET', KEYS[3], 'agent', ARGV[2], 'at', now)
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
"""
)
