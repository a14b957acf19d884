"""Tasks tell the truth across stops and crashes: graceful stop, ``kill -9``, resumable agents, and
what a client was sent surviving in the store. Servers are real ``a2a-grpc serve`` processes on
one SQLite file, stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import SqliteTaskStore
from tests.conftest import stop_process
from tests.webhook import Receiver, until

pytestmark = pytest.mark.asyncio

START = 20.0
WAIT = 15.0


@dataclass
class Server:
    proc: asyncio.subprocess.Process
    grpc: str
    http: str | None
    lines: list[str]

    def client(self) -> A2AClient:
        return A2AClient(self.grpc, timeout=WAIT)


@pytest.fixture(params=["sqlite", "redis"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the servers of a test keep their tasks: an SQLite file, or a Redis (a URL)."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return tmp_path / "tasks.db"


@contextlib.asynccontextmanager
async def serving(
    db: Path | str,
    *extra: str,
    http: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    start: float = START,
) -> AsyncIterator[Server]:
    """``a2a-grpc serve`` on the SQLite file ``db`` (or the Redis URL), until the block ends (then
    SIGTERM, by PID); ``env``: the variables it sees (default: this process's)."""
    store = db if isinstance(db, str) else f"sqlite:///{db}"
    args = [sys.executable, "-m", "a2a_grpc.cli", "serve", "--grpc-port", "0", "--store", store]
    if http:
        args += ["--http-port", "0"]
    proc = await asyncio.create_subprocess_exec(
        *args, *extra, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert proc.stdout is not None
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(start):
            while not lines or "Ctrl-C" not in lines[-1]:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError("the server exited:\n" + "".join(lines))
                lines.append(line)
        text = "".join(lines)
        grpc = re.search(r"over gRPC at (\S+)", text)
        web = re.search(r"HTTP\+JSON at (\S+)", text)
        assert grpc, text

        async def keep_reading() -> None:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                lines.append(line.decode())

        drain = asyncio.ensure_future(keep_reading())
        yield Server(proc, grpc.group(1), web.group(1) if web else None, lines)
    finally:
        await stop(proc, signal.SIGTERM)
        if drain is not None:
            await asyncio.wait_for(drain, 10)


async def stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    await stop_process(proc, sig, grace=20)


async def wait_state(client: A2AClient, task_id: str, *states: int) -> types.Task:
    async with asyncio.timeout(WAIT):
        while True:
            task = await client.get_task(task_id)
            if task.status.state in states:
                return task
            await asyncio.sleep(0.05)


def text_of(status: types.TaskStatus) -> str:
    return " ".join(p.text for p in status.message.parts)


async def test_a_graceful_stop_ends_running_tasks_truthfully_and_every_stream_with_them(
    store_at: Path | str,
) -> None:
    db = store_at
    async with serving(db, http=True) as server:
        assert server.http is not None
        async with server.client() as client:
            slow = (
                await client.send_message(A2AClient.text_request("slow 30", return_immediately=True))
            ).task
            await wait_state(client, slow.id, types.TASK_STATE_WORKING)
            grpc_events: list[types.StreamResponse] = []

            async def follow_grpc() -> None:
                async for event in client.subscribe_to_task(slow.id, timeout=WAIT):
                    grpc_events.append(event)

            sse_lines: list[str] = []

            async def follow_sse() -> None:
                url = f"{server.http}/tasks/{slow.id}:subscribe"
                async with (
                    httpx.AsyncClient(timeout=WAIT) as http,
                    http.stream("GET", url, headers={"A2A-Version": "1.0"}) as response,
                ):
                    async for line in response.aiter_lines():
                        sse_lines.append(line)

            followers = [asyncio.ensure_future(follow_grpc()), asyncio.ensure_future(follow_sse())]
            await until(lambda: bool(grpc_events) and any("data:" in x for x in sse_lines), WAIT)
            await stop(server.proc, signal.SIGTERM)  # the graceful stop
            # Both streams receive the final status and end: nothing hangs.
            await asyncio.wait_for(asyncio.gather(*followers, return_exceptions=True), WAIT)
    final = grpc_events[-1].status_update.status
    assert final.state == types.TASK_STATE_FAILED
    assert "the server stopped while this task was TASK_STATE_WORKING" in text_of(final)
    assert '"TASK_STATE_FAILED"' in next(x for x in reversed(sse_lines) if x.startswith("data:"))
    async with serving(db) as again, again.client() as client:
        task = await client.get_task(slow.id)
        assert task.status.state == types.TASK_STATE_FAILED
        assert "the server stopped" in text_of(task.status)
        with pytest.raises(errors.UnsupportedOperationError):  # at once: it is over
            [e async for e in client.subscribe_to_task(slow.id, timeout=WAIT)]


async def read_then_kill(server: Server, text: str, count: int) -> tuple[str, list[str]]:
    """Stream ``text``; after ``count`` artifact chunks, ``kill -9`` the server. The task id and
    the chunk texts the client received."""
    received: list[str] = []
    task_id = ""
    async with server.client() as client:
        stream = client.send_streaming_message(A2AClient.text_request(text), timeout=60)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event.HasField("task"):
                    task_id = event.task.id
                elif event.HasField("artifact_update"):
                    received += [p.text for p in event.artifact_update.artifact.parts]
                    if len(received) >= count:
                        await stop(server.proc, signal.SIGKILL)
                        break
    return task_id, received


async def test_kill_9_mid_stream_then_restart_fails_the_task_with_a_reason(store_at: Path | str) -> None:
    db = store_at
    async with serving(db) as server:
        task_id, received = await read_then_kill(server, "stream 1000", 200)
    async with serving(db) as again, again.client() as client:
        # Failed during start-up: the first call already sees it.
        task = await client.get_task(task_id)
        assert task.status.state == types.TASK_STATE_FAILED
        assert "the server running this task stopped while it was TASK_STATE_WORKING" in text_of(task.status)
        assert "failing it" in "".join(again.lines)
        parts = [p.text for p in task.artifacts[0].parts]
        assert parts[: len(received)] == received


@pytest.mark.slow
async def test_kill_9_at_event_5000_of_stream_50000_keeps_every_part_the_client_received(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.db"
    async with serving(db) as server:
        task_id, received = await read_then_kill(server, "stream 50000", 5000)
    assert len(received) >= 5000
    store = SqliteTaskStore(str(db))
    try:
        found = await store.load("", task_id)
        assert found is not None
        task, _ = found
        # Before any restart, the file alone: the snapshot and the events stored after it.
        events = await store.event_sink.stored_after("", task_id, _)
        from a2a_grpc.tasks.run import apply_event

        for _, event in events:
            apply_event(task, event)
        parts = [p.text for p in task.artifacts[0].parts]
        assert parts[: len(received)] == received
    finally:
        await store.close()


RESUMABLE = '''
import asyncio

from a2a_grpc import types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater


class Counter(Agent):
    """Counts to N, one artifact chunk every 5 ms; resumed where its stored task stands."""

    card = types.AgentCard(name="counter", description="counts", version="1")
    resumable = True

    async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
        await self.count(ctx, updater, 0)

    async def resume(self, ctx: RequestContext, updater: TaskUpdater) -> None:
        assert ctx.resumed and ctx.task is not None
        done = len(ctx.task.artifacts[0].parts) if ctx.task.artifacts else 0
        await updater.working(f"resumed at {done}")
        await self.count(ctx, updater, done)

    async def count(self, ctx: RequestContext, updater: TaskUpdater, start: int) -> None:
        total = int(ctx.text.split()[-1])
        await updater.working()
        for i in range(start, total):
            await asyncio.sleep(0.005)
            await updater.artifact([types.Part(text=str(i))], artifact_id="count", append=i > 0)
        await updater.complete(f"counted to {total}")
'''


async def test_a_resumable_agent_is_resumed_after_kill_9_and_completes(
    tmp_path: Path, store_at: Path | str
) -> None:
    (tmp_path / "counter.py").write_text(RESUMABLE)
    db = store_at
    agent = ("--agent", "counter:Counter", "--app-dir", str(tmp_path))
    async with serving(db, *agent) as server:
        task_id, _ = await read_then_kill(server, "count 300", 50)
    async with serving(db, *agent) as again, again.client() as client:
        task = await wait_state(client, task_id, types.TASK_STATE_COMPLETED, types.TASK_STATE_FAILED)
        assert task.status.state == types.TASK_STATE_COMPLETED, task.status
        parts = [p.text for p in task.artifacts[0].parts]
        assert parts == [str(i) for i in range(300)]  # nothing lost, nothing twice
        assert any("resumed at" in " ".join(p.text for p in m.parts) for m in task.history)
        assert "resuming it" in "".join(again.lines)


class Asker(Agent):
    card = types.AgentCard(name="asker", capabilities=types.AgentCapabilities(push_notifications=True))

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        if context.task is None:
            await updater.require_input("more?")
        else:
            await updater.complete("thanks")


async def test_a_task_keeps_all_150_push_configs_after_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    from a2a_grpc.push import PushNotifier
    from a2a_grpc.security.limits import Limits
    from a2a_grpc.security.webhooks import WebhookPolicy

    loopback = WebhookPolicy(allow=("127.0.0.0/8",))  # the receiver's address; refused by default
    db = str(tmp_path / "tasks.db")
    store = SqliteTaskStore(db)
    first_notifier = PushNotifier(policy=loopback)
    limits = Limits(max_push_configs_per_task=150)  # the default allows 16
    first = A2AServer(Asker(), store, ServerSettings(port=0, limits=limits), notifier=first_notifier)
    await first.start()
    try:
        async with A2AClient(first.address, timeout=WAIT) as client:
            task = (await client.send_message(A2AClient.text_request("hi"))).task
            for i in range(150):
                hook = types.TaskPushNotificationConfig(
                    task_id=task.id, id=f"h{i:03d}", url=receiver.url(f"h{i}")
                )
                await client.create_task_push_notification_config(hook)
    finally:
        await first.stop(0)
        await first_notifier.aclose()
        await store.close()
    store = SqliteTaskStore(db)
    notifier = PushNotifier(initial_backoff=0.01, max_backoff=0.05, policy=loopback)
    second = A2AServer(Asker(), store, ServerSettings(port=0), notifier=notifier)
    await second.start()
    try:
        async with A2AClient(second.address, timeout=WAIT) as client:
            await client.send_message(A2AClient.text_request("yes", task_id=task.id))
        await until(lambda: len({r.path for r in receiver.requests}) == 150, WAIT)
    finally:
        await second.stop(0)
        await notifier.aclose()
        await store.close()
    assert {r.path for r in receiver.requests} == {f"/h{i}" for i in range(150)}


class MeasuringSink:
    """The SQLite store's event sink, measuring what a crash could lose at each moment: the events
    handed to the store and not yet committed (their number, and the age of the oldest)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.max_unstored = 0
        self.max_age = 0.0
        self.events = 0
        self._sent: dict[int, float] = {}

    def submit(self, log: object, seq: int, event: types.StreamResponse) -> None:
        now = time.monotonic()
        visible = log.visible  # type: ignore[attr-defined]
        for stored in [s for s in self._sent if s <= visible]:
            del self._sent[stored]
        self._sent[seq] = now
        self.events += 1
        self.max_unstored = max(self.max_unstored, seq - visible)
        self.max_age = max(self.max_age, now - min(self._sent.values()))
        self.inner.submit(log, seq, event)  # type: ignore[attr-defined]

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        return await self.inner.stored_after(tenant, task_id, seq)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "send"])
async def test_what_a_crash_can_lose_is_bounded_and_measured(tmp_path: Path, streaming: bool) -> None:
    """At every event of a 20,000-event task on SQLite: how many events were handed to the store
    and not yet committed (what a crash at that moment would lose; no client has seen them). The
    caller's stream can hold at most its window unread, and it reads only committed events, so a
    streaming task has at most ``stream_window`` uncommitted; without a stream, a snapshot save
    every half retained window waits for its commit, which bounds it by the retained window."""
    from a2a_grpc.reference_agent import ReferenceAgent

    store = SqliteTaskStore(str(tmp_path / "tasks.db"))
    sink = MeasuringSink(store.event_sink)
    store.event_sink = sink  # type: ignore[assignment]
    settings = ServerSettings()
    try:
        async with (
            A2AServer(ReferenceAgent(), store, settings) as server,
            A2AClient(server.address, timeout=60) as client,
        ):
            request = A2AClient.text_request("stream 20000")
            if streaming:
                async for _ in client.send_streaming_message(request):
                    pass
            else:
                response = await client.send_message(request)
                assert response.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await store.close()
    assert sink.events >= 20000
    bound = settings.stream_window if streaming else settings.retained_events
    print(  # the figures (pytest -s shows them)
        f"\n{'stream' if streaming else 'send'}: at most {sink.max_unstored} events uncommitted "
        f"(bound {bound}), the oldest {sink.max_age * 1000:.1f} ms old"
    )
    assert 0 < sink.max_unstored <= bound


class Holding(Agent):
    """Holds something to release at stop; records what it saw then (and can fail doing it)."""

    def __init__(self, fail: bool = False) -> None:
        from a2a_grpc.reference_agent import reference_card

        self.card = reference_card()
        self.fail = fail
        self.closed: list[str] = []
        self.running = 0

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.running += 1
        try:
            await updater.working()
            await asyncio.sleep(WAIT * 10)
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        self.closed.append(f"running {self.running}")
        if self.fail:
            raise RuntimeError("could not release it")


@pytest.mark.parametrize("fail", [False, True], ids=["releases", "fails-to-release"])
async def test_a_stopping_server_calls_the_agents_aclose_once_after_its_tasks_end(
    fail: bool, caplog: pytest.LogCaptureFixture
) -> None:
    from a2a_grpc.testing import serving as serve_agent

    agent = Holding(fail=fail)
    async with serve_agent(agent) as served:
        reply = await served.client.send_message(A2AClient.text_request("hold", return_immediately=True))
        await until(lambda: agent.running == 1, WAIT)
    assert agent.closed == ["running 0"]  # once, with no task running any more
    assert reply.task.id
    if fail:  # the server stopped anyway, and said why
        assert "the agent's aclose failed" in caplog.text
