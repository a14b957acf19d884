"""The live runs of one server: loading tasks into runs, forgetting idle ones, and the owner's heartbeat.

:class:`Runs` holds a :class:`~a2a_grpc.tasks.run.TaskRun` for every task this process works on
or watches. A task not in memory is loaded from the store: its snapshot, then the events the
event log stored after it (what a crash left unsaved), then every push config it has. A run
nobody holds (no execution, no subscriber) is forgotten; its log stays in the event log for a
while, so positions carry on if the task comes back.

The registry (``a2a_grpc.tasks.registry``) says which process runs which task; :meth:`Runs.start`
keeps this process's lease alive and passes on the cancel signals other processes raise for its
tasks.

**Replicas.** When the event log's sink is shared (a :class:`~a2a_grpc.tasks.eventlog.SharedEventSink`:
Redis), other processes run tasks of the same store, and a run here is one of two kinds. An
*owned* run is this process's: it claimed the task in the registry (a task created here, or
:meth:`Runs.take` before a message continues it, a cancel ends it or a recovery ends or resumes
it), it alone appends events, and it releases the claim once nothing here works on the task and
the task is at rest (waiting for input, or finished), after its events are stored. Any other run
is a *follower*: a copy of the task that, while it has subscribers, follows the events the owner
stores (``SharedEventSink.follow``) and mirrors them to its readers, in order, without storing,
pushing or claiming anything; it stops at the task's final status or when nobody reads it. A
follower never holds the owner back (it reads the store, not the owner), and one that falls
behind what the store keeps ends its readers with EventsNotRetainedError. Taking a follower
stops it and catches it up from the store first. Every process also looks for orphans every
lease or so (:meth:`Runs.start`), so that a replica that died leaves its tasks to a live one.

Without a shared sink (memory, SQLite) every run is owned and none of this costs anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol, cast

from a2a_grpc import errors, types
from a2a_grpc.tasks.eventlog import EventLog, SharedEventSink
from a2a_grpc.tasks.lifecycle import SETTLED_STATES
from a2a_grpc.tasks.registry import TaskRegistry
from a2a_grpc.tasks.run import Notifier, StoredBytes, TaskRun, apply_event
from a2a_grpc.tasks.store import PUSH_MAX_PAGE_SIZE, TaskStore

__all__ = ["Runs"]

log = logging.getLogger("a2a_grpc.tasks")

_REFOLLOW_SECONDS = 0.2
"""Pause before a follower follows again when the sink's follow ended before the final status."""


class _Signalling(Protocol):
    """A registry that hands this owner its cancel signals as they are raised (Redis pub/sub)."""

    def cancel_signals(self) -> AsyncGenerator[tuple[str, str], None]:
        """The (tenant, task id) of each cancel signal as it is raised."""
        ...


