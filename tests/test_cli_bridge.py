"""`a2a-grpc bridge grpc-to-http` as its own process: our gRPC client reaches an SDK JSON agent."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator

import pytest

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from tests.bridge_peers import serve_stack
from tests.json_peers import sdk_json_peer
from tests.test_cli_first_hour import run_async

CLI = [sys.executable, "-m", "a2a_grpc.cli"]


@contextlib.asynccontextmanager
async def grpc_to_http(upstream: str, *extra: str, listen: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """The bridge process; yields the gRPC address it reports, and stops it by PID."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "bridge",
        "grpc-to-http",
        "--listen",
        listen,
        "--upstream",
        upstream,
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        found = re.search(r"bridging gRPC at (127\.0\.0\.1:\d+)", line)
        assert found, line
        yield found.group(1)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, f"bridge exited with {proc.returncode}"


@pytest.mark.interop
@pytest.mark.asyncio
@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_grpc_client_reaches_an_sdk_json_agent_through_the_bridge_process(binding: str) -> None:
    async with (
        sdk_json_peer((binding,)) as peer,
        grpc_to_http(peer.url) as address,
        A2AClient(address, timeout=10) as client,
    ):
        reply = await client.send_message(A2AClient.text_request("hello"))
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
        events = [e async for e in client.send_streaming_message(A2AClient.text_request("stream 2"))]
        assert events[0].HasField("task")
        assert sum(e.HasField("artifact_update") for e in events) == 2
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task("no-such-task")


@pytest.mark.asyncio
async def test_grpc_to_http_refuses_an_upstream_without_a_card() -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "bridge",
        "grpc-to-http",
        "--upstream",
        "http://127.0.0.1:1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert re.search(r"a2a-grpc: error: .*127\.0\.0\.1:1.* unavailable", err.decode()), err.decode()


@pytest.mark.asyncio
async def test_http_to_grpc_refuses_an_upstream_that_is_down() -> None:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "bridge",
        "http-to-grpc",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--timeout",
        "0.5",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "upstream agent at 127.0.0.1:1 is unavailable" in err.decode(), err.decode()


@pytest.mark.asyncio
async def test_grpc_to_http_on_a_busy_port_fails_in_one_line() -> None:
    async with serve_stack() as stack:
        with socket.create_server(("127.0.0.1", 0)) as holder:
            port = holder.getsockname()[1]
            result = await run_async(
                "bridge", "grpc-to-http", "--listen", f"127.0.0.1:{port}", "--upstream", stack.url
            )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"a2a-grpc: error: cannot listen on 127.0.0.1:{port}: address already in use (another process "
        "listens there: pick another port, or start both with --reuse-port to share it)"
    ]


@pytest.mark.asyncio
async def test_http_to_grpc_on_a_busy_port_fails_in_one_line() -> None:
    async with serve_stack() as stack:
        with socket.create_server(("127.0.0.1", 0)) as holder:
            port = holder.getsockname()[1]
            result = await run_async(
                "bridge", "http-to-grpc", "--listen", f"127.0.0.1:{port}", "--upstream", stack.address
            )
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"a2a-grpc: error: cannot listen on 127.0.0.1:{port}: address already in use")


@pytest.mark.asyncio
async def test_grpc_to_http_shares_its_port_with_reuse_port() -> None:
    async with (
        serve_stack() as stack,
        grpc_to_http(stack.url, "--reuse-port") as first,
        grpc_to_http(stack.url, "--reuse-port", listen=first) as second,
        A2AClient(second, timeout=10) as client,
    ):
        assert second == first
        reply = await client.send_message(A2AClient.text_request("echo shared"))
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
