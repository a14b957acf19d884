"""Real HTTP peers for the JSON bridge tests: the official SDK's JSON-RPC and REST apps, on uvicorn.

* :func:`serve_asgi` runs any ASGI app on 127.0.0.1 (port 0, or a given port to come back on).
* :func:`sdk_json_peer` serves a2a-sdk's ``DefaultRequestHandler`` (with :class:`SdkAgentExecutor`)
  through the SDK's own JSON-RPC and/or REST routes, with a card whose ``supportedInterfaces``
  point at them.
* :class:`Recorder` wraps an app and records what reached it: headers, bodies, which requests are
  still being handled, and which ones the client abandoned before the response was complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types import a2a_pb2 as sdk
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.sdk_peers import sdk_card, sdk_handler
from tests.webhook import until

__all__ = ["JSONRPC_PATH", "JsonPeer", "Recorder", "Seen", "bind", "sdk_json_peer", "serve_asgi"]

JSONRPC_PATH = "/jsonrpc"
GRPC_DECOY = "127.0.0.1:1"
"""The URL of a gRPC interface listed first on every card: a binding the reverse bridge must skip."""
START_LIMIT = 5.0
STOP_LIMIT = 5.0
STOP_GRACE = 1
"""Seconds uvicorn lets requests still running finish on stop; then it cancels them."""


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    aborted: bool = False
    """The client went away before the response was complete."""
    done: bool = False
    """The app has returned from handling it."""


@dataclass
class Recorder:
    """ASGI middleware: every HTTP request that reached ``app``, and how it ended."""

    app: ASGIApp
    requests: list[Seen] = field(default_factory=list)

    def to(self, path_end: str) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith(path_end)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(scope["method"], scope["path"], scope["query_string"].decode(), headers)
        self.requests.append(seen)
        body_read = asyncio.Event()
        finished = False

        async def recording_receive() -> MutableMapping[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                seen.body += message.get("body", b"")
                if not message.get("more_body", False):
                    body_read.set()
            return message

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True
            await send(message)

        async def watch_disconnect() -> None:
            # Once the body is in, the next message the server has for this request is a disconnect:
            # either the response completed, or the client left first.
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                seen.aborted = True

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            seen.done = True
            await asyncio.sleep(0)  # let a disconnect that has arrived be recorded
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def bind(port: int = 0) -> socket.socket:
    """A listening-ready socket on 127.0.0.1 (``port`` 0: a free one), reusable right after a stop."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it every
    # response on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.asynccontextmanager
async def serve_asgi(app: ASGIApp, sock: socket.socket | None = None) -> AsyncIterator[int]:
    """Serve ``app`` with uvicorn on ``sock`` (default: a fresh one); yields the port."""
    sock = sock or bind()
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=STOP_GRACE
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started or task.done(), START_LIMIT)
        if task.done():
            await task
            raise RuntimeError("uvicorn stopped while starting")
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STOP_LIMIT)
        sock.close()


@dataclass
class JsonPeer:
    url: str
    """The agent's base URL: its card is at ``/.well-known/agent-card.json`` under it."""
    port: int
    card: sdk.AgentCard
    recorder: Recorder

    def interface_url(self, binding: str) -> str:
        return self.url + JSONRPC_PATH if binding == "JSONRPC" else self.url


@contextlib.asynccontextmanager
async def sdk_json_peer(
    interfaces: Sequence[str | tuple[str, str]] = ("JSONRPC",),
    *,
    port: int = 0,
    tenant: str = "",
    streaming: bool = True,
    push: bool = True,
    extended: bool = True,
    extended_configured: bool = True,
) -> AsyncIterator[JsonPeer]:
    """An a2a-sdk agent over its own JSON-RPC (at ``/jsonrpc``) and/or REST (at ``/``) routes.

    ``interfaces`` are bindings (or ``(binding, version)`` pairs) in card order, listed after a
    gRPC decoy; only the JSON ones are served. Their ``tenant`` is ``tenant``.
    """
    sock = bind(port)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    card = sdk_card(streaming=streaming, push=push, extended=extended)
    card.supported_interfaces.add(url=GRPC_DECOY, protocol_binding="GRPC", protocol_version="1.0")
    served: set[str] = set()
    for item in interfaces:
        binding, version = (item, "1.0") if isinstance(item, str) else item
        url = base + JSONRPC_PATH if binding == "JSONRPC" else base
        card.supported_interfaces.add(
            url=url, protocol_binding=binding, protocol_version=version, tenant=tenant
        )
        served.add(binding)
    handler = sdk_handler(card, push=push, extended_card=extended and extended_configured)
    routes: list[BaseRoute] = [*create_agent_card_routes(card)]
    if "JSONRPC" in served:
        routes += create_jsonrpc_routes(handler, JSONRPC_PATH)
    if "HTTP+JSON" in served:
        routes += create_rest_routes(handler)  # last: it mounts /{tenant}/...
    recorder = Recorder(Starlette(routes=routes))
    try:
        async with serve_asgi(recorder, sock) as bound:
            yield JsonPeer(base, bound, card, recorder)
    finally:
        await handler.aclose()
