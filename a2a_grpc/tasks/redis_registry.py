"""Which replica runs which task, in Redis: claims under leases, orphans, prompt cancel signals.

What it guarantees (see :mod:`a2a_grpc.tasks.registry` for the protocol):

* **One runner.** A task's *claim* (``claim:{tenant:task}``, the owner id, expiring after
  ``lease_seconds``) is taken atomically (a script): :meth:`RedisRegistry.claim` answers False while
  another live owner holds it. A snapshot of a SUBMITTED or WORKING task records its saver as the
  owner (taking the claim unless another owner holds it, never stealing it); a snapshot of a task at
  rest releases this owner's claim.
* **Leases.** Each owner keeps ``lease:{owner}`` (its host and process id) and its claims alive with
  :meth:`RedisRegistry.renew` (every third of the lease). An owner that stops renewing is dead once
  its lease lapses; one on this host whose process is gone (this server's previous life, killed) is
  dead at once.
* **Orphans without a scan.** Each owner's running tasks are in ``owned:{owner}``, the owners in
  ``owners``: :meth:`RedisRegistry.orphans` reads the sets of the dead owners only, and gives the
  SUBMITTED or WORKING tasks they still own. What a set holds that is no longer so (the task ended,
  another owner took it) is pruned on the way.
* **Cancel signals reach the owner, promptly.** :meth:`RedisRegistry.signal_cancel` stores the
  signal in ``cancels:{owner}`` (which :meth:`RedisRegistry.renew` hands over: nothing lost while
  the owner was away) and publishes it on the owner's channel, which
  :meth:`RedisRegistry.cancel_signals` yields as it comes.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any

from a2a_grpc import types
from a2a_grpc.tasks._redis_keys import Keys, decode_pair, encode_pair

if TYPE_CHECKING:
    from a2a_grpc.tasks.redis_store import RedisTaskStore

__all__ = ["RedisRegistry"]

log = logging.getLogger("a2a_grpc.tasks")

_RUNNING = (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
_LISTEN_SECONDS = 1.0


class RedisRegistry:
    """The store's :class:`~a2a_grpc.tasks.registry.TaskRegistry` (see the module doc)."""

    def __init__(self, store: RedisTaskStore, owner: str, lease_seconds: float) -> None:
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.held: set[tuple[str, str]] = set()
        """The tasks this owner claimed or saved running (what renew extends)."""
        self._host = socket.gethostname()
        self._tag = store.keys.owner_tag(owner)
        self._stopping = asyncio.Event()

    @staticmethod
    def member(tenant: str, task_id: str) -> str:
        return encode_pair(tenant, task_id)

    @property
    def _lease_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    def lease_value(self) -> str:
        return f"{self._host}\n{os.getpid()}"

    async def claim(self, tenant: str, task_id: str) -> bool:
        store = self._store
        store._check_open()
        keys = store.keys
        t = keys.task_tag(tenant, task_id)
        with store.talking(f"claiming task {task_id!r}"):
            got = await store.script("claim", [keys.claim(t), keys.task(t)], [self.owner, self._lease_ms, ""])
            if not got:
                holder = await store.client.get(keys.claim(t))
                if holder is not None and await self._alive(holder.decode(errors="replace")):
                    return False
                # The holder is dead (this host's previous life) or just let go: take it over.
                dead = "" if holder is None else holder.decode(errors="replace")
                args = [self.owner, self._lease_ms, dead]
                got = await store.script("claim", [keys.claim(t), keys.task(t)], args)
                if not got:
                    return False
            await store.pipeline(
                lambda pipe, _: (
                    pipe.sadd(keys.owned(self._tag), self.member(tenant, task_id)),
                    pipe.sadd(keys.owners, self.owner),
                )
            )
        self.held.add((tenant, task_id))
        return True

    async def release(self, tenant: str, task_id: str) -> None:
        store = self._store
        store._check_open()
        keys = store.keys
        t = keys.task_tag(tenant, task_id)
        member = self.member(tenant, task_id)
        self.held.discard((tenant, task_id))
        with store.talking(f"releasing task {task_id!r}"):
            await store.script("release", [keys.claim(t)], [self.owner])
            await store.pipeline(
                lambda pipe, _: (
                    pipe.srem(keys.owned(self._tag), member),
                    pipe.srem(keys.cancels(self._tag), member),
                )
            )

    async def renew(self) -> builtins.list[tuple[str, str]]:
        store = self._store
        store._check_open()
        keys = store.keys
        held = sorted(self.held)

        def build(pipe: Any, shas: dict[str, str]) -> None:
            pipe.set(keys.lease(self._tag), self.lease_value(), px=self._lease_ms)
            pipe.sadd(keys.owners, self.owner)
            pipe.evalsha(shas["take"], 1, keys.cancels(self._tag))
            for tenant, task_id in held:
                pipe.evalsha(
                    shas["extend"], 1, keys.claim(keys.task_tag(tenant, task_id)), self.owner, self._lease_ms
                )

        with store.talking("renewing the lease"):
            results = await store.pipeline(build)
        for pair, kept in zip(held, results[3:], strict=True):
            if not kept:  # another owner has it now (or it was released elsewhere)
                self.held.discard(pair)
        signalled = {p for p in (decode_pair(m) for m in results[2]) if p is not None}
        return sorted(signalled & self.held)

    async def orphans(self) -> builtins.list[tuple[str, str]]:
        store = self._store
        store._check_open()
        keys = store.keys
        found: builtins.list[tuple[str, str]] = []
        with store.talking("looking for orphaned tasks"):
            owners = sorted(o.decode(errors="replace") for o in await store.client.smembers(keys.owners))
            for owner in owners:
                if owner == self.owner or await self._alive(owner):
                    continue
                o = keys.owner_tag(owner)
                members = sorted(await store.client.smembers(keys.owned(o)))
                pairs = [decode_pair(m) for m in members]
                rows = await store.pipeline(partial(_read_states, keys, pairs))
                stale = []
                for member, pair, row in zip(members, pairs, rows, strict=True):
                    state, holder = (row if isinstance(row, list) else [None, None])[:2]
                    if pair is not None and _int(state) in _RUNNING and holder == owner.encode():
                        found.append(pair)
                    else:
                        stale.append(member)
                if stale:
                    await store.client.srem(keys.owned(o), *stale)
                if len(stale) == len(members):  # it owns nothing any more
                    await store.client.srem(keys.owners, owner)
        return found

    async def signal_cancel(self, tenant: str, task_id: str) -> bool:
        store = self._store
        store._check_open()
        keys = store.keys
        owner = await self.owner_of(tenant, task_id)
        if owner is None:
            return False
        o = keys.owner_tag(owner)
        member = self.member(tenant, task_id)
        with store.talking(f"signalling the cancel of task {task_id!r}"):
            await store.client.sadd(keys.cancels(o), member)
            await store.client.publish(keys.channel(o), member)
        return True

    async def owner_of(self, tenant: str, task_id: str) -> str | None:
        store = self._store
        store._check_open()
        await store._written(tenant, task_id)
        with store.talking(f"reading the owner of task {task_id!r}"):
            holder = await store.client.get(store.keys.claim(store.keys.task_tag(tenant, task_id)))
            if holder is None:
                return None
            owner = holder.decode(errors="replace")
            return owner if await self._alive(owner) else None

    async def leave(self) -> None:
        """This owner stops (gracefully): its lease and claims end now, not when they would lapse."""
        store = self._store
        keys = store.keys
        held = sorted(self.held)

        def build(pipe: Any, shas: dict[str, str]) -> None:
            pipe.delete(keys.lease(self._tag))
            for tenant, task_id in held:
                pipe.evalsha(shas["release"], 1, keys.claim(keys.task_tag(tenant, task_id)), self.owner)

        with store.talking("leaving"):
            await store.pipeline(build)
        self.held.clear()

    async def stop(self) -> None:
        """The store closes: followers of :meth:`cancel_signals` end."""
        self._stopping.set()

    async def cancel_signals(self) -> AsyncIterator[tuple[str, str]]:
        """The (tenant, task id) of each cancel signal raised for this owner's tasks, as it comes
        (pub/sub: prompt; :meth:`renew` still hands over those raised while this was not listening).
        Runs until the store closes or the caller stops; a Redis away is waited for (logged), not
        raised: the signals come again through :meth:`renew`."""
        store = self._store
        store._check_open()
        channel = store.keys.channel(self._tag)
        delay = 0.1
        while not self._stopping.is_set() and not store._closed:
            pubsub: Any = store.client.pubsub()
            try:
                await pubsub.subscribe(channel)
                delay = 0.1
                while not self._stopping.is_set():
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=_LISTEN_SECONDS
                    )
                    if message is None or message.get("type") != "message":
                        continue
                    pair = decode_pair(message["data"])
                    if pair is None:
                        log.warning(
                            "cancel channel of owner %s: a message that is no task: ignored", self.owner
                        )
                        continue
                    if pair in self.held:
                        yield pair
            except (ConnectionError, OSError, TimeoutError) as exc:
                log.warning("cancel signals of owner %s: %s; listening again", self.owner, exc)
            except Exception as exc:
                import redis

                if not isinstance(exc, redis.RedisError):
                    raise
                log.warning("cancel signals of owner %s: %s; listening again", self.owner, exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _alive(self, owner: str) -> bool:
        """Whether ``owner``'s lease holds, and, on this host, its process lives."""
        if owner == self.owner:
            return True
        store = self._store
        value = await store.client.get(store.keys.lease(store.keys.owner_tag(owner)))
        if value is None:
            return False
        host, _, pid = value.decode(errors="replace").partition("\n")
        if host == self._host and pid.isdigit():
            return int(pid) != os.getpid() and _process_alive(int(pid))
        return True


def _read_states(keys: Keys, pairs: builtins.list[tuple[str, str] | None], batch: Any, _: object) -> None:
    for pair in pairs:
        if pair is None:
            batch.echo(b"")  # a member that is no task: keeps the answers in step
        else:
            batch.hmget(keys.task(keys.task_tag(*pair)), "state", "owner")


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
