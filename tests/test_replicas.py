"""Replicas of one agent on one shared store (``a2a_grpc._runs``, module doc "Replicas"): any replica
answers for a task another one runs, a message continuing a task runs once wherever it arrives, a
cancel reaches the replica that runs the task, and a replica that dies leaves its tasks to a live
one. In process, over the shared stand-in of tests/replicas.py (the Redis backends keep the same
contracts; tests/test_replicas_redis.py runs real server processes on a real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ClassVar

import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import reference_card
from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication
from a2a_grpc.tasks import InMemoryTaskStore, RedisTaskStore, TaskStore
from a2a_grpc.tasks.lifecycle import TERMINAL_STATES
from tests.conftest import Served, serve, shutdown
from tests.replicas import Shared

pytestmark = pytest.mark.asyncio

WAIT = 15.0
LEASE = 0.6


class Scripted(Agent):
    """Does what the test says, one step at a time: ``work N`` reports N chunks of one artifact,
    each once the test lets it (:meth:`allow`); ``ask`` asks for input, and the next message waits
    for :meth:`allow` too, then completes. Every execution is counted."""

    card = reference_card()

    def __init__(self) -> None:
        self.steps: asyncio.Queue[None] = asyncio.Queue()
        self.executed: list[str] = []
        self.started = asyncio.Event()
        self.lingering = asyncio.Event()

    def allow(self, n: int = 1) -> None:
        for _ in range(n):
            self.steps.put_nowait(None)

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.executed.append(context.text)
        self.started.set()
        if context.task is not None and context.task.status.state == types.TASK_STATE_INPUT_REQUIRED:
            if context.text == "more":
                await updater.require_input("and then?")
                return
            await updater.working("thinking it over")
            await self.steps.get()
            await updater.complete(f"thanks, you said: {context.text}")
            return
        word, _, rest = context.text.partition(" ")
        if word == "ask":
            await updater.require_input("what should I work on?")
            return
        if word == "linger":  # asks, then goes on holding the task here for a while
            await updater.require_input("what should I work on?")
            await self.lingering.wait()
            return
        await updater.working()
        artifact_id = None
        count = int(rest or "1")
        for i in range(count):
            await self.steps.get()
            artifact_id = await updater.artifact(
                [types.Part(text=f"chunk {i}")], artifact_id=artifact_id, name="work", append=i > 0
            )
        await updater.complete()


class Resuming(Scripted):
    resumable: ClassVar[bool] = True

    async def resume(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.executed.append("resumed " + context.text)
        await updater.complete("resumed on another replica")


Stores = Callable[[str, float], TaskStore]
"""A store for one replica: its owner id and lease."""


def redis_stores(url: str) -> Stores:
    def redis_store(owner: str, lease: float) -> TaskStore:
        store = RedisTaskStore(url, owner=owner, lease_seconds=lease)
        # Replicas in one process: each as if on a host of its own (on one host, an owner whose
        # process is this one but is not this store's is a previous life: dead at once).
        store.registry._host = f"host-of-{owner}"
        return store

    return redis_store


@pytest.fixture(params=["stand-in", "redis"])
def stores(request: pytest.FixtureRequest) -> Stores:
    """Replica stores over the in-process stand-in, or over a real Redis (the same contracts)."""
    if request.param == "redis":
        return redis_stores(str(request.getfixturevalue("redis_url")))
    shared: dict[float, Shared] = {}
    return lambda owner, lease: shared.setdefault(lease, Shared(lease_seconds=lease)).store(owner)


@contextlib.asynccontextmanager
async def replicas(
    *agents: Scripted, stores: Stores | None = None, lease: float = LEASE, **settings: object
) -> AsyncIterator[tuple[Shared, list[Served]]]:
    """One server per agent, each a replica over the same store (the stand-in's, unless ``stores``
    says otherwise; the stand-in's state is yielded too, for the tests that act on it)."""
    shared = Shared(lease_seconds=lease)
    make = stores or (lambda owner, _: shared.store(owner))
    served: list[Served] = []
    try:
        for i, agent in enumerate(agents):
            served.append(await serve(agent, make(f"replica-{i}", lease), **settings))
        yield shared, served
    finally:
        for one in served:
            await shutdown(one)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` for at most WAIT seconds."""
    for _ in range(int(WAIT / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"condition not met within {WAIT} s")


async def until_state(client: A2AClient, task_id: str, *states: int) -> types.Task:
    found: list[types.Task] = []

    async def reached() -> bool:
        found[:] = [await client.get_task(task_id)]
        return found[0].status.state in states

    await eventually(reached)
    return found[0]


async def truthy(value: object) -> bool:
    return bool(value)


def chunks(task: types.Task) -> list[str]:
    return [p.text for a in task.artifacts for p in a.parts]


async def has_chunks(client: A2AClient, task_id: str, count: int) -> bool:
    return len(chunks(await client.get_task(task_id))) >= count


async def start(client: A2AClient, text: str) -> types.Task:
    return (await client.send_message(A2AClient.text_request(text, return_immediately=True))).task


async def test_a_task_run_on_one_replica_is_read_listed_and_followed_on_the_other(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = await start(one.client, "work 6")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        cached = await two.server.handler.runs.load("", task.id)  # B holds a copy, about to lag
        assert cached is not None
        assert not cached.owned
        assert not chunks(cached.task)
        a.allow(2)
        await eventually(lambda: has_chunks(two.client, task.id, 2))
        listed = await two.client.list_tasks(types.ListTasksRequest())
        assert [t.id for t in listed.tasks] == [task.id]

        seen: list[types.StreamResponse] = []

        async def follow() -> None:
            async for event in two.client.subscribe_to_task(task.id, timeout=WAIT):
                seen.append(event)

        following = asyncio.create_task(follow())
        await eventually(lambda: truthy(seen))
        a.allow(4)
        await asyncio.wait_for(following, WAIT)
        first = seen[0].task
        assert chunks(first) == ["chunk 0", "chunk 1"]
        later = [e.artifact_update.artifact.parts[0].text for e in seen[1:] if e.HasField("artifact_update")]
        assert later == [f"chunk {i}" for i in range(2, 6)]  # in order, none lost, none twice
        assert seen[-1].status_update.status.state == types.TASK_STATE_COMPLETED
        assert not b.executed  # B only read it
        done = await two.client.get_task(task.id)
        assert done.status.state == types.TASK_STATE_COMPLETED
        assert chunks(done) == [f"chunk {i}" for i in range(6)]


async def test_a_follower_never_holds_the_owner_back(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = await start(one.client, "work 400")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        stream = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        first = await anext(stream)  # subscribed, then not read while the owner goes on
        assert first.HasField("task")
        a.allow(400)
        done = await until_state(one.client, task.id, types.TASK_STATE_COMPLETED)
        assert len(chunks(done)) == 400
        rest = [e async for e in stream]  # and the slow reader still gets everything, in order
        texts = [e.artifact_update.artifact.parts[0].text for e in rest if e.HasField("artifact_update")]
        assert texts == [f"chunk {i}" for i in range(400)]


async def test_a_follower_that_falls_out_of_the_store_window_ends_its_readers_with_the_typed_error() -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b) as (shared, (one, two)):
        task = await start(one.client, "work 10")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        stream = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(stream)).HasField("task")
        shared.flowing.clear()  # B's follower gets nothing while the store moves on and trims
        a.allow(5)
        await eventually(lambda: truthy(len(shared.events[("", task.id)]) >= 6))
        shared.trim("", task.id, keep=2)
        shared.flowing.set()
        with pytest.raises(errors.EventsNotRetainedError):
            async for _ in stream:
                pass
        # A fresh subscription starts from what the store has and goes on to the end.
        again = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(again)).HasField("task")
        a.allow(5)
        rest = [e async for e in again]
        texts = [e.artifact_update.artifact.parts[0].text for e in rest if e.HasField("artifact_update")]
        assert texts == [f"chunk {i}" for i in range(5, 10)]
        assert rest[-1].status_update.status.state == types.TASK_STATE_COMPLETED


async def test_a_task_is_continued_through_the_other_replica_and_the_first_ones_copy_follows(
    stores: Stores,
) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("ask"))).task
        assert task.status.state == types.TASK_STATE_INPUT_REQUIRED
        # A still reads the task (its copy stays in memory) while B takes the next turn.
        seen: list[types.StreamResponse] = []

        async def follow() -> None:
            async for event in one.client.subscribe_to_task(task.id, timeout=WAIT):
                seen.append(event)

        following = asyncio.create_task(follow())
        await eventually(lambda: truthy(seen))
        answer = two.client.send_message(A2AClient.text_request("blue", task_id=task.id))
        b.allow()
        done = (await asyncio.wait_for(answer, WAIT)).task
        assert done.status.state == types.TASK_STATE_COMPLETED
        assert b.executed == ["blue"]
        assert a.executed == ["ask"]
        await asyncio.wait_for(following, WAIT)
        states = [e.status_update.status.state for e in seen if e.HasField("status_update")]
        assert states == [types.TASK_STATE_WORKING, types.TASK_STATE_COMPLETED]
        for client in (one.client, two.client):
            read = await client.get_task(task.id)
            assert read.status.state == types.TASK_STATE_COMPLETED
            assert "blue" in [p.text for m in read.history for p in m.parts]
        with pytest.raises(errors.UnsupportedOperationError, match="TASK_STATE_COMPLETED"):
            await one.client.send_message(A2AClient.text_request("again", task_id=task.id))
        with pytest.raises(errors.TaskNotCancelableError):
            await two.client.cancel_task(task.id)
        with pytest.raises(errors.UnsupportedOperationError):
            async for _ in two.client.subscribe_to_task(task.id):
                pass
        await no_copies_left(one, two)


async def no_copies_left(*served: Served) -> None:
    """Nothing holds a task any more: no replica keeps a copy (it would only go stale)."""
    for one in served:
        runs = one.server.handler.runs
        await eventually(lambda runs=runs: truthy(not runs.all()))  # type: ignore[misc]


async def test_the_first_replicas_own_copy_at_rest_learns_that_the_other_continued_the_task(
    stores: Stores,
) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("linger"))).task
        assert task.status.state == types.TASK_STATE_INPUT_REQUIRED  # A's execution still holds it
        answer = two.client.send_message(A2AClient.text_request("blue", task_id=task.id))
        b.allow()
        assert (await asyncio.wait_for(answer, WAIT)).task.status.state == types.TASK_STATE_COMPLETED
        assert (await one.client.get_task(task.id)).status.state == types.TASK_STATE_COMPLETED
        with pytest.raises(errors.UnsupportedOperationError, match="TASK_STATE_COMPLETED"):
            await one.client.send_message(A2AClient.text_request("again", task_id=task.id))
        assert a.executed == ["linger"]
        a.lingering.set()


async def test_a_new_subscriber_of_a_followed_task_gets_the_messages_that_continued_it(
    stores: Stores,
) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("ask"))).task
        first = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))  # B follows from here on
        assert (await anext(first)).HasField("task")
        await one.client.send_message(
            A2AClient.text_request("blue", task_id=task.id, return_immediately=True)
        )
        working = await anext(first)  # no event carries the message "blue" itself
        assert working.status_update.status.state == types.TASK_STATE_WORKING
        second = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        snapshot = (await anext(second)).task
        said = [p.text for m in snapshot.history for p in m.parts]
        assert said == ["ask", "what should I work on?", "blue", "thinking it over"]
        a.allow()
        for stream in (first, second):
            rest = [e async for e in stream]
            assert rest[-1].status_update.status.state == types.TASK_STATE_COMPLETED


async def test_turns_taken_on_alternate_replicas_keep_the_whole_history(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("ask"))).task
        # A keeps a copy (a reader) while B takes a turn that asks again; then A takes the next.
        watching = aiter(one.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(watching)).HasField("task")
        again = (await two.client.send_message(A2AClient.text_request("more", task_id=task.id))).task
        assert again.status.state == types.TASK_STATE_INPUT_REQUIRED
        answer = asyncio.create_task(one.client.send_message(A2AClient.text_request("blue", task_id=task.id)))
        a.allow()
        done = (await asyncio.wait_for(answer, WAIT)).task
        assert done.status.state == types.TASK_STATE_COMPLETED
        expected = ["ask", "what should I work on?", "more", "and then?", "blue", "thinking it over"]
        expected.append("thanks, you said: blue")
        for client in (one.client, two.client):
            stored = await client.get_task(task.id)
            assert [p.text for m in stored.history for p in m.parts] == expected
        assert [e async for e in watching][-1].status_update.status.state == types.TASK_STATE_COMPLETED


def follows() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "a2a-follow" and not t.done()]


async def test_no_follow_outlives_its_copy_even_one_that_swallows_its_cancel() -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b) as (shared, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("ask"))).task
        # Followed, then left: the copy is forgotten and its follow cancelled, which it ignores once.
        watching = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(watching)).HasField("task")
        assert len(follows()) == 1
        shared.swallowed_cancels = 1
        await watching.aclose()  # type: ignore[attr-defined]
        await eventually(lambda: truthy(not follows()))
        assert shared.swallowed_cancels == 0
        # Followed, then taken by a continuation here: the follow ends at once, cancelled or not.
        watching = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(watching)).HasField("task")
        answer = asyncio.create_task(two.client.send_message(A2AClient.text_request("blue", task_id=task.id)))
        b.allow()
        assert (await asyncio.wait_for(answer, WAIT)).task.status.state == types.TASK_STATE_COMPLETED
        assert [e async for e in watching][-1].status_update.status.state == types.TASK_STATE_COMPLETED
        await eventually(lambda: truthy(not follows()))
        await no_copies_left(one, two)


async def test_a_continuation_sent_to_both_replicas_at_once_runs_once(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        for _ in range(5):
            task = (await one.client.send_message(A2AClient.text_request("ask"))).task
            a.executed.clear()
            sends = [
                asyncio.create_task(
                    client.send_message(
                        A2AClient.text_request(text, task_id=task.id, return_immediately=True)
                    )
                )
                for client, text in ((one.client, "left"), (two.client, "right"))
            ]
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            accepted = [o for o in outcomes if isinstance(o, types.SendMessageResponse)]
            refused = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(accepted) == 1, outcomes
            assert len(refused) == 1, outcomes
            assert isinstance(refused[0], errors.UnsupportedOperationError)
            assert "TASK_STATE_" in str(refused[0])
            assert len(a.executed) + len(b.executed) == 1
            a.allow()
            b.allow()
            await until_state(two.client, task.id, types.TASK_STATE_COMPLETED)
            # what was allowed but not used is taken back
            a.steps = asyncio.Queue()
            b.steps = asyncio.Queue()
            b.executed.clear()
        await no_copies_left(one, two)


async def test_cancel_through_the_other_replica_reaches_the_owner_at_once(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    # A lease long enough that a renewal could not be what delivers the signal within the test.
    async with replicas(a, b, stores=stores, lease=120.0) as (_, (one, two)):
        task = await start(one.client, "work 5")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        canceled = await asyncio.wait_for(two.client.cancel_task(task.id), WAIT)
        assert canceled.status.state == types.TASK_STATE_CANCELED
        assert (await one.client.get_task(task.id)).status.state == types.TASK_STATE_CANCELED
        with pytest.raises(errors.TaskNotCancelableError):
            await two.client.cancel_task(task.id)


async def test_cancel_of_a_task_at_rest_through_the_other_replica(stores: Stores) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=stores) as (_, (one, two)):
        task = (await one.client.send_message(A2AClient.text_request("ask"))).task
        canceled = await two.client.cancel_task(task.id)
        assert canceled.status.state == types.TASK_STATE_CANCELED
        assert (await one.client.get_task(task.id)).status.state == types.TASK_STATE_CANCELED


async def test_a_dead_replicas_task_is_failed_with_a_reason_once_and_its_followers_see_it() -> None:
    agents = [Scripted() for _ in range(4)]
    async with replicas(*agents) as (shared, served):
        one, others = served[0], served[1:]
        task = await start(one.client, "work 3")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        agents[0].allow()
        await eventually(lambda: has_chunks(others[0].client, task.id, 1))
        seen: list[types.StreamResponse] = []

        async def follow() -> None:
            async for event in others[1].client.subscribe_to_task(task.id, timeout=WAIT):
                seen.append(event)

        following = asyncio.create_task(follow())
        await eventually(lambda: truthy(seen))
        shared.kill("replica-0")  # no more renewals: its tasks are orphans, three replicas race
        failed = await until_state(others[0].client, task.id, types.TASK_STATE_FAILED)
        text = " ".join(p.text for p in failed.status.message.parts)
        assert "stopped" in text
        assert "TASK_STATE_WORKING" in text
        await asyncio.wait_for(following, WAIT)
        assert seen[-1].status_update.status.state == types.TASK_STATE_FAILED
        finals = [
            seq
            for seq, data in shared.events[("", task.id)]
            if (event := types.StreamResponse.FromString(data)).HasField("status_update")
            and event.status_update.status.state in TERMINAL_STATES
        ]
        assert len(finals) == 1  # one replica ended it (the stand-in refuses an event stored twice)
        assert chunks(failed) == ["chunk 0"]  # what was reported before the death is kept
        await no_copies_left(*others)  # nor do the replicas that lost the race keep a copy


async def test_a_dead_replicas_task_is_resumed_by_a_live_one_for_a_resumable_agent() -> None:
    agents = [Resuming(), Resuming(), Resuming()]
    async with replicas(*agents) as (shared, served):
        task = await start(served[0].client, "work 3")
        await until_state(served[0].client, task.id, types.TASK_STATE_WORKING)
        shared.kill("replica-0")
        done = await until_state(served[1].client, task.id, types.TASK_STATE_COMPLETED)
        assert " ".join(p.text for p in done.status.message.parts) == "resumed on another replica"
        resumed = [e for agent in agents[1:] for e in agent.executed if e.startswith("resumed")]
        assert resumed == ["resumed work 3"]


async def test_a_damaged_event_in_redis_ends_a_followers_readers_typed_and_the_replica_serves_on(
    redis_url: str,
) -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b, stores=redis_stores(redis_url)) as (_, (one, two)):
        task = await start(one.client, "work 3")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        watching = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(watching)).HasField("task")
        store = one.server.store
        assert isinstance(store, RedisTaskStore)
        stream = store.keys.events(store.keys.task_tag("", task.id))
        [(last, _)] = await store.client.xrevrange(stream, count=1)
        following = int(last.decode().partition("-")[2]) + 1
        await store.client.xadd(stream, {b"e": b"\xff\x00 not an event"}, id=f"0-{following}")
        with pytest.raises(errors.InternalError, match="damaged"):
            async for _ in watching:
                pass
        assert [t.id for t in (await two.client.list_tasks()).tasks] == [task.id]  # B serves on
        assert (await two.client.get_agent_card()).name
        a.allow(3)


async def test_a_stopping_replica_ends_the_readers_of_the_tasks_it_follows_typed() -> None:
    a, b = Scripted(), Scripted()
    async with replicas(a, b) as (_, (one, two)):
        task = await start(one.client, "work 3")
        await until_state(one.client, task.id, types.TASK_STATE_WORKING)
        watching = aiter(two.client.subscribe_to_task(task.id, timeout=WAIT))
        assert (await anext(watching)).HasField("task")
        stopping = asyncio.create_task(two.server.stop(grace=1.0))
        with pytest.raises(errors.UnavailableError):
            async for _ in watching:
                pass
        await asyncio.wait_for(stopping, WAIT)
        assert not follows()
        # The task runs on, on its own replica.
        a.allow(3)
        assert (await until_state(one.client, task.id, types.TASK_STATE_COMPLETED)).id == task.id


async def test_another_principals_task_is_not_found_through_the_other_replica(stores: Stores) -> None:
    keys = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef01"}
    auth = Authentication([ApiKeyScheme([ApiKey(name, key=value) for name, value in keys.items()])])
    a, b = Scripted(), Scripted()
    async with replicas(a, b, authentication=auth, stores=stores) as (_, (one, two)):
        alice = [("x-api-key", keys["alice"])]
        bob = [("x-api-key", keys["bob"])]
        task = (
            await one.client.send_message(
                A2AClient.text_request("ask", return_immediately=False), metadata=alice
            )
        ).task
        assert (await two.client.get_task(task.id, metadata=alice)).id == task.id
        attempts = [
            two.client.get_task(task.id, metadata=bob),
            two.client.cancel_task(task.id, metadata=bob),
            two.client.send_message(A2AClient.text_request("mine now", task_id=task.id), metadata=bob),
        ]
        for attempt in attempts:
            with pytest.raises(errors.TaskNotFoundError):
                await attempt
        with pytest.raises(errors.TaskNotFoundError):
            async for _ in two.client.subscribe_to_task(task.id, metadata=bob):
                pass
        assert not (await two.client.list_tasks(metadata=bob)).tasks
        assert not b.executed
        assert (
            await one.client.get_task(task.id, metadata=alice)
        ).status.state == types.TASK_STATE_INPUT_REQUIRED


async def test_without_a_shared_sink_nothing_is_claimed_or_followed() -> None:
    served = await serve(Scripted(), InMemoryTaskStore())
    try:
        runs = served.server.handler.runs
        assert not runs.replicated
        task = (await served.client.send_message(A2AClient.text_request("ask"))).task
        run = await runs.load("", task.id)
        assert run is not None
        assert run.owned
        assert run.at_rest is None
        assert run.on_watch is None
    finally:
        await shutdown(served)
