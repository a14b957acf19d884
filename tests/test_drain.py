"""Graceful drain (docs/shutdown.md): SIGTERM to real ``a2a-grpc serve`` processes.

Each server is a process on 127.0.0.1 with an SQLite store in ``tmp_path``, read through its
start-up lines with a bounded wait and stopped by PID. What is shown: health turns NOT_SERVING
before any call is refused; every new call is refused with a typed error and a retry hint on each
binding (gRPC UNAVAILABLE + RetryInfo, HTTP 503 + Retry-After, a session's handshake); streams
and session calls in flight end with their final event (completed within the grace, failed by the
task core's stop after it), never a hang or a bare transport error; a session is told to go away
and its next call goes to a new server; and the store is truthful after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc

from a2a_grpc import errors, types
from a2a_grpc._operations import task_id_of
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error, to_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error, http_status_for, to_rest_error
from a2a_grpc.cli.common import until_signal
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.session.client import Session
from a2a_grpc.session.frames import Goodbye
from a2a_grpc.session.pool import PeerPool
from a2a_grpc.status import STATUS_DETAILS_KEY, from_rpc_error, from_status, to_rpc_status
from a2a_grpc.tasks import SqliteTaskStore

CLI = [sys.executable, "-m", "a2a_grpc.cli"]
START = 30.0
"""Seconds a server process may take to print its start-up lines."""
EXIT = 30.0
"""Seconds a draining server may take to exit (its grace is 5 s by default)."""
WAIT = 15.0
"""Seconds any one wait of a client may take."""
SERVICE = "lf.a2a.v1.A2AService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SETTLED = (types.TASK_STATE_COMPLETED, types.TASK_STATE_FAILED, types.TASK_STATE_CANCELED)
ASYNC = pytest.mark.asyncio
PROBING = ClientSettings(
    resilience=ResiliencePolicy(max_attempts=1, breaker_failures=1000, breaker_failure_ratio=1.0)
)
"""A client that sees each refusal as it is: no retries, no breaker opening on the refusals (a
client's breaker does open on a draining peer, as on any peer that answers UNAVAILABLE)."""


class Served:
    """A server process, the lines it printed (read by a thread), stopped by PID."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put("")

    def until_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{text!r} not printed within {timeout:g} s: {self.lines}") from None
            if not line and self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}): {self.lines}")
            self.lines.append(line)

    def find(self, pattern: str) -> str:
        for line in self.lines:
            if found := re.search(pattern, line):
                return found.group(1)
        raise AssertionError(f"{pattern!r} not in {self.lines}")

    @property
    def grpc(self) -> str:
        return self.find(r"over gRPC at (\S+)")

    @property
    def http(self) -> str:
        return self.find(r"HTTP\+JSON at (http://\S+)")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        os.kill(self.proc.pid, sig)

    async def exited(self, timeout: float = EXIT) -> int:
        """Its exit status, waited for without blocking the event loop (bounded)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running {timeout:g} s later: {self.lines}"
            await asyncio.sleep(0.05)
        self._reader.join(timeout=5)
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def serving(store: Path, *args: str) -> Iterator[Served]:
    """``a2a-grpc serve --store sqlite:///STORE ARGS`` until its "try" line; killed by PID if it
    is still running at the end."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--store", f"sqlite:///{store}", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(proc)
    try:
        served.until_line("a2a-grpc: try", START)
        yield served
    finally:
        served.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


async def rest_of(events: AsyncIterator[types.StreamResponse]) -> list[types.StreamResponse]:
    """The events left in a stream, to its end (bounded: a hang fails)."""
    async with asyncio.timeout(EXIT):
        return [event async for event in events]


def final_state(events: list[types.StreamResponse]) -> int:
    last = events[-1]
    kind = last.WhichOneof("payload")
    assert kind in ("status_update", "task"), last
    return last.status_update.status.state if kind == "status_update" else last.task.status.state


def retry_info(err: grpc.aio.AioRpcError) -> int:
    """The RetryInfo delay (seconds) in a failed call's rich status."""
    details = dict(err.trailing_metadata() or ())[STATUS_DETAILS_KEY]
    assert isinstance(details, bytes)
    for detail in status_pb2.Status.FromString(details).details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return int(info.retry_delay.seconds)
    raise AssertionError("no RetryInfo")


async def first_refusal(
    client: A2AClient, health: health_pb2_grpc.HealthStub, task_id: str
) -> errors.ServerDrainingError:
    """Call until a call is refused; health, asked right after every call, must already have said
    NOT_SERVING when one is (it is set before the gate closes)."""
    for _ in range(int(WAIT / 0.02)):
        try:
            await client.get_task(task_id)
            refused = None
        except errors.ServerDrainingError as exc:
            refused = exc
        said = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=WAIT)
        if refused is not None:
            assert said.status == NOT_SERVING
            return refused
        await asyncio.sleep(0.02)
    raise AssertionError("no call was refused while the server drained")


