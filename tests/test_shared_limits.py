"""Limits that hold across replicas through one Redis (``a2a_grpc.security.shared``,
``a2a_grpc._shared_dedupe``): two replicas spend one rate budget per principal, the running tasks,
streams and sessions a principal holds on one count on the other (and vanish with a replica that
died), a message sent to one replica and then to another runs once; Redis going away mid-call
follows ``Limits.redis_unreachable`` with typed errors, and hostile values in Redis are never a
crash. Real redis-server processes (``tests/redisserver.py``); every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from a2a_grpc import errors, types
from a2a_grpc._dedupe import Repeats, repeats_for
from a2a_grpc._shared_dedupe import SharedRepeats, _digest
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.observability.metrics import SHARED_LIMITS_UNREACHABLE
from a2a_grpc.parts import text_part
from a2a_grpc.redisconn import RedisTarget, key, parse_redis_url, tag
from a2a_grpc.reference_agent import reference_card
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.quota import Quotas, principal_key
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext
from a2a_grpc.tasks.memory import InMemoryTaskStore
from a2a_grpc.testing import serving
from tests.quota_peers import KEYS, ONCE, authentication
from tests.redisserver import RedisServer, start_redis

ASYNC = pytest.mark.asyncio
WAIT = 20.0
"""The longest any bounded wait here lasts (a loaded machine is slow, never this slow)."""

ALICE = CallContext(principal=Principal("alice", scheme="apiKey"))
BOB = CallContext(principal=Principal("bob", scheme="apiKey"))


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait, bounded, until ``check()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        await asyncio.sleep(0.05)


async def refused(call: Callable[[], Awaitable[object]]) -> errors.A2AError:
    try:
        await call()
    except errors.A2AError as exc:
        return exc
    raise AssertionError("not refused")


@contextlib.asynccontextmanager
async def replicas(limits: Limits, url: str, count: int = 2) -> AsyncIterator[list[Quotas]]:
    quotas = [Quotas(limits, parse_redis_url(url)) for _ in range(count)]
    try:
        for q in quotas:
            await q.start()
        yield quotas
    finally:
        for q in quotas:
            await q.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A redis-server of this test alone, to stop mid-call (by PID)."""
    server = start_redis(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


_RAW: dict[str, Any] = {}


def raw(url: str) -> Any:
    """A plain client of the test's Redis, to look at and plant keys (one per URL, closed at exit)."""
    if url not in _RAW:
        _RAW[url] = redis.Redis.from_url(url)
    return _RAW[url]


@pytest.fixture(autouse=True)
def _close_raw() -> Any:
    yield
    while _RAW:
        _RAW.popitem()[1].close()


def unreachable(what: str) -> float:
    return SHARED_LIMITS_UNREACHABLE.labels(what)._value.get()


# -- rates ------------------------------------------------------------------------------------------


@ASYNC
async def test_two_replicas_spend_one_rate_budget_per_principal(redis_url: str) -> None:
    limits = Limits(rate_per_principal="3/minute", rate_per_tenant="5/minute")
    async with replicas(limits, redis_url) as (a, b):
        for _ in range(2):
            await a._rates.check(ALICE)
        await b._rates.check(ALICE)  # the third of alice's budget, on the other replica
        refusal = await refused(lambda: b._rates.check(ALICE))
        assert isinstance(refusal, errors.RateLimitedError)
        assert refusal.limit == "rate_per_principal"
        assert isinstance(await refused(lambda: a._rates.check(ALICE)), errors.RateLimitedError)
        # Bob's budget is his own; the tenant's (shared by both) ends after five calls in all.
        await b._rates.check(BOB)
        await a._rates.check(BOB)
        tenant = await refused(lambda: a._rates.check(BOB))
        assert isinstance(tenant, errors.RateLimitedError)
        assert tenant.limit == "rate_per_tenant"
    # The counters live under our prefix, in the library's sliding-window keys.
    keys = raw(redis_url).keys("*")
    assert keys
    assert all(k.startswith(b"a2a:rate:{LIMITER/") for k in keys)


@ASYNC
async def test_rates_follow_the_store_s_redis_unless_rate_storage_says_otherwise(redis_url: str) -> None:
    target = parse_redis_url(redis_url + "?prefix=team")
    shared = Limits(rate_per_principal="1/minute")
    mine = Limits(rate_per_principal="1/minute", rate_storage="async+memory://")
    a, b = Quotas(shared, target), Quotas(shared, target)
    c = Quotas(mine, target)
    try:
        await a._rates.check(ALICE)
        assert isinstance(await refused(lambda: b._rates.check(ALICE)), errors.RateLimitedError)
        await c._rates.check(ALICE)  # an explicit memory storage: this replica's own budget
        assert c.redis is target  # its counts are still shared: the store's Redis is there
    finally:
        for q in (a, b, c):
            await q.aclose()
    assert all(k.startswith(b"team:rate:") for k in raw(redis_url).keys("*"))
    # A Redis URL in rate_storage shares the limits without a Redis store.
    assert Quotas(Limits(rate_storage=redis_url)).redis == parse_redis_url(redis_url)
    assert Quotas(Limits()).redis is None


def test_redis_settings_are_judged_when_built() -> None:
    for field, value in [
        ("redis_unreachable", "maybe"),
        ("rate_storage", "redis://"),
        ("rate_storage", "redis://h:1/x"),
        ("rate_storage", "redis://h/0?prefix={x}"),
        ("redis_timeout_ms", 0),
        ("shared_counts_sync_ms", -1),
        ("dedupe_pending_seconds", 0),
        ("max_shared_reply_bytes", 0),
    ]:
        with pytest.raises(ValueError, match=field):
            Limits(**{field: value})
    assert Limits(rate_storage="rediss://h:6380/1?prefix=p").rate_storage == "rediss://h:6380/1?prefix=p"


# -- counts of what a principal holds ---------------------------------------------------------------


@ASYNC
async def test_counts_hold_across_replicas_and_vanish_with_a_replica_that_died(redis_url: str) -> None:
    limits = Limits(
        max_running_tasks_per_principal=2,
        max_streams_per_principal=3,
        max_sessions_per_principal=1,
        shared_counts_sync_ms=100,
    )
    async with replicas(limits, redis_url) as (a, b):
        held = [a.start_task(ALICE), a.start_task(ALICE)]
        release_stream = a.streams.acquire(principal_key(ALICE))
        a.sessions.open(_Session(), ALICE)

        async def b_knows() -> bool:
            return b.shared is not None and b.shared.others["running"].get(principal_key(ALICE)) == 2

        await until(b_knows, "replica b reads alice's running tasks on a")
        refusal = await refused(_sync(lambda: b.start_task(ALICE)))
        assert isinstance(refusal, errors.RateLimitedError)
        assert refusal.limit == "max_running_tasks_per_principal"
        assert "2 running tasks" in refusal.message
        session = await refused(_sync(lambda: b.sessions.open(_Session(), ALICE)))
        assert isinstance(session, errors.RateLimitedError)
        assert session.limit == "max_sessions_per_principal"
        b.streams.acquire(principal_key(ALICE))()  # 1 on a + 1 here: within 3
        b.start_task(BOB)()  # bob holds nothing anywhere
        # Released on a: free on b once it has synced.
        held.pop()()

        async def b_has_room() -> bool:
            assert b.shared is not None
            return b.shared.others["running"].get(principal_key(ALICE)) == 1

        await until(b_has_room, "b reads the release")
        b.start_task(ALICE)()
        release_stream()

        # Replica a dies (no goodbye: its sync stops, its counts stay in Redis until the lease).
        assert a.shared is not None
        assert a.shared._task is not None
        a.shared._task.cancel()
        dead, a.shared._client = a.shared._client, None  # nothing withdrawn at close either

        async def lapsed() -> bool:
            assert b.shared is not None
            return not b.shared.others["running"] and not b.shared.others["sessions"]

        try:
            await until(lapsed, "a's counts lapse with its lease")
            b.start_task(ALICE)()
            b.sessions.open(_Session(), ALICE)
        finally:
            await dead.aclose()


@ASYNC
async def test_a_replica_that_stops_withdraws_its_counts_and_hostile_fields_are_dropped(
    redis_url: str,
) -> None:
    limits = Limits(max_running_tasks_per_principal=1, shared_counts_sync_ms=100)
    client = raw(redis_url)
    held = key("a2a", "held", tag("held"))
    async with replicas(limits, redis_url, count=1) as (b,):
        a = Quotas(limits, parse_redis_url(redis_url))
        await a.start()
        a.start_task(ALICE)
        assert a.shared is not None
        await a.shared.sync()
        # Hostile fields beside a's: no separator, not a number, a negative count, a replica
        # with no lease. None counts, none breaks the sync.
        client.hset(
            held, mapping={"garbage": "1", "x|running|p": "many", "y|running|p": "-4", "z|running|p": "9"}
        )
        assert b.shared is not None
        await b.shared.sync()
        assert b.shared.others["running"] == {principal_key(ALICE): 1}
        assert not set(client.hkeys(held)) & {b"garbage", b"x|running|p", b"y|running|p", b"z|running|p"}
        await a.aclose()  # a clean stop: its counts go at once, not after the lease
        await b.shared.sync()
        assert b.shared.others["running"] == {}
        b.start_task(ALICE)()


class _Session:
    def end(self, reason: str) -> None:
        pass


def _sync(call: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return call()

    return run


# -- Redis going away -------------------------------------------------------------------------------


@ASYNC
async def test_redis_down_mid_call_counts_locally_logs_once_and_counts_it(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    limits = Limits(rate_per_principal="2/minute", redis_timeout_ms=300)
    async with replicas(limits, own_redis.url, count=1) as (a,):
        await a._rates.check(ALICE)
        before = unreachable("rates")
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="a2a_grpc.security"):
            # This replica's memory: a budget of its own (2), then the refusal as usual.
            await a._rates.check(ALICE)
            await a._rates.check(ALICE)
            refusal = await refused(lambda: a._rates.check(ALICE))
            assert isinstance(refusal, errors.RateLimitedError)
            await a._rates.check(BOB)
        lines = [r.getMessage() for r in caplog.records if "shared rates" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "unreachable" in lines[0]
        assert "redis_unreachable: local" in lines[0]
        assert unreachable("rates") - before == 4


@ASYNC
async def test_redis_down_mid_call_refuses_with_a_typed_error_when_told_to(own_redis: RedisServer) -> None:
    limits = Limits(
        rate_per_principal="100/minute",
        redis_unreachable="refuse",
        redis_timeout_ms=300,
        shared_counts_sync_ms=100,
    )
    target = parse_redis_url(own_redis.url)
    async with replicas(limits, own_redis.url, count=1) as (a,):
        repeats = repeats_for(limits, target)
        try:
            await a._rates.check(ALICE)
            await repeats.receive("alice", _message("m-1"))
            own_redis.stop()
            for _ in range(2):  # the first finds Redis gone, the second does not wait for it
                assert isinstance(await refused(lambda: a._rates.check(ALICE)), errors.UnavailableError)
            unavailable = await refused(lambda: repeats.receive("alice", _message("m-2")))
            assert isinstance(unavailable, errors.UnavailableError)
            assert "try again" in unavailable.message

            # Counts: once the others' are older than their lease, no new place is given.
            async def stale() -> bool:
                return a.shared is not None and a.shared.stale

            await until(stale, "the counts go stale")
            assert isinstance(await refused(_sync(lambda: a.start_task(ALICE))), errors.UnavailableError)
        finally:
            await repeats.aclose()


# -- repeated messages ------------------------------------------------------------------------------


class Counting(Agent):
    """Counts executions; ``reply`` answers directly, anything else completes a task."""

    def __init__(self) -> None:
        self.card = reference_card()
        self.runs = 0

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.runs += 1
        if context.text == "reply":
            await updater.reply(f"reply {self.runs}")
            return
        await updater.working()
        await updater.artifact([text_part(f"run {self.runs}")])
        await updater.complete()


class RedisBackedStore(InMemoryTaskStore):
    """One store both servers read (as a Redis store would be), naming the Redis beside it."""

    def __init__(self, target: RedisTarget) -> None:
        super().__init__()
        self.target = target


@contextlib.asynccontextmanager
async def two_servers(url: str, agent: Agent) -> AsyncIterator[tuple[A2AServer, A2AServer]]:
    store = RedisBackedStore(parse_redis_url(url))
    settings = ServerSettings(host="127.0.0.1", port=0, authentication=authentication())
    servers = [A2AServer(agent, store, settings) for _ in range(2)]
    try:
        for server in servers:
            await server.start()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await server.stop(0.5)
        await store.close()


def client(server: A2AServer, name: str) -> A2AClient:
    return A2AClient(server.address, metadata=(("x-api-key", KEYS[name]),), timeout=WAIT, settings=ONCE)


@ASYNC
async def test_a_message_sent_to_one_replica_then_another_runs_once(redis_url: str) -> None:
    agent = Counting()
    async with two_servers(redis_url, agent) as (a, b):
        assert a.handler is not None
        assert isinstance(a.handler.repeats, SharedRepeats)
        async with client(a, "alice") as on_a, client(b, "alice") as on_b, client(b, "bob") as bob:
            request = A2AClient.text_request("work")
            first = (await on_a.send_message(request)).task
            await until(_receipt_decided(redis_url), "a writes the receipt's outcome")
            again = (await on_b.send_message(request)).task
            assert again.id == first.id
            assert again.status.state == types.TASK_STATE_COMPLETED
            assert again.artifacts[0].parts[0].text == "run 1"
            streamed = [e async for e in on_b.send_streaming_message(request)]
            assert [e.task.id for e in streamed] == [first.id]
            assert agent.runs == 1
            # A direct reply is the same reply on the other replica.
            reply = A2AClient.text_request("reply")
            said = [(await on_a.send_message(reply)).message.parts[0].text]
            await until(_receipt_decided(redis_url, count=2), "a writes the reply")
            said.append((await on_b.send_message(reply)).message.parts[0].text)
            assert said == ["reply 2", "reply 2"]
            # Another message under a used id: refused on the other replica, naming the field.
            reused = A2AClient.text_request("other", context_id="elsewhere")
            reused.message.message_id = request.message.message_id
            with pytest.raises(errors.InvalidParamsError) as caught:
                await on_b.send_message(reused)
            assert [v.field for v in caught.value.field_violations] == ["message.message_id"]
            # Another principal's message with the same id is its own message.
            own = (await bob.send_message(request)).task
            assert own.id != first.id
            assert agent.runs == 3


def _receipt_decided(url: str, count: int = 1) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        r = raw(url)
        values = [r.get(k) for k in r.keys("a2a:dedupe:*")]
        return sum(1 for v in values if v and not v.startswith(b"P|")) >= count

    return check


def _message(message_id: str, context_id: str = "") -> types.Message:
    return types.Message(
        message_id=message_id, context_id=context_id, role=types.ROLE_USER, parts=[text_part("work")]
    )


@ASYNC
async def test_a_repeat_waits_for_a_first_receipt_being_started_on_another_replica(redis_url: str) -> None:
    limits = Limits(dedupe_pending_seconds=3)
    target = parse_redis_url(redis_url)
    a, b = SharedRepeats(limits, target), SharedRepeats(limits, target)
    try:
        first = await a.receive("alice", _message("m-1"))
        assert first.earlier is None
        waiting = asyncio.ensure_future(b.receive("alice", _message("m-1")))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # polling: the first is being started on a
        # a knows the outcome: the task; b answers from it, and never ran the message.
        outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = a._entries[("alice", "m-1")]
        outcome.set_result(_TaskRun("task-7"))
        a.known(("alice", "m-1"), entry, outcome)
        repeat = await asyncio.wait_for(waiting, WAIT)
        assert repeat.earlier is not None
        assert repeat.earlier.task_id == "task-7"
        # A first receipt that is never decided: the repeat is told to try again, bounded.
        await a.receive("alice", _message("m-2"))
        slow = await refused(lambda: b.receive("alice", _message("m-2")))
        assert isinstance(slow, errors.UnavailableError)
        assert "will not run twice" in slow.message
    finally:
        await a.aclose()
        await b.aclose()


@ASYNC
async def test_the_receipt_of_a_replica_that_died_lapses_and_a_failed_first_is_forgotten(
    redis_url: str,
) -> None:
    limits = Limits(dedupe_pending_seconds=1)
    target = parse_redis_url(redis_url)
    a, b = SharedRepeats(limits, target), SharedRepeats(limits, target)
    try:
        await a.receive("alice", _message("m-1"))
        a._closed = True  # a dies: it renews nothing more
        taken = await b.receive("alice", _message("m-1"))  # waits, then the receipt has lapsed
        assert taken.earlier is None
        # A first that fails before a task or reply exists: the repeat elsewhere runs it.
        c = SharedRepeats(limits, target)
        failing = await c.receive("alice", _message("m-3"))
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(RuntimeError("agent failed"))
        c.known(("alice", "m-3"), c._entries[("alice", "m-3")], failed)
        await c.aclose()
        assert failing.earlier is None
        assert (await b.receive("alice", _message("m-3"))).earlier is None
    finally:
        await a.aclose()
        await b.aclose()


@ASYNC
async def test_hostile_receipts_in_redis_are_replaced_or_refused_never_a_crash(redis_url: str) -> None:
    limits = Limits(max_shared_reply_bytes=1024)
    target = parse_redis_url(redis_url)
    store = raw(redis_url)
    repeats = SharedRepeats(limits, target)
    ours = _digest(("", "", types.ROLE_USER, 1))  # the digest of every _message()
    try:
        for n, garbage in enumerate(
            [b"", b"\xff\x00garbage", b"T|short|x", b"M|" + ours + b"|\xff\xff\xff", b"T|" + ours + b"|\xff"]
        ):
            message_id = f"g-{n}"
            store.set(key("a2a", "dedupe", tag("alice", message_id)), garbage)
            receipt = await repeats.receive("alice", _message(message_id))
            assert receipt.earlier is None  # a new receipt, written in place of the garbage
            assert (store.get(key("a2a", "dedupe", tag("alice", message_id))) or b"").startswith(b"P|")
        # Larger than any receipt we write: never read whole, refused with a typed error.
        store.set(key("a2a", "dedupe", tag("alice", "huge")), b"M|" + b"x" * 100_000)
        huge = await refused(lambda: repeats.receive("alice", _message("huge")))
        assert isinstance(huge, errors.InternalError)
        assert "not one of this server's" in huge.message
        # A reply over max_shared_reply_bytes is not kept: the repeat elsewhere is told, not run.
        other = SharedRepeats(limits, target)
        try:
            await repeats.receive("alice", _message("big"))
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(types.Message(message_id="r", parts=[text_part("x" * 5000)]))
            repeats.known(("alice", "big"), repeats._entries[("alice", "big")], done)
            big = key("a2a", "dedupe", tag("alice", "big"))

            async def said_large() -> bool:
                return (store.get(big) or b"").startswith(b"L|")

            await until(said_large, "the receipt says the reply was large")
            large = await refused(lambda: other.receive("alice", _message("big")))
            assert isinstance(large, errors.LimitExceededError)
            assert large.limit == "max_shared_reply_bytes"
        finally:
            await other.aclose()
    finally:
        await repeats.aclose()


class _TaskRun:
    """What a first receipt's ``first`` future holds when it became a task (its ``task.id``)."""

    def __init__(self, task_id: str) -> None:
        self.task = types.Task(id=task_id)


@ASYNC
@pytest.mark.parametrize("policy", ["local", "refuse"])
async def test_a_server_whose_redis_stops_mid_call_follows_its_policy_on_the_wire(
    own_redis: RedisServer, policy: str
) -> None:
    limits = Limits(
        rate_per_principal="100/minute",
        rate_storage=own_redis.url,
        redis_unreachable=policy,
        redis_timeout_ms=300,
    )
    agent = Counting()
    async with (
        serving(agent, settings=ServerSettings(limits=limits)) as served,
        A2AClient(served.server.address, timeout=WAIT, settings=ONCE) as once,
    ):
        assert served.server.handler is not None  # tasks in memory: receipts stay in memory
        assert type(served.server.handler.repeats) is Repeats
        await once.send_message(A2AClient.text_request("work"))
        own_redis.stop()
        if policy == "refuse":
            for _ in range(2):
                with pytest.raises(errors.UnavailableError) as caught:
                    await once.send_message(A2AClient.text_request("work"))
                assert "cannot be reached" in caught.value.message
            assert agent.runs == 1
        else:
            task = (await once.send_message(A2AClient.text_request("work"))).task
            assert task.status.state == types.TASK_STATE_COMPLETED
            assert agent.runs == 2


@ASYNC
async def test_hostile_rate_counters_in_redis_are_an_outage_not_a_crash(redis_url: str) -> None:
    limits = Limits(rate_per_principal="2/minute", redis_timeout_ms=100)
    async with replicas(limits, redis_url, count=1) as (a,):
        await a._rates.check(ALICE)
        store = raw(redis_url)
        counters = store.keys("a2a:rate:*")
        assert counters
        for name in counters:
            store.set(name, b"\xffnot a number")
        before = unreachable("rates")
        await a._rates.check(ALICE)  # the library's script fails in Redis: counted here instead
        assert unreachable("rates") - before == 1
        store.delete(*counters)
        await asyncio.sleep(0.2)  # past redis_timeout_ms: the next call asks Redis again
        await a._rates.check(ALICE)
        await a._rates.check(ALICE)
        assert isinstance(await refused(lambda: a._rates.check(ALICE)), errors.RateLimitedError)


@pytest.fixture
def cluster_redis(tmp_path: Path) -> Any:
    """A one-node Redis Cluster of this test alone (every slot on it), stopped by PID."""
    folder = tmp_path / "cluster"
    server = start_redis(
        folder, "--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")
    )
    try:
        admin = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5)
        try:
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            for _ in range(200):  # bounded: the node says ok once it has taken the slots
                if b"cluster_state:ok" in admin.execute_command("CLUSTER", "INFO"):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the one-node cluster never said cluster_state:ok")
        finally:
            admin.close()
        yield server
    finally:
        server.stop()


@ASYNC
async def test_rates_counts_and_receipts_work_on_a_redis_cluster(cluster_redis: RedisServer) -> None:
    url = f"redis://127.0.0.1:{cluster_redis.port}?cluster=true"
    limits = Limits(
        rate_per_principal="2/minute", max_running_tasks_per_principal=1, shared_counts_sync_ms=100
    )
    async with replicas(limits, url) as (a, b):
        await a._rates.check(ALICE)
        await b._rates.check(ALICE)
        assert isinstance(await refused(lambda: a._rates.check(ALICE)), errors.RateLimitedError)
        a.start_task(ALICE)

        async def b_knows() -> bool:
            assert b.shared is not None
            return b.shared.others["running"].get(principal_key(ALICE)) == 1

        await until(b_knows, "b reads a's count through the cluster")
        assert isinstance(await refused(_sync(lambda: b.start_task(ALICE))), errors.RateLimitedError)
    target = parse_redis_url(url)
    first, other = SharedRepeats(limits, target), SharedRepeats(limits, target)
    try:
        await first.receive("alice", _message("m-1"))
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(_TaskRun("task-9"))
        first.known(("alice", "m-1"), first._entries[("alice", "m-1")], done)
        await first.aclose()  # the outcome written before the client closes
        repeat = await other.receive("alice", _message("m-1"))
        assert repeat.earlier is not None
        assert repeat.earlier.task_id == "task-9"
    finally:
        await other.aclose()


@ASYNC
async def test_between_syncs_a_count_passes_its_bound_by_at_most_the_other_replicas_share(
    redis_url: str,
) -> None:
    # One sync at start, none after unless asked: both replicas admit before they know of each other.
    limits = Limits(max_running_tasks_per_principal=2, shared_counts_sync_ms=600_000)
    async with replicas(limits, redis_url) as (a, b):
        assert a.shared is not None
        assert b.shared is not None
        held = [a.start_task(ALICE), a.start_task(ALICE), b.start_task(ALICE), b.start_task(ALICE)]
        # Each replica still holds its own bound: at most (replicas - 1) x bound over it in all.
        for replica in (a, b):
            assert isinstance(
                await refused(_sync(lambda q=replica: q.start_task(ALICE))), errors.RateLimitedError
            )
        held.pop()()  # b holds 1 now, a 2: at the bound together once both have synced
        await a.shared.sync()
        await b.shared.sync()
        await a.shared.sync()
        for replica in (a, b):
            refusal = await refused(_sync(lambda q=replica: q.start_task(ALICE)))
            assert isinstance(refusal, errors.RateLimitedError)
            assert "3 running tasks" in refusal.message
        while held:
            held.pop()()
        await a.shared.sync()
        await b.shared.sync()
        a.start_task(ALICE)()
        b.start_task(ALICE)()


@ASYNC
async def test_redis_down_the_other_replicas_counts_are_forgotten_after_their_lease(
    own_redis: RedisServer,
) -> None:
    limits = Limits(max_running_tasks_per_principal=1, shared_counts_sync_ms=100, redis_timeout_ms=300)
    async with replicas(limits, own_redis.url) as (a, b):
        b.start_task(ALICE)

        async def a_knows() -> bool:
            assert a.shared is not None
            return a.shared.others["running"].get(principal_key(ALICE)) == 1

        await until(a_knows, "a reads b's count")
        assert isinstance(await refused(_sync(lambda: a.start_task(ALICE))), errors.RateLimitedError)
        before = unreachable("counts")
        own_redis.stop()

        async def forgotten() -> bool:
            assert a.shared is not None
            return not a.shared.others["running"]

        await until(forgotten, "b's count is forgotten once older than its lease (local)")
        a.start_task(ALICE)()  # each replica its own bound until Redis answers
        assert a.shared is not None
        assert not a.shared.stale
        assert unreachable("counts") == before  # counts decide nothing per call: nothing refused
