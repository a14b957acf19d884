"""The key layout and the Lua scripts of the Redis task backends (store, event sink, registry).

Every key is made by :func:`a2a_grpc.redisconn.key`; the slot of each is pinned by one of three
hash tags, and every atomic operation (a Lua script, a MULTI) touches keys of one tag only, so a
Redis Cluster serves them:

=========================  =====================================  ==================================
tag                        keys                                   atomic operations on them
=========================  =====================================  ==================================
the task's                 ``task`` (hash: the record),           a save (record, claim, stream and
``{tenant:task}``          ``events`` (stream), ``emeta`` (hash:  meta expiry), an event batch
                           last seq, bytes), ``claim`` (string:   (XADD + trim), claim, release,
                           the owner, PX lease), ``push`` (hash)  extend (renew), take over
the tenant's ``{tenant}``  ``tix`` (hash: id -> index entries),   an index update (old entries out,
                           ``tx`` (zsets: all, by context, by     new in), a page (count + range)
                           state, by context and state)
the owner's ``{owner}``    ``lease`` (string: host and pid, PX),  taking the cancel signals
                           ``owned`` (set), ``cancels`` (set),
                           the cancel channel (pub/sub)
none (one key)             ``owners`` (set of owner ids)          -
=========================  =====================================  ==================================

A save writes the task's keys and the tenant's in two scripts of one pipeline (two slots): the
record first, then the index, so an index entry always has its record; the index script keeps, per
task, which entries it holds, so an update removes them whatever other saves did in between.
"""

from __future__ import annotations

import json
import struct

from a2a_grpc.redisconn import Tag, key, tag

__all__ = ["Keys", "decode_pair", "encode_pair", "index_member", "member_id"]

_TS_OFFSET = 1 << 63


def index_member(ts_micros: int, task_id: str) -> bytes:
    """An index entry: the status timestamp as 8 unsigned big-endian bytes, then the id (UTF-8).
    All entries score 0, so a zset orders them by these bytes: by timestamp, then by id in code
    point order (UTF-8 keeps it), the ListTasks sort key; a range by lex is a keyset cursor."""
    return struct.pack(">Q", ts_micros + _TS_OFFSET) + task_id.encode()


def member_id(member: bytes) -> tuple[int, str]:
    """The sort key (timestamp in µs, id) of an index entry."""
    (ts,) = struct.unpack_from(">Q", member)
    return ts - _TS_OFFSET, member[8:].decode()


def encode_pair(tenant: str, task_id: str) -> str:
    return json.dumps([tenant, task_id], separators=(",", ":"))


def decode_pair(raw: bytes | str) -> tuple[str, str] | None:
    """(tenant, task id) of a set member or channel message; None for anything else."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


class Keys:
    """The names of one deployment's keys (``prefix``: the URL's ``prefix=``)."""

    __slots__ = ("owners", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.owners = key(prefix, "owners")

    # -- a task's (one slot) ------------------------------------------------------------------------

    def task_tag(self, tenant: str, task_id: str) -> Tag:
        return tag(tenant, task_id)

    def task(self, t: Tag) -> str:
        return key(self.prefix, "task", t)

    def events(self, t: Tag) -> str:
        return key(self.prefix, "events", t)

    def emeta(self, t: Tag) -> str:
        return key(self.prefix, "emeta", t)

    def claim(self, t: Tag) -> str:
        return key(self.prefix, "claim", t)

    def push(self, t: Tag) -> str:
        return key(self.prefix, "push", t)

    # -- a tenant's (one slot) ----------------------------------------------------------------------

    def tenant_tag(self, tenant: str) -> Tag:
        # Its own groups (tix, tx): never a task's keys, whatever the two tags hold.
        return tag("~", tenant)

    def index_entries(self, n: Tag) -> str:
        return key(self.prefix, "tix", n)

    def index(self, n: Tag, context_id: str | None = None, state: int | None = None) -> str:
        if context_id is None and state is None:
            return key(self.prefix, "tx", n, "all")
        if state is None:
            return key(self.prefix, "tx", n, "ctx", context_id or "")
        if context_id is None:
            return key(self.prefix, "tx", n, "state", str(state))
        return key(self.prefix, "tx", n, "cs", str(state), context_id)

    # -- an owner's (one slot) ----------------------------------------------------------------------

    def owner_tag(self, owner: str) -> Tag:
        return tag("@", owner)

    def lease(self, o: Tag) -> str:
        return key(self.prefix, "lease", o)

    def owned(self, o: Tag) -> str:
        return key(self.prefix, "owned", o)

    def cancels(self, o: Tag) -> str:
        return key(self.prefix, "cancels", o)

    def channel(self, o: Tag) -> str:
        return key(self.prefix, "cancel", o)


# ---------------------------------------------------------------- Lua (each touches one slot)

SAVE = """
-- KEYS: task, claim, events, emeta
-- ARGV: rest, history, artifacts, ts, ctx, state, seq, running, settle_ms, me, lease_ms
local running = ARGV[8] == '1'
local owner = ''
local cur = redis.call('GET', KEYS[2])
if running then
  if (not cur) or cur == ARGV[10] then
    redis.call('SET', KEYS[2], ARGV[10], 'PX', ARGV[11])
    owner = ARGV[10]
  else
    owner = cur
  end
