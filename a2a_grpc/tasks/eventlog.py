"""Numbered, replayable event logs of tasks, and who may slow the agent down.

Every event a task publishes (a status or artifact update) gets the next sequence number of
that task: 1, 2, 3... A task's :class:`TaskLog` keeps a window of its latest events, bounded by
:class:`Retention` (a number of events and of bytes, and a time after the task ends),
whoever reads it and whether anyone does. ``reader(after=N)`` gives every retained event after
position N, then the live ones, in order; a reader whose next event has already left the window
gets :class:`~a2a_grpc.errors.EventsNotRetainedError`, never a silent gap.

**Who may slow the agent.** One reader of a log may be its *primary* reader: the stream of the
call that started the task. Only it holds the producer back: before each event the producer
waits (:meth:`TaskLog.room`) while the primary reader has ``Backpressure.events`` events or
``Backpressure.bytes`` bytes unread, and once it waited, until the reader has read half of that,
so a slow caller pauses its own agent and memory stays bounded. Every other reader
(SubscribeToTask, a second stream) reads at its own pace, and one that falls behind the window
is ended with the typed error; none can stall the task.

**Durability.** A log may have a :class:`EventSink` (the SQLite store is one): each event is
handed to it as it is appended, and readers see an event only once the sink reports it stored
(:meth:`TaskLog.stored`), so nothing reaches a client that a crash could take back. Without a
sink an event is readable at once.

:class:`EventLog` is the protocol of a backend (where the logs of all tasks live);
:class:`InMemoryEventLog` is the one every backend starts from: the live window in memory, and
its sink, if any, for durability.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol, cast

from a2a_grpc import errors, types
from a2a_grpc.observability.metrics import EVENTS_NOT_RETAINED, SUBSCRIBER_LAG

__all__ = [
    "DEFAULT_BACKPRESSURE",
    "DEFAULT_RETENTION",
    "Backpressure",
    "EventLog",
    "EventSink",
    "InMemoryEventLog",
    "LogReader",
    "Retention",
    "SharedEventSink",
    "TaskLog",
]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of a task's log is kept for readers, whoever reads it."""

    events: int = 1024
    """The latest this many events."""
    bytes: int = 16 * MiB
    """At most this many bytes of them (serialized size); the newest event is always kept."""
    terminal_seconds: float = 30.0
    """How long a log stays once no run uses it (its task ended, or waits unwatched), for a reader
    that left before the end to come back (a log that no reader left early goes at once)."""

    def __post_init__(self) -> None:
        if self.events < 1 or self.bytes < 1 or self.terminal_seconds < 0:
            raise ValueError(f"retention needs events >= 1, bytes >= 1, terminal_seconds >= 0: {self}")


@dataclass(frozen=True, slots=True)
class Backpressure:
    """How far the primary reader (the caller's own stream) may lag before the agent waits."""

    events: int = 256
    bytes: int = 8 * MiB

    def __post_init__(self) -> None:
        if self.events < 1 or self.bytes < 1:
            raise ValueError(f"backpressure needs events >= 1 and bytes >= 1: {self}")

    def check_within(self, retention: Retention) -> None:
        """The primary reader must never fall out of the window: its allowance fits in it."""
        if self.events > retention.events or self.bytes > retention.bytes:
            raise ValueError(
                f"the stream window ({self.events} events, {self.bytes} bytes) must fit in the "
                f"retained window ({retention.events} events, {retention.bytes} bytes)"
            )


DEFAULT_RETENTION = Retention()
DEFAULT_BACKPRESSURE = Backpressure()
"""The defaults, written once: ``ServerSettings`` reads its own from these."""


class _Entry(NamedTuple):
    seq: int
    event: types.StreamResponse
    size: int


_new_entry = tuple.__new__  # _Entry(...) without NamedTuple's keyword handling, on the hot path


