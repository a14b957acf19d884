"""Executions: one incoming message handled by the agent, and the registry of them per task.

An :class:`Execution` is the server's side of a :class:`~a2a_grpc.agent.TaskUpdater`: it creates
the task on the agent's first report, passes status and artifact reports to the task's
:class:`~a2a_grpc.tasks.run.TaskRun`, and tells its caller when the task is first known
(:attr:`Execution.first`) and when it settles (:attr:`Execution.settled`: terminal, or waiting
for input). :class:`Executions` knows which executions work on which task, which is what decides
whether a task may take another message and what a cancel must stop.

A task's life does not depend on any stream: executions run in their own asyncio tasks, and a
client that disconnects only loses its subscription.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from a2a_grpc import errors, types
from a2a_grpc.agent import RequestContext, TaskUpdater, text_message
from a2a_grpc.tasks.lifecycle import SETTLED_STATES, TERMINAL_STATES
from a2a_grpc.tasks.run import Subscription, TaskRun

__all__ = ["Execution", "Executions"]

log = logging.getLogger("a2a_grpc.tasks")


class Execution:
    """One incoming message being handled by the agent (or a CancelTask calling ``Agent.cancel``)."""

    def __init__(
        self,
        context: RequestContext,
        start_run: Callable[[Execution], Awaitable[TaskRun]] | None,
        run: TaskRun | None,
        *,
        subscribe: bool,
        registry: Executions | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``loop``: the running loop, if the caller has it at hand (asking costs a system call)."""
        self.context = context
        """The request (what the TaskUpdater's task_id and context_id read)."""
        self.run = run
        self._start_run = start_run
        if loop is None:
            loop = asyncio.get_running_loop()
        self.first: asyncio.Future[types.Message | TaskRun] = loop.create_future()
        """The task (its run) once it exists, or the direct reply; or the error that ended execute."""
        self.settled: asyncio.Future[None] = loop.create_future()
        """Done when the task is terminal or waits for the client (or execute ends without a task)."""
        self.first_subscription: Subscription | None = None
        self.want_subscription = subscribe
        self.job: asyncio.Task[None] | None = None
        self.detached = False
        """Set by ``TaskUpdater.detach``: the updater outlives ``execute`` and drives the task."""
        self.finished = False
        """Whether ``execute`` has returned (or raised)."""
        self._replied = False
        self._registry = registry
        if run is not None:
            self._attach(run)

    # -- Reporter (what a TaskUpdater calls) ------------------------------------------------------

    @property
    def state(self) -> int:
        return self.run.state if self.run is not None else types.TASK_STATE_UNSPECIFIED

    async def status(self, state: int, message: types.Message | None) -> None:
        run = self.run
        if run is None or self.finished:  # the usual report needs no check: no coroutine for it
            run = await self._ensure_run()
        await run.set_status(state, message)

    async def artifact(self, event: types.StreamResponse) -> None:
        run = self.run
        if run is None or self.finished:
            if event.artifact_update.append and run is None:  # checked before the task exists
                raise ValueError(
                    f"the task has no artifact {event.artifact_update.artifact.artifact_id!r} to "
                    "append to yet: send the first chunk without append"
                )
            run = await self._ensure_run()
        await run.add_artifact(event)

    async def reply(self, message: types.Message) -> None:
        if self.run is not None or self._replied:
            raise errors.InvalidAgentResponseError(
                "a direct reply must be the agent's first and only output for a request"
            )
        self._replied = True
        if not message.context_id:
            message.context_id = self.context.context_id
        self.first.set_result(message)
        self._settle()

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

    # -- life -------------------------------------------------------------------------------------

    def driving(self) -> bool:
        """Whether this execution may still report on its task: ``execute`` runs, or it is detached."""
        return (self.job is not None and not self.finished) or self.detached

    def _attach(self, run: TaskRun) -> None:
        self.run = run
        run.holders.add(self)
        run.listeners.append(self.on_status)
        if self._registry is not None:
            self._registry.add(run, self)
        if self.want_subscription:
            self.first_subscription = run.subscribe(primary=True)
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

    def on_status(self, state: int) -> None:
        if state in SETTLED_STATES and not self.settled.done():
            self.settled.set_result(None)
        if state in TERMINAL_STATES and self.detached:
            self.detached = False  # nothing left to drive
            if self.finished:
                self.leave()

    def _settle(self) -> None:
        if not self.settled.done():
            self.settled.set_result(None)

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
        if not self.settled.done():
            self.settled.set_result(None)
        self.leave()

    def leave(self) -> None:
        """Stop holding the task: no more reports will come from here."""
        run = self.run
        if run is None:
            return
        if self._registry is not None:
            self._registry.discard(run, self)
        if self.on_status in run.listeners:
            run.listeners.remove(self.on_status)
        run.release(self)


class Executions:
    """Which executions work on which task (the handler's; see the module doc)."""

    def __init__(self) -> None:
        self._by_task: dict[tuple[str, str], set[Execution]] = {}

    def add(self, run: TaskRun, execution: Execution) -> None:
        key = (run.tenant, run.task.id)
        executions = self._by_task.get(key)
        if executions is None:
            self._by_task[key] = {execution}
        else:
            executions.add(execution)

    def discard(self, run: TaskRun, execution: Execution) -> None:
        key = (run.tenant, run.task.id)
        executions = self._by_task.get(key)
        if executions is not None:
            executions.discard(execution)
            if not executions:
                del self._by_task[key]

    def of(self, run: TaskRun) -> set[Execution]:
        return set(self._by_task.get((run.tenant, run.task.id), ()))

    def busy(self, run: TaskRun) -> bool:
        """Whether some execution is working on the task and has not yet brought it to rest
        (a new message then has nobody to go to: see ``RequestHandler``)."""
        return any(e.driving() and not e.settled.done() for e in self.of(run))

    def driven(self, run: TaskRun, *, besides: Execution) -> bool:
        """Whether an execution other than ``besides`` still drives the task."""
        return any(e is not besides and e.driving() for e in self.of(run))

    def running(self) -> list[Execution]:
        """Every execution still working (its ``execute`` runs, or it is detached)."""
        return [e for executions in self._by_task.values() for e in executions if e.driving()]


_orphan_jobs: set[asyncio.Task[None]] = set()


def _orphaned(execution: Execution, run: TaskRun, loop: asyncio.AbstractEventLoop) -> None:
    """A detached updater was garbage-collected (see ``TaskUpdater.detach``)."""
    if not loop.is_closed():
        loop.call_soon_threadsafe(_release, execution, run)


def _release(execution: Execution, run: TaskRun) -> None:
    if not execution.detached:
        return
    execution.detached = False
    if run.state in SETTLED_STATES or not execution.finished:
        if execution.finished:
            execution.leave()
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
            execution._settle()
            execution.leave()

    job = asyncio.get_running_loop().create_task(fail())
    _orphan_jobs.add(job)
    job.add_done_callback(_orphan_jobs.discard)