elseif cur == ARGV[10] then
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'history', ARGV[2], 'artifacts', ARGV[3],
  'asize', #ARGV[3], 'ts', ARGV[4], 'ctx', ARGV[5], 'state', ARGV[6], 'seq', ARGV[7], 'owner', owner)
local settle = tonumber(ARGV[9])
if settle >= 0 then
  redis.call('PEXPIRE', KEYS[3], math.max(settle, 1))
  redis.call('PEXPIRE', KEYS[4], math.max(settle, 1))
else
  redis.call('PERSIST', KEYS[3])
  redis.call('PERSIST', KEYS[4])
end
return owner
"""

INDEX = """
-- KEYS: entries (hash), all, by context, by state, by context and state (one tenant's)
-- ARGV: task id, member
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cmsgpack.unpack(old)
  if o[1] == ARGV[2] and o[2] == KEYS[3] and o[3] == KEYS[4] and o[4] == KEYS[5] then
    return 0
  end
  redis.call('ZREM', KEYS[2], o[1])
  redis.call('ZREM', o[2], o[1])
  redis.call('ZREM', o[3], o[1])
  redis.call('ZREM', o[4], o[1])
end
for i = 2, 5 do
  redis.call('ZADD', KEYS[i], 0, ARGV[2])
end
redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack({ARGV[2], KEYS[3], KEYS[4], KEYS[5]}))
return 1
"""

PAGE = """
-- KEYS: one index. ARGV: lowest member ('-' or '[...'), highest ('+' or '(...'), count
-- The total and the page from one snapshot.
local total = redis.call('ZLEXCOUNT', KEYS[1], ARGV[1], '+')
local page = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[2], ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
table.insert(page, 1, total)
return page
"""

EVENTS = """
-- KEYS: events (stream), emeta. ARGV: max events, max bytes, then seq, body pairs (ascending)
-- Entry ids are 0-<seq>; an event at or below the last stored one (a write retried) is skipped.
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
local added = 0
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], '0-' .. ARGV[i], 'e', ARGV[i + 1])
    last = seq
    added = added + #ARGV[i + 1]
  end
end
redis.call('HSET', KEYS[2], 'last', last)
local bytes = redis.call('HINCRBY', KEYS[2], 'bytes', added)
local count = redis.call('XLEN', KEYS[1])
local maxlen, maxbytes = tonumber(ARGV[1]), tonumber(ARGV[2])
if count > maxlen or bytes > maxbytes then
  -- Drop the oldest while over either bound; the newest always stays.
  local drop, freed, keep = 0, 0, nil
  local from = '-'
  while not keep do
    local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 128)
    if #batch == 0 then break end
    for _, entry in ipairs(batch) do
      local left = count - drop
      if left > 1 and (left > maxlen or bytes - freed > maxbytes) then
        drop = drop + 1
        freed = freed + #entry[2][2]
      else
        keep = entry[1]
        break
      end
    end
    from = '(' .. batch[#batch][1]
  end
  if keep and drop > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', keep)
    redis.call('HINCRBY', KEYS[2], 'bytes', -freed)
  end
end
return last
"""

CLAIM = """
-- KEYS: claim, task. ARGV: me, lease_ms, an owner known dead ('' if none)
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and cur ~= ARGV[3] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'owner', ARGV[1])
end
return 1
"""

EXTEND = """
-- KEYS: claim. ARGV: me, lease_ms. 1 if the claim is still ours (extended), else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
-- KEYS: claim. ARGV: me.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

TAKE = """
-- KEYS: a set. Its members, and the set emptied.
local members = redis.call('SMEMBERS', KEYS[1])
redis.call('DEL', KEYS[1])
return members
"""

SCRIPTS = {"save": SAVE, "index": INDEX, "page": PAGE, "events": EVENTS, "claim": CLAIM}
SCRIPTS.update({"extend": EXTEND, "release": RELEASE, "take": TAKE})
