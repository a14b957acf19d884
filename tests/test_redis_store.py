"""The Redis task backends beyond the shared store suite (tests/test_task_store.py runs that on
Redis too): pagination under concurrent writes, following events live across stores, retention
in Redis, two owners on one Redis (claims, leases, orphans, cancel signals), hostile records,
Redis going away and coming back, ids that hold colons and braces, sealed push configs, the open's
one-line errors, and a URL over TLS. Every redis-server a test starts itself is stopped by PID."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis
import trustme

from a2a_grpc import errors, types
from a2a_grpc.tasks import RedisTaskStore, StoreError, StoreSettings, open_store
from a2a_grpc.tasks._redis_keys import Keys
from a2a_grpc.tasks.eventlog import Backpressure, InMemoryEventLog, LogReader, Retention, TaskLog
from a2a_grpc.tasks.redis_store import StoreUnavailableError
from a2a_grpc.tasks.sealing import MARK
from tests.redisserver import RedisServer, start_redis

WAIT = 20.0
KEY = base64.b64encode(bytes(range(32))).decode()
BASE_TS = 1_700_000_000


def task_of(
    task_id: str, *, state: int = types.TASK_STATE_WORKING, ts: int = BASE_TS, ctx: str = "c"
) -> types.Task:
    task = types.Task(id=task_id, context_id=ctx, status=types.TaskStatus(state=state))  # type: ignore[arg-type]
    task.status.timestamp.seconds = ts
    task.history.add(message_id=f"{task_id}-m", role=types.ROLE_USER).parts.add(text="hello")
    task.artifacts.add(artifact_id=f"{task_id}-a").parts.add(text="result")
    return task


def status(n: int, task_id: str = "t") -> types.StreamResponse:
    event = types.StreamResponse()
    event.status_update.task_id = task_id
    event.status_update.status.message.message_id = f"m{n}"
    return event


def sized(n: int, size: int) -> types.StreamResponse:
    event = types.StreamResponse()
    event.artifact_update.artifact.artifact_id = f"a{n}"
    event.artifact_update.artifact.parts.add(raw=bytes(size))
    return event


def append(log: TaskLog, event: types.StreamResponse) -> int:
    return log.append(event, event.ByteSize())


async def drain(reader: LogReader) -> None:
    async for _ in reader:
        pass


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def raw(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


@pytest_asyncio.fixture
async def store(redis_url: str) -> AsyncIterator[RedisTaskStore]:
    backend = RedisTaskStore(redis_url, key=KEY)
    try:
        yield backend
    finally:
        await backend.close()


async def take(follow: AsyncIterator[tuple[int, types.StreamResponse]], count: int) -> list[int]:
    out: list[int] = []
    async with asyncio.timeout(WAIT):
        async for seq, _ in follow:
            out.append(seq)
            if len(out) == count:
                break
    return out


# ---------------------------------------------------------------- ListTasks under concurrent writes


@pytest.mark.asyncio
async def test_paging_under_concurrent_writes_neither_skips_nor_repeats(store: RedisTaskStore) -> None:
    """While one client pages, others add tasks and update existing ones (which moves them to the
    front): every task nobody touched comes exactly once, in order, and no task comes twice."""
    count = 240
    for i in range(count):
        await store.save("", task_of(f"t{i:03d}", ts=BASE_TS + i))
    rng = random.Random(16)
    updated: set[str] = set()
    added = 0
    seen: list[str] = []
    token = ""
    for _ in range(count):  # bounded: each page holds at least one task
        page = await store.list("", types.ListTasksRequest(page_size=7, page_token=token))
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
        # Between pages: new tasks, and updates of tasks already listed and not yet listed.
        writes = []
        for _ in range(3):
            added += 1
            writes.append(store.save("", task_of(f"new{added:03d}", ts=BASE_TS + count + added)))
            victim = f"t{rng.randrange(count):03d}"
            updated.add(victim)
            writes.append(store.save("", task_of(victim, ts=BASE_TS + 10 * count + added)))
        await asyncio.gather(*writes)
    assert not token
    assert len(seen) == len(set(seen)), "a task was listed twice"
    untouched = [f"t{i:03d}" for i in reversed(range(count)) if f"t{i:03d}" not in updated]
    assert [i for i in seen if i in set(untouched)] == untouched
    assert (await store.list("", types.ListTasksRequest())).total_size == count + added


@pytest.mark.asyncio
async def test_every_filter_is_one_index_with_an_exact_total(store: RedisTaskStore) -> None:
    for i in range(30):
        state = (types.TASK_STATE_WORKING, types.TASK_STATE_COMPLETED, types.TASK_STATE_FAILED)[i % 3]
        await store.save("", task_of(f"t{i:02d}", state=state, ts=BASE_TS + i, ctx=f"c{i % 2}"))
    # A task moving state and context leaves its old index entries.
    await store.save("", task_of("t00", state=types.TASK_STATE_CANCELED, ts=BASE_TS + 100, ctx="c9"))
    both = await store.list("", types.ListTasksRequest(context_id="c1", status=types.TASK_STATE_COMPLETED))
    assert [t.id for t in both.tasks] == [
        f"t{i:02d}" for i in reversed(range(30)) if i % 3 == 1 and i % 2 == 1
    ]
    assert both.total_size == len(both.tasks)
    assert (await store.list("", types.ListTasksRequest(context_id="c0"))).total_size == 14
    assert (await store.list("", types.ListTasksRequest(status=types.TASK_STATE_WORKING))).total_size == 9
    moved = await store.list("", types.ListTasksRequest(context_id="c9"))
    assert [t.id for t in moved.tasks] == ["t00"]
    after = types.ListTasksRequest(status_timestamp_after={"seconds": BASE_TS + 25})
    assert [t.id for t in (await store.list("", after)).tasks] == ["t00", "t29", "t28", "t27", "t26", "t25"]


# ---------------------------------------------------------------- events: follow, replay, retention


@pytest.mark.asyncio
async def test_a_follower_on_another_store_replays_then_reads_live_in_order(redis_url: str) -> None:
    writer = RedisTaskStore(redis_url, key=KEY)
    reader = RedisTaskStore(redis_url, key=KEY)
    try:
        log = InMemoryEventLog(sink=writer.event_sink).open("", "t")
        for n in range(1, 4):
            append(log, status(n))
        await log.durable(3)
        follower = reader.event_sink.follow("", "t", 1)
        first = await take(follower, 2)  # replay: 2, 3
        later = asyncio.ensure_future(take(follower, 3))
        await asyncio.sleep(0.05)
        for n in range(4, 7):
            append(log, status(n))
        assert first + await later == [2, 3, 4, 5, 6]
        await follower.aclose()  # type: ignore[attr-defined]
        assert [s for s, _ in await reader.event_sink.stored_after("", "t", 4)] == [5, 6]
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.asyncio
async def test_a_cancelled_follower_ends_cleanly_and_the_store_serves_on(store: RedisTaskStore) -> None:
    store.event_sink.block_seconds = 0.2
    follower = store.event_sink.follow("", "quiet", 0)
    waiting = asyncio.ensure_future(take(follower, 1))
    await asyncio.sleep(0.3)  # blocked in XREAD
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await follower.aclose()  # type: ignore[attr-defined]
    await store.save("", task_of("after"))
    assert await store.get("", "after") is not None


@pytest.mark.asyncio
async def test_retention_by_count_trims_in_redis_and_a_trimmed_position_is_a_typed_error(
    store: RedisTaskStore, redis_url: str
) -> None:
    events = InMemoryEventLog(Retention(events=5), Backpressure(events=5))
    log = events.open("", "t")
    log.sink = store.event_sink
    for n in range(1, 13):
        append(log, status(n))
    await log.durable(12)
    name = store.keys.events(store.keys.task_tag("", "t"))
    assert raw(redis_url).xlen(name) == 5
    assert [s for s, _ in await store.event_sink.stored_after("", "t", 0)] == [8, 9, 10, 11, 12]
    assert await take(store.event_sink.follow("", "t", 7), 5) == [8, 9, 10, 11, 12]
    with pytest.raises(errors.EventsNotRetainedError) as lost:
        await take(store.event_sink.follow("", "t", 3), 1)
    assert lost.value.metadata["oldest_retained"] == "8"  # metadata travels as strings


@pytest.mark.asyncio
async def test_retention_by_bytes_keeps_the_newest_event_always(
    store: RedisTaskStore, redis_url: str
) -> None:
    log = InMemoryEventLog(Retention(events=100, bytes=10_000), Backpressure(events=10, bytes=10_000)).open(
        "", "t"
    )
    log.sink = store.event_sink
    for n in range(1, 9):
        append(log, sized(n, 3_000))
    await log.durable(8)
    kept = [s for s, _ in await store.event_sink.stored_after("", "t", 0)]
    assert kept == [6, 7, 8]  # three of ~3 KB fit 10,000 bytes
    append(log, sized(9, 50_000))  # alone over the bound: it stays, the others go
    await log.durable(9)
    assert [s for s, _ in await store.event_sink.stored_after("", "t", 0)] == [9]
    meta = raw(redis_url).hgetall(store.keys.emeta(store.keys.task_tag("", "t")))
    assert int(meta[b"bytes"]) == len(sized(9, 50_000).SerializeToString())


@pytest.mark.asyncio
async def test_retention_in_time_after_the_task_settles_then_followers_are_told(
    store: RedisTaskStore, redis_url: str
) -> None:
    log = InMemoryEventLog(Retention(terminal_seconds=0.3)).open("", "t")
    log.sink = store.event_sink
    await store.save("", task_of("t", state=types.TASK_STATE_WORKING))
    for n in range(1, 4):
        append(log, status(n))
    await log.durable(3)
    name = store.keys.events(store.keys.task_tag("", "t"))
    assert raw(redis_url).ttl(name) == -1  # running: kept
    await store.save("", task_of("t", state=types.TASK_STATE_COMPLETED), seq=3)
    assert raw(redis_url).pttl(name) > 0
    await until(lambda: not raw(redis_url).exists(name))
    with pytest.raises(errors.EventsNotRetainedError):
        await take(store.event_sink.follow("", "t", 1), 1)
    assert await store.get("", "t") is not None  # the record itself stays


@pytest.mark.asyncio
async def test_a_retried_write_never_stores_an_event_twice(store: RedisTaskStore) -> None:
    log = InMemoryEventLog().open("", "t")
    log.sink = store.event_sink
    for n in range(1, 4):
        append(log, status(n))
    await log.durable(3)
    store.submit_event(log, 2, status(2))  # as a write retried after a lost answer would
    await store._drain()
    assert [s for s, _ in await store.event_sink.stored_after("", "t", 0)] == [1, 2, 3]


# ---------------------------------------------------------------- two owners on one Redis


@pytest_asyncio.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisTaskStore, RedisTaskStore]]:
    a = RedisTaskStore(redis_url, key=KEY, owner="replica-a", lease_seconds=60)
    b = RedisTaskStore(redis_url, key=KEY, owner="replica-b", lease_seconds=60)
    b.registry._host = "another-host"  # one process plays two machines (same host and pid: dead)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_a_claim_race_has_one_winner(pair: tuple[RedisTaskStore, RedisTaskStore]) -> None:
    a, b = pair
    await a.registry.renew()
    await b.registry.renew()
    for i in range(20):
        won = await asyncio.gather(a.registry.claim("", f"t{i}"), b.registry.claim("", f"t{i}"))
        assert sorted(won) == [False, True]
        winner = "replica-a" if won[0] else "replica-b"
        assert await a.registry.owner_of("", f"t{i}") == winner
    # The holder claims again freely; released, the other gets it.
    assert await a.registry.claim("", "t0") == (await a.registry.owner_of("", "t0") == "replica-a")
    holder, other = (a, b) if await a.registry.owner_of("", "t1") == "replica-a" else (b, a)
    await holder.registry.release("", "t1")
    assert await other.registry.claim("", "t1")


@pytest.mark.asyncio
async def test_a_saved_running_task_is_owned_and_never_stolen_by_a_save(
    pair: tuple[RedisTaskStore, RedisTaskStore],
) -> None:
    a, b = pair
    await a.registry.renew()
    await a.save("", task_of("t"))
    assert await b.registry.owner_of("", "t") == "replica-a"
    await b.save("", task_of("t", ts=BASE_TS + 1))  # b writes it (e.g. a message through b)
    assert await b.registry.owner_of("", "t") == "replica-a"
    assert not await b.registry.claim("", "t")
    await a.save("", task_of("t", state=types.TASK_STATE_COMPLETED, ts=BASE_TS + 2))
    assert await b.registry.owner_of("", "t") is None  # at rest: released


@pytest.mark.asyncio
async def test_a_lapsed_lease_leaves_orphans_found_without_a_scan(redis_url: str) -> None:
    a = RedisTaskStore(redis_url, key=KEY, owner="replica-a", lease_seconds=0.5)
    a.registry._host = "another-host"
    b = RedisTaskStore(redis_url, key=KEY, owner="replica-b", lease_seconds=60)
    try:
        await a.registry.renew()
        for i in range(3):
            await a.save("", task_of(f"run{i}"))
        await a.save("", task_of("done", state=types.TASK_STATE_COMPLETED))
        assert await b.registry.orphans() == []  # a is alive
        # a stops renewing (a replica that died): its lease and claims lapse.
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if await b.registry.owner_of("", "run0") is None:
                break
            await asyncio.sleep(0.1)
        orphans = await b.registry.orphans()
        assert sorted(orphans) == [("", "run0"), ("", "run1"), ("", "run2")]
        assert await b.registry.signal_cancel("", "run0") is False  # no live owner
        # b takes one over and finishes it: no longer an orphan.
        assert await b.registry.claim("", "run0")
        await b.save("", task_of("run0", state=types.TASK_STATE_FAILED, ts=BASE_TS + 5))
        assert sorted(await b.registry.orphans()) == [("", "run1"), ("", "run2")]
    finally:
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_a_previous_life_on_this_host_is_dead_at_once(redis_url: str) -> None:
    old = RedisTaskStore(redis_url, key=KEY, owner="old-life", lease_seconds=3600)
    await old.registry.renew()
    await old.save("", task_of("t"))
    # Killed: nothing left, not even a graceful leave; the restarted server is this process.
    old._closed = True
    await old.client.aclose()
    new = RedisTaskStore(redis_url, key=KEY, owner="new-life")
    try:
        assert await new.registry.orphans() == [("", "t")]
        assert await new.registry.claim("", "t")  # the dead life's claim is taken over
    finally:
        await new.close()


@pytest.mark.asyncio
async def test_a_cancel_signal_reaches_the_owner_at_once_and_through_renew(
    pair: tuple[RedisTaskStore, RedisTaskStore],
) -> None:
    a, b = pair
    await a.registry.renew()
    await a.save("", task_of("t1"))
    await a.save("", task_of("t2"))
    signals = a.registry.cancel_signals()
    first = asyncio.ensure_future(anext(signals))
    await asyncio.sleep(0.3)  # subscribed
    assert await b.registry.signal_cancel("", "t1")
    async with asyncio.timeout(WAIT):
        assert await first == ("", "t1")
    # Stored too: renew hands it over (and the next renew has nothing).
    assert await a.registry.renew() == [("", "t1")]
    assert await a.registry.renew() == []
    await signals.aclose()  # type: ignore[attr-defined]
    # Nobody listening: renew alone carries it.
    assert await b.registry.signal_cancel("", "t2")
    assert await a.registry.renew() == [("", "t2")]
    assert await b.registry.signal_cancel("", "nobody-runs-this") is False


@pytest.mark.asyncio
async def test_leave_ends_the_lease_and_claims_at_once(pair: tuple[RedisTaskStore, RedisTaskStore]) -> None:
    a, b = pair
    await a.registry.renew()
    assert await a.registry.claim("", "t")
    await a.save("", task_of("t"))
    assert not await b.registry.claim("", "t")
    await a.registry.leave()
    assert await b.registry.owner_of("", "t") is None
    assert ("", "t") in await b.registry.orphans()
    assert await b.registry.claim("", "t")


# ---------------------------------------------------------------- hostile data


@pytest.mark.asyncio
async def test_garbage_in_a_record_is_a_typed_error_naming_the_task(
    store: RedisTaskStore, redis_url: str
) -> None:
    await store.save("", task_of("good", ts=BASE_TS))
    await store.save("", task_of("bad", ts=BASE_TS + 1))
    r = raw(redis_url)
    r.hset(store.keys.task(store.keys.task_tag("", "bad")), "body", b"\xff\xfe garbage \x00\x01")
    with pytest.raises(errors.InternalError, match="bad") as caught:
        await store.get("", "bad")
    assert caught.value.metadata["task_id"] == "bad"
    with pytest.raises(errors.InternalError, match="bad"):
        await store.list("", types.ListTasksRequest())
    r.set(store.keys.task(store.keys.task_tag("", "bad")), b"not a hash")
    with pytest.raises(errors.InternalError):
        await store.get("", "bad")
    assert await store.get("", "good") == task_of("good")  # the others are served


@pytest.mark.asyncio
async def test_a_damaged_index_or_size_is_a_typed_error_not_a_crash(
    store: RedisTaskStore, redis_url: str
) -> None:
    await store.save("", task_of("t"))
    r = raw(redis_url)
    r.hset(store.keys.task(store.keys.task_tag("", "t")), "asize", b"lots")
    with pytest.raises(errors.InternalError, match="'t'"):
        await store.list("", types.ListTasksRequest())
    r.hset(store.keys.task(store.keys.task_tag("", "t")), "history", b"\xff\xff\xff")
    r.hset(store.keys.task(store.keys.task_tag("", "t")), "asize", b"0")
    with pytest.raises(errors.InternalError, match="'t'"):
        await store.list("", types.ListTasksRequest(history_length=1))
    r.zadd(store.keys.index(store.keys.tenant_tag("")), {b"\xff": 0})  # shorter than any entry
    with pytest.raises(errors.InternalError, match="index is damaged"):
        await store.list("", types.ListTasksRequest())
    await store.save("other", task_of("fine"))
    assert [t.id for t in (await store.list("other", types.ListTasksRequest())).tasks] == ["fine"]


@pytest.mark.asyncio
async def test_garbage_in_a_stream_is_a_typed_error_naming_the_task(
    store: RedisTaskStore, redis_url: str
) -> None:
    log = InMemoryEventLog().open("", "t")
    log.sink = store.event_sink
    append(log, status(1))
    await log.durable(1)
    name = store.keys.events(store.keys.task_tag("", "t"))
    raw(redis_url).xadd(name, {"e": b"\xff\xff\xff\xff"}, id="0-2")
    raw(redis_url).xadd(name, {"x": b"y"}, id="0-3")
    with pytest.raises(errors.InternalError, match=r"task 't'") as caught:
        await store.event_sink.stored_after("", "t", 0)
    assert caught.value.metadata["task_id"] == "t"
    with pytest.raises(errors.InternalError):
        await take(store.event_sink.follow("", "t", 0), 3)
    raw(redis_url).xadd(name, {"e": b""}, id="5-0")  # an id that is not a sequence number
    with pytest.raises(errors.InternalError):
        await take(store.event_sink.follow("", "t", 3), 1)


@pytest.mark.asyncio
async def test_ids_with_colons_and_braces_stay_apart(store: RedisTaskStore) -> None:
    cases = [("a", "b:c"), ("a:b", "c"), ("{x}", "y"), ("", "{x}:y"), ("t%3A", "%"), ("a}", "{b")]
    for n, (tenant, task_id) in enumerate(cases):
        await store.save(tenant, task_of(task_id, ts=BASE_TS + n))
        await store.put_push_config(
            tenant, types.TaskPushNotificationConfig(task_id=task_id, id="p", url=f"https://h/{n}")
        )
    for n, (tenant, task_id) in enumerate(cases):
        assert (await store.get(tenant, task_id)) == task_of(task_id, ts=BASE_TS + n)
        assert [t.id for t in (await store.list(tenant, types.ListTasksRequest())).tasks] == [task_id]
        config = await store.get_push_config(tenant, task_id, "p")
        assert config is not None
        assert config.url == f"https://h/{n}"
        assert await store.registry.claim(tenant, task_id)
        assert await store.registry.owner_of(tenant, task_id) == store.registry.owner
    log = InMemoryEventLog().open("a:b", "c")
    log.sink = store.event_sink
    append(log, status(1))
    await log.durable(1)
    assert await store.event_sink.stored_after("a", "b:c", 0) == []


# ---------------------------------------------------------------- sealed push configs


@pytest.mark.asyncio
async def test_push_configs_are_sealed_with_the_key_and_refused_without_it(redis_url: str) -> None:
    config = types.TaskPushNotificationConfig(task_id="t", id="p", url="https://hook.example/x")
    config.authentication.scheme = "Bearer"
    config.authentication.credentials = "s3cret-token"
    sealed = RedisTaskStore(redis_url, key=KEY)
    try:
        await sealed.put_push_config("", config)
        stored = raw(redis_url).hget(sealed.keys.push(sealed.keys.task_tag("", "t")), "p")
        assert stored is not None
        assert stored[:1] == MARK
        assert b"s3cret" not in stored
        assert await sealed.get_push_config("", "t", "p") == config
    finally:
        await sealed.close()
    other = RedisTaskStore(redis_url, key=base64.b64encode(bytes(32)).decode())
    try:
        with pytest.raises(StoreError, match="another key"):
            await other.get_push_config("", "t", "p")
    finally:
        await other.close()


@pytest.mark.asyncio
async def test_without_a_key_push_configs_are_in_clear_and_the_store_says_so(
    redis_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("A2A_GRPC_STORE_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="a2a_grpc.tasks"):
        plain = RedisTaskStore(redis_url)
    assert "stored in clear" in caplog.text
    assert "A2A_GRPC_STORE_KEY" in caplog.text
    try:
        await plain.put_push_config(
            "", types.TaskPushNotificationConfig(task_id="t", id="p", url="https://h/")
        )
        keyed = RedisTaskStore(redis_url, key=KEY)
        try:
            await keyed.put_push_config(
                "", types.TaskPushNotificationConfig(task_id="t", id="q", url="https://h/")
            )
        finally:
            await keyed.close()
        with pytest.raises(StoreError, match="A2A_GRPC_STORE_KEY"):
            await plain.get_push_config("", "t", "q")
        assert (await plain.get_push_config("", "t", "p")) is not None
    finally:
        await plain.close()


# ---------------------------------------------------------------- opening, and Redis going away


def test_opening_a_redis_that_is_not_there_is_one_line_naming_the_url() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("redis://user:hunter2@127.0.0.1:1/0", settings=StoreSettings(redis_connect_timeout=2))
    message = str(caught.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert "redis://user:***@127.0.0.1:1/0" in message
    assert "cannot connect" in message
    with pytest.raises(StoreError, match="cluster='maybe' must be true or false"):
        open_store("redis://127.0.0.1:1/0?cluster=maybe")


def test_a_refused_password_is_one_line_without_the_password(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "auth")
    try:
        raw(server.url).config_set("requirepass", "right-one")
        with pytest.raises(StoreError) as caught:
            open_store(f"redis://:wrong-one@127.0.0.1:{server.port}/0")
        message = str(caught.value)
        assert "authentication" in message.lower() or "invalid" in message.lower()
        assert "wrong-one" not in message
        assert "\n" not in message
        good = open_store(f"redis://:right-one@127.0.0.1:{server.port}/0")
        asyncio.run(good.close())
    finally:
        server.stop()


def _restart(server: RedisServer) -> subprocess.Popen[bytes]:
    """The same port again (start_redis picks a free one)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    args = [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(server.folder)], stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            if client.ping():
                break
        time.sleep(0.05)
    client.close()
    return process


