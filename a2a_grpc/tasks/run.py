"""A live task: the events its agent reports, applied to its snapshot and published to its log.

A :class:`TaskRun` exists for each task that is being worked on or watched in this process. It
does one thing: apply events. A status change is checked against the lifecycle, applied to the
snapshot, numbered and appended to the task's :class:`~a2a_grpc.tasks.eventlog.TaskLog`, handed
to the push notifier and saved; an artifact update is applied (within the retention cap below)
and appended. Readers read the log, not the run; executions (``a2a_grpc._execution``) and the
handler that owns runs live apart and only call in.

The snapshot keeps a task's artifact content up to ``retain_bytes``. Content beyond it still
reaches every reader and webhook, but is not kept: a task that large could not be sent back by
GetTask anyway (it would exceed the message size limit). The artifact's metadata then says how
many bytes were not kept (``a2a-grpc/unretained-bytes``), and a warning is logged: never silent.

Snapshots are saved at every status change, and between them whenever the events appended since
the last save reach half the log's retained window: a store that keeps the events too (SQLite)
can then rebuild the task after a crash from the last snapshot and the events after it, with
every part any client was sent (see ``a2a_grpc.tasks.sqlite``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from a2a_grpc import errors, types
from a2a_grpc.tasks.eventlog import EventLog, LogReader, TaskLog
from a2a_grpc.tasks.lifecycle import INTERRUPTED_STATES, TERMINAL_STATES, check_transition, state_name
from a2a_grpc.tasks.store import STORED

if TYPE_CHECKING:
    from a2a_grpc.tasks.store import TaskStore

__all__ = [
    "DEFAULT_RETAIN_BYTES",
    "UNRETAINED_KEY",
    "Notifier",
    "StoredBytes",
    "Subscription",
    "TaskRun",
    "apply_event",
]

log = logging.getLogger("a2a_grpc.tasks")
UNRETAINED_KEY = "a2a-grpc/unretained-bytes"
"""Artifact metadata key: bytes of content streamed but not kept in the task (see the module doc)."""
MiB = 1024 * 1024
DEFAULT_RETAIN_BYTES = 16 * MiB
"""Artifact content a task's snapshot keeps by default (see the module doc)."""
_STATUS_SIZE = 64
"""What a status update without a message is counted as (its serialized size, near enough)."""


