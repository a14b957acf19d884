"""The live runs of one server: loading tasks into runs, forgetting idle ones, and the owner's heartbeat.

:class:`Runs` holds a :class:`~a2a_grpc.tasks.run.TaskRun` for every task this process works on
or watches. A task not in memory is loaded from the store: its snapshot, then the events the
event log stored after it (what a crash left unsaved), then every push config it has. A run
nobody holds (no execution, no subscriber) is forgotten; its log stays in the event log for a
while, so positions carry on if the task comes back.

The registry (``a2a_grpc.tasks.registry``) says which process runs which task; :meth:`Runs.start`
keeps this process's lease alive and passes on the cancel signals other processes raise for its
tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from a2a_grpc import types
from a2a_grpc.tasks.eventlog import EventLog
from a2a_grpc.tasks.registry import TaskRegistry
from a2a_grpc.tasks.run import Notifier, StoredBytes, TaskRun, apply_event
from a2a_grpc.tasks.store import PUSH_MAX_PAGE_SIZE, TaskStore

__all__ = ["Runs"]

log = logging.getLogger("a2a_grpc.tasks")


class Runs:
    """The TaskRuns of one server (see the module doc)."""

    def __init__(
        self,
        store: TaskStore,
        events: EventLog,
        registry: TaskRegistry,
        *,
        notifier: Notifier | None,
        push: bool,
        retain_bytes: int,
        stored: StoredBytes | None = None,
        max_history: int | None = None,
        max_artifact_update_bytes: int | None = None,
    ) -> None:
        self.store = store
        self.stored = stored
        """What bounds the bytes of stored tasks; a task created here counts from its creation,
        one loaded from the store by what it grows."""
        self.events = events
        self.registry = registry
        self.notifier = notifier
        self.push = push and notifier is not None
        self.retain_bytes = retain_bytes
        self.max_history = max_history
        self.max_artifact_update_bytes = max_artifact_update_bytes
        self._runs: dict[tuple[str, str], TaskRun] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[TaskRun | None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    def get(self, tenant: str, task_id: str) -> TaskRun | None:
        """The run of a task in memory, if any."""
        return self._runs.get((tenant, task_id))

    def all(self) -> list[TaskRun]:
        return list(self._runs.values())

    def create(self, tenant: str, task: types.Task) -> TaskRun:
        """The run of a task that does not exist yet."""
        run = self._new(tenant, task, [], last_seq=0)
        if self.stored is not None:  # admitted by the handler already: counted, not refused
            self.stored.grow(tenant, 0, run.stored_bytes, force=True)
        return run

    async def load(self, tenant: str, task_id: str) -> TaskRun | None:
        """The run of a task: in memory, else loaded from the store (None if there is no such task)."""
        key = (tenant, task_id)
        run = self._runs.get(key)
        if run is not None:
            return run
        loading = self._loading.get(key)
        if loading is not None:  # one load per task at a time: racing calls share it
            return await asyncio.shield(loading)
        future: asyncio.Future[TaskRun | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            run = await self._load(tenant, task_id)
            future.set_result(run)
            return run
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._loading[key]

    async def _load(self, tenant: str, task_id: str) -> TaskRun | None:
        found = await self.store.load(tenant, task_id)
        if found is None:
            return None
        task, seq = found
        live = self.events.get(tenant, task_id)
        newer = live.retained_after(seq) if live is not None and live.last > seq else None
        if newer is None:
            # What the process that ran it stored after its last snapshot (it may have died).
            newer = await self.events.stored_after(tenant, task_id, seq)
        for event_seq, event in newer:  # the events a snapshot on its way (or a crash) left out
            apply_event(task, event)
            seq = event_seq
        configs = await self._push_configs(tenant, task_id) if self.push else []
        return self._runs.get((tenant, task_id)) or self._new(tenant, task, configs, last_seq=seq)

    async def _push_configs(self, tenant: str, task_id: str) -> list[types.TaskPushNotificationConfig]:
        """Every push config of the task, page after page."""
        configs: list[types.TaskPushNotificationConfig] = []
        token = ""
        while True:
            page, token = await self.store.list_push_configs(tenant, task_id, PUSH_MAX_PAGE_SIZE, token)
            configs += page
            if not token:
                return configs

    def _new(
        self, tenant: str, task: types.Task, configs: list[types.TaskPushNotificationConfig], *, last_seq: int
    ) -> TaskRun:
        run = TaskRun(
            tenant,
            task,
            self.store,
            self.events,
            self._forget,
            notifier=self.notifier if self.push else None,
            push_configs=configs,
            retain_bytes=self.retain_bytes,
            max_history=self.max_history,
            max_artifact_update_bytes=self.max_artifact_update_bytes,
            last_seq=last_seq,
            stored=self.stored,
        )
        self._runs[(tenant, task.id)] = run
        return run

    def _forget(self, run: TaskRun) -> None:
        key = (run.tenant, run.task.id)
        if self._runs.get(key) is run:
            del self._runs[key]
            self.events.release(run.log)

    # -- the owner's heartbeat --------------------------------------------------------------------

    def start(self, on_cancel: Callable[[str, str], Awaitable[object]]) -> None:
        """Renew this process's lease every third of it; hand cancel signals to ``on_cancel``."""
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(on_cancel), name="a2a-lease")

    async def _beat(self, on_cancel: Callable[[str, str], Awaitable[object]]) -> None:
        period = self.registry.lease_seconds / 3
        while True:
            try:
                for tenant, task_id in await self.registry.renew():
                    await on_cancel(tenant, task_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup: try again next period, the lease has slack
                log.exception("could not renew the lease of owner %s", self.registry.owner)
            await asyncio.sleep(period)

    async def stop(self) -> None:
        job, self._heartbeat = self._heartbeat, None
        if job is not None:
            job.cancel()
            await asyncio.wait({job})