@pytest.mark.asyncio
async def test_redis_stopped_mid_use_fails_calls_typed_and_serves_again_once_back(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "r")
    url = f"redis://127.0.0.1:{server.port}/0"
    store = RedisTaskStore(
        url, key=KEY, settings=StoreSettings(redis_socket_timeout=2, redis_connect_timeout=2)
    )
    again: subprocess.Popen[bytes] | None = None
    try:
        await store.save("", task_of("before"))
        log = InMemoryEventLog().open("", "before")
        log.sink = store.event_sink
        reader = log.reader(after=0)
        server.stop()
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            await store.get("", "before")
        with pytest.raises(StoreUnavailableError):
            await store.save("", task_of("during"))
        with pytest.raises(StoreUnavailableError):
            await store.list("", types.ListTasksRequest())
        with pytest.raises(StoreUnavailableError):
            await store.registry.renew()
        append(log, status(1))  # an event that cannot be stored ends its readers, loudly
        with pytest.raises(errors.InternalError, match="could not be stored"):
            await asyncio.wait_for(drain(reader), WAIT)
        again = _restart(server)
        # Back (empty: this Redis keeps nothing on disk): the same store serves, scripts reloaded.
        await store.save("", task_of("after"))
        assert await store.get("", "after") == task_of("after")
        assert [t.id for t in (await store.list("", types.ListTasksRequest())).tasks] == ["after"]
        assert await store.registry.renew() == []
    finally:
        await store.close()
        if again is not None:
            again.terminate()
            again.wait(timeout=10)


