"""Test your agent: it served on a free port of 127.0.0.1, with a client of it, in one line.

    from a2a_grpc.testing import serving

    async def test_shout() -> None:
        async with serving(Shout()) as served:
            reply = await served.client.send_message(A2AClient.message_request("hi"))
            assert reply.task.artifacts[0].parts[0].text == "HI"

The server is the real one (gRPC on a socket, the whole call path), the store is in memory
unless you give one, and everything is stopped when the block ends, whatever happens in it. For
the JSON bindings too, serve the agent with ``a2a_grpc.bridge.stack.AgentStack`` (``http_port=0``).
:class:`CuttingProxy` puts a proxy before it that drops connections on demand, to test that
callers (a session resuming, a live stream reattaching) survive the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from a2a_grpc.agent import Agent
from a2a_grpc.client import A2AClient
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore, TaskStore

__all__ = ["CuttingProxy", "Served", "serving"]


@dataclass(frozen=True, slots=True)
class Served:
    """An agent served for a test."""

    client: A2AClient
    """A client of the server (its calls have ``timeout`` as their deadline)."""
    server: A2AServer
    store: TaskStore

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return self.server.address


@contextlib.asynccontextmanager
async def serving(
    agent: Agent,
    store: TaskStore | None = None,
    settings: ServerSettings | None = None,
    *,
    timeout: float = 10.0,
) -> AsyncIterator[Served]:
    """Serve ``agent`` on 127.0.0.1 port 0 until the block ends (see the module doc).

    ``settings`` may set anything but the host and port; a store you pass is yours to close.
    """
    settings = dataclasses.replace(settings or ServerSettings(), host="127.0.0.1", port=0)
    own = store is None
    store = store if store is not None else InMemoryTaskStore()
    server = A2AServer(agent, store, settings)
    try:
        await server.start()
        async with A2AClient(server.address, timeout=timeout) as client:
            yield Served(client, server, store)
    finally:
        await server.stop(0.5)
        if own:
            await store.close()


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of the local port ``target_port`` that cuts every
    connection it carries on demand (:meth:`cut`, as a load balancer or a network fault would),
    after the server has sent so many bytes (``cut_after_bytes``, losing what is in flight), or
    refuses new ones while ``down``: to test that an agent's callers survive a drop.

        async with serving(MyAgent()) as served, CuttingProxy(served.server.port) as proxy:
            async with A2AClient(f"127.0.0.1:{proxy.port}") as client, client.session() as s:
                ...; proxy.cut(); ...   # the session resumes by itself
    """

    def __init__(self, target_port: int, cut_after_bytes: list[int] | None = None) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self.downstream = 0  # bytes forwarded from the server, over every connection
        self.down = False
        """While True, new connections are closed at once (the network is out)."""
        self.cut_after_bytes = list(cut_after_bytes or [])
        """Cut when the server has sent this many bytes, dropping what was read past it: frames the
        server counts as sent never arrive (each threshold once)."""
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut(count=False)
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pair = (writer, up_writer)
        self._pairs.add(pair)
        for source, sink, down in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.ensure_future(self._pump(source, sink, pair, down))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pair: Any, down: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if down and self.cut_after_bytes and self.downstream + len(data) > self.cut_after_bytes[0]:
                    self.cut_after_bytes.pop(0)
                    self.cut()  # what was read now is lost with the connection
                    return
                if down:
                    self.downstream += len(data)
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._pairs.discard(pair)
            for side in pair:
                side.transport.abort()

    def cut(self, *, count: bool = True) -> None:
        """Drop every connection at once (RST), as a load balancer or a network fault would."""
        for pair in list(self._pairs):
            for side in pair:
                side.transport.abort()
        self._pairs.clear()
        self.cuts += count