@ASYNC
@pytest.mark.timeout(150)
async def test_sigterm_during_streams_ends_them_truthfully_and_refuses_new_calls_on_every_binding(
    tmp_path: Path,
) -> None:
    store = tmp_path / "tasks.db"
    with serving(store, "--grpc-port", "0", "--http-port", "0") as server:
        address, url = server.grpc, server.http
        async with (
            A2AClient(address, settings=PROBING, timeout=WAIT) as client,
            grpc.aio.insecure_channel(address) as channel,
            httpx.AsyncClient(base_url=url, headers={"A2A-Version": "1.0"}, timeout=WAIT) as http,
        ):
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await asyncio.wait_for(watch.read(), WAIT)).status == SERVING
            # One task that ends within the grace (5 s), one that outlives it.
            quick = client.send_streaming_message(A2AClient.text_request("slow 1"), timeout=EXIT)
            long = client.send_streaming_message(A2AClient.text_request("slow 120"), timeout=EXIT)
            quick_id = task_id_of(await asyncio.wait_for(anext(quick), WAIT))
            long_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))
            assert (await http.get("/healthz")).status_code == 200

            server.signal(signal.SIGTERM)

            # 1. Health first: the watch sees NOT_SERVING, and no call is refused before it.
            assert (await asyncio.wait_for(watch.read(), WAIT)).status == NOT_SERVING
            refused = await first_refusal(client, health, quick_id)
            assert (refused.retry_after, refused.grpc_code) == (1, grpc.StatusCode.UNAVAILABLE)
            # 2. Every new call, typed, with the hint: gRPC (RetryInfo on the wire) ...
            get_task = channel.unary_unary(
                f"/{SERVICE}/GetTask",
                request_serializer=types.GetTaskRequest.SerializeToString,
                response_deserializer=types.Task.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await get_task(types.GetTaskRequest(id=quick_id), metadata=(("a2a-version", "1.0"),))
            assert raw.value.code() == grpc.StatusCode.UNAVAILABLE
            assert retry_info(raw.value) == 1
            assert isinstance(from_rpc_error(raw.value), errors.ServerDrainingError)
            with pytest.raises(errors.ServerDrainingError):
                await client.send_message(A2AClient.text_request("echo too late"))
            with pytest.raises(errors.ServerDrainingError):
                await anext(client.send_streaming_message(A2AClient.text_request("stream 3")))
            # ... JSON-RPC and HTTP+JSON: 503 with Retry-After, the body the binding's typed error.
            get = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": long_id}}
            rpc = await http.post("/", json=get)
            assert (rpc.status_code, rpc.headers.get("retry-after")) == (503, "1")
            assert isinstance(from_jsonrpc_error(rpc.json()), errors.ServerDrainingError)
            rest = await http.get(f"/tasks/{long_id}")
            assert (rest.status_code, rest.headers.get("retry-after")) == (503, "1")
            assert isinstance(from_rest_error(rest.status_code, rest.json()), errors.ServerDrainingError)
            late = {"messageId": "m-late", "role": "ROLE_USER", "parts": [{"text": "stream 2"}]}
            streamed = await http.post("/message:stream", json={"message": late})
            assert (streamed.status_code, streamed.headers.get("retry-after")) == (503, "1")
            healthz = await http.get("/healthz")
            assert (healthz.status_code, healthz.json()) == (503, {"status": "NOT_SERVING"})
            # The card still describes the agent (it is no call to the agent).
            assert (await http.get("/.well-known/agent-card.json")).status_code == 200

            # 4. The streams in flight: a clean end each, with their final event.
            quick_rest, long_rest = await asyncio.gather(rest_of(quick), rest_of(long))
            assert final_state(quick_rest) == types.TASK_STATE_COMPLETED
            assert final_state(long_rest) == types.TASK_STATE_FAILED
            watch.cancel()
        assert await server.exited() == 0
        assert "a2a-grpc: stopped" in server.lines

    # The store after a restart: what finished is completed, what was cut is failed, saying why;
    # nothing is left looking alive.
    with serving(store, "--grpc-port", "0") as again:
        async with A2AClient(again.grpc, timeout=WAIT) as client:
            assert (await client.get_task(quick_id)).status.state == types.TASK_STATE_COMPLETED
            cut = await client.get_task(long_id)
            assert cut.status.state == types.TASK_STATE_FAILED
            assert "the server stopped" in cut.status.message.parts[0].text
            listed = await client.list_tasks()
            assert {t.id for t in listed.tasks} == {quick_id, long_id}
            assert all(t.status.state in SETTLED for t in listed.tasks)
        again.signal(signal.SIGTERM)
        assert await again.exited() == 0


@contextlib.asynccontextmanager
async def open_session(address: str) -> AsyncIterator[Session]:
    async with A2AClient(address, timeout=WAIT) as client, client.session() as session:
        yield session


@ASYNC
@pytest.mark.timeout(150)
async def test_sigterm_during_a_session_tells_it_to_go_away_and_its_next_call_reaches_a_new_server(
    tmp_path: Path,
) -> None:
    store, port = tmp_path / "tasks.db", free_port()
    address = f"127.0.0.1:{port}"
    pool: PeerPool[str, Session] = PeerPool(open_session)
    try:
        with serving(store, "--grpc-port", str(port)) as first:
            async with pool.lease(address) as session:
                old_id = session.session_id
                quick = session.send_streaming_message(A2AClient.text_request("slow 1"))
                long = session.send_streaming_message(A2AClient.text_request("slow 120"))
                quick_id = task_id_of(await asyncio.wait_for(anext(quick), WAIT))
                long_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))

                first.signal(signal.SIGTERM)

                # The Goodbye that says "go away": the session takes no new call (typed, at once)...
                await until(lambda: session.going_away)
                assert not session.alive
                with pytest.raises(errors.ServerDrainingError) as refused:
                    await session.get_task(quick_id)
                assert refused.value.retry_after == 1
                # ... the next lease opens a new session, which this server refuses while it drains.
                with pytest.raises(errors.ServerDrainingError) as handshake:
                    async with pool.lease(address):
                        pass
                assert handshake.value.retry_after == 1
                # The calls in flight on the old session run to their end: their final events.
                quick_rest, long_rest = await asyncio.gather(rest_of(quick), rest_of(long))
                assert final_state(quick_rest) == types.TASK_STATE_COMPLETED
                assert final_state(long_rest) == types.TASK_STATE_FAILED
            assert await first.exited() == 0

        # Another server at the same address (a replica behind the balancer, or this one
        # restarted), on the same store: the pool's next lease reaches it.
        with serving(store, "--grpc-port", str(port)) as second:
            async with pool.lease(address) as fresh:
                assert fresh.alive
                assert fresh.session_id != old_id
                assert (await fresh.get_task(quick_id)).status.state == types.TASK_STATE_COMPLETED
                cut = await fresh.get_task(long_id)
                assert cut.status.state == types.TASK_STATE_FAILED
            second.signal(signal.SIGTERM)
            assert await second.exited() == 0
    finally:
        await pool.aclose()


