"""The shared task store of replicas: Redis (``redis://``, ``rediss://``, ``unix://``; Cluster too).

Every replica of an agent opens the same URL (and ``prefix=``) and sees the same tasks, events and
owners. The key layout, and which keys each atomic operation touches (one slot each, so a Redis
Cluster serves them), are in :mod:`a2a_grpc.tasks._redis_keys`.

**Records.** A task is one hash: the task without its history and artifacts, its history, its
artifacts (apart, with their size beside them, as the SQLite store keeps them: a ListTasks reads only
what it returns), its sort and filter fields, the event position its snapshot includes and its owner.

**Group commit.** Like the SQLite store's: the saves and events queued while a write is under way go
in the next one, one pipeline (one round trip) for all, and each completes once Redis has applied it.
A later save of a task in the same batch makes its earlier ones moot. One write is under way at a
time, so a process's writes of a task reach Redis in the order they were made. A read of a task
waits for that task's queued writes (read your writes).

**ListTasks** reads one index (every task, by context, by state, by both) per tenant: a sorted set
whose entries sort by status timestamp then id, so the filters, the order, ``total_size`` (counted
with the page in one script: one snapshot) and the keyset cursor are one range each. A task updated
between two pages moves to the front: a later page, which starts strictly after the cursor, never
shows it again nor skips another. Its record is read after its index entry: the page shows the
newest record of each task it holds.

**Durable, shared events.** The store is the server's event sink (:attr:`RedisTaskStore.event_sink`,
:mod:`a2a_grpc.tasks.redis_events`): one stream per task, and other replicas follow it live.

**Who runs what.** :attr:`RedisTaskStore.registry` (:mod:`a2a_grpc.tasks.redis_registry`): owner
leases, claims, cancel signals; a snapshot of a SUBMITTED or WORKING task records its saver as the
owner (it claims the task unless another owner holds it).

**Sealed push configs.** Push configs (webhook URLs, tokens, credentials) are sealed with
AES-256-GCM (:mod:`a2a_grpc.tasks.sealing`) under the key given to the store (``key``), else the one
in ``A2A_GRPC_STORE_KEY`` (base64 of 32 bytes): every replica must have the same. There is no key
file: a store shared by replicas has no folder of its own. Without a key, push configs are stored
**in clear**, and the store says so at open (a warning naming ``A2A_GRPC_STORE_KEY``); a sealed
config read without the key, or with another, is refused with :class:`~a2a_grpc.tasks.StoreError`.

**Failures.** Opening PINGs Redis: a server refused, an authentication refused or no answer in time
raises :class:`~a2a_grpc.tasks.StoreError`, one line naming the URL (never its password). Later, a
Redis that cannot be reached makes the call fail with :class:`StoreUnavailableError` (gRPC
UNAVAILABLE: retry), and the store serves again once Redis is back. A record or an event that is
not what this store writes fails its call with :class:`~a2a_grpc.errors.InternalError` naming the
task, logged; the other tasks are served.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from a2a_grpc import errors, types
from a2a_grpc.redisconn import RedisTarget, connect, parse_redis_url, redis_problem
from a2a_grpc.tasks._encoded import history_tail, split_task
from a2a_grpc.tasks._errors import StoreError
from a2a_grpc.tasks._redis_batch import Batch
from a2a_grpc.tasks._redis_keys import SCRIPTS, Keys, index_member, member_id
from a2a_grpc.tasks.eventlog import DEFAULT_RETENTION, Retention, TaskLog
from a2a_grpc.tasks.lifecycle import TERMINAL_STATES, is_interrupted
from a2a_grpc.tasks.registry import new_owner_id
from a2a_grpc.tasks.sealing import STORE_KEY_ENV, Sealer, given_sealer, is_sealed
from a2a_grpc.tasks.settings import StoreSettings
from a2a_grpc.tasks.store import (
    DEFAULT_LIST_ANSWER_BYTES,
    DEFAULT_LIST_PAGE_BYTES,
    PageBudget,
    PushConfigPage,
    encode_push_cursor,
    encode_task_cursor,
    parse_list_request,
    parse_push_query,
    timestamp_micros,
)

__all__ = ["RedisTaskStore", "StoreUnavailableError"]

log = logging.getLogger("a2a_grpc.tasks")

_RUNNING = (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)


class StoreUnavailableError(errors.UnavailableError):
    """The task store (Redis) cannot be reached now: gRPC UNAVAILABLE, worth retrying."""


@dataclass(slots=True)
class _Save:
    fields: builtins.list[bytes | str | int]
    running: bool
    seq: int
    futures: builtins.list[asyncio.Future[None]] = field(default_factory=builtins.list)
    index: tuple[str, int, int] = ("", 0, 0)  # context id, state, status timestamp µs


@dataclass(slots=True)
class _Events:
    log: TaskLog
    items: builtins.list[tuple[int, bytes]] = field(default_factory=builtins.list)


def _size(value: bytes | None) -> int | None:
    try:
        size = int(value or 0)
    except ValueError:
        return None
    return size if size >= 0 else None


class RedisTaskStore:
    """A :class:`~a2a_grpc.tasks.store.TaskStore` in Redis at ``url`` (see the module doc).

    The constructor checks that Redis answers (a short PING), so a wrong URL, a refused password or
    a server that is down fails here, with :class:`~a2a_grpc.tasks.StoreError`. Always
    ``await store.close()``.

    ``settings`` (:class:`~a2a_grpc.tasks.settings.StoreSettings`): the lease, the Redis timeouts and
    pool size; ``lease_seconds``, if given, replaces the lease. ``owner`` names this process in the
    registry (default: a fresh owner id). ``key``: the push-config key (32 bytes or their base64;
    default ``A2A_GRPC_STORE_KEY``).

    Besides the protocol: :attr:`event_sink`, :attr:`registry`, :attr:`target` (the parsed URL) and
    :attr:`client` (the ``redis.asyncio`` client, for other parts that keep state in the same Redis).
    """

    def __init__(
        self,
        url: str | RedisTarget,
        *,
        settings: StoreSettings | None = None,
        owner: str | None = None,
        lease_seconds: float | None = None,
        key: bytes | str | None = None,
    ) -> None:
        from a2a_grpc.tasks.redis_events import RedisEventSink
        from a2a_grpc.tasks.redis_registry import RedisRegistry

        self.settings = settings or StoreSettings()
        if lease_seconds is not None:
            self.settings = dataclasses.replace(self.settings, lease_seconds=lease_seconds)
        try:
            self.target = url if isinstance(url, RedisTarget) else parse_redis_url(url)
        except ValueError as exc:
            raise StoreError(f"task store URL: {exc}", path="") from None
        self.keys = Keys(self.target.prefix)
        self._check_reachable()
        self._sealer = self._make_sealer(key)  # after: a start that fails says one line only
        self.client: Any = self._connect(blocking=True)
        self._followers: Any = None  # a pool of its own: a follower holds a connection while it waits
        self._closed = False
        self._shas: dict[str, str] = {}
        self._saves: dict[tuple[str, str], _Save] = {}
        self._events: dict[tuple[str, str], _Events] = {}
        self._retention: dict[tuple[str, str], Retention] = {}
        self._writing: dict[tuple[str, str], asyncio.Future[None]] = {}  # a task's queued writes
        self._flushing = False
        self._scheduled = False
        self._idle: asyncio.Future[None] | None = None
        self.registry = RedisRegistry(self, owner or new_owner_id(), self.settings.lease_seconds)
        self.event_sink = RedisEventSink(self)

    def _connect(self, *, blocking: bool) -> Any:
        # Calls share a bounded pool and wait for a free connection; followers each hold one for as
        # long as they wait, so theirs is not bounded (redisconn.connect).
        s = self.settings
        return connect(
            self.target,
            socket_timeout=s.redis_socket_timeout,
            connect_timeout=s.redis_connect_timeout,
            max_connections=s.redis_max_connections if blocking else None,
        )

    @property
    def followers(self) -> Any:
        """The client of :meth:`RedisEventSink.follow`'s blocking reads (unbounded: one per follower)."""
        if self._followers is None:
            self._followers = self._connect(blocking=False)
        return self._followers

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return self.target.shown

    # ------------------------------------------------------------ opening

    def _make_sealer(self, key: bytes | str | None) -> Sealer | None:
        given = given_sealer(key)
        if given is not None:
            return given
        log.warning(
            "task store %s: no store key (%s): push configs, webhook credentials included, are "
            "stored in clear in Redis; set %s (base64 of 32 random bytes, the same on every replica) "
            "to seal them",
            self.shown,
            STORE_KEY_ENV,
            STORE_KEY_ENV,
        )
        return None

    def _check_reachable(self) -> None:
        """A short synchronous PING: ``serve`` fails at start, with one line, when Redis is not there."""
        import redis
        from redis.cluster import RedisCluster

        timeout = min(self.settings.redis_connect_timeout, 5.0)
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        client: Any = None
        try:
            if self.target.cluster:
                client = RedisCluster.from_url(self.target.url, **options)
            else:
                client = redis.Redis.from_url(self.target.url, **options)
            client.ping()
        except (redis.RedisError, OSError, IndexError, ValueError) as exc:
            raise StoreError(f"task store {self.shown}: {redis_problem(exc)}", path=self.shown) from None
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    # ------------------------------------------------------------ talking to Redis

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RedisTaskStore is closed")

    @contextlib.contextmanager
    def talking(self, what: str) -> Iterator[None]:
        """Redis failures as the store's typed errors (see the module doc)."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError) as exc:
            problem = redis_problem(exc)
            log.warning("task store %s: %s: %s", self.shown, what, problem)
            raise StoreUnavailableError(f"the task store is unavailable ({problem}); try again") from None
        except redis.RedisError as exc:
            problem = redis_problem(exc)
            log.error("task store %s: %s: %s", self.shown, what, problem)
            raise errors.InternalError(f"the task store failed: {problem}") from None

    async def _sha(self, name: str) -> str:
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = str(await self.client.script_load(SCRIPTS[name]))
        return sha

    async def script(self, name: str, keys: builtins.list[str], args: builtins.list[Any]) -> Any:
        """Run one of our scripts (loaded once; again after a Redis restart forgot it)."""
        import redis

        for attempt in (0, 1):
            sha = await self._sha(name)
            try:
                return await self.client.evalsha(sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                self._shas.clear()
        raise AssertionError("unreachable")

    async def pipeline(self, build: Callable[[Any, dict[str, str]], object]) -> builtins.list[Any]:
        """Run ``build(batch, shas)``'s commands in one round trip; their answers, in order.

        On a Redis Cluster (whose pipelines refuse scripts) the commands run as chains instead:
        ``batch.chain(name)`` starts one; chains run at once, each one's commands in order.
        """
        import redis

        for attempt in (0, 1):
            shas = self._shas if len(self._shas) == len(SCRIPTS) else {n: await self._sha(n) for n in SCRIPTS}
            batch = Batch()
            build(batch, shas)
            try:
                if self.target.cluster:
                    return await batch.run_chains(self.client)
                return await batch.run_pipeline(self.client)
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                self._shas.clear()
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ TaskStore

    async def get(self, tenant: str, task_id: str) -> types.Task | None:
        found = await self.load(tenant, task_id)
        return found[0] if found is not None else None

    async def load(self, tenant: str, task_id: str) -> tuple[types.Task, int] | None:
        self._check_open()
        await self._written(tenant, task_id)
        name = self.keys.task(self.keys.task_tag(tenant, task_id))
        with self.talking(f"reading task {task_id!r}"):
            body, history, artifacts, seq = await self.client.hmget(
                name, "body", "history", "artifacts", "seq"
            )
        if body is None:
            return None
        try:
            task = types.Task.FromString(body)
            task.MergeFromString(history or b"")
            task.MergeFromString(artifacts or b"")
            return task, int(seq or 0)
        except (DecodeError, ValueError) as exc:
            raise self.damaged(tenant, task_id, "record", exc) from None

    def damaged(self, tenant: str, task_id: str, what: str, exc: BaseException) -> errors.InternalError:
        """A stored record or event that is not what this store writes: logged, and a typed error."""
        log.error(
            "task store %s: the %s of task %r (tenant %r) is damaged: %s",
            self.shown,
            what,
            task_id,
            tenant,
            exc,
        )
        return errors.InternalError(
            f"task {errors.echo(task_id)}: its stored {what} is damaged",
            metadata={"task_id": task_id},
        )

    def save(self, tenant: str, task: types.Task, *, seq: int = 0) -> asyncio.Future[None]:
        self._check_open()
        if not task.id:
            raise ValueError("cannot save a task without an id")
        # Serialised now (see TaskStore.save): the caller may change `task` at once.
        status = task.status
        state = int(status.state)
        running = state in _RUNNING
        ts = timestamp_micros(status.timestamp)
        rest, history, artifacts = split_task(task.SerializeToString())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key = (tenant, task.id)
        settle = -1
        if state in TERMINAL_STATES or is_interrupted(state):
            retention = self._retention.pop(key, DEFAULT_RETENTION)
            settle = int(retention.terminal_seconds * 1000)
        fields: builtins.list[bytes | str | int] = [
            bytes(rest),
            bytes(history),
            bytes(artifacts),
            ts,
            task.context_id,
            state,
            seq,
            1 if running else 0,
            settle,
        ]
        pending = self._saves.get(key)
        futures = pending.futures if pending is not None else []
        futures.append(future)
        self._saves[key] = _Save(fields, running, seq, futures, (task.context_id, state, ts))
        self._queued(key)
        return future

    async def list(
        self,
        tenant: str,
        request: types.ListTasksRequest,
        *,
        max_bytes: int = DEFAULT_LIST_PAGE_BYTES,
        max_answer_bytes: int = DEFAULT_LIST_ANSWER_BYTES,
    ) -> types.ListTasksResponse:
        self._check_open()
        query = parse_list_request(tenant, request)
        budget = PageBudget(max_bytes, max_answer_bytes)
        if any(k[0] == tenant for k in self._saves) or self._flushing:
            await self._drain()  # this process's own saves are listed
        n = self.keys.tenant_tag(tenant)
        index = self.keys.index(n, query.context_id or None, query.status or None)
        low = b"-" if query.after_micros is None else b"[" + index_member(query.after_micros, "")
        high = b"+" if query.cursor is None else b"(" + index_member(*query.cursor)
        with self.talking("listing tasks"):
            total, *members = await self.script("page", [index], [low, high, query.page_size + 1])
            keys = self._index_keys(tenant, members)
            response = types.ListTasksResponse(page_size=query.page_size, total_size=int(total))
            more = len(keys) > query.page_size
            keys = keys[: query.page_size]
            wanted = ("body", "asize") if query.history_length == 0 else ("body", "asize", "history")
            rows = await self.pipeline(
                lambda pipe, _: [
                    pipe.hmget(self.keys.task(self.keys.task_tag(tenant, i)), *wanted) for _, i in keys
                ]
            )
        last = (0, "")
        admitted: builtins.list[tuple[str, types.Task]] = []
        for (ts, task_id), row in zip(keys, rows, strict=True):
            body, asize = row[0], _size(row[1])
            if body is None:  # its record is gone (a FLUSH, a lost key): nothing to list
                log.warning("task store %s: task %r is indexed but has no record", self.shown, task_id)
                continue
            if asize is None:
                raise self.damaged(tenant, task_id, "record", ValueError(f"artifacts size {row[1]!r}"))
            try:
                tail = history_tail(row[2], query.history_length) if len(row) > 2 and row[2] else b""
            except ValueError as exc:
                raise self.damaged(tenant, task_id, "record", exc) from None
            size = len(body) + len(tail) + (asize if query.include_artifacts else 0)
            if not budget.admits(task_id, size):
                more = True  # the next page starts with this task
                break
            task = response.tasks.add()
            try:
                task.ParseFromString(body)
                task.MergeFromString(tail)  # type: ignore[arg-type]  # a view: parsed in place
            except DecodeError as exc:
                raise self.damaged(tenant, task_id, "record", exc) from None
            if query.include_artifacts and asize:
                admitted.append((task_id, task))
            last = (ts, task_id)
        if admitted:
            with self.talking("listing tasks"):
                blobs = await self.pipeline(
                    lambda pipe, _: [
                        pipe.hget(self.keys.task(self.keys.task_tag(tenant, i)), "artifacts")
                        for i, _t in admitted
                    ]
                )
            for (task_id, task), blob in zip(admitted, blobs, strict=True):
                try:
                    task.MergeFromString(blob or b"")
                except DecodeError as exc:
                    raise self.damaged(tenant, task_id, "record", exc) from None
        if more:
            response.next_page_token = encode_task_cursor(query, last)
        return response

    def _index_keys(self, tenant: str, members: builtins.list[bytes]) -> builtins.list[tuple[int, str]]:
        try:
            return [member_id(m) for m in members]
        except (struct.error, UnicodeDecodeError) as exc:
            log.error("task store %s: the task index of tenant %r is damaged: %s", self.shown, tenant, exc)
            raise errors.InternalError("the task index is damaged: ListTasks cannot page it") from None

    async def put_push_config(self, tenant: str, config: types.TaskPushNotificationConfig) -> None:
        self._check_open()
        if not config.task_id or not config.id:
            raise ValueError("a push notification config needs both task_id and id to be stored")
        body = config.SerializeToString()
        if self._sealer is not None:
            body = self._sealer.seal(body, tenant, config.task_id, config.id)
        name = self.keys.push(self.keys.task_tag(tenant, config.task_id))
        with self.talking("storing a push config"):
            await self.client.hset(name, config.id, body)

    async def get_push_config(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None:
        self._check_open()
        name = self.keys.push(self.keys.task_tag(tenant, task_id))
        with self.talking("reading a push config"):
            body = await self.client.hget(name, config_id)
        return None if body is None else self._config(tenant, task_id, config_id, body)

    async def list_push_configs(
        self, tenant: str, task_id: str, page_size: int, page_token: str
    ) -> PushConfigPage:
        self._check_open()
        query = parse_push_query(tenant, task_id, page_size, page_token)
        name = self.keys.push(self.keys.task_tag(tenant, task_id))
        with self.talking("listing push configs"):
            stored: dict[bytes, bytes] = await self.client.hgetall(name)  # a handful per task
        rows = sorted((k.decode(errors="replace"), v) for k, v in stored.items())
        rows = [(i, v) for i, v in rows if query.after_id is None or i > query.after_id]
        token = ""
        if len(rows) > query.page_size:
            rows = rows[: query.page_size]
            token = encode_push_cursor(query, rows[-1][0])
        return [self._config(tenant, task_id, i, body) for i, body in rows], token

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        self._check_open()
        name = self.keys.push(self.keys.task_tag(tenant, task_id))
        with self.talking("deleting a push config"):
            return bool(await self.client.hdel(name, config_id))

    def _config(
        self, tenant: str, task_id: str, config_id: str, body: bytes
    ) -> types.TaskPushNotificationConfig:
        where = f"task store {self.shown}"
        if is_sealed(body):
            if self._sealer is None:
                raise StoreError(
                    f"{where}: a push config of task {task_id!r} is sealed, and this store has no key: "
                    f"set {STORE_KEY_ENV} to the key the other replicas use",
                    path=self.shown,
                )
            body = self._sealer.open(body, tenant, task_id, config_id, where=where)
        try:
            return types.TaskPushNotificationConfig.FromString(body)
        except DecodeError as exc:
            raise self.damaged(tenant, task_id, "push config", exc) from None

    async def close(self) -> None:
        if self._closed:
            return
        try:
            with contextlib.suppress(Exception):  # best effort: a lease also lapses by itself
                await self.registry.leave()
            with contextlib.suppress(Exception):
                await self._drain()
        finally:
            self._closed = True
            await self.registry.stop()
            for client in (self.client, self._followers):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()

    # ------------------------------------------------------------ the write queue (group commit)

    def submit_event(self, log_: TaskLog, seq: int, event: types.StreamResponse) -> None:
        key = (log_.tenant, log_.task_id)
        pending = self._events.get(key)
        if pending is None:
            pending = self._events[key] = _Events(log_)
            self._retention[key] = log_.retention
        pending.items.append((seq, event.SerializeToString()))
        self._queued(key)

    def _queued(self, key: tuple[str, str]) -> None:
        if key not in self._writing:
            self._writing[key] = asyncio.get_running_loop().create_future()
        if not self._flushing and not self._scheduled:
            self._scheduled = True
            # At the end of this loop iteration: what the same step queues shares the round trip.
            asyncio.get_running_loop().call_soon(self._flush)

    async def _written(self, tenant: str, task_id: str) -> None:
        waiting = self._writing.get((tenant, task_id))
        if waiting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(waiting)

    def _flush(self) -> None:
        self._scheduled = False
        saves, self._saves = self._saves, {}
        events, self._events = self._events, {}
        writing, self._writing = self._writing, {}
        self._flushing = True
        job = asyncio.get_running_loop().create_task(self._write(saves, events))
        job.add_done_callback(lambda done: self._flushed(saves, events, writing, done))

    async def _write(
        self, saves: dict[tuple[str, str], _Save], events: dict[tuple[str, str], _Events]
    ) -> None:
        keys, me = self.keys, self.registry.owner
        lease_ms = int(self.registry.lease_seconds * 1000)
        owner_tag = keys.owner_tag(me)

        def build(pipe: Any, shas: dict[str, str]) -> None:
            for (tenant, task_id), pending in events.items():
                pipe.chain((tenant, task_id))  # a task's writes in order: events, record, index
                t = keys.task_tag(tenant, task_id)
                retention = pending.log.retention
                args: builtins.list[Any] = [retention.events, retention.bytes]
                for seq, body in pending.items:
                    args += [seq, body]
                pipe.evalsha(shas["events"], 2, keys.events(t), keys.emeta(t), *args)
            running = False
            for (tenant, task_id), save in saves.items():
                pipe.chain((tenant, task_id))
                t = keys.task_tag(tenant, task_id)
                task_keys = (keys.task(t), keys.claim(t), keys.events(t), keys.emeta(t))
                pipe.evalsha(shas["save"], 4, *task_keys, *save.fields, me, lease_ms)
                n = keys.tenant_tag(tenant)
                context_id, state, ts = save.index
                index_keys = (
                    keys.index_entries(n),
                    keys.index(n),
                    keys.index(n, context_id),
                    keys.index(n, None, state),
                    keys.index(n, context_id, state),
                )
                pipe.evalsha(shas["index"], 5, *index_keys, task_id, index_member(ts, task_id))
                pair = self.registry.member(tenant, task_id)
                if save.running:
                    running = True
                    pipe.sadd(keys.owned(owner_tag), pair)
                else:
                    pipe.srem(keys.owned(owner_tag), pair)
            pipe.chain("owner")
            if running:  # the lease too: a saver that has not renewed yet is alive for the others
                pipe.sadd(keys.owners, me)
                pipe.set(keys.lease(owner_tag), self.registry.lease_value(), px=lease_ms)

        with self.talking("writing tasks and events"):
            results = await self.pipeline(build)
        # The saves' owner: ours, or another live owner's claim (the script does not steal it).
        at = len(events)
        for (tenant, task_id), save in saves.items():
            owner = results[at]
            at += 3
            if save.running and (owner or b"").decode(errors="replace") == me:
                self.registry.held.add((tenant, task_id))
            elif not save.running:
                self.registry.held.discard((tenant, task_id))

    def _flushed(
        self,
        saves: dict[tuple[str, str], _Save],
        events: dict[tuple[str, str], _Events],
        writing: dict[tuple[str, str], asyncio.Future[None]],
        done: asyncio.Task[None],
    ) -> None:
        failure: BaseException | None = (
            RuntimeError("the write was cancelled (the store is closing)")
            if done.cancelled()
            else done.exception()
        )
        for save in saves.values():
            for future in save.futures:
                if future.done():
                    continue
                if failure is not None:
                    future.set_exception(failure)
                else:
                    future.set_result(None)
        for key, pending in events.items():
            last = pending.items[-1][0]
            if failure is None:
                pending.log.stored(last)
            else:
                log.error(
                    "task %s: events %d to %d could not be stored (%s); its readers are ended",
                    key[1],
                    pending.items[0][0],
                    last,
                    failure,
                )
                pending.log.fail(
                    errors.InternalError(f"task {errors.echo(key[1])}: its events could not be stored")
                )
        for waiter in writing.values():
            if not waiter.done():
                waiter.set_result(None)
        self._flushing = False
        if self._saves or self._events:
            self._flush()
        elif self._idle is not None:
            self._idle.set_result(None)
            self._idle = None

    async def _drain(self) -> None:
        """Wait until everything queued so far is written (or failed)."""
        while self._flushing or self._saves or self._events or self._scheduled:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)

    def __repr__(self) -> str:
        return f"RedisTaskStore({self.shown!r})"
