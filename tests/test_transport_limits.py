"""Connections and streams: the bridge's HTTP header read timeout and connection limit, gRPC's
concurrent streams per connection and connection age (docs/limits.md, "Connections and streams").

The issue measured 1,000 half-sent HTTP requests held open forever; here 200 of them are closed
within a short header timeout while a normal request is served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import types as types_
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge import httpserver
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import ServerSettings
from tests.conftest import serve, shutdown
from tests.webhook import until

pytestmark = pytest.mark.asyncio

WAIT = 10.0
"""The bound of every wait of these tests."""

HALF_HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI app: ``/slow`` answers after 1 s, ``/hang`` never, anything else at once."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    if scope["path"] == "/hang":
        await asyncio.Event().wait()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def http_server(**options: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(_app, "127.0.0.1", 0, grace=0.5, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing the connection (b"" for nothing)."""
    received = b""
    while chunk := await reader.read(65536):
        received += chunk
    return received


async def test_half_sent_requests_are_closed_within_the_header_timeout_and_others_are_served() -> None:
    timeout = 0.5
    async with http_server(header_timeout=timeout) as server:
        connections = []
        for _ in range(200):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HALF_HEAD)
            connections.append((reader, writer))
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            served = await client.get("/")  # meanwhile: a whole request is answered at once
        assert (served.status_code, served.text) == (200, "ok")
        async with asyncio.timeout(WAIT):
            sent = await asyncio.gather(*(_closed_by_server(reader) for reader, _ in connections))
        took = time.monotonic() - started
        for _, writer in connections:
            writer.close()
        print(
            f"\n200 half-sent requests closed {took:.2f} s after they were sent (header timeout {timeout}s)"
        )
        assert sent == [b""] * 200  # closed, not answered: nothing of theirs reached the app
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            assert (await client.get("/")).status_code == 200


