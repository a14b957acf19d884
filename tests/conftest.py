"""Shared fixtures: a real server on 127.0.0.1 port 0 and a client of it; a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest_asyncio
from google.protobuf.message import Message

from a2a_grpc.agent import Agent
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security import Principal
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall
from a2a_grpc.tasks import InMemoryTaskStore, TaskStore

pytest_plugins = ["tests.webhook", "tests.redisserver", "tests.sdk03.plugin"]


class Authenticated(Interceptor):
    """Tests only: every call comes from the principal ``tester``, as if a scheme had accepted its
    credential. For tests of what authenticated callers get (the extended card), whose subject is
    not authentication itself (tests/test_auth.py is, with real schemes)."""

    principal = Principal("tester", "test")

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        return await call_next(request, dataclasses.replace(context, principal=self.principal))

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        return call_next(request, dataclasses.replace(context, principal=self.principal))


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


CLI = [sys.executable, "-m", "a2a_grpc.cli"]


@contextlib.contextmanager
def cli_server(*args: str) -> Iterator[str]:
    """``a2a-grpc serve --grpc-port 0 --store memory ARGS`` as a subprocess; yields the gRPC address its
    banner names, and stops it by PID (SIGTERM, then SIGKILL after a grace)."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--grpc-port", "0", "--store", "memory", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the banner names the bound address
        found = re.search(r"at (127\.0\.0\.1:\d+)", line)
        assert found, line
        yield found.group(1)
    finally:
        stop_popen(proc)


def stop_popen(proc: subprocess.Popen[str]) -> None:
    """Stop a server process a test started, by PID: SIGTERM, then SIGKILL after a grace."""
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


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
