"""Test your agent: it served on a free port of 127.0.0.1, with a client of it, in one line.

    from a2a_grpc.testing import serving

    async def test_shout() -> None:
        async with serving(Shout()) as served:
            reply = await served.client.send_message(A2AClient.message_request("hi"))
            assert reply.task.artifacts[0].parts[0].text == "HI"

The server is the real one (gRPC on a socket, the whole call path), the store is in memory
unless you give one, and everything is stopped when the block ends, whatever happens in it. For
the JSON bindings too, serve the agent with ``a2a_grpc.bridge.stack.AgentStack`` (``http_port=0``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

from a2a_grpc.agent import Agent
from a2a_grpc.client import A2AClient
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore, TaskStore

__all__ = ["Served", "serving"]


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