class EventSink(Protocol):
    """Where a log's events are made durable, in order; :meth:`TaskLog.stored` reports progress."""

    def submit(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
        """Store event ``seq`` of ``log`` (soon; call ``log.stored(seq)`` once it is)."""
        ...

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        """The stored events of a task after position ``seq``, in order."""
        ...


class SharedEventSink(EventSink, Protocol):
    """A sink other processes read (Redis): what one replica stores, the others follow live.

    A replica that serves a task another replica runs (SubscribeToTask, a stream resumed on it)
    reads the task's events through :meth:`follow`."""

    def follow(
        self, tenant: str, task_id: str, after: int
    ) -> AsyncIterator[tuple[int, types.StreamResponse]]:
        """The stored events of a task after position ``after``, in order, then each one as it is
        stored, until the reader stops (it stops at the task's final status); ends with
        :class:`~a2a_grpc.errors.EventsNotRetainedError` when event ``after + 1`` is no longer kept."""
        ...


class TaskLog:
    """The retained window of one task's events, its readers, and its primary reader's hold."""

    __slots__ = (
        "_entries",
        "_primary",
        "_room",
        "_waiters",
        "abandoned",
        "appended_bytes",
        "backpressure",
        "closed",
        "error",
        "first",
        "last",
        "read",
        "retained_bytes",
        "retention",
        "sink",
        "task_id",
        "tenant",
        "visible",
    )

    def __init__(
        self,
        tenant: str,
        task_id: str,
        retention: Retention,
        backpressure: Backpressure,
        *,
        last_seq: int = 0,
        sink: EventSink | None = None,
    ) -> None:
        self.tenant = tenant
        self.task_id = task_id
        self.retention = retention
        self.backpressure = backpressure
        self.sink = sink
        self._entries: deque[_Entry] = deque()
        self.first = last_seq + 1
        """Position of the oldest retained event (``last + 1`` when none is retained)."""
        self.last = last_seq
        """Position of the newest event appended."""
        self.visible = last_seq
        """Position of the newest event readers may see (stored, where there is a sink)."""
        self.retained_bytes = 0
        self.appended_bytes = 0
        self.closed = False
        """The task is terminal: no event will follow ``last``."""
        self.error: Exception | None = None
        """Why the log cannot go on (its sink failed): readers raise it."""
        self.read = False
        """Whether any reader ever read this log (one that never was has nobody to come back)."""
        self.abandoned = False
        """Whether a reader left before the end: it may come back for what it missed."""
        self._waiters: list[asyncio.Future[None]] = []
        self._primary: LogReader | None = None
        self._room: asyncio.Future[None] | None = None

    # -- writing ------------------------------------------------------------------------------------

    def append(self, event: types.StreamResponse, size: int) -> int:
        """Number ``event`` (``size``: its serialized bytes), keep it, hand it to the sink; its seq."""
        if self.closed:
            raise RuntimeError(f"task {self.task_id}: its log is closed, it takes no more events")
        # The hot path of every event: plain tuples, and the trim only when a bound is passed.
        seq = self.last + 1
        self.last = seq
        entries = self._entries
        entries.append(_new_entry(_Entry, (seq, event, size)))
        self.retained_bytes += size
        self.appended_bytes += size
        retention = self.retention
        if len(entries) > retention.events or self.retained_bytes > retention.bytes:
            self._trim()
        if self.sink is not None:
            self.sink.submit(self, seq, event)
        else:
            self.visible = seq
            if self._waiters:
                self._wake()
        return seq

    def mirror(self, seq: int, event: types.StreamResponse, size: int) -> None:
        """Keep event ``seq`` that another process appended and stored (a follower's log, see
        ``a2a_grpc._runs``): readable at once, never handed to the sink again."""
        if seq != self.last + 1:
            raise ValueError(f"task {self.task_id}: event {seq} does not follow event {self.last}")
        self.last = self.visible = seq
        entries = self._entries
        entries.append(_new_entry(_Entry, (seq, event, size)))
        self.retained_bytes += size
        self.appended_bytes += size
        retention = self.retention
        if len(entries) > retention.events or self.retained_bytes > retention.bytes:
            self._trim()
        if self._waiters:
            self._wake()

    def stored(self, seq: int) -> None:
        """The sink stored every event up to ``seq``: readers may see them."""
        if seq > self.visible:
            self.visible = min(seq, self.last)
            self._wake()

    def fail(self, error: Exception) -> None:
        """The log cannot go on (an event was not stored): every reader and waiter raises ``error``."""
        if self.error is None:
            self.error = error
        self._wake()

    def close(self) -> None:
        """No more events (the task is terminal): readers end once they have read what there is."""
        self.closed = True
        if self._waiters:
            self._wake()

    def holding(self) -> bool:
        """Whether the primary reader has its allowance unread: :meth:`room` would wait."""
        primary = self._primary
        return primary is not None and self._lagging(primary)

    async def room(self) -> None:
        """Wait while the primary reader has its allowance unread (the only backpressure)."""
        while (primary := self._primary) is not None and self._lagging(primary):
            if self._room is None:
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)

    def _lagging(self, reader: LogReader) -> bool:
        allowance = self.backpressure
        return (
            self.last - reader.pos >= allowance.events
            or self.appended_bytes - reader.read_bytes >= allowance.bytes
        )

    def _trim(self) -> None:
        retention = self.retention
        entries = self._entries
        # What the primary reader (the stream of the call that started the task) has yet to read
        # stays: backpressure bounds it (its allowance, which fits the retention, plus one event),
        # and cutting it would end the caller's own stream because one event was large.
        primary = self._primary
        unread = self.last + 1 if primary is None else primary.pos + 1
        while len(entries) > retention.events or (self.retained_bytes > retention.bytes and len(entries) > 1):
            if entries[0].seq >= unread:
                break
            dropped = entries.popleft()
            self.retained_bytes -= dropped.size
            self.first = dropped.seq + 1

    async def durable(self, seq: int) -> None:
        """Wait until every event up to ``seq`` is visible (stored)."""
        while self.visible < seq:
            if self.error is not None:
                raise self.error
            await self.changed()

    # -- reading ------------------------------------------------------------------------------------

    def reader(self, after: int, *, primary: bool = False) -> LogReader:
        """Events after position ``after``, then live ones. The primary reader holds the producer."""
        reader = LogReader(self, after)
        self.read = True
        if primary:
            if self._primary is not None:
                raise RuntimeError(f"task {self.task_id} already has a primary reader")
            self._primary = reader
        return reader

    def entry(self, seq: int) -> _Entry:
        return self._entries[seq - self.first]

    def retained_after(self, seq: int) -> list[tuple[int, types.StreamResponse]] | None:
        """The events after ``seq`` that are visible, or None if the window no longer reaches back."""
        if seq + 1 < self.first:
            return None
        return [(e.seq, e.event) for e in self._entries if seq < e.seq <= self.visible]

    def changed(self) -> asyncio.Future[None]:
        """A future that completes at the next event, store progress or close (one per waiter,
        so a reader cancelled while waiting cancels nobody else's wait)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _read(self, reader: LogReader) -> None:
        """The primary reader moved on: a waiting producer resumes once it has read half its
        allowance (not after every event: the producer then writes in runs, and a sink stores
        them in runs, instead of one event per wake-up and per transaction)."""
        if reader is self._primary and self._room is not None:
            allowance = self.backpressure
            if (
                self.last - reader.pos <= allowance.events // 2
                and self.appended_bytes - reader.read_bytes <= allowance.bytes // 2
            ):
                self._room.set_result(None)
                self._room = None

    def _release(self, reader: LogReader) -> None:
        if reader is self._primary:
            self._primary = None
            if self._room is not None:
                self._room.set_result(None)
                self._room = None


class LogReader:
    """One reader of a :class:`TaskLog`: iterate it (``async for seq, event in reader``), close it."""

    __slots__ = ("_closed", "_log", "pos", "read_bytes")

    def __init__(self, log: TaskLog, after: int) -> None:
        self._log = log
        self.pos = after
        """The position of the last event read."""
        self.read_bytes = log.appended_bytes if after >= log.last else 0
        self._closed = False

    def __aiter__(self) -> AsyncIterator[tuple[int, types.StreamResponse]]:
        return cast("AsyncIterator[tuple[int, types.StreamResponse]]", _walk(self, numbered=True))

    def events(self) -> AsyncIterator[types.StreamResponse]:
        """The events alone, in order (what a stream sends)."""
        return cast("AsyncIterator[types.StreamResponse]", _walk(self, numbered=False))

    def _lost(self) -> errors.EventsNotRetainedError:
        log = self._log
        EVENTS_NOT_RETAINED.inc()
        return errors.EventsNotRetainedError(
            f"task {errors.echo(log.task_id)}: events {self.pos + 1} to {log.first - 1} are no longer "
            f"retained (the reader fell behind the last {log.retention.events} events or "
            f"{log.retention.bytes} bytes); read the task and subscribe again",
            metadata={"task_id": log.task_id, "position": self.pos, "oldest_retained": log.first},
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            log = self._log
            if not log.closed or self.pos < log.last:
                log.abandoned = True
            log._release(self)


async def _walk(reader: LogReader, *, numbered: bool) -> AsyncIterator[object]:
    """Every event after the reader's position, then live ones, as ``(seq, event)`` pairs or events
    alone (the hot loop of every reader: one generator, no second one to reshape what it yields)."""
    log = reader._log
    primary = reader is log._primary
    lag = SUBSCRIBER_LAG.observe  # of the other readers: the primary one is held, never far behind
    while not reader._closed:
        if log.error is not None:
            raise log.error
        pos = reader.pos
        if pos < log.visible:
            if pos + 1 < log.first:
                raise reader._lost()
            entry = log._entries[pos + 1 - log.first]
            reader.pos = entry.seq
            reader.read_bytes += entry.size
            if primary:
                log._read(reader)
            else:
                lag(log.visible - entry.seq)
            yield (entry.seq, entry.event) if numbered else entry.event
        elif log.closed and log.visible >= log.last:
            return
        else:
            await log.changed()


class EventLog(Protocol):
    """Where the logs of all tasks live (one backend; see the module doc)."""

    def open(self, tenant: str, task_id: str, *, last_seq: int = 0) -> TaskLog:
        """The live log of a task, created at position ``last_seq`` if it is not open yet."""
        ...

    def get(self, tenant: str, task_id: str) -> TaskLog | None:
        """The live log of a task, if it is open."""
        ...

    def finish(self, log: TaskLog) -> None:
        """``log``'s task is terminal: close the log (:meth:`release` it when no run uses it)."""
        ...

    def release(self, log: TaskLog) -> None:
        """No run uses ``log`` any more: drop it after ``Retention.terminal_seconds`` unless reopened
        (at once if no reader left before its end: nobody will come back for it)."""
        ...

    def discard(self, log: TaskLog) -> None:
        """Drop ``log`` now, whoever reads it (its readers were ended): the next :meth:`open` of its
        task starts a new one (a follower whose log fell behind, see ``a2a_grpc._runs``)."""
        ...

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        """The events of a task after ``seq`` that survive the process (recovery); [] without a sink."""
        ...

    async def close(self) -> None: ...


