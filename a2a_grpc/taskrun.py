"""A live task: its snapshot, its ordered event log, its subscribers, its executions.

One :class:`TaskRun` exists per task that is being worked on or watched. Every
event the agent reports is applied to the snapshot (after the lifecycle check),
persisted when the status changes, handed to push notification webhooks, and
appended to a log that every subscriber reads at its own pace, so all
subscribers see the same events in the same order. The log only keeps what
some subscriber has not read yet; when it holds ``window`` unread events, or
``window_bytes`` of them, the agent's next report waits (a slow consumer slows
its producer instead of growing memory). A subscriber that leaves releases its
hold at once.

The snapshot keeps a task's artifact content up to ``retain_bytes``. Content
beyond it still reaches every subscriber and webhook, but is not kept: a task
that large could not be sent back by GetTask anyway (it would exceed the
message size limit). The artifact's metadata then says how many bytes were not
kept (``a2a-grpc/unretained-bytes``), and a warning is logged: never silent.

A task's life does not depend on any stream: executions run in their own
asyncio tasks, and a client that disconnects only loses its subscription.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, cast

from a2a_grpc import errors, types
from a2a_grpc.agent import RequestContext, TaskUpdater, text_message
from a2a_grpc.tasks import INTERRUPTED_STATES, TERMINAL_STATES, check_transition

if TYPE_CHECKING:
    from a2a_grpc.push import PushNotifier
    from a2a_grpc.tasks import TaskStore

__all__ = ["REST_STATES", "UNRETAINED_KEY", "Execution", "Subscription", "TaskRun"]

log = logging.getLogger("a2a_grpc.tasks")
REST_STATES = TERMINAL_STATES | INTERRUPTED_STATES
UNRETAINED_KEY = "a2a-grpc/unretained-bytes"
"""Artifact metadata key: bytes of content streamed but not kept in the task (see the module doc)."""
MiB = 1024 * 1024
TRIM_EVERY = 32
"""Readers drop read events from the log once it holds this many (or at once if a producer waits)."""


class Subscription:
    """One reader of a run's event log. Iterate it; close it when done (the stream helpers do)."""

    __slots__ = ("_closed", "_run", "pos", "snapshot")

    def __init__(self, run: TaskRun, pos: int, snapshot: types.Task) -> None:
        self._run = run
        self.pos = pos
        self.snapshot = snapshot
        self._closed = False

    async def events(self) -> AsyncIterator[types.StreamResponse]:
        run = self._run
        while not self._closed:
            end = run.base + len(run.log)
            if self.pos < end:
                event = run.log[self.pos - run.base]
                self.pos += 1
                if run.waiting_for_room or len(run.log) >= TRIM_EVERY:
                    run.trim()  # lazily: read events cost nothing until room is needed
                yield event
            elif run.finished:
                return
            else:
                await run.changed()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._run.unsubscribe(self)


