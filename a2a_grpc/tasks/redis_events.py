"""Task events in Redis Streams: durable for the replica that runs the task, live for the others.

One stream per task (``<prefix>:events:{tenant:task}``), each event one entry whose id is
``0-<seq>``, so that a range by id is a range by sequence number. What it guarantees:

* **Nothing lost silently.** :meth:`RedisEventSink.submit` queues the event in the store's write
  queue (one pipeline per batch, with the snapshots: see :mod:`a2a_grpc.tasks.redis_store`); the
  log's readers see it once Redis has it (``log.stored``), and when the write fails every reader of
  the log ends with the error (``log.fail``), logged.
* **In order, once.** A task's events are written in order by its owner; an event at or below the
  last one stored (a write retried) is skipped, never stored twice.
* **Retention in Redis** (the log's :class:`~a2a_grpc.tasks.eventlog.Retention`): at most
  ``events`` entries and ``bytes`` bytes of events (the oldest go first, the newest always stays),
  trimmed by the script that adds them; and once the task is settled (terminal, or waiting for
  input), the stream lives ``terminal_seconds`` more (EXPIRE; a task that runs again keeps it).
  Unlike the SQLite store, the events a snapshot covers are not deleted with its save: followers on
  other replicas read them; the retention bounds them.
* **Followers never see a gap.** :meth:`RedisEventSink.follow` gives the events after a position,
  then each new one as it is stored (``XREAD BLOCK``, a bounded block in a loop, so a cancelled
  follower ends within one block time and its connection goes back to the pool); when the event
  after the position is no longer kept (trimmed, expired) it ends with
  :class:`~a2a_grpc.errors.EventsNotRetainedError`, and an entry that is not an event ends it with
  :class:`~a2a_grpc.errors.InternalError` naming the task.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError

from a2a_grpc import errors, types
from a2a_grpc.observability.metrics import EVENTS_NOT_RETAINED
from a2a_grpc.tasks.eventlog import TaskLog

if TYPE_CHECKING:
    from a2a_grpc.tasks.redis_store import RedisTaskStore

__all__ = ["FOLLOW_BLOCK_SECONDS", "RedisEventSink"]

FOLLOW_BLOCK_SECONDS = 1.0
"""How long one ``XREAD BLOCK`` of a follower waits before it looks again (well under the socket
timeout, so a quiet task is never taken for a dead Redis)."""
_BATCH = 256


class RedisEventSink:
    """The store as a :class:`~a2a_grpc.tasks.eventlog.SharedEventSink` (see the module doc)."""

    def __init__(self, store: RedisTaskStore, *, block_seconds: float = FOLLOW_BLOCK_SECONDS) -> None:
        self._store = store
        self.block_seconds = block_seconds

    def submit(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
        self._store.submit_event(log, seq, event)

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> builtins.list[tuple[int, types.StreamResponse]]:
        """The stored events after ``seq``, in order, from the first one kept after it on (a run of
        consecutive positions, as the SQLite store gives)."""
        store = self._store
        store._check_open()
        await store._written(tenant, task_id)
        name = store.keys.events(store.keys.task_tag(tenant, task_id))
        with store.talking(f"reading the events of task {task_id!r}"):
            entries = await store.client.xrange(name, f"({_id(seq)}", "+")
        out: builtins.list[tuple[int, types.StreamResponse]] = []
        for entry_id, fields in entries:
            n, event = self._decode(tenant, task_id, entry_id, fields)
            if out and n != out[-1][0] + 1:
                break
            out.append((n, event))
        return out

    async def follow(
        self, tenant: str, task_id: str, after: int
    ) -> AsyncIterator[tuple[int, types.StreamResponse]]:
        store = self._store
        store._check_open()
        t = store.keys.task_tag(tenant, task_id)
        name, meta, record = store.keys.events(t), store.keys.emeta(t), store.keys.task(t)
        block = max(1, int(self.block_seconds * 1000))
        pos = after
        while True:
            with store.talking(f"following the events of task {task_id!r}"):
                answer: Any = await store.followers.xread({name: _id(pos)}, count=_BATCH, block=block)
            entries = answer[0][1] if answer else []
            if not entries:
                # Nothing newer: is that because what follows ``pos`` is gone (the stream expired)?
                with store.talking(f"following the events of task {task_id!r}"):
                    last, snapshot = await store.pipeline(
                        lambda pipe, _: (pipe.hget(meta, "last"), pipe.hget(record, "seq"))
                    )
                newest = max(_int(last), _int(snapshot))
                if newest > pos and not await store.client.exists(name):
                    raise self._lost(task_id, pos, newest + 1)
                continue
            for entry_id, fields in entries:
                n, event = self._decode(tenant, task_id, entry_id, fields)
                if n != pos + 1:
                    raise self._lost(task_id, pos, n)
                pos = n
                yield n, event

    def _decode(
        self, tenant: str, task_id: str, entry_id: bytes, fields: dict[bytes, bytes]
    ) -> tuple[int, types.StreamResponse]:
        try:
            major, _, minor = entry_id.decode().partition("-")
            if major != "0":
                raise ValueError(f"entry id {entry_id!r} is not one of ours")
            return int(minor), types.StreamResponse.FromString(fields[b"e"])
        except (DecodeError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise self._store.damaged(tenant, task_id, "event", exc) from None

    def _lost(self, task_id: str, pos: int, first: int) -> errors.EventsNotRetainedError:
        EVENTS_NOT_RETAINED.inc()
        return errors.EventsNotRetainedError(
            f"task {errors.echo(task_id)}: events {pos + 1} to {first - 1} are no longer retained "
            "(trimmed by the retention, or expired after the task settled); read the task and "
            "subscribe again",
            metadata={"task_id": task_id, "position": pos, "oldest_retained": first},
        )


def _id(seq: int) -> str:
    return f"0-{seq}"


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