class InMemoryEventLog:
    """Logs in memory, made durable by ``sink`` when one is given (see :mod:`a2a_grpc.tasks.sqlite`)."""

    def __init__(
        self,
        retention: Retention | None = None,
        backpressure: Backpressure | None = None,
        *,
        sink: EventSink | None = None,
    ) -> None:
        self.retention = retention or Retention()
        self.backpressure = backpressure or Backpressure()
        self.backpressure.check_within(self.retention)
        self.sink = sink
        self._logs: dict[tuple[str, str], TaskLog] = {}
        self._expiries: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def open(self, tenant: str, task_id: str, *, last_seq: int = 0) -> TaskLog:
        key = (tenant, task_id)
        log = self._logs.get(key)
        if log is None:
            log = TaskLog(
                tenant, task_id, self.retention, self.backpressure, last_seq=last_seq, sink=self.sink
            )
            self._logs[key] = log
        expiry = self._expiries.pop(key, None)
        if expiry is not None:  # in use again
            expiry.cancel()
        return log

    def get(self, tenant: str, task_id: str) -> TaskLog | None:
        return self._logs.get((tenant, task_id))

    def finish(self, log: TaskLog) -> None:
        log.close()

    def release(self, log: TaskLog) -> None:
        key = (log.tenant, log.task_id)
        if key in self._expiries or self._logs.get(key) is not log:
            return
        if not log.abandoned:  # every reader read to the end, or there was none: nobody comes back
            del self._logs[key]
            return
        loop = asyncio.get_running_loop()
        self._expiries[key] = loop.call_later(self.retention.terminal_seconds, self._expire, key, log)

    def discard(self, log: TaskLog) -> None:
        key = (log.tenant, log.task_id)
        if self._logs.get(key) is log:
            del self._logs[key]
            expiry = self._expiries.pop(key, None)
            if expiry is not None:
                expiry.cancel()

    def _expire(self, key: tuple[str, str], log: TaskLog) -> None:
        self._expiries.pop(key, None)
        if self._logs.get(key) is log:
            del self._logs[key]

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        return [] if self.sink is None else await self.sink.stored_after(tenant, task_id, seq)

    async def close(self) -> None:
        for handle in self._expiries.values():
            handle.cancel()
        self._expiries.clear()
        self._logs.clear()

    def open_logs(self) -> int:
        """How many task logs are in memory (for tests and metrics)."""
        return len(self._logs)
