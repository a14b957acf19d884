"""Shared fixtures: a real server on 127.0.0.1 port 0 and a client of it; a webhook receiver."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from a2a_grpc.agent import Agent
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore, TaskStore

pytest_plugins = ["tests.webhook"]


@dataclass
class Served:
    server: A2AServer
    client: A2AClient
    agent: Agent


async def serve(agent: Agent, store: TaskStore | None = None, **settings: object) -> Served:
    server = A2AServer(
        agent, store or InMemoryTaskStore(), ServerSettings(host="127.0.0.1", port=0, **settings)
    )  # type: ignore[arg-type]
    await server.start()
    client = A2AClient(server.address, timeout=10.0)
    return Served(server, client, agent)


async def shutdown(served: Served) -> None:
    await served.client.close()
    await served.server.stop(grace=1.0)
    await served.server.store.close()


@pytest_asyncio.fixture
async def reference() -> AsyncIterator[Served]:
    served = await serve(ReferenceAgent())
    try:
        yield served
    finally:
        await shutdown(served)


async def stop_process(
    proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM, grace: float = 10.0
) -> None:
    """Stop a process a test started, by PID: ``sig``, then SIGKILL if it has not exited in ``grace`` s."""
    if proc.returncode is not None:
        return
    os.kill(proc.pid, sig)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
