"""An in-process stand-in for a store shared by replicas (what Redis gives), for unit tests of the
replica logic (``a2a_grpc._runs``): one :class:`Shared` state, and a :class:`ReplicaStore` per
replica over it, each with its own registry owner and the shared event sink.

It keeps the contracts the Redis backends keep (``TaskRegistry.claim`` answers False while another
live owner holds a task; ``SharedEventSink.follow`` gives stored events then live ones, and
EventsNotRetainedError once the ones asked for are trimmed; cancel signals are pushed to their
owner), in memory, so that the logic is tested without a server process or Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

from a2a_grpc import errors, types
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.tasks.eventlog import TaskLog
from a2a_grpc.tasks.lifecycle import TERMINAL_STATES

Key = tuple[str, str]
_RUNNING = {types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING}


class Shared:
    """What every replica sees: tasks, events, claims, leases and cancel signals."""

    def __init__(self, lease_seconds: float = 1.0) -> None:
        self.lease_seconds = lease_seconds
        self.tasks = InMemoryTaskStore()
        self.events: dict[Key, list[tuple[int, bytes]]] = {}
        self.first: dict[Key, int] = {}
        """Per task, the oldest event still kept (trim moves it on)."""
        self.claims: dict[Key, str] = {}
        self.leases: dict[str, float] = {}
        self.dead: set[str] = set()
        self.cancels: set[Key] = set()
        self.signals: dict[str, asyncio.Queue[Key]] = {}
        self.claim_calls = 0
        self.swallowed_cancels = 0
        """Cancels a follower waiting for events ignores, as a blocking read that completed just then
        does (redis-py's XREAD, now and then)."""
        self.flowing = asyncio.Event()
        """Cleared: followers get nothing more (they fall behind) until it is set again."""
        self.flowing.set()
        self._waiters: dict[Key, list[asyncio.Future[None]]] = {}

    def store(self, owner: str) -> ReplicaStore:
        return ReplicaStore(self, owner)

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def alive(self, owner: str) -> bool:
        return owner not in self.dead and self.leases.get(owner, 0.0) > self.now()

    def kill(self, owner: str) -> None:
        """The replica ``owner`` dies: its lease is over at once (as if it had lapsed)."""
        self.dead.add(owner)

    def trim(self, tenant: str, task_id: str, keep: int) -> None:
        """Keep only the last ``keep`` events of a task (what retention does)."""
        key = (tenant, task_id)
        stream = self.events.get(key, [])
        if len(stream) > keep:
            del stream[: len(stream) - keep]
            self.first[key] = stream[0][0]

    def append(self, key: Key, seq: int, data: bytes) -> None:
        stream = self.events.setdefault(key, [])
        last = stream[-1][0] if stream else self.first.get(key, 1) - 1
        if seq != last + 1:
            raise AssertionError(f"task {key[1]}: event {seq} stored after event {last}: written twice?")
        stream.append((seq, data))
        for waiter in self._waiters.pop(key, []):
            if not waiter.done():
                waiter.set_result(None)

    def changed(self, key: Key) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(waiter)
        return waiter


def _event(data: bytes) -> types.StreamResponse:
    event = types.StreamResponse()
    event.ParseFromString(data)
    return event


class SharedSink:
    """The shared event sink: what a replica stores, every other one can follow."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def submit(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
        self.shared.append((log.tenant, log.task_id), seq, event.SerializeToString())
        asyncio.get_running_loop().call_soon(log.stored, seq)  # stored "soon", as a real sink

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        return [(s, _event(d)) for s, d in self.shared.events.get((tenant, task_id), []) if s > seq]

    async def follow(
        self, tenant: str, task_id: str, after: int
    ) -> AsyncIterator[tuple[int, types.StreamResponse]]:
        key = (tenant, task_id)
        pos = after
        while True:
            await self.shared.flowing.wait()
            first = self.shared.first.get(key, 1)
            if pos + 1 < first:
                raise errors.EventsNotRetainedError(
                    f"task {task_id}: events {pos + 1} to {first - 1} are gone"
                )
            newer = [(s, d) for s, d in self.shared.events.get(key, []) if s > pos]
            waiter = self.shared.changed(key) if not newer else None
            for seq, data in newer:
                event = _event(data)
                pos = seq
                yield seq, event
                if event.HasField("status_update") and event.status_update.status.state in TERMINAL_STATES:
                    return
            if waiter is not None:
                try:
                    await waiter
                except asyncio.CancelledError:
                    if not self.shared.swallowed_cancels:
                        raise
                    self.shared.swallowed_cancels -= 1


class SharedRegistry:
    """One replica's registry over the shared claims and leases."""

    def __init__(self, shared: Shared, owner: str) -> None:
        self.shared = shared
        self.owner = owner
        self.lease_seconds = shared.lease_seconds

    def _holder(self, key: Key) -> str | None:
        holder = self.shared.claims.get(key)
        return holder if holder is not None and self.shared.alive(holder) else None

    async def claim(self, tenant: str, task_id: str) -> bool:
        await asyncio.sleep(0)  # a round trip: others may run meanwhile
        self.shared.claim_calls += 1
        holder = self._holder((tenant, task_id))
        if holder is not None and holder != self.owner:
            return False
        self.shared.claims[(tenant, task_id)] = self.owner
        return True

    async def release(self, tenant: str, task_id: str) -> None:
        await asyncio.sleep(0)
        if self.shared.claims.get((tenant, task_id)) == self.owner:
            del self.shared.claims[(tenant, task_id)]
        self.shared.cancels.discard((tenant, task_id))

    async def renew(self) -> list[tuple[str, str]]:
        shared = self.shared
        if self.owner in shared.dead:
            return []
        shared.leases[self.owner] = shared.now() + self.lease_seconds
        mine = [k for k in shared.cancels if shared.claims.get(k) == self.owner]
        shared.cancels.difference_update(mine)
        return sorted(mine)

    async def orphans(self) -> list[tuple[str, str]]:
        found = []
        for tenant, bucket in self.shared.tasks._tasks.items():
            for task_id, entry in bucket.items():
                if entry.task.status.state in _RUNNING and self._holder((tenant, task_id)) is None:
                    found.append((tenant, task_id))
        return found

    async def signal_cancel(self, tenant: str, task_id: str) -> bool:
        holder = self._holder((tenant, task_id))
        if holder is None:
            return False
        self.shared.cancels.add((tenant, task_id))
        queue = self.shared.signals.get(holder)
        if queue is not None:
            queue.put_nowait((tenant, task_id))
        return True

    async def owner_of(self, tenant: str, task_id: str) -> str | None:
        return self._holder((tenant, task_id))

    async def cancel_signals(self) -> AsyncIterator[tuple[str, str]]:
        queue = self.shared.signals.setdefault(self.owner, asyncio.Queue())
        while True:
            yield await queue.get()


class ReplicaStore(InMemoryTaskStore):
    """One replica's view of the shared store: the same tasks and push configs, its own owner.

    As the SQLite and Redis stores do, a snapshot of a SUBMITTED or WORKING task records its saver
    as the owner (claiming it, unless another live owner holds it), and one of a task at rest
    releases the saver's claim."""

    def __init__(self, shared: Shared, owner: str) -> None:
        super().__init__()
        self.shared = shared
        self._tasks = shared.tasks._tasks
        self._push = shared.tasks._push
        self.registry = SharedRegistry(shared, owner)  # type: ignore[assignment]
        self.event_sink = SharedSink(shared)

    def save(self, tenant: str, task: types.Task, *, seq: int = 0) -> Awaitable[None]:
        key = (tenant, task.id)
        owner = self.registry.owner
        holder = self.shared.claims.get(key)
        if task.status.state in _RUNNING:
            if holder is None or holder == owner or not self.shared.alive(holder):
                self.shared.claims[key] = owner
        elif holder == owner:
            del self.shared.claims[key]
        return super().save(tenant, task, seq=seq)