@ASYNC
@pytest.mark.timeout(150)
async def test_a_second_sigterm_stops_at_once_and_still_truthfully(tmp_path: Path) -> None:
    store = tmp_path / "tasks.db"
    with serving(store, "--grpc-port", "0") as server:
        async with A2AClient(server.grpc, timeout=WAIT) as client:
            long = client.send_streaming_message(A2AClient.text_request("slow 120"), timeout=EXIT)
            long_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))
            server.signal(signal.SIGTERM)
            server.until_line("a2a-grpc: stopping", WAIT)
            server.signal(signal.SIGTERM)
            assert final_state(await rest_of(long)) == types.TASK_STATE_FAILED
        assert await server.exited() == 0
        assert any("stopping now" in line for line in server.lines)
    tasks = SqliteTaskStore(str(store))
    try:
        stored = await tasks.get("", long_id)
        assert stored is not None
        assert stored.status.state == types.TASK_STATE_FAILED
    finally:
        await tasks.close()


# --- in one process -----------------------------------------------------------------------------


@ASYNC
async def test_hurry_cuts_a_long_grace_short_and_the_stop_stays_truthful() -> None:
    from a2a_grpc.tasks import InMemoryTaskStore

    store = InMemoryTaskStore()
    server = A2AServer(ReferenceAgent(), store, ServerSettings(grace_seconds=3600.0))
    await server.start()
    try:
        async with A2AClient(server.address, timeout=WAIT) as client:
            long = client.send_streaming_message(A2AClient.text_request("slow 120"))
            task_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))
            draining = asyncio.ensure_future(server.drain())
            await until(lambda: server.drain_gate.closed)
            server.hurry()
            # Bounded far below the grace: only hurry() can have ended the drain in time.
            await asyncio.wait_for(draining, WAIT)
            await asyncio.wait_for(server.drain(), WAIT)  # again: the same drain, over already
            assert final_state(await rest_of(long)) == types.TASK_STATE_FAILED
    finally:
        server.hurry()
        await asyncio.wait_for(server.stop(0), WAIT)
    stored = await store.get("", task_id)
    assert stored is not None
    assert stored.status.state == types.TASK_STATE_FAILED