class _Exclusive:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Closable(Protocol):
    async def aclose(self) -> None: ...


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
        sink = getattr(events, "sink", None)
        self.shared: SharedEventSink | None = sink if callable(getattr(sink, "follow", None)) else None
        """The shared sink other replicas store their events in, if any (see the module doc)."""
        self.replicated = self.shared is not None
        self._runs: dict[tuple[str, str], TaskRun] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[TaskRun | None]] = {}
        self._claiming: dict[tuple[str, str], _Exclusive] = {}
        self._unreleased: set[tuple[str, str]] = set()
        """Claims whose release failed (the registry was unreachable): tried again at each renewal."""
        self._heartbeat: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[object]] = set()

    def get(self, tenant: str, task_id: str) -> TaskRun | None:
        """The run of a task in memory, if any."""
        return self._runs.get((tenant, task_id))

    def all(self) -> list[TaskRun]:
        return list(self._runs.values())

    def create(self, tenant: str, task: types.Task) -> TaskRun:
        """The run of a task that does not exist yet (claimed already, with replicas)."""
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
        if live is not None and self.replicated and live.last < seq:
            # A log kept from an earlier run here, that the task has moved past elsewhere.
            self.events.discard(live)
            live = None
        newer = live.retained_after(seq) if live is not None and live.last > seq else None
        if newer is None:
            # What the process that ran it stored after its last snapshot (it may have died).
            newer = await self.events.stored_after(tenant, task_id, seq)
        if newer and newer[0][0] != seq + 1:  # trimmed before a snapshot covered them: said, not hidden
            log.warning(
                "task %s: events %d to %d after its stored snapshot are no longer kept; its snapshot "
                "misses what they carried",
                task_id,
                seq + 1,
                newer[0][0] - 1,
            )
        for event_seq, event in newer:  # the events a snapshot on its way (or a crash) left out
            apply_event(task, event)
            seq = event_seq
        configs = await self._push_configs(tenant, task_id) if self.push else []
        run = self._runs.get((tenant, task_id))
        if run is None:
            run = self._new(tenant, task, configs, last_seq=seq)
            if self.replicated:
                run.owned = False  # a follower until this process takes the task (see take)
        return run

    async def read(self, tenant: str, task_id: str) -> types.Task | None:
        """The task as the store has it now: its snapshot and the events stored after it (what a
        replica answers for a task another one runs, rather than a copy that may lag)."""
        found = await self.store.load(tenant, task_id)
        if found is None:
            return None
        task, seq = found
        for _, event in await self.events.stored_after(tenant, task_id, seq):
            apply_event(task, event)
        return task

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
        if self.replicated:
            run.at_rest = self._rested
            run.on_watch = self._watch
        self._runs[(tenant, task.id)] = run
        return run

    def _forget(self, run: TaskRun) -> None:
        key = (run.tenant, run.task.id)
        if self._runs.get(key) is run:
            del self._runs[key]
            self.events.release(run.log)
        self._unfollow(run)

    # -- replicas: taking a task, letting it go, following it ----------------------------------------

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """One claim, release or catch-up of a task at a time in this process (the lock is kept
        while anyone holds or waits for it, then dropped)."""
        entry = self._claiming.get(key)
        if entry is None:
            entry = self._claiming[key] = _Exclusive()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users and self._claiming.get(key) is entry:
                del self._claiming[key]

    async def take(self, run: TaskRun, holder: object) -> TaskRun | None:
        """With replicas: claim the task for this process before changing it, and hold its run for
        ``holder`` (who releases it). The run returned is the task's current run here, caught up
        with the store (a follower is stopped first); None when another live owner holds the task
        (it runs there), or when it is gone. Without replicas: the run itself, held."""
        if not self.replicated:
            run.holders.add(holder)
            return run
        tenant, task_id = run.tenant, run.task.id
        key = (tenant, task_id)
        async with self._exclusive(key):
            current = self._runs.get(key) or await self.load(tenant, task_id)
            if current is None:
                return None
            if not await self.registry.claim(tenant, task_id):
                current.maybe_idle()  # loaded for this only: not kept to go stale
                return None
            try:
                current.holders.add(holder)
                # A follower, or a run of this process at rest (its claim went with the save
                # that put it at rest, and another replica may have continued it since).
                if not current.owned or current.state in SETTLED_STATES:
                    if current.owned:
                        with contextlib.suppress(Exception):  # logged where its events failed
                            await current.durable()
                    live = current.follow_job is not None
                    self._retire(current)
                    current = await self._catch_up(current, holder, live=live)
                    if self.push and not current.owned:  # another replica may have added some
                        current.push_configs = await self._push_configs(tenant, task_id)
                    current.owned = True
                current.claimed = True
            except BaseException:
                current.holders.discard(holder)
                await self._release_claim(key)
                current.maybe_idle()
                raise
            self._unreleased.discard(key)
            return current

    async def refresh(self, run: TaskRun) -> TaskRun:
        """With replicas, before a follower kept here gets a new reader: one that does not follow
        caught up with the store (a copy loaded earlier lags whatever happened since); one that
        follows, once it was continued elsewhere, given the messages the store's snapshot has and
        no event carries (those that continued the task). An owned run as it is."""
        if run.owned:
            return run
        key = (run.tenant, run.task.id)
        async with self._exclusive(key):
            if run.owned or self._runs.get(key) is not run:
                return self._runs.get(key) or run
            if run.follow_job is not None:
                if run.unmerged:  # it was continued elsewhere while followed here
                    run.unmerged = False
                    found = await self.store.load(run.tenant, run.task.id)
                    if found is not None:
                        run.merge_history(found[0].history)
                return run
            hold = object()
            run.holders.add(hold)
            try:
                run = await self._catch_up(run, hold)
            finally:
                run.holders.discard(hold)  # the caller subscribes next: no rest to take
            return run

    async def _catch_up(self, run: TaskRun, holder: object, *, live: bool = False) -> TaskRun:
        """A run about to be owned (a follower, or this process's own at rest, which another replica
        may have continued since): the events it lacks, then the stored snapshot's history (which
        holds what no event carries: the messages that continued the task). One that can no longer
        be caught up ends its readers and is replaced by a fresh load."""
        tenant, task_id = run.tenant, run.task.id
        if live and not run.unmerged:
            # It followed the store up to now, and nothing continued it meanwhile: the events it has
            # not mirrored yet are all it lacks (its follow would have ended had the store lost any).
            tail = await self.events.stored_after(tenant, task_id, run.seq)
            tail = [(seq, event) for seq, event in tail if seq > run.seq]
            if tail and tail[0][0] != run.seq + 1:
                return await self._replace(run, holder, self._lost(run, run.seq, tail[0][0]))
            for seq, event in tail:
                run.mirror(seq, event)
            if not run.unmerged:
                return run
        found, tail = await asyncio.gather(
            self.store.load(tenant, task_id), self.events.stored_after(tenant, task_id, run.seq)
        )
        if found is None:
            return run
        task, saved = found
        tail = [(seq, event) for seq, event in tail if seq > run.seq]  # a follow may have gone on
        if (tail and tail[0][0] != run.seq + 1) or (saved > run.seq and not tail):
            first = tail[0][0] if tail else saved + 1
            return await self._replace(run, holder, self._lost(run, run.seq, first))
        for seq, event in tail:
            if seq > run.seq:
                run.mirror(seq, event)
        if not run.unmerged:
            return run  # nothing continued it elsewhere: its history is whole
        # The stored snapshot brought to the run's position: by the events the run's log keeps,
        # else by the store's.
        newer = run.log.retained_after(saved)
        if newer is None:
            newer = await self.events.stored_after(tenant, task_id, saved)
        if [seq for seq, _ in newer] == list(range(saved + 1, run.seq + 1)):
            for _, event in newer:
                apply_event(task, event)
            run.rebase(task)
            run.unmerged = False
        return run

    async def _replace(self, run: TaskRun, holder: object, lost: errors.EventsNotRetainedError) -> TaskRun:
        """A copy that can no longer be caught up: its readers end with ``lost``; a fresh load
        takes its place, held for ``holder``."""
        self._drop(run, lost)
        run.holders.discard(holder)
        fresh = await self.load(run.tenant, run.task.id)
        if fresh is None:
            raise lost
        fresh.holders.add(holder)
        return fresh

    def _rested(self, run: TaskRun) -> None:
        """The last holder let go of an owned task at rest: the claim this process took is
        released, and a run still read here becomes a follower (see :meth:`_let_go`). (The claim
        on a task created here went with the save that put it at rest: nothing to do then, unless
        somebody reads it.)"""
        if run.owned and run.state in SETTLED_STATES and (run.claimed or run.subscribers):
            self._spawn(self._let_go(run), "a2a-release")

    async def _let_go(self, run: TaskRun) -> None:
        """Release the claim on a task at rest once its events are stored; a run still read here
        becomes a follower (the next message may go to another replica)."""
        key = (run.tenant, run.task.id)
        async with self._exclusive(key):
            current = self._runs.get(key)
            if current is not None and current is not run and current.owned:
                return  # taken again meanwhile: that run lets go when it rests
            if run.holders or not run.owned or run.state not in SETTLED_STATES:
                return
            with contextlib.suppress(Exception):  # logged where the events failed; the claim must go
                await run.durable()
            run.owned = False
            if run.claimed:
                run.claimed = False
                await self._release_claim(key)
            if run.subscribers and not run.finished and self._runs.get(key) is run:
                self._follow(run)

    async def _release_claim(self, key: tuple[str, str]) -> None:
        try:
            await self.registry.release(*key)
        except Exception as exc:
            self._unreleased.add(key)
            log.warning(
                "task %s: could not release its claim (%s); trying again at the next renewal", key[1], exc
            )
        else:
            self._unreleased.discard(key)

    def _watch(self, run: TaskRun) -> None:
        """A follower got a subscriber: follow the task, if it is not done or followed already (once
        what is under way for it is done, if something is: a take may be making it owned)."""
        key = (run.tenant, run.task.id)
        if key in self._claiming:
            self._spawn(self._watch_later(run), "a2a-watch")
        elif self._followable(run):
            self._follow(run)

    async def _watch_later(self, run: TaskRun) -> None:
        async with self._exclusive((run.tenant, run.task.id)):
            if self._followable(run) and run.subscribers:
                self._follow(run)

    def _followable(self, run: TaskRun) -> bool:
        return (
            not run.owned
            and run.follow_job is None
            and not run.finished
            and self._runs.get((run.tenant, run.task.id)) is run
        )

    def _follow(self, run: TaskRun) -> None:
        run.follow_job = asyncio.get_running_loop().create_task(self._following(run), name="a2a-follow")

    async def _following(self, run: TaskRun) -> None:
        shared = self.shared
        assert shared is not None
        tenant, task_id = run.tenant, run.task.id
        try:
            me = asyncio.current_task()
            while not run.finished and not run.owned and run.follow_job is me:
                events = shared.follow(tenant, task_id, run.seq)
                try:
                    async for seq, event in events:
                        if run.owned or run.follow_job is not me:
                            return  # taken here meanwhile (this process writes it now), or retired
                        if seq <= run.seq:
                            continue  # mirrored already (a catch-up went first)
                        if seq != run.seq + 1:
                            raise self._lost(run, run.seq, seq)
                        run.mirror(seq, event)
                        if run.finished:
                            return
                finally:
                    if hasattr(events, "aclose"):
                        await cast(_Closable, events).aclose()
                await asyncio.sleep(_REFOLLOW_SECONDS)  # the follow ended early: follow again
        except asyncio.CancelledError:
            raise
        except errors.A2AError as exc:  # not kept any more, damaged, the store away: said as it is
            if not isinstance(exc, errors.EventsNotRetainedError):
                log.warning("task %s: following its events from the store failed: %s", task_id, exc)
            self._drop(run, exc)
        except Exception as exc:
            log.warning("task %s: lost the stream of its events from the store (%s)", task_id, exc)
            self._drop(
                run,
                errors.UnavailableError(
                    f"task {errors.echo(task_id)}: this server lost the stream of its events from the "
                    "store; read the task and subscribe again"
                ),
            )
        finally:
            if run.follow_job is asyncio.current_task():
                run.follow_job = None

    @staticmethod
    def _lost(run: TaskRun, pos: int, first: int) -> errors.EventsNotRetainedError:
        return errors.EventsNotRetainedError(
            f"task {errors.echo(run.task.id)}: events {pos + 1} to {first - 1} are no longer retained "
            "by the store; read the task and subscribe again",
            metadata={"task_id": run.task.id, "position": pos, "oldest_retained": first},
        )

    def _drop(self, run: TaskRun, error: Exception) -> None:
        """End a follower's readers with ``error`` and forget it: the next load starts afresh."""
        run.log.fail(error)
        key = (run.tenant, run.task.id)
        if self._runs.get(key) is run:
            del self._runs[key]
        self.events.discard(run.log)

    def _unfollow(self, run: TaskRun) -> None:
        job, run.follow_job = run.follow_job, None
        if job is not None and job is not asyncio.current_task():
            job.cancel()
            # A cancel is now and then swallowed by a blocking read under the follow (seen with
            # redis-py's XREAD): cancelled again until it ends, or the follow would wait on forever.
            self._spawn(_stop_all([job]), "a2a-unfollow")

    def _retire(self, run: TaskRun) -> None:
        """Stop following a run about to be taken, without cancelling the follow in the middle of a
        read (redis-py drops the connection of a command cancelled under way, and connecting again
        costs more than the read): detached, it ends by itself at the next event, which the taker
        is about to write; cancelled only if it has not ended within :data:`_RETIRE_SECONDS`."""
        job, run.follow_job = run.follow_job, None
        if job is not None:
            self._spawn(self._retire_later(job), "a2a-unfollow")

    @staticmethod
    async def _retire_later(job: asyncio.Task[None]) -> None:
        done, _ = await asyncio.wait({job}, timeout=_RETIRE_SECONDS)
        if not done:
            await _stop_all([job])

    def _spawn(self, job: Coroutine[object, object, object], name: str) -> None:
        task = asyncio.get_running_loop().create_task(job, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the owner's heartbeat, cancel signals and orphans -------------------------------------------

    def start(
        self,
        on_cancel: Callable[[str, str], Coroutine[object, object, object]],
        on_orphans: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """Renew this process's lease every third of it; hand cancel signals to ``on_cancel`` (as they
        come, when the registry pushes them); with replicas, call ``on_orphans`` every lease or so."""
        if self._heartbeat is not None:
            return
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.create_task(self._beat(on_cancel), name="a2a-lease")
        if callable(getattr(self.registry, "cancel_signals", None)):
            self._spawn(self._listen(cast(_Signalling, self.registry), on_cancel), "a2a-cancel-signals")
        if on_orphans is not None and self.replicated:
            self._spawn(self._sweep(on_orphans), "a2a-orphans")

    async def _beat(self, on_cancel: Callable[[str, str], Coroutine[object, object, object]]) -> None:
        period = self.registry.lease_seconds / 3
        while True:
            try:
                for tenant, task_id in await self.registry.renew():
                    await on_cancel(tenant, task_id)
                for key in list(self._unreleased):
                    await self._retry_release(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup: try again next period, the lease has slack
                log.exception("could not renew the lease of owner %s", self.registry.owner)
            await asyncio.sleep(period)

    async def _retry_release(self, key: tuple[str, str]) -> None:
        async with self._exclusive(key):
            run = self._runs.get(key)
            if key in self._unreleased and (run is None or not run.owned):
                await self._release_claim(key)

    async def _listen(
        self, registry: _Signalling, on_cancel: Callable[[str, str], Coroutine[object, object, object]]
    ) -> None:
        """Cancel signals as they are raised; the renewal still catches those this misses."""
        pause = self.registry.lease_seconds / 3
        while True:
            signals = registry.cancel_signals()
            try:
                async for tenant, task_id in signals:
                    self._spawn(on_cancel(tenant, task_id), "a2a-cancel")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "cancel signals of owner %s interrupted (%s); listening again", self.registry.owner, exc
                )
            finally:
                with contextlib.suppress(Exception):
                    await signals.aclose()
            await asyncio.sleep(pause)

    async def _sweep(self, on_orphans: Callable[[], Awaitable[object]]) -> None:
        """Every lease or so (jittered, so that replicas do not sweep in step), orphans get their end."""
        lease = self.registry.lease_seconds
        while True:
            await asyncio.sleep(lease * random.uniform(0.5, 1.0))  # jitter, not a secret
            try:
                await on_orphans()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the registry is unreachable: next time
                log.warning("could not look for orphaned tasks (%s)", exc)

    async def stop(self) -> None:
        job, self._heartbeat = self._heartbeat, None
        jobs: list[asyncio.Task[object] | asyncio.Task[None]] = [job] if job is not None else []
        for task in list(self._background):
            if task.get_name() == "a2a-release":
                continue  # claims of tasks at rest: let them go, other replicas take them at once
            task.cancel()
            jobs.append(task)
        releases = [t for t in self._background if t.get_name() == "a2a-release"]
        if releases:
            await asyncio.wait(releases, timeout=self.registry.lease_seconds)
        for run in list(self._runs.values()):
            follow = run.follow_job
            if follow is not None:  # its readers would wait for events nobody mirrors any more
                self._unfollow(run)
                jobs.append(follow)
                run.log.fail(
                    errors.UnavailableError("this server is stopping: subscribe to the task again elsewhere")
                )
        await _stop_all(jobs)


_RETIRE_SECONDS = 3.0
"""How long a follow detached from a run that was taken may take to end by itself (see Runs._retire)."""
_STOP_SECONDS = 10.0
"""How long background jobs are cancelled again and again before they are given up on (logged)."""


async def _stop_all(jobs: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``jobs`` and wait for them to end, cancelling again what swallowed the cancel (a
    blocking read that completed just as it was cancelled does), within :data:`_STOP_SECONDS`."""
    pending = {job for job in jobs if not job.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _STOP_SECONDS
    for job in pending:
        job.cancel()
    while pending and loop.time() < deadline:
        _, pending = await asyncio.wait(pending, timeout=0.1)
        for job in pending:
            job.cancel()
    if pending:
        log.warning("%d background job(s) did not stop within %.0f s", len(pending), _STOP_SECONDS)
