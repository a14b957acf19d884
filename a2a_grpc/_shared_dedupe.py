"""Repeated messages across replicas: the receipts of :mod:`a2a_grpc._dedupe`, also kept in Redis, so
that a SendMessage sent again to another replica (a client retrying through a load balancer) is
answered from the first receipt instead of running twice.

A receipt is one Redis string, ``<prefix>:dedupe:{<owner>:<message_id>}``, written with ``SET NX``
by the replica that receives the message first:

* ``P|<digest>|<replica>``: being started there; it lives ``Limits.dedupe_pending_seconds``,
  renewed by that replica every third of it until it knows the outcome, so the receipt of a
  replica that died lapses (and a repeat then runs as a first receipt: nothing came of the first);
* ``T|<digest>|<task id>``: it became that task, read by the repeat from the shared store;
* ``M|<digest>|<message>``: it was answered directly with that message (protobuf bytes);
* ``L|<digest>|``: it was answered directly with a message over ``Limits.max_shared_reply_bytes``.

Decided receipts live ``Limits.dedupe_window_seconds``. ``<digest>`` is a hash of the fields a
repeat must share with the first (task, context, role, number of parts): a different message under
the same id is refused as in one process.

A repeat that finds a receipt being started elsewhere polls it (from 20 ms, doubling up to 0.5 s)
for at most ``dedupe_pending_seconds``, then gets UnavailableError (retryable): it never runs
twice. A receipt that cannot be read (bytes we never write) is replaced, atomically, by the new
receipt (logged); one larger than any we write is refused (InternalError naming it).

The replica that received a message first also remembers it in memory, as a single process does,
and answers its own repeats from there (no Redis round trip). While Redis does not answer,
``Limits.redis_unreachable`` decides: ``local`` remembers in memory only (a repeat reaching
another replica may then run again), ``refuse`` refuses the message (UnavailableError).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from a2a_grpc import errors, types
from a2a_grpc._dedupe import Earlier, Receipt, Repeats, _Entry, _Shape
from a2a_grpc._validation import invalid
from a2a_grpc.redisconn import RedisTarget, key, tag
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shared import REDIS_ERRORS, Outage, redis_client

if TYPE_CHECKING:
    from a2a_grpc.tasks.run import TaskRun

__all__ = ["SharedRepeats"]

log = logging.getLogger("a2a_grpc.handler")

_PENDING, _TASK, _REPLY, _LARGE = b"P", b"T", b"M", b"L"
_POLL_FIRST, _POLL_MOST = 0.02, 0.5
_HEADER = 64
"""Room for a receipt's kind and digest (and a replica id) beside its payload."""

# Reads a receipt, unless it is larger than any we write: its length then (a hostile value is
# never carried over the network whole).
_READ = """
local n = redis.call('STRLEN', KEYS[1])
if n == 0 and redis.call('EXISTS', KEYS[1]) == 0 then return false end
if n > tonumber(ARGV[1]) then return n end
return redis.call('GET', KEYS[1])
"""
# Changes a receipt only if it still holds ARGV[1]: the pending one this replica wrote, or the
# unreadable bytes it read (so that two replicas never both take the message for theirs).
_IF_SAME = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'set' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
elseif ARGV[2] == 'expire' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


def _digest(shape: _Shape) -> bytes:
    return hashlib.blake2b(repr(shape).encode(), digest_size=16).hexdigest().encode()