class Notifier(Protocol):
    """What delivers a task's events to its webhooks (``a2a_grpc.push.PushNotifier``)."""

    def notify(self, config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> None: ...


class StoredBytes(Protocol):
    """What bounds the bytes tasks keep in the store (``a2a_grpc.security.quota.StoredBytesQuota``)."""

    def grow(self, owner: str, held: int, size: int, *, force: bool = False) -> None:
        """Count ``size`` more bytes for a task of ``owner`` that holds ``held``; LimitExceededError
        naming the bound it would pass (never with ``force``: a final status is always recorded)."""


class Subscription:
    """A snapshot of the task and a reader of its log from the snapshot's position on."""

    __slots__ = ("_run", "reader", "seq", "snapshot")

    def __init__(self, run: TaskRun, reader: LogReader, snapshot: types.Task, seq: int) -> None:
        self._run = run
        self.reader = reader
        self.snapshot = snapshot
        self.seq = seq

    async def start(self) -> types.Task:
        """The snapshot, once what it holds is stored (nothing reaches a client a crash could undo)."""
        await self._run.durable(self.seq)
        return self.snapshot

    def events(self) -> AsyncIterator[types.StreamResponse]:
        """The events after the snapshot, as they come (the reader's own iteration: no extra hop)."""
        return self.reader.events()

    def numbered(self) -> AsyncIterator[tuple[int, types.StreamResponse]]:
        """The same, each with its number in the task's event log."""
        return aiter(self.reader)

    def close(self) -> None:
        self.reader.close()
        self._run._unsubscribe(self)


class TaskRun:
    """The live state of one task. Created and looked up by the RequestHandler only."""

    def __init__(
        self,
        tenant: str,
        task: types.Task,
        store: TaskStore,
        events: EventLog,
        on_idle: Callable[[TaskRun], None],
        *,
        notifier: Notifier | None = None,
        push_configs: list[types.TaskPushNotificationConfig] | None = None,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
        max_history: int | None = None,
        max_artifact_update_bytes: int | None = None,
        last_seq: int = 0,
        stored: StoredBytes | None = None,
    ) -> None:
        self.tenant = tenant
        self.stored = stored
        self.stored_bytes = task.ByteSize() if stored is not None else 0
        """What the task's record holds, near enough (history, kept artifacts, metadata), when
        ``stored`` bounds it: measured once, then grown by what is added."""
        self.task = task
        self.store = store
        self.events = events
        self.log: TaskLog = events.open(tenant, task.id, last_seq=last_seq)
        self.notifier = notifier
        self.push_configs = list(push_configs) if push_configs else []
        self.retain_bytes = retain_bytes
        self.max_history = max_history
        """Messages the snapshot's history keeps, the most recent (``Limits.max_history_length``);
        None: all. Older ones leave the snapshot; their events stay in the log while retained."""
        self.max_artifact_update_bytes = max_artifact_update_bytes
        """The largest artifact update taken (``ServerSettings.max_send_message_bytes``: a larger one
        could reach no gRPC reader); None: any. Every copy of one is a single call that holds the
        event loop (protobuf copies bytes fields whole), so this also bounds how long it is held."""
        self.retained = sum(a.ByteSize() for a in task.artifacts) if task.artifacts else 0
        """Artifact bytes the snapshot keeps (an upper bound: parts are counted as they arrive)."""
        self.saved_seq = self.log.last
        """The position of the last snapshot saved."""
        self._unsaved_bytes = 0
        self.subscribers: set[Subscription] = set()
        self.holders: set[object] = set()
        """What keeps the run in memory besides its subscribers (executions working on it)."""
        self.listeners: list[Callable[[int], None]] = []
        """Called with the new state after each status change (executions watch for rest)."""
        self.created: Awaitable[None] | None = None
        """The save of the task's first snapshot, for a task created here (see :meth:`durable`)."""
        self.owned = True
        """Whether this process's copy is the task's truth: the run of a process that runs the task
        (or the only process). False for a *follower* (``a2a_grpc._runs``): a replica's copy of a
        task another replica may run, which only mirrors the events that one stores."""
        self.claimed = False
        """Whether this process claimed the task in the registry itself (``Runs.take``), so releases
        it itself; a task created here is claimed and released by the store's saves."""
        self.at_rest: Callable[[TaskRun], None] | None = None
        """Called when the last holder lets go (replicas: the claim on the task is released then)."""
        self.on_watch: Callable[[TaskRun], None] | None = None
        """Called when a follower gets a subscriber (replicas: it starts following the task)."""
        self.follow_job: asyncio.Task[None] | None = None
        """What mirrors another replica's events into this follower, while it does."""
        self.unmerged = False
        """A follower mirrored the task leaving input-required: the message that continued it is in
        the stored snapshot, not here (``Runs.refresh`` merges it before a new reader reads)."""
        self._on_idle = on_idle
        if self.finished:
            events.finish(self.log)

    def remember(self, message: types.Message) -> None:
        """Add a message to the task's history, keeping the ``max_history`` most recent (spec
        3.2.4: without ``history_length`` a server returns its default amount of history)."""
        history = self.task.history
        history.append(message)
        if self.max_history is not None and len(history) > self.max_history:
            del history[: len(history) - self.max_history]

    @property
    def state(self) -> int:
        return self.task.status.state

    @property
    def finished(self) -> bool:
        return self.task.status.state in TERMINAL_STATES

    @property
    def seq(self) -> int:
        """The position of the last event applied to the snapshot."""
        return self.log.last

    # -- readers ----------------------------------------------------------------------------------

    def subscribe(self, *, primary: bool = False) -> Subscription:
        """The task as it stands and its events from now on. The ``primary`` subscription (the
        stream of the call that started the task) is the one reader that may hold the agent back."""
        snapshot = types.Task()
        snapshot.CopyFrom(self.task)
        sub = Subscription(self, self.log.reader(self.log.last, primary=primary), snapshot, self.log.last)
        self.subscribers.add(sub)
        if not self.owned and self.on_watch is not None:
            self.on_watch(self)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        self.maybe_idle()

    def release(self, holder: object) -> None:
        self.holders.discard(holder)
        if not self.holders and self.at_rest is not None:
            self.at_rest(self)
        self.maybe_idle()

    def maybe_idle(self) -> None:
        if not self.subscribers and not self.holders:
            self._on_idle(self)

    # -- events -----------------------------------------------------------------------------------

    def grow(self, size: int, *, force: bool = False) -> None:
        """Count ``size`` more bytes in the task's record before they are added; LimitExceededError
        naming the bound they would pass, and nothing is added (see ``StoredBytes``)."""
        if self.stored is not None and size > 0:
            self.stored.grow(self.tenant, self.stored_bytes, size, force=force)
            self.stored_bytes += size

    async def set_status(self, state: int, message: types.Message | None) -> None:
        check_transition(self.task.status.state, state)
        terminal = state in TERMINAL_STATES
        # A final status is never held back: it ends the readers too.
        if not terminal and self.log.holding():
            await self.log.room()
            check_transition(self.task.status.state, state)  # the task may have moved meanwhile
        if message is not None:  # it joins the history: refused here if that passes a bound
            self.grow(message.ByteSize(), force=terminal)
        task = self.task
        event = types.StreamResponse()
        update = event.status_update
        update.task_id, update.context_id = task.id, task.context_id
        status = update.status
        status.state = cast("types.TaskState", state)
        status.timestamp.FromNanoseconds(time.time_ns())
        if message is not None:
            status.message.CopyFrom(message)
            self.remember(message)
            size = event.ByteSize()
        else:
            size = _STATUS_SIZE  # near enough for the byte bounds, without measuring
        task.status.CopyFrom(status)
        seq = self.log.append(event, size)
        if self.push_configs:
            self._notify(event)
        await self.save(seq)
        if self.claimed and (terminal or state in INTERRUPTED_STATES):
            self.claimed = False  # a snapshot at rest releases its saver's claim (SQLite, Redis)
        if terminal:
            self.events.finish(self.log)
        for listener in self.listeners[:]:
            listener(state)

    async def add_artifact(self, event: types.StreamResponse) -> None:
        """Apply and publish an ``artifact_update`` event (its task and context ids are filled in here)."""
        if self.task.status.state in TERMINAL_STATES:
            raise errors.UnsupportedOperationError(
                f"task {self.task.id!r} is {state_name(self.state)}: it takes no more artifacts"
            )
        update = event.artifact_update
        artifact = update.artifact
        wanted = artifact.artifact_id
        existing = None
        for candidate in self.task.artifacts:  # one scan, for both the check and the retention
            if candidate.artifact_id == wanted:
                existing = candidate
                break
        if update.append and existing is None:
            raise ValueError(
                f"task {self.task.id} has no artifact {artifact.artifact_id!r} to append to: "
                "send the first chunk without append"
            )
        size = artifact.ByteSize()
        most = self.max_artifact_update_bytes
        if most is not None and size > most:
            raise errors.LimitExceededError(
                f"an artifact update of {size} bytes is larger than the {most} bytes one may hold "
                "(max_send_message_bytes): send its content in chunks (updater.artifact_writer())",
                limit="max_send_message_bytes",
                value=most,
            )
        if self.log.holding():
            await self.log.room()
            if self.finished:  # it may have ended while the agent waited for room
                raise errors.UnsupportedOperationError(
                    f"task {self.task.id!r} is {state_name(self.state)}: it takes no more artifacts"
                )
            existing = next((a for a in self.task.artifacts if a.artifact_id == wanted), None)
        update.task_id, update.context_id = self.task.id, self.task.context_id
        if self.stored is not None:  # the content the snapshot will keep counts, before it is kept
            replaced = existing.ByteSize() if existing is not None and not update.append else 0
            if self.retained - replaced + size <= self.retain_bytes:
                self.grow(size - replaced)
        self._retain(artifact, existing, update.append, size)
        seq = self.log.append(event, size)
        if self.push_configs:
            self._notify(event)
        self._unsaved_bytes += size
        window = self.log.retention
        if seq - self.saved_seq >= window.events // 2 or self._unsaved_bytes >= window.bytes // 2:
            await self.save(seq)  # keep the stored snapshot within reach of the retained events

    def mirror(self, seq: int, event: types.StreamResponse) -> None:
        """Apply event ``seq`` of the task that another process reported and stored (a follower):
        to the snapshot (within the retention cap) and to the log's readers. Never stored, pushed or
        counted again here: the process that runs the task did all that."""
        kind = event.WhichOneof("payload")
        state = None
        if kind == "status_update":
            status = event.status_update.status
            if status.HasField("message") and not any(
                m.message_id == status.message.message_id for m in self.task.history
            ):
                self.remember(status.message)
            if self.task.status.state in INTERRUPTED_STATES:
                self.unmerged = True
            self.task.status.CopyFrom(status)
            state = status.state
        elif kind == "artifact_update":
            update = event.artifact_update
            artifact = update.artifact
            existing = next((a for a in self.task.artifacts if a.artifact_id == artifact.artifact_id), None)
            self._retain(artifact, existing, update.append and existing is not None, artifact.ByteSize())
        self.log.mirror(seq, event, event.ByteSize())
        if state is not None:
            if state in TERMINAL_STATES:
                self.events.finish(self.log)
            for listener in self.listeners[:]:
                listener(state)

    def rebase(self, task: types.Task) -> None:
        """Take ``task`` (the stored snapshot as of :attr:`seq`) as the snapshot: what a follower
        mirrored misses the messages the other process added to the history without an event."""
        self.task.CopyFrom(task)
        self.retained = sum(a.ByteSize() for a in task.artifacts) if task.artifacts else 0
        if self.stored is not None:
            self.stored_bytes = task.ByteSize()

    def merge_history(self, stored: Sequence[types.Message]) -> None:
        """Take the history of a stored snapshot (older than this follower's, or as old), then the
        messages this one has after the last of it (those later status updates carried)."""
        if not stored:
            return
        last = stored[-1].message_id
        mine = self.task.history
        at = next((i for i in range(len(mine) - 1, -1, -1) if mine[i].message_id == last), None)
        if at is not None:
            kept = mine[at + 1 :]
        else:  # the snapshot's last message never reached this copy: keep what it lacks, in order
            ids = {m.message_id for m in stored}
            kept = [m for m in mine if m.message_id not in ids]
        later = [types.Message() for _ in kept]
        for copy, message in zip(later, kept, strict=True):
            copy.CopyFrom(message)
        del mine[:]
        mine.extend(stored)
        for message in later:
            self.remember(message)

    def _retain(
        self, artifact: types.Artifact, existing: types.Artifact | None, append: bool, size: int
    ) -> None:
        """Keep the artifact's content in the snapshot, up to ``retain_bytes`` per task."""
        replaced = existing.ByteSize() if existing is not None and not append else 0
        if self.retained - replaced + size <= self.retain_bytes:
            if append and existing is not None:
                existing.parts.extend(artifact.parts)
            elif existing is not None:
                existing.CopyFrom(artifact)
            else:
                self.task.artifacts.append(artifact)
            self.retained += size - replaced
        else:
            self._unretained(artifact, existing, append, size)

    def _unretained(
        self, artifact: types.Artifact, existing: types.Artifact | None, append: bool, size: int
    ) -> None:
        """Keep the artifact's identity, not its content, and say so (see the module doc)."""
        if existing is None or not append:
            if existing is None:
                existing = self.task.artifacts.add()
            # The identity only: copying the content to drop it would cost as much as keeping it.
            existing.Clear()
            existing.artifact_id, existing.name = artifact.artifact_id, artifact.name
            existing.description = artifact.description
            existing.extensions.extend(artifact.extensions)
            if artifact.HasField("metadata"):
                existing.metadata.CopyFrom(artifact.metadata)
        fields = existing.metadata.fields
        before = fields[UNRETAINED_KEY].number_value if UNRETAINED_KEY in fields else 0.0
        if not before:
            log.warning(
                "task %s: artifact %s exceeds the %d bytes kept per task; further content is streamed "
                "but not kept",
                self.task.id,
                artifact.artifact_id,
                self.retain_bytes,
            )
        existing.metadata[UNRETAINED_KEY] = before + size

    def _notify(self, event: types.StreamResponse) -> None:
        if self.notifier is not None:
            for config in self.push_configs:
                self.notifier.notify(config, event)

    def is_durable(self, seq: int) -> bool:
        """Whether :meth:`durable` would return at once."""
        return self.created is None and self.log.visible >= seq

    async def durable(self, seq: int | None = None) -> None:
        """Wait until the task's first snapshot and its events up to ``seq`` (default: all applied)
        are stored: what is sent to a client after this, a crash cannot take back."""
        if self.created is not None:
            await self.created
            self.created = None
        await self.log.durable(self.log.last if seq is None else seq)

    @property
    def unsaved(self) -> bool:
        """Whether events were applied since the last saved snapshot."""
        return self.saved_seq < self.log.last

    async def save(self, seq: int | None = None) -> None:
        """Save the snapshot as of event ``seq`` (default: the last one applied)."""
        seq = self.log.last if seq is None else seq
        self.saved_seq = max(self.saved_seq, seq)
        self._unsaved_bytes = 0
        saved = self.store.save(self.tenant, self.task, seq=seq)
        if saved is not STORED:
            await saved

    async def fail_safely(self, message: types.Message) -> None:
        """Mark the task failed, whatever else has gone wrong: no reader may be left waiting."""
        try:
            await self.set_status(types.TASK_STATE_FAILED, message)
        except Exception:
            log.exception("could not record the failure of task %s; failing it in memory", self.task.id)
            self.task.status.state = types.TASK_STATE_FAILED
            self.events.finish(self.log)
            for listener in list(self.listeners):
                listener(types.TASK_STATE_FAILED)


def apply_event(task: types.Task, event: types.StreamResponse) -> None:
    """Apply a stored event to a task snapshot, as the run did when it happened (recovery).

    No lifecycle check: the event was checked when it was first applied. Artifact content is
    kept whole here: a rebuilt task gets what its events carry.
    """
    kind = event.WhichOneof("payload")
    if kind == "status_update":
        status = event.status_update.status
        if status.HasField("message") and not any(
            m.message_id == status.message.message_id for m in task.history
        ):
            task.history.append(status.message)
        task.status.CopyFrom(status)
    elif kind == "artifact_update":
        update = event.artifact_update
        existing = next((a for a in task.artifacts if a.artifact_id == update.artifact.artifact_id), None)
        if existing is None:
            task.artifacts.append(update.artifact)
        elif update.append:
            existing.parts.extend(update.artifact.parts)
        else:
            existing.CopyFrom(update.artifact)
