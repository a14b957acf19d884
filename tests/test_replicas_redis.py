"""Two (or three) real ``a2a-grpc serve --store redis://...`` processes on one real Redis: a task
started on one is read, listed, subscribed to, continued and canceled through the other; a replica
killed with ``kill -9`` mid-task leaves a truthful state within the lease (failed with a reason, or
resumed by a resumable agent); a continuation sent to both at once runs once; another principal's
task ids are not found through the other; a replica whose Redis goes away answers typed errors and
serves again once it is back. Servers and redis-servers are stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest
import redis

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import reference_card
from a2a_grpc.resilience import ResiliencePolicy
from tests.redisserver import RedisServer, start_redis
from tests.test_recovery import serving

pytestmark = pytest.mark.asyncio

START = 30.0
WAIT = 20.0
LEASE = 2.0
"""The replicas' lease (``store.lease_seconds``): short, so that a death is noticed within a test."""
PLAIN = ClientSettings(
    resilience=ResiliencePolicy(max_attempts=1, breaker_failures=1000, breaker_failure_ratio=1.0)
)
"""Clients that neither retry nor open a breaker: each answer is the server's own."""
ALICE, BOB = "alice-key-0123456789abcdef", "bob-key-0123456789abcdef01"


class Resumable(Agent):
    """``count N``: N artifact chunks, one every 0.1 s; resumed elsewhere, it completes saying so."""

    card = reference_card()
    resumable: ClassVar[bool] = True

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.working()
        artifact_id = None
        for i in range(int(context.text.split()[1])):
            artifact_id = await updater.artifact(
                [types.Part(text=f"chunk {i}")], artifact_id=artifact_id, name="count", append=i > 0
            )
            await asyncio.sleep(0.1)
        await updater.complete()

    async def resume(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.complete(f"resumed on {os.getpid()}")


@dataclass
class Replica:
    proc: asyncio.subprocess.Process
    address: str
    lines: list[str]

    def client(self, key: str | None = None) -> A2AClient:
        metadata = [("x-api-key", key)] if key else []
        return A2AClient(self.address, settings=PLAIN, timeout=WAIT, metadata=metadata)


@contextlib.asynccontextmanager
async def replica(url: str, *extra: str, lease: float = LEASE) -> AsyncIterator[Replica]:
    """``a2a-grpc serve --store URL`` with a short lease, until the block ends (SIGTERM by PID)."""
    env = {**os.environ, "A2A_STORE__LEASE_SECONDS": str(lease)}
    async with serving(url, *extra, env=env, start=START) as server:
        yield Replica(server.proc, server.grpc, server.lines)


@contextlib.asynccontextmanager
async def clients(*replicas: Replica, key: str | None = None) -> AsyncIterator[list[A2AClient]]:
    made = [r.client(key) for r in replicas]
    try:
        yield made
    finally:
        for client in made:
            await client.close()


async def until_state(client: A2AClient, task_id: str, *states: int, within: float = WAIT) -> types.Task:
    for _ in range(int(within / 0.05)):
        task = await client.get_task(task_id)
        if task.status.state in states:
            return task
        await asyncio.sleep(0.05)
    raise TimeoutError(f"task {task_id} did not reach {states} within {within} s")


def texts(events: list[types.StreamResponse]) -> list[str]:
    return [e.artifact_update.artifact.parts[0].text for e in events if e.HasField("artifact_update")]


def text_of(status: types.TaskStatus) -> str:
    return " ".join(p.text for p in status.message.parts)


def _restart(server: RedisServer) -> subprocess.Popen[bytes]:
    """The same redis-server again, on the same port (empty: it keeps nothing on disk)."""
    binary = shutil.which("redis-server")
    assert binary is not None
    args = [binary, "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*args, "--dir", str(server.folder)], stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=1)
    try:
        for _ in range(int(WAIT / 0.05)):
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.ping():
                    return process
            time.sleep(0.05)
    finally:
        client.close()
    process.kill()
    raise AssertionError("redis-server did not come back")


def clean(*replicas: Replica) -> None:
    """Nothing went wrong inside the replicas: no traceback, no error logged."""
    for one in replicas:
        text = "".join(one.lines)
        assert "Traceback" not in text, text
        assert " ERROR " not in text, text


T = TypeVar("T")


async def served_again(client: A2AClient) -> types.Task:
    """A message answered once Redis is back."""
    return (await once_served(lambda: client.send_message(A2AClient.text_request("echo back")))).task


async def once_served(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``'s answer once the replica serves again: a call on a Redis connection that died
    may still fail, with the typed error, before the replica's pool has new ones (each replica's
    pool, so every replica of a test needs this, not only the first one asked)."""
    for _ in range(int(WAIT / 0.2)):
        try:
            return await call()
        except errors.UnavailableError:
            await asyncio.sleep(0.2)
    raise TimeoutError(f"not served again within {WAIT} s")


def prefixed(redis_url: str) -> str:
    return f"{redis_url}?prefix=replicas"


async def test_a_task_on_one_replica_is_read_listed_and_followed_through_the_other(redis_url: str) -> None:
    count = 1000  # within the retained window (1024 events): a reader that falls further behind is
    # ended with EventsNotRetainedError, on the owner as on a follower (tests/test_replicas.py)
    async with (
        replica(prefixed(redis_url)) as one,
        replica(prefixed(redis_url)) as two,
        clients(one, two) as (a, b),
    ):
        # The caller of A reads a few events, then nothing: its agent waits (backpressure) with
        # the task WORKING and part of its artifact reported.
        stream = aiter(a.send_streaming_message(A2AClient.text_request(f"stream {count}"), timeout=WAIT * 3))
        head = [await anext(stream) for _ in range(5)]
        task_id = head[0].task.id
        read = await until_state(b, task_id, types.TASK_STATE_WORKING)
        assert read.artifacts, "B reads the artifact so far"
        listed = await b.list_tasks(types.ListTasksRequest())
        assert [t.id for t in listed.tasks] == [task_id]

        follower = aiter(b.subscribe_to_task(task_id, timeout=WAIT * 3))
        snapshot = (await anext(follower)).task
        already = [p.text for art in snapshot.artifacts for p in art.parts]
        assert already == [f"chunk {i}" for i in range(len(already))]

        async def drain(events: AsyncIterator[types.StreamResponse]) -> list[types.StreamResponse]:
            return [e async for e in events]

        rest_of_a, followed = await asyncio.gather(drain(stream), drain(follower))
        assert texts(head + rest_of_a) == [f"chunk {i}" for i in range(count)]
        assert texts(followed) == [f"chunk {i}" for i in range(len(already), count)]  # none lost, none twice
        assert followed[-1].status_update.status.state == types.TASK_STATE_COMPLETED
        done = await b.get_task(task_id)
        assert done.status.state == types.TASK_STATE_COMPLETED
        assert len(done.artifacts[0].parts) == count
    clean(one, two)


async def test_a_task_is_continued_through_the_other_replica(redis_url: str) -> None:
    async with (
        replica(prefixed(redis_url)) as one,
        replica(prefixed(redis_url)) as two,
        clients(one, two) as (a, b),
    ):
        asked = (await a.send_message(A2AClient.text_request("ask"))).task
        assert asked.status.state == types.TASK_STATE_INPUT_REQUIRED
        done = (await b.send_message(A2AClient.text_request("blue", task_id=asked.id))).task
        assert done.status.state == types.TASK_STATE_COMPLETED
        assert text_of(done.status) == "thanks, you said: blue"
        seen_by_a = await a.get_task(asked.id)
        assert seen_by_a.status.state == types.TASK_STATE_COMPLETED
        assert "blue" in [p.text for m in seen_by_a.history for p in m.parts]
        with pytest.raises(errors.UnsupportedOperationError, match="TASK_STATE_COMPLETED"):
            await a.send_message(A2AClient.text_request("again", task_id=asked.id))
    clean(one, two)


async def test_a_cancel_through_the_other_replica_reaches_the_owner_without_waiting_for_a_renewal(
    redis_url: str,
) -> None:
    lease = 120.0  # renewals every 40 s: only the pushed signal can make the cancel prompt
    async with (
        replica(prefixed(redis_url), lease=lease) as one,
        replica(prefixed(redis_url), lease=lease) as two,
        clients(one, two) as (a, b),
    ):
        for _ in range(3):
            slow = (await a.send_message(A2AClient.text_request("slow 60", return_immediately=True))).task
            await until_state(b, slow.id, types.TASK_STATE_WORKING)
            loop = asyncio.get_running_loop()
            began = loop.time()
            canceled = await b.cancel_task(slow.id)
            assert canceled.status.state == types.TASK_STATE_CANCELED  # B answers the final task
            assert loop.time() - began < 10
            assert (await a.get_task(slow.id)).status.state == types.TASK_STATE_CANCELED
            with pytest.raises(errors.TaskNotCancelableError):
                await a.cancel_task(slow.id)
    clean(one, two)


async def test_a_continuation_sent_to_both_replicas_at_once_runs_once(redis_url: str) -> None:
    async with (
        replica(prefixed(redis_url)) as one,
        replica(prefixed(redis_url)) as two,
        clients(one, two) as (a, b),
    ):
        for round_ in range(6):
            asked = (await a.send_message(A2AClient.text_request("ask"))).task
            words = (f"left{round_}", f"right{round_}")
            outcomes = await asyncio.gather(
                a.send_message(A2AClient.text_request(words[0], task_id=asked.id)),
                b.send_message(A2AClient.text_request(words[1], task_id=asked.id)),
                return_exceptions=True,
            )
            accepted = [o for o in outcomes if isinstance(o, types.SendMessageResponse)]
            refused = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(accepted) == 1, outcomes
            assert isinstance(refused[0], errors.UnsupportedOperationError), refused
            assert re.search(r"TASK_STATE_(WORKING|COMPLETED|INPUT_REQUIRED)", str(refused[0]))
            final = await until_state(b, asked.id, types.TASK_STATE_COMPLETED)
            said = [p.text for m in final.history for p in m.parts]
            assert sum(word in said for word in words) == 1  # one of them ran, once
            assert text_of(final.status) == f"thanks, you said: {text_of_request(accepted[0], words, said)}"
    clean(one, two)


def text_of_request(_: types.SendMessageResponse, words: tuple[str, str], said: list[str]) -> str:
    return next(word for word in words if word in said)


async def test_a_replica_killed_mid_task_leaves_its_task_failed_with_a_reason_within_the_lease(
    redis_url: str,
) -> None:
    async with (
        replica(prefixed(redis_url)) as one,
        replica(prefixed(redis_url)) as two,
        clients(one, two) as (a, b),
    ):
        slow = (await a.send_message(A2AClient.text_request("slow 120", return_immediately=True))).task
        await until_state(b, slow.id, types.TASK_STATE_WORKING)
        follower = aiter(b.subscribe_to_task(slow.id, timeout=WAIT * 2))
        assert (await anext(follower)).HasField("task")
        os.kill(one.proc.pid, signal.SIGKILL)
        await one.proc.wait()
        loop = asyncio.get_running_loop()
        died = loop.time()
        failed = await until_state(b, slow.id, types.TASK_STATE_FAILED, within=4 * LEASE + 5)
        noticed = loop.time() - died
        assert "stopped while it was TASK_STATE_WORKING" in text_of(failed.status)
        rest = [e async for e in follower]  # B's own reader gets the final status too
        assert rest[-1].status_update.status.state == types.TASK_STATE_FAILED
        print(f"a task of a replica killed with -9 was failed by the other {noticed:.2f} s later")


async def test_three_replicas_race_for_an_orphan_and_one_ends_it(redis_url: str) -> None:
    url = prefixed(redis_url)
    async with (
        replica(url) as one,
        replica(url) as two,
        replica(url) as three,
        clients(one, two, three) as (a, b, c),
    ):
        tasks = [
            (await a.send_message(A2AClient.text_request("slow 120", return_immediately=True))).task
            for _ in range(4)
        ]
        for task in tasks:
            await until_state(b, task.id, types.TASK_STATE_WORKING)
        os.kill(one.proc.pid, signal.SIGKILL)
        await one.proc.wait()
        for task in tasks:
            failed = await until_state(c, task.id, types.TASK_STATE_FAILED, within=4 * LEASE + 5)
            assert "stopped while it was TASK_STATE_WORKING" in text_of(failed.status)
        # Each orphan was ended once: one replica logged each failure.
        await asyncio.sleep(LEASE)  # another sweep of both, at least
        logged = [
            line for r in (two, three) for line in r.lines if "when its server stopped: failing it" in line
        ]
        ended = sorted(found.group(1) for line in logged if (found := re.search(r"task (\S+) was", line)))
        assert ended == sorted(t.id for t in tasks), logged


async def test_a_killed_replicas_task_is_resumed_by_the_other_for_a_resumable_agent(redis_url: str) -> None:
    agent = ["--agent", "tests.test_replicas_redis:Resumable"]
    async with (
        replica(prefixed(redis_url), *agent) as one,
        replica(prefixed(redis_url), *agent) as two,
        clients(one, two) as (a, b),
    ):
        task = (await a.send_message(A2AClient.text_request("count 600", return_immediately=True))).task
        await until_state(b, task.id, types.TASK_STATE_WORKING)
        os.kill(one.proc.pid, signal.SIGKILL)
        await one.proc.wait()
        done = await until_state(b, task.id, types.TASK_STATE_COMPLETED, within=4 * LEASE + 5)
        assert text_of(done.status) == f"resumed on {two.proc.pid}"


async def test_another_principals_task_is_not_found_through_the_other_replica(
    redis_url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"alice {ALICE}\nbob {BOB}\n")
    auth = ["--api-keys-file", str(keys)]
    async with (
        replica(prefixed(redis_url), *auth) as one,
        replica(prefixed(redis_url), *auth) as two,
        clients(one, key=ALICE) as (alice,),
        clients(two, key=BOB) as (bob,),
        clients(two, key=ALICE) as (alice_on_two,),
    ):
        task = (await alice.send_message(A2AClient.text_request("ask"))).task
        assert (await alice_on_two.get_task(task.id)).status.state == types.TASK_STATE_INPUT_REQUIRED
        for attempt in (
            bob.get_task(task.id),
            bob.cancel_task(task.id),
            bob.send_message(A2AClient.text_request("mine now", task_id=task.id)),
        ):
            with pytest.raises(errors.TaskNotFoundError):
                await attempt
        with pytest.raises(errors.TaskNotFoundError):
            async for _ in bob.subscribe_to_task(task.id):
                pass
        assert not (await bob.list_tasks()).tasks
        assert (await alice.get_task(task.id)).status.state == types.TASK_STATE_INPUT_REQUIRED


async def test_a_replica_whose_redis_goes_away_answers_typed_errors_and_serves_again(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    url = f"redis://127.0.0.1:{server.port}/0?prefix=gone"
    again = None
    try:
        async with replica(url) as one, replica(url) as two, clients(one, two) as (a, b):
            slow = (await a.send_message(A2AClient.text_request("slow 60", return_immediately=True))).task
            await until_state(b, slow.id, types.TASK_STATE_WORKING)
            follower = aiter(b.subscribe_to_task(slow.id, timeout=WAIT * 2))
            assert (await anext(follower)).HasField("task")
            server.stop()
            with pytest.raises(errors.UnavailableError):
                await b.get_task(slow.id)
            with pytest.raises(errors.UnavailableError):
                await b.send_message(A2AClient.text_request("echo hi"))
            with pytest.raises((errors.UnavailableError, errors.InternalError)):
                async for _ in follower:  # B's follower loses the store: its reader ends, typed
                    pass
            assert (await b.get_agent_card()).name  # and B still serves
            again = _restart(server)
            echoed = await served_again(b)
            assert echoed.status.state == types.TASK_STATE_COMPLETED
            again_on_a = await once_served(lambda: a.get_task(echoed.id))
            assert again_on_a.status.state == types.TASK_STATE_COMPLETED
            for replica_ in (one, two):
                assert replica_.proc.returncode is None
    finally:
        if again is not None:
            again.terminate()
            again.wait(timeout=10)
        server.stop()


async def test_a_session_cut_from_one_replica_process_resumes_through_the_other_with_every_event_once(
    redis_url: str,
) -> None:
    """Two `serve --store redis://` processes behind a load balancer (a TCP switch in this test): a
    session opened on A, cut while a stream and a unary call run, resumes through B, which finds
    A in the session directory (the store's Redis) and forwards it there: every event once, in order."""
    from tests.test_session_replicas import Switch, chunks

    async with replica(prefixed(redis_url)) as a, replica(prefixed(redis_url)) as b:
        a_port, b_port = (int(r.address.rpartition(":")[2]) for r in (a, b))
        async with (
            Switch(a_port) as balancer,
            A2AClient(f"127.0.0.1:{balancer.port}", settings=PLAIN, timeout=WAIT) as client,
            client.session(resume_timeout=WAIT) as session,
        ):
            unary = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 3")))
            events: list[types.StreamResponse] = []
            cut = False
            async for event in session.send_streaming_message(
                A2AClient.text_request("stream 600"), timeout=WAIT * 3
            ):
                events.append(event)
                if not cut and len(chunks(events)) == 150:
                    cut = True
                    assert not unary.done()  # in flight across the cut
                    balancer.target = b_port  # new connections now reach B
                    balancer.cut()
            assert chunks(events) == [f"chunk {i}" for i in range(600)]  # no gap, no duplicate
            assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
            reply = await asyncio.wait_for(unary, WAIT)
            assert reply.task.status.state == types.TASK_STATE_COMPLETED
            assert session.resumes == 1
            after = await session.send_message(A2AClient.text_request("echo through B"))
            assert after.task.artifacts[0].parts[0].text == "echo through B"
