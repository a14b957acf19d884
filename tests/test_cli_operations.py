"""The operations surface of the command line: the metrics port of every long-running command.

``serve`` without an HTTP port and ``bridge http-to-grpc`` each get ``--metrics-port``; what they
serve there is read over HTTP from real processes (port 0, stopped by PID).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from typing import Any

import httpx
import pytest

from a2a_grpc.client import A2AClient
from tests.conftest import stop_process

CLI = [sys.executable, "-m", "a2a_grpc.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.upper().startswith("A2A_")}


async def start(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=ENV
    )


async def read_until(proc: asyncio.subprocess.Process, pattern: str) -> tuple[re.Match[str], str]:
    """The first line of the process's output that matches ``pattern`` (bounded: 30 s, 40 lines)."""
    assert proc.stdout is not None
    seen = ""
    for _ in range(40):
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        seen += line
        if not line:
            break
        if found := re.search(pattern, line):
            return found, seen
    raise AssertionError(f"no line matching {pattern!r} in:\n{seen}")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition; 0 when it is not there yet."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.asyncio
async def test_a_grpc_only_server_serves_metrics_and_debug_endpoints_on_its_metrics_port() -> None:
    proc = await start("serve", "--grpc-port", "0", "--store", "memory", "--metrics-port", "0")
    try:
        grpc_at, _ = await read_until(proc, r"over gRPC at (127\.0\.0\.1:\d+)")
        ops_at, _ = await read_until(proc, r"metrics and debug endpoints at (http://\S+)")
        async with httpx.AsyncClient(base_url=ops_at.group(1), timeout=10) as http:
            before = (await http.get("/metrics")).text
            async with A2AClient(grpc_at.group(1)) as client:
                await client.send_message(A2AClient.text_request("echo counted"))
            after = await http.get("/metrics")
            assert after.status_code == 200
            assert after.headers["content-type"].startswith("text/plain")
            labels = {"method": "SendMessage", "binding": "grpc"}
            counted = sample(after.text, "a2a_requests_total", **labels)
            assert counted - sample(before, "a2a_requests_total", **labels) == 1
            sessions = await http.get("/debug/a2a/sessions")
            assert sessions.status_code == 200
            assert sessions.json() == []
            assert (await http.get("/debug/a2a/sessions/" + "x" * 5000)).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
    finally:
        await stop_process(proc)


@pytest.mark.asyncio
async def test_the_http_bridge_process_serves_its_upstream_latency_on_its_metrics_port() -> None:
    agent = await start("serve", "--grpc-port", "0", "--store", "memory")
    bridge = None
    try:
        grpc_at, _ = await read_until(agent, r"over gRPC at (127\.0\.0\.1:\d+)")
        bridge = await start(
            "bridge", "http-to-grpc", "--upstream", grpc_at.group(1), "--listen", "127.0.0.1:0",
            "--metrics-port", "0",
        )  # fmt: skip
        http_at, _ = await read_until(bridge, r"HTTP\+JSON at (http://\S+) to gRPC")
        ops_at, _ = await read_until(bridge, r"metrics at (http://\S+)/metrics")
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                http_at.group(1),
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "SendMessage",
                    "params": {
                        "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "echo"}]}
                    },
                },
                headers={"A2A-Version": "1.0"},
            )
            assert "result" in answer.json(), answer.text
            scraped = (await http.get(ops_at.group(1) + "/metrics")).text
            count = sample(scraped, "a2a_bridge_upstream_duration_seconds_count", method="SendMessage")
            assert count == 1, scraped
            # This process has no sessions of its own: the metrics port serves metrics only.
            assert (await http.get(ops_at.group(1) + "/debug/a2a/sessions")).status_code == 404
    finally:
        if bridge is not None:
            await stop_process(bridge)
        await stop_process(agent)


class Collector:
    """An OpenTelemetry collector in the test: OTLP/gRPC ``TraceService.Export``, keeping every span."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.services: list[str] = []

    async def __aenter__(self) -> str:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        outer = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            async def Export(self, request: Any, context: Any) -> Any:
                for resource in request.resource_spans:
                    names = [
                        a.value.string_value for a in resource.resource.attributes if a.key == "service.name"
                    ]
                    for scope in resource.scope_spans:
                        outer.spans.extend(scope.spans)
                        outer.services.extend(names * len(scope.spans))
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)  # type: ignore[no-untyped-call]
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(None)


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.asyncio
async def test_serve_with_spans_exports_the_callers_trace_over_otlp_and_flushes_on_sigterm() -> None:
    collector = Collector()  # started first, read after the server stopped
    endpoint = await collector.__aenter__()
    proc = await start(
        "serve", "--grpc-port", "0", "--store", "memory", "--spans", "--otlp-endpoint", endpoint,
        "--service-name", "checkout-agent",
    )  # fmt: skip
    try:
        grpc_at, _ = await read_until(proc, r"over gRPC at (127\.0\.0\.1:\d+)")
        async with A2AClient(grpc_at.group(1)) as client:
            await client.send_message(
                A2AClient.text_request("echo traced"),
                metadata=[("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01")],
            )
        await stop_process(proc)  # SIGTERM: the drain flushes the last spans
        assert proc.returncode == 0
        ours = [s for s in collector.spans if s.trace_id.hex() == TRACE_ID]
        assert [s.name for s in ours] == ["A2AService/SendMessage"], collector.spans
        assert ours[0].parent_span_id.hex() == "00f067aa0ba902b7"
        assert set(collector.services) == {"checkout-agent"}
    finally:
        await stop_process(proc)
        await collector.__aexit__()


@pytest.mark.asyncio
async def test_spans_without_the_opentelemetry_sdk_are_refused_before_anything_starts() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.sdk'] = sys.modules['opentelemetry.sdk.trace'] = None\n"
        "from a2a_grpc.cli import main\n"
        "sys.exit(main(['serve', '--spans', '--grpc-port', '0', '--store', 'memory']))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "pip install a2a-grpc[otel]" in err.decode()
    assert b"serving" not in out