# ---------------------------------------------------------------- TLS


def _tls_capable() -> bool:
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed: run `make redis`"
    probe = subprocess.run([binary, "--tls-port", "0", "--test-memory", "1"], capture_output=True, timeout=30)
    return b"not built with TLS" not in probe.stdout + probe.stderr


@pytest.mark.asyncio
async def test_a_rediss_url_reaches_redis_over_tls(tmp_path: Path) -> None:
    if not _tls_capable():  # pragma: no cover - Debian's redis-server is built with TLS
        pytest.fail("this redis-server has no TLS support (Debian's has)")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tls = ["--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file)]
    tls += ["--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no"]
    # The plain port start_redis picks stays, for its readiness check; the TLS port is ours.
    from tests.redisserver import _free_port

    port = _free_port()
    server = start_redis(tmp_path / "tls", "--tls-port", str(port), *tls)
    try:
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca_file}"
        store = open_store(url, settings=StoreSettings(redis_connect_timeout=5))
        try:
            await store.save("", task_of("t"))
            assert await store.get("", "t") == task_of("t")
        finally:
            await store.close()
        # Not trusting the server's certificate: refused at open, one line.
        with pytest.raises(StoreError, match=r"rediss://127\.0\.0\.1"):
            open_store(f"rediss://127.0.0.1:{port}/0")
    finally:
        server.stop()