@ASYNC
async def test_the_drain_gives_executions_drain_cut_seconds_and_final_events_drain_send_seconds() -> None:
    from a2a_grpc.tasks import InMemoryTaskStore

    store = InMemoryTaskStore()
    settings = ServerSettings(grace_seconds=3600.0, drain_cut_seconds=0.25, drain_send_seconds=0.75)
    server = A2AServer(ReferenceAgent(), store, settings)
    await server.start()
    given: dict[str, float] = {}
    try:
        assert server.handler is not None
        assert server._server is not None
        handler_close, grpc_stop = server.handler.aclose, server._server.stop

        async def close_handler(grace: float = 5.0) -> None:
            given.setdefault("cut", grace)
            await handler_close(grace)

        async def stop_grpc(grace: float | None) -> None:
            given.setdefault("send", grace if grace is not None else -1.0)
            await grpc_stop(grace)

        server.handler.aclose = close_handler  # type: ignore[method-assign]
        server._server.stop = stop_grpc  # type: ignore[method-assign]
        async with A2AClient(server.address, timeout=WAIT) as client:
            long = client.send_streaming_message(A2AClient.text_request("slow 120"))
            task_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))
            draining = asyncio.ensure_future(server.drain())
            await until(lambda: server.drain_gate.closed)
            server.hurry()
            await asyncio.wait_for(draining, WAIT)
            assert final_state(await rest_of(long)) == types.TASK_STATE_FAILED
    finally:
        server.hurry()
        await asyncio.wait_for(server.stop(0), WAIT)
    assert given == {"cut": 0.25, "send": 0.75}
    stored = await store.get("", task_id)
    assert stored is not None
    assert stored.status.state == types.TASK_STATE_FAILED


@ASYNC
async def test_a_bridge_in_front_of_a_draining_server_answers_503_with_its_retry_hint() -> None:
    from a2a_grpc.bridge.upstream import GrpcUpstream
    from a2a_grpc.tasks import InMemoryTaskStore
    from tests.bridge_http_peers import http_bridge

    server = A2AServer(
        ReferenceAgent(),
        InMemoryTaskStore(),
        ServerSettings(grace_seconds=3600.0, drain_retry_after_seconds=7),
    )
    await server.start()
    upstream = GrpcUpstream(server.address)
    try:
        async with (
            http_bridge(upstream) as bridge,
            A2AClient(server.address, timeout=WAIT) as client,
        ):
            long = client.send_streaming_message(A2AClient.text_request("slow 120"))
            task_id = task_id_of(await asyncio.wait_for(anext(long), WAIT))
            draining = asyncio.ensure_future(server.drain())
            await until(lambda: server.drain_gate.closed)
            rest = await bridge.client.get(f"/tasks/{task_id}")
            assert (rest.status_code, rest.headers.get("retry-after")) == (503, "7")
            refused = from_rest_error(rest.status_code, rest.json())
            assert isinstance(refused, errors.ServerDrainingError)
            assert refused.retry_after == 7
            get = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task_id}}
            rpc = await bridge.client.post("/", json=get)
            assert (rpc.status_code, rpc.headers.get("retry-after")) == (503, "7")
            assert rpc.json()["error"]["code"] == -32088
            server.hurry()
            await asyncio.wait_for(draining, WAIT)
            assert final_state(await rest_of(long)) == types.TASK_STATE_FAILED
    finally:
        await upstream.aclose()
        server.hurry()  # a drain already under way ends at once (its grace is an hour)
        await asyncio.wait_for(server.stop(0), WAIT)