def use_protocol(protocol: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if protocol == "h11":  # HttpServer takes httptools when it is installed: hide it
        hidden = types_.SimpleNamespace(util=types_.SimpleNamespace(find_spec=lambda name: None))
        monkeypatch.setattr(httpserver, "importlib", hidden)


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
async def test_an_idle_connection_and_a_half_sent_second_request_are_closed(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_protocol(protocol, monkeypatch)
    async with http_server(header_timeout=0.3) as server:
        assert server._server is not None
        assert server._server.config.http_protocol_class.__name__.endswith(
            {"httptools": "HttpToolsProtocol", "h11": "H11Protocol"}[protocol]
        )
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # a whole request, answered ...
        async with asyncio.timeout(WAIT):
            answer = await reader.readuntil(b"ok")
            assert answer.startswith(b"HTTP/1.1 200")
            writer.write(b"GET / HTTP/1.1\r\nHo")  # ... then half of the next one on the same connection
            assert await _closed_by_server(reader) == b""
            assert await _closed_by_server(idle_reader) == b""
        writer.close()
        idle_writer.close()


@pytest.mark.parametrize("protocol", ["httptools", "h11"])
async def test_a_whole_head_stops_the_timer_however_long_the_answer_takes(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_protocol(protocol, monkeypatch)
    async with (
        http_server(header_timeout=0.3) as server,
        httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client,
    ):
        answer = await client.get("/slow")  # answered after 1 s, past the header timeout
        assert (answer.status_code, answer.text) == (200, "ok")
        again = await client.get("/")  # the same kept-alive connection serves the next one
        assert again.status_code == 200


async def _open_idle(port: int, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writers.append(writer)
    return writers


def _open_count(server: HttpServer) -> int:
    """Connections the server has accepted (it accepts on the loop, after the client connected)."""
    assert server._server is not None
    return len(server._server.server_state.connections)


async def test_a_request_past_the_connection_limit_is_refused_with_503() -> None:
    async with http_server(max_connections=3) as server:
        idle = await _open_idle(server.port, 2)
        await until(lambda: _open_count(server) == 2, WAIT)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            assert (await client.get("/")).status_code == 200  # the third connection: served
        idle += await _open_idle(server.port, 1)
        await until(lambda: _open_count(server) == 3, WAIT)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            refused = await client.get("/")  # a fourth: refused cleanly
            assert refused.status_code == 503
        for writer in idle:
            writer.close()
        await until(lambda: _open_count(server) == 0, WAIT)
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
            assert (await client.get("/")).status_code == 200  # served again once they left


async def test_a_stop_gives_requests_in_flight_the_bridges_shutdown_grace_seconds() -> None:
    from a2a_grpc.cli.serving import bind_http

    class App:
        settings = BridgeSettings(shutdown_grace_seconds=1.0)
        __call__ = staticmethod(_app)

    server = bind_http(App(), "127.0.0.1", 0, reuse_port=False)  # as the bridge command binds
    await server.start()
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT) as client:
        hanging = asyncio.ensure_future(client.get("/hang"))
        await until(lambda: _open_count(server) == 1, WAIT)
        # Bounded below the default grace (5 s): only the setting can have ended the stop in time.
        await asyncio.wait_for(server.stop(), 4.0)
        # Cut after the grace (uvicorn answers 500 or drops it), not left hanging.
        (ended,) = await asyncio.wait_for(asyncio.gather(hanging, return_exceptions=True), WAIT)
        assert isinstance(ended, httpx.HTTPError) or ended.status_code == 500


async def test_http_bounds_are_validated_settings() -> None:
    assert (BridgeSettings().header_timeout_seconds, BridgeSettings().max_connections) == (10.0, 1024)
    for bad in (
        {"header_timeout_seconds": 0},
        {"max_connections": 0},
        {"max_connections": True},
        {"shutdown_grace_seconds": 0},
        {"shutdown_grace_seconds": float("inf")},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BridgeSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="header_timeout"):
        HttpServer(_app, header_timeout=0)


# -- gRPC ---------------------------------------------------------------------------------------


async def test_grpc_concurrent_streams_per_connection_are_bounded() -> None:
    served = await serve(ReferenceAgent(), max_concurrent_streams=2)
    # Its own connection: grpc shares one connection among a process's channels to one address.
    own = [("grpc.use_local_subchannel_pool", 1)]
    other_channel = grpc.aio.insecure_channel(served.server.address, options=own)
    other = A2AClient(served.server.address, timeout=WAIT, channel=other_channel)
    streams = [
        served.client.send_streaming_message(A2AClient.text_request("slow 5"), timeout=WAIT) for _ in range(2)
    ]
    try:
        async with asyncio.timeout(WAIT):
            for stream in streams:
                await anext(stream)  # both streams hold their HTTP/2 stream
        # A third call on the same connection waits for a free stream: past its deadline here.
        with pytest.raises(errors.A2AError) as caught:
            await served.client.send_message(A2AClient.text_request("echo third"), timeout=0.5)
        assert caught.value.grpc_code == grpc.StatusCode.DEADLINE_EXCEEDED
        # Another connection is not held back.
        answer = await other.send_message(A2AClient.text_request("echo other"))
        assert answer.task.status.state == types.TASK_STATE_COMPLETED
        await streams[0].aclose()  # one stream ends: the connection takes a call again
        answer = await served.client.send_message(A2AClient.text_request("echo again"))
        assert answer.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        for stream in streams:
            await stream.aclose()
        await other_channel.close()
        await shutdown(served)


async def test_grpc_connection_age_reconnects_clients_between_calls() -> None:
    served = await serve(ReferenceAgent(), max_connection_age_ms=200, max_connection_age_grace_ms=100)
    try:
        options = dict(served.server.settings.grpc_options())
        aged = (options["grpc.max_connection_age_ms"], options["grpc.max_connection_age_grace_ms"])
        assert aged == (200, 100)
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.0
        calls = 0
        while loop.time() < end:  # many connection lives: every call is still answered
            answer = await served.client.send_message(A2AClient.text_request(f"echo {calls}"))
            assert answer.task.status.state == types.TASK_STATE_COMPLETED
            calls += 1
            await asyncio.sleep(0.05)
    finally:
        await shutdown(served)


async def test_grpc_transport_bounds_are_validated_settings() -> None:
    options = dict(ServerSettings().grpc_options())
    assert options["grpc.max_concurrent_streams"] == 1024
    assert "grpc.max_connection_age_ms" not in options  # no age by default: sessions live long
    for bad in (
        {"max_concurrent_streams": 0},
        {"max_connection_age_ms": 0},
        {"max_connection_age_ms": 10, "max_connection_age_grace_ms": -1},
        {"max_connection_age_grace_ms": 10},  # a grace without an age
    ):
        with pytest.raises(ValueError, match="max_con"):
            ServerSettings(**bad)  # type: ignore[arg-type]