class SharedRepeats(Repeats):
    """:class:`~a2a_grpc._dedupe.Repeats` whose receipts are also kept in Redis (see the module doc)."""

    def __init__(self, limits: Limits, target: RedisTarget) -> None:
        super().__init__(limits)
        self.target = target
        self.outage = Outage("receipts", target, limits)
        self.replica = uuid.uuid4().hex.encode()
        self._closed = False
        self._client: Any = None
        self._read: Any = None
        self._if_same: Any = None
        self._mine: dict[tuple[str, str], bytes] = {}
        """The pending receipts this replica wrote, by key, until it knows their outcome."""
        self._writes: set[asyncio.Task[None]] = set()
        self._pending_ms = limits.dedupe_pending_seconds * 1000
        self._window_ms = limits.dedupe_window_seconds * 1000
        self._largest = limits.max_shared_reply_bytes + _HEADER

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.target, self.limits)
            self._read = self._client.register_script(_READ)
            self._if_same = self._client.register_script(_IF_SAME)
        return self._client

    def _key(self, key_: tuple[str, str]) -> str:
        return key(self.target.prefix, "dedupe", tag(*key_))

    async def receive(self, owner: str, message: types.Message) -> Receipt:
        if not message.message_id or (owner, message.message_id) in self._entries:
            return await super().receive(owner, message)
        outage = self.outage
        if not outage.skip():
            try:
                receipt = await self._shared(owner, message)
            except REDIS_ERRORS as exc:
                outage.failed(exc)
            else:
                outage.answered()
                return receipt
        outage.decide()  # UnavailableError under "refuse"
        return await super().receive(owner, message)

    async def _shared(self, owner: str, message: types.Message) -> Receipt:
        key_ = (owner, message.message_id)
        shape = (message.task_id, message.context_id, message.role, len(message.parts))
        digest = _digest(shape)
        mine = b"|".join((_PENDING, digest, self.replica))
        redis_key = self._key(key_)
        client = self.client
        waited, delay = 0.0, _POLL_FIRST
        while True:
            if key_ in self._entries:  # received here meanwhile: answered from memory
                return await super().receive(owner, message)
            if await client.set(redis_key, mine, nx=True, px=self._pending_ms):
                return await self._first(owner, message, mine)
            value = await self._read(keys=[redis_key], args=[self._largest])
            if value is None:
                continue  # gone meanwhile (the first failed, or lapsed): try to be the first
            if isinstance(value, int):
                raise errors.InternalError(
                    f"the receipt of message {errors.echo(message.message_id)} in Redis is not one of "
                    f"this server's ({value} bytes); it is forgotten after dedupe_window_seconds"
                )
            kind, _, rest = value.partition(b"|")
            their_digest, _, payload = rest.partition(b"|")
            earlier: str | types.Message | None = None
            if kind in (_PENDING, _TASK, _REPLY, _LARGE) and len(their_digest) == len(digest):
                if their_digest != digest:
                    raise invalid(
                        "message.message_id",
                        f"{errors.echo(message.message_id)} was used by another message within the last "
                        f"{self.limits.dedupe_window_seconds} s (dedupe_window_seconds): ids must be unique",
                    )
                if kind == _PENDING:
                    if waited >= self.limits.dedupe_pending_seconds:
                        raise errors.UnavailableError(
                            f"message {errors.echo(message.message_id)} is still being started by another "
                            "replica; try again shortly (it will not run twice)"
                        )
                    await asyncio.sleep(delay)
                    waited += delay
                    delay = min(delay * 2, _POLL_MOST)
                    continue
                if kind == _LARGE:
                    raise errors.LimitExceededError(
                        f"message {errors.echo(message.message_id)} was answered directly by another replica "
                        f"with a reply over max_shared_reply_bytes ({self.limits.max_shared_reply_bytes}), "
                        "which is not kept; it is not run twice: send a new message for a new answer",
                        limit="max_shared_reply_bytes",
                        value=self.limits.max_shared_reply_bytes,
                    )
                earlier = _outcome(kind, payload)
            if earlier is None:
                log.warning(
                    "the receipt of a message in Redis (%s) is not one of this server's; "
                    "replacing it with this receipt",
                    redis_key,
                )
                if await self._if_same(keys=[redis_key], args=[value, "set", mine, self._pending_ms]):
                    return await self._first(owner, message, mine)
                continue
            receipt = Receipt(None, key_, None)
            receipt.earlier = Earlier(earlier, None, remote=True)
            return receipt

    async def _first(self, owner: str, message: types.Message, mine: bytes) -> Receipt:
        """This replica holds the pending receipt: remember it here too, and keep it alive in
        Redis until its outcome is known."""
        receipt = await super().receive(owner, message)
        key_ = (owner, message.message_id)
        self._mine[key_] = mine
        loop = asyncio.get_running_loop()
        loop.call_later(self._pending_ms / 3000, self._renew, key_, mine)
        return receipt

    def _renew(self, key_: tuple[str, str], mine: bytes) -> None:
        if self._closed or self._mine.get(key_) is not mine:
            return  # decided, or dropped
        self._write(key_, [mine, "expire", b"", self._pending_ms])
        asyncio.get_running_loop().call_later(self._pending_ms / 3000, self._renew, key_, mine)

    def known(
        self, key: tuple[str, str], entry: _Entry, first: asyncio.Future[types.Message | TaskRun]
    ) -> None:
        super().known(key, entry, first)
        mine = self._mine.pop(key, None)
        if mine is None or first.cancelled() or first.exception() is not None:
            return  # not ours in Redis, or dropped (by super().known)
        result = first.result()
        digest = _digest(entry.shape)
        if isinstance(result, types.Message):
            payload = result.SerializeToString()
            if len(payload) > self.limits.max_shared_reply_bytes:
                value = b"|".join((_LARGE, digest, b""))
            else:
                value = b"|".join((_REPLY, digest, payload))
        else:
            value = b"|".join((_TASK, digest, result.task.id.encode()))
        self._write(key, [mine, "set", value, self._window_ms])

    def drop(self, key: tuple[str, str], entry: _Entry) -> None:
        super().drop(key, entry)
        mine = self._mine.pop(key, None)
        if mine is not None:  # the first failed: a repeat anywhere is a first receipt again
            self._write(key, [mine, "del", b"", 0])

    def _write(self, key_: tuple[str, str], args: list[Any]) -> None:
        if self._closed:
            return  # the pending receipt lapses on its own
        task = asyncio.get_running_loop().create_task(self._written(self._key(key_), args))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _written(self, redis_key: str, args: list[Any]) -> None:
        try:
            await self._if_same(keys=[redis_key], args=args)
        except REDIS_ERRORS as exc:
            # The pending receipt lapses on its own; meanwhile a repeat elsewhere waits, then is
            # told to try again: never run twice.
            self.outage.failed(exc)
        else:
            self.outage.answered()

    async def aclose(self) -> None:
        """Finish the receipts being written, and close the client."""
        self._closed = True
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _outcome(kind: bytes, payload: bytes) -> str | types.Message | None:
    """A decided receipt's task id or reply; None if its payload cannot be read."""
    if kind == _TASK:
        try:
            task_id = payload.decode()
        except UnicodeDecodeError:
            return None
        return task_id or None
    try:
        return types.Message.FromString(payload)
    except DecodeError:
        return None