@ASYNC
async def test_a_draining_server_session_on_the_wire_go_away_refusals_resume_then_the_end() -> None:
    from a2a_grpc.session.frames import Call, ClientFrame, Hello, status_in
    from a2a_grpc.tasks import InMemoryTaskStore
    from tests.test_session_resume import opened, resume_hello

    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(grace_seconds=3600.0))
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream, welcome, reader = await opened(channel)
            slow = ClientFrame(
                call=Call(call_id=1, send_streaming_message=A2AClient.text_request("slow 120"))
            )
            await stream.write(slow)
            while (await reader.next()).WhichOneof("frame") != "event":
                pass
            draining = asyncio.ensure_future(server.drain())
            # The notice: going away, with the retry delay; the call runs on.
            while (frame := await reader.next()).WhichOneof("frame") != "goodbye":
                assert frame.WhichOneof("frame") in ("event", "heartbeat"), frame
            assert frame.goodbye.going_away
            assert frame.goodbye.retry_delay.seconds == 1
            # A new call on the session: refused, typed, with the hint.
            await stream.write(ClientFrame(call=Call(call_id=2, get_task=types.GetTaskRequest(id="x"))))
            while not (
                (frame := await reader.next()).WhichOneof("frame") == "end" and frame.end.call_id == 2
            ):
                pass
            refused = from_status(status_in(frame.end))
            assert isinstance(refused, errors.ServerDrainingError)
            assert refused.retry_after == 1
            # A new session: refused at its handshake.
            with pytest.raises(grpc.aio.AioRpcError) as handshake:
                await opened(channel, Hello(protocol_versions=["1.0"]))
            assert retry_info(handshake.value) == 1
            assert isinstance(from_rpc_error(handshake.value), errors.ServerDrainingError)
            # The connection drops: the session may still be resumed, and is told again.
            stream.cancel()
            assert server.sessions is not None
            held = server.sessions.sessions[welcome.session_id]
            await until(lambda: not held.attached)
            again, resumed, reader2 = await opened(channel, resume_hello(welcome, reader.received))
            assert resumed.resumed
            while (frame := await reader2.next()).WhichOneof("frame") != "goodbye":
                pass
            assert frame.goodbye.going_away
            # The grace ends (hurried): the call gets its task's final state, then the plain Goodbye.
            server.hurry()
            states = []
            while (frame := await reader2.next()) is not grpc.aio.EOF:
                kind = frame.WhichOneof("frame")
                if kind == "event" and frame.event.stream_response.HasField("status_update"):
                    states.append(frame.event.stream_response.status_update.status.state)
                if kind == "goodbye":
                    assert not frame.goodbye.going_away
            assert states[-1] == types.TASK_STATE_FAILED
            await asyncio.wait_for(draining, WAIT)
            again.cancel()
    finally:
        server.hurry()
        await asyncio.wait_for(server.stop(0), WAIT)


@ASYNC
async def test_until_signal_returns_on_the_first_signal_and_hurries_on_the_next() -> None:
    hurried: list[bool] = []
    waiting = asyncio.ensure_future(until_signal(again=lambda: hurried.append(True)))
    await asyncio.sleep(0)  # the handlers are in place once it runs
    loop = asyncio.get_running_loop()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(waiting, WAIT)
        assert hurried == []
        os.kill(os.getpid(), signal.SIGINT)
        await until(lambda: hurried == [True])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # back to Python's own handlers
            loop.remove_signal_handler(sig)


