"""The Lua scripts of the capability registry (:mod:`a2a_grpc.mesh.registry`).

Each runs atomically on the one node that holds the registry's hash tag (every key it names shares
it, so a Redis Cluster runs it too). Deadlines are milliseconds of Redis's own clock (``TIME``), so
replicas whose clocks disagree still agree on who is alive.
"""

from __future__ import annotations

__all__ = ["DEREGISTER", "HEARTBEAT", "LIVE", "REGISTER"]

NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# Refresh the indexes KEYS[3..] (KEYS[3] is "all") with the entry KEYS[1] until now + ARGV ttl;
# prune lapsed members, counting those of "all"; keep each index key as long as its freshest member.
INDEX = """
local deadline = now + ttl
local expired = 0
for i = 3, #KEYS do
  local gone = redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if i == 3 then expired = gone end
  redis.call('ZADD', KEYS[i], deadline, KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""
# KEYS: entry, card, all, name, skills...; ARGV: etag, record, card bytes, ttl ms.
REGISTER = (
    NOW
    + """
local ttl = tonumber(ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'etag', ARGV[1], 'record', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
"""
    + INDEX
    + "return {deadline, expired}"
)
# The same without the card: 0 when the entry or its card is gone, or holds another ETag.
HEARTBEAT = (
    NOW
    + """
local ttl = tonumber(ARGV[2])
if redis.call('HGET', KEYS[1], 'etag') ~= ARGV[1] then return {0, 0} end
if redis.call('PEXPIRE', KEYS[2], ttl) == 0 then return {0, 0} end
redis.call('PEXPIRE', KEYS[1], ttl)
"""
    + INDEX
    + "return {deadline, expired}"
)
# KEYS[1]: an index; ARGV: the most to answer. Members still within their deadline, freshest first.
LIVE = (
    NOW
    + """
return redis.call('ZRANGE', KEYS[1], '+inf', '(' .. now, 'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[1]),
                  'WITHSCORES')
"""
)
DEREGISTER = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], KEYS[1]) end
return 1
"""
