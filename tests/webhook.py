"""A real local webhook receiver (Starlette on uvicorn, 127.0.0.1, port 0), as a pytest plugin."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Seen:
    path: str
    headers: httpx.Headers
    body: bytes
    at: float
    port: int = 0
    """The sender's port: a new one per connection."""


@dataclass
class Receiver:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    # Scripted (status, headers) answers for the next requests; 200 once exhausted.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "hook", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}/{path}"

    def paths(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == f"/{path}"]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        port = request.client.port if request.client is not None else 0
        seen = Seen(request.url.path, httpx.Headers(request.headers.raw), body, time.monotonic(), port)
        self.requests.append(seen)
        await self.gate.wait()
        status, headers = self.script.pop(0) if self.script else (200, {})
        return Response(status_code=status, headers=headers)


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll ``predicate`` every 5 ms for at most ``limit`` seconds."""
    for _ in range(int(limit / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError(f"condition not met within {limit} s")


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    rec.gate.set()
    app = Starlette(routes=[Route("/{path:path}", rec.handle, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done())
    rec.port = server.servers[0].sockets[0].getsockname()[1]
    yield rec
    rec.gate.set()
    server.should_exit = True
    await asyncio.wait_for(task, 5)