def test_the_key_layout_pins_each_atomic_operation_to_one_slot() -> None:
    from redis.crc import key_slot

    keys = Keys("a2a")
    for tenant, task_id in [("", "t"), ("a:b", "{c}"), ("}", "{"), ("tenant", "x" * 300)]:
        t = keys.task_tag(tenant, task_id)
        assert (
            len(
                {
                    key_slot(k.encode())
                    for k in (keys.task(t), keys.events(t), keys.emeta(t), keys.claim(t), keys.push(t))
                }
            )
            == 1
        )
        n = keys.tenant_tag(tenant)
        index = [keys.index_entries(n), keys.index(n), keys.index(n, "c:{x}"), keys.index(n, None, 3)]
        index.append(keys.index(n, "c:{x}", 3))
        assert len({key_slot(k.encode()) for k in index}) == 1
        o = keys.owner_tag(f"host/1/{task_id}")
        owner = [keys.lease(o), keys.owned(o), keys.cancels(o), keys.channel(o)]
        assert len({key_slot(k.encode()) for k in owner}) == 1


# ---------------------------------------------------------------- Redis Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """A real three-node Redis Cluster (no replicas) on free loopback ports, stopped by PID."""
    nodes: list[RedisServer] = []
    try:
        for n in range(3):
            folder = tmp_path / f"node{n}"
            nodes.append(
                start_redis(
                    folder, "--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")
                )
            )
        cli = shutil.which("redis-cli")
        assert cli is not None, "redis-cli is not installed (Debian: redis-tools)"
        addresses = [f"127.0.0.1:{s.port}" for s in nodes]
        made = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stdout.decode()[-500:] + made.stderr.decode()[-500:]
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            info = raw(nodes[0].url).execute_command("CLUSTER INFO")  # parsed into a dict
            if str(info.get("cluster_state")) == "ok":
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{nodes[0].port}/0?cluster=true"
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.asyncio
async def test_store_sink_and_registry_on_a_real_cluster(cluster: str) -> None:
    a = RedisTaskStore(cluster, key=KEY, owner="replica-a")
    b = RedisTaskStore(cluster, key=KEY, owner="replica-b")
    b.registry._host = "another-host"
    try:
        # Records and indexes of several tenants, spread over the nodes.
        for tenant in ("", "t1", "a:{b}"):
            for i in range(12):
                await a.save(tenant, task_of(f"x{i:02d}", ts=BASE_TS + i, ctx=f"c{i % 2}"))
            pages, token = [], ""
            for _ in range(10):
                page = await b.list(
                    tenant, types.ListTasksRequest(page_size=5, page_token=token, context_id="c1")
                )
                pages += [t.id for t in page.tasks]
                token = page.next_page_token
                if not token:
                    break
            assert pages == [f"x{i:02d}" for i in reversed(range(12)) if i % 2]
            assert await b.get(tenant, "x03") == task_of("x03", ts=BASE_TS + 3, ctx="c1")
        await a.put_push_config("", types.TaskPushNotificationConfig(task_id="x01", id="p", url="https://h/"))
        assert (await b.list_push_configs("", "x01", 0, ""))[0][0].url == "https://h/"
        # Events: written through one store, followed through the other.
        log = InMemoryEventLog(Retention(events=4), Backpressure(events=4)).open("", "x01")
        log.sink = a.event_sink
        for n in range(1, 7):
            append(log, status(n))
        await log.durable(6)
        assert await take(b.event_sink.follow("", "x01", 2), 4) == [3, 4, 5, 6]
        # Registry: claims, a cancel signal through pub/sub and renew, leave.
        await a.registry.renew()
        await b.registry.renew()
        assert await a.registry.claim("", "r1")
        assert not await b.registry.claim("", "r1")
        await a.save("", task_of("r1"))
        signals = a.registry.cancel_signals()
        first = asyncio.ensure_future(anext(signals))
        await asyncio.sleep(0.3)
        assert await b.registry.signal_cancel("", "r1")
        async with asyncio.timeout(WAIT):
            assert await first == ("", "r1")
        await signals.aclose()  # type: ignore[attr-defined]
        assert await a.registry.renew() == [("", "r1")]
        await a.registry.leave()
        orphans = await b.registry.orphans()  # every running task a saved, r1 among them
        assert ("", "r1") in orphans
        assert len(orphans) == 3 * 12 + 1
        assert await b.registry.claim("", "r1")
    finally:
        await a.close()
        await b.close()