class TaskRun:
    """The live state of one task. Created and looked up by the RequestHandler only."""

    def __init__(
        self,
        tenant: str,
        task: types.Task,
        store: TaskStore,
        notifier: PushNotifier | None,
        push_configs: list[types.TaskPushNotificationConfig],
        window: int,
        on_idle: Callable[[TaskRun], None],
        *,
        window_bytes: int = 8 * MiB,
        retain_bytes: int = 16 * MiB,
    ) -> None:
        self.tenant = tenant
        self.task = task
        self.store = store
        self.notifier = notifier
        self.push_configs = push_configs
        self.window = window
        self.window_bytes = window_bytes
        self.retain_bytes = retain_bytes
        self.log: deque[types.StreamResponse] = deque()
        self.log_bytes = 0
        self._sizes: deque[int] = deque()
        self.retained = sum(a.ByteSize() for a in task.artifacts)
        """Artifact bytes the snapshot keeps (an upper bound: parts are counted as they arrive)."""
        self.base = 0
        self.subscribers: set[Subscription] = set()
        self.executions: set[Execution] = set()
        self._loop = asyncio.get_running_loop()
        self._waiters: list[asyncio.Future[None]] = []
        self.dirty = False  # artifacts not yet persisted (they are saved with the next status)
        self._space: asyncio.Future[None] | None = None
        self._on_idle = on_idle

    @property
    def state(self) -> int:
        return self.task.status.state

    @property
    def finished(self) -> bool:
        return self.task.status.state in TERMINAL_STATES

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Events from now on, with a snapshot of the task as it stands now."""
        snapshot = types.Task()
        snapshot.CopyFrom(self.task)
        sub = Subscription(self, self.base + len(self.log), snapshot)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        self.trim()
        self._maybe_idle()

    def trim(self) -> None:
        """Drop the events every subscriber has read; wake a producer waiting for room."""
        low = min((s.pos for s in self.subscribers), default=self.base + len(self.log))
        while self.base < low and self.log:
            self.log.popleft()
            self.log_bytes -= self._sizes.popleft()
            self.base += 1
        if self._space is not None and not self._full():
            self._space.set_result(None)
            self._space = None

    def _maybe_idle(self) -> None:
        if not self.subscribers and not self.executions:
            self._on_idle(self)

    def busy(self) -> bool:
        """Whether some execution is working on the task and has not yet brought it to rest
        (a new message then has nobody to go to: see ``RequestHandler``)."""
        return any(e.driving() and not e.at_rest.done() for e in self.executions)

    def driven(self, *, besides: Execution) -> bool:
        """Whether an execution other than ``besides`` still drives the task."""
        return any(e is not besides and e.driving() for e in self.executions)

    # -- events --------------------------------------------------------------------------------

    @property
    def waiting_for_room(self) -> bool:
        return self._space is not None

    def _observed(self) -> bool:
        """Whether an event would reach anyone (a subscriber or a webhook)."""
        return bool(self.subscribers) or (self.notifier is not None and bool(self.push_configs))

    def _full(self) -> bool:
        return len(self.log) >= self.window or (self.log_bytes >= self.window_bytes and bool(self.log))

    async def _publish(self, event: types.StreamResponse, size: int = 0) -> None:
        if self.subscribers:
            if self._full():
                self.trim()  # readers drop what they read lazily: count only what is unread
            while self._full():
                if self._space is None:
                    self._space = self._loop.create_future()
                await asyncio.shield(self._space)
            self.log.append(event)
            self._sizes.append(size)
            self.log_bytes += size
            self._wake_all()
        else:
            self.base += 1  # nobody is reading: nothing to keep, the snapshot has it all
        if self.notifier is not None:
            for config in self.push_configs:
                self.notifier.notify(config, event)

    async def set_status(self, state: int, message: types.Message | None) -> None:
        check_transition(self.task.status.state, state)
        status = types.TaskStatus(state=cast("types.TaskState", state))
        status.timestamp.FromNanoseconds(time.time_ns())
        if message is not None:
            status.message.CopyFrom(message)
            self.task.history.append(message)
        self.task.status.CopyFrom(status)
        await self.save()
        if self._observed():
            event = types.StreamResponse()
            update = event.status_update
            update.task_id, update.context_id = self.task.id, self.task.context_id
            update.status.CopyFrom(status)
            await self._publish(event)
        else:
            self.base += 1  # nobody to tell: the snapshot has it all
        for execution in list(self.executions):
            execution.on_status(state)
        if state in TERMINAL_STATES:
            self._wake_all()

    async def save(self) -> None:
        self.dirty = False
        await self.store.save(self.tenant, self.task)

    async def add_artifact(self, event: types.StreamResponse) -> None:
        """Apply and publish an ``artifact_update`` event (its task and context ids are filled in here)."""
        if self.finished:
            raise errors.UnsupportedOperationError(
                f"task {self.task.id!r} is {types.TaskState.Name(self.state)}: it takes no more artifacts"
            )
        update = event.artifact_update
        update.task_id, update.context_id = self.task.id, self.task.context_id
        artifact, append = update.artifact, update.append
        existing = next((a for a in self.task.artifacts if a.artifact_id == artifact.artifact_id), None)
        if append and existing is None:
            raise ValueError(
                f"task {self.task.id} has no artifact {artifact.artifact_id!r} to append to: "
                "send the first chunk without append"
            )
        size = artifact.ByteSize()
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
        self.dirty = True
        await self._publish(event, size)

    def _unretained(
        self, artifact: types.Artifact, existing: types.Artifact | None, append: bool, size: int
    ) -> None:
        """Keep the artifact's identity, not its content, and say so (see the module doc)."""
        if existing is None:
            existing = self.task.artifacts.add()
            existing.CopyFrom(artifact)
            del existing.parts[:]
        elif not append:
            existing.CopyFrom(artifact)
            del existing.parts[:]
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

    async def fail_safely(self, message: types.Message) -> None:
        """Mark the task failed, whatever else has gone wrong: no subscriber may be left waiting."""
        try:
            await self.set_status(types.TASK_STATE_FAILED, message)
        except Exception:
            log.exception("could not record the failure of task %s; failing it in memory", self.task.id)
            self.task.status.state = types.TASK_STATE_FAILED
            self._wake_all()

    def changed(self) -> asyncio.Future[None]:
        """A future that completes at the next event or state change (each waiter has its own, so
        a reader that is cancelled while waiting cancels nobody else's wait)."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        return waiter

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Execution:
    """One incoming message being handled by the agent (or a CancelTask calling ``Agent.cancel``)."""

    def __init__(
        self,
        context: RequestContext,
        start_run: Callable[[Execution], Awaitable[TaskRun]] | None,
        run: TaskRun | None,
        *,
        subscribe: bool,
    ) -> None:
        self.context = context
        self.run = run
        self._start_run = start_run
        self.first: asyncio.Future[types.Message | TaskRun] = asyncio.get_running_loop().create_future()
        self.at_rest: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_subscription: Subscription | None = None
        self.want_subscription = subscribe
        self.job: asyncio.Task[None] | None = None
        self.detached = False
        """Set by ``TaskUpdater.detach``: the updater outlives ``execute`` and drives the task."""
        self.finished = False
        """Whether ``execute`` has returned (or raised)."""
        self._replied = False
        if run is not None:
            self._attach(run)

    def driving(self) -> bool:
        """Whether this execution may still report on its task: ``execute`` runs, or it is detached."""
        return (self.job is not None and not self.finished) or self.detached

    def _attach(self, run: TaskRun) -> None:
        self.run = run
        run.executions.add(self)
        if self.want_subscription:
            self.first_subscription = run.subscribe()
        if not self.first.done():
            self.first.set_result(run)

    async def _ensure_run(self) -> TaskRun:
        if self._replied:
            raise errors.InvalidAgentResponseError(
                "the agent replied with a message, then reported task events"
            )
        if self.run is None:
            if self._start_run is None:
                raise errors.InvalidAgentResponseError("no task can be created here")
            self._attach(await self._start_run(self))
        assert self.run is not None
        if self.finished and not self.detached:
            raise RuntimeError(
                f"task {self.run.task.id}: execute has returned; call `await updater.detach()` "
                "inside execute to keep reporting on the task afterwards"
            )
        return self.run

    async def status(self, state: int, message: types.Message | None) -> None:
        await (await self._ensure_run()).set_status(state, message)

    async def artifact(self, event: types.StreamResponse) -> None:
        update = event.artifact_update
        if update.append and self.run is None:  # checked before the task comes into being
            raise ValueError(
                f"the task has no artifact {update.artifact.artifact_id!r} to append to yet: "
                "send the first chunk without append"
            )
        await (await self._ensure_run()).add_artifact(event)

    async def reply(self, message: types.Message) -> None:
        if self.run is not None or self._replied:
            raise errors.InvalidAgentResponseError(
                "a direct reply must be the agent's first and only output for a request"
            )
        self._replied = True
        if not message.context_id:
            message.context_id = self.context.context_id
        self.first.set_result(message)
        self._rest()

    async def detach(self, updater: TaskUpdater) -> None:
        if self.finished:
            raise RuntimeError("detach() must be called while execute runs")
        run = await self._ensure_run()
        if self.detached:
            return
        self.detached = True
        # The updater's owner holds it; when it is dropped with the task still running, nothing
        # will ever finish the task, so it is failed, truthfully (see TaskUpdater.detach). The
        # collector may run anywhere: the work is handed to the loop.
        finalizer = weakref.finalize(updater, _orphaned, self, run, asyncio.get_running_loop())
        finalizer.atexit = False  # at interpreter exit there is no loop left to record anything

    def on_status(self, state: int) -> None:
        if state in REST_STATES:
            self._rest()
        if state in TERMINAL_STATES and self.detached:
            self.detached = False  # nothing left to drive
            if self.finished:
                self._leave()

    def _rest(self) -> None:
        if not self.at_rest.done():
            self.at_rest.set_result(None)

    def finish(self, error: BaseException | None) -> None:
        """Called when the agent's coroutine ends, however it ends."""
        self.finished = True
        if not self.first.done():
            if error is not None:
                self.first.set_exception(error)
            else:
                self.first.set_exception(
                    errors.InvalidAgentResponseError("the agent finished without a reply or a task")
                )
        if self.detached:
            return  # the detached updater drives the task from now on
        self._rest()
        self._leave()

    def _leave(self) -> None:
        if self.run is not None:
            self.run.executions.discard(self)
            self.run._maybe_idle()


_orphan_jobs: set[asyncio.Task[None]] = set()


def _orphaned(execution: Execution, run: TaskRun, loop: asyncio.AbstractEventLoop) -> None:
    """A detached updater was garbage-collected (see ``TaskUpdater.detach``)."""
    if not loop.is_closed():
        loop.call_soon_threadsafe(_release, execution, run)


def _release(execution: Execution, run: TaskRun) -> None:
    if not execution.detached:
        return
    execution.detached = False
    if run.state in REST_STATES or not execution.finished:
        if execution.finished:
            execution._leave()
        return
    log.warning(
        "task %s: its detached updater was dropped while the task was %s; failing the task",
        run.task.id,
        types.TaskState.Name(run.state),
    )

    async def fail() -> None:
        try:
            await run.fail_safely(
                text_message(
                    "the agent stopped working on this task without finishing it",
                    task_id=run.task.id,
                    context_id=run.task.context_id,
                )
            )
        finally:
            execution._rest()
            execution._leave()

    job = asyncio.get_running_loop().create_task(fail())
    _orphan_jobs.add(job)
    job.add_done_callback(_orphan_jobs.discard)