def test_server_draining_error_carries_its_retry_hint_on_every_wire() -> None:
    sent = errors.ServerDrainingError("draining", retry_after=2.2)
    assert isinstance(sent, errors.UnavailableError)  # whoever retries UNAVAILABLE retries this
    assert sent.retry_after == 3
    status = to_rpc_status(sent)
    assert status.code == grpc.StatusCode.UNAVAILABLE
    rich = status_pb2.Status.FromString(dict(status.trailing_metadata)[STATUS_DETAILS_KEY])
    info = error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in rich.details)
    assert info.retry_delay.seconds == 3
    obj = to_jsonrpc_error(sent)
    assert obj["code"] == -32088
    http, body = to_rest_error(sent)
    assert http == http_status_for(sent) == 503
    for got in (from_jsonrpc_error(obj), from_rest_error(http, body)):
        assert isinstance(got, errors.ServerDrainingError)
        assert (got.retry_after, got.message) == (3, "draining")
    # A hint that is not a whole number of seconds (a peer's) is no hint, never a crash.
    odd = errors.ServerDrainingError("draining", metadata={errors.RETRY_AFTER_KEY: "soon"})
    assert odd.retry_after is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("drain_retry_after_seconds", 0),
        ("drain_retry_after_seconds", -1.0),
        ("drain_retry_after_seconds", float("nan")),
        ("drain_retry_after_seconds", 10**9),
        ("grace_seconds", -1.0),
        ("grace_seconds", float("inf")),
        ("grace_seconds", float("nan")),
        ("drain_cut_seconds", 0),
        ("drain_cut_seconds", float("inf")),
        ("drain_send_seconds", -1.0),
        ("drain_send_seconds", float("nan")),
    ],
)
def test_drain_settings_refuse_bad_values_naming_the_setting(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ServerSettings(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "nanos", "hint"), [(0, 0, None), (-5, 0, 1), (10**12, 0, 10**12), (0, 1, 1)]
)
def test_a_session_reads_any_going_away_notice_as_a_typed_refusal(
    seconds: int, nanos: int, hint: int | None
) -> None:
    # Hostile or odd retry delays from a server: a hint of at least 1 s, or none; never a crash.
    session = Session.__new__(Session)
    session.welcome = None
    notice = Goodbye(reason="going", going_away=True)
    notice.retry_delay.seconds, notice.retry_delay.nanos = seconds, nanos
    session._going_away = notice
    refusal = session._draining()
    assert isinstance(refusal, errors.ServerDrainingError)
    assert refusal.retry_after == hint


class Peer:
    """What a pool holds: alive until its server says it goes away; knows when it was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.going_away = False
        self.closed = asyncio.Event()

    @property
    def alive(self) -> bool:
        return not self.going_away


def peers_pool(opened: list[Peer]) -> PeerPool[str, Peer]:
    @contextlib.asynccontextmanager
    async def open_peer(key: str) -> AsyncIterator[Peer]:
        peer = Peer(f"{key}#{len(opened)}")
        opened.append(peer)
        try:
            yield peer
        finally:
            peer.closed.set()

    return PeerPool(open_peer)


@ASYNC
async def test_a_pooled_peer_going_away_is_replaced_and_closed_only_once_its_leases_end() -> None:
    opened: list[Peer] = []
    pool = peers_pool(opened)
    try:
        async with pool.lease("replica") as old:
            old.going_away = True  # its server drains, while this lease's call runs
            async with pool.lease("replica") as new:
                assert new is not old  # the next lease gets a new connection
            await asyncio.sleep(0.05)  # the pool had its chance to close the old one under us
            assert not old.closed.is_set()
        await asyncio.wait_for(old.closed.wait(), WAIT)  # closed once its lease ended
        assert not opened[1].closed.is_set()
    finally:
        await pool.aclose()
    assert opened[1].closed.is_set()


@ASYNC
async def test_closing_the_pool_does_not_wait_for_the_leases_of_a_peer_going_away() -> None:
    opened: list[Peer] = []
    pool = peers_pool(opened)
    async with pool.lease("replica") as old:
        old.going_away = True
        async with pool.lease("replica"):
            pass
        await asyncio.wait_for(pool.aclose(), WAIT)  # within CLOSE_SECONDS, not GOING_AWAY_SECONDS
        assert old.closed.is_set()
        assert opened[1].closed.is_set()
