"""The Grafana dashboard (deploy/grafana/a2a-grpc.json): every query in it is well formed and names
metrics, and labels, that a running server exports on its /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from a2a_grpc import errors
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.bridge.upstream import Call, GrpcUpstream
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.observability.settings import ObservabilitySettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.security.limits import Limits
from a2a_grpc.server import ServerSettings
from a2a_grpc.types import GetTaskRequest

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "a2a-grpc.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes
FUNCTIONS = {"histogram_quantile", "sum", "rate", "by"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"\b(a2a_[a-z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,|$)')


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries(data: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in data["panels"] for target in panel["targets"]]


def balanced(expr: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in STRING.sub('""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def check(expr: str, exported: dict[str, set[str]]) -> None:
    """Raise AssertionError naming what in ``expr`` the server does not export."""
    assert balanced(expr), f"unbalanced brackets: {expr}"
    plain = STRING.sub('""', expr)
    words = set(re.findall(r"\b([a-z_]+)\s*\(", plain))
    assert words <= FUNCTIONS, f"unexpected functions {words - FUNCTIONS}: {expr}"
    found = SELECTOR.findall(expr)
    assert found, f"names no a2a_ metric: {expr}"
    labels: set[str] = set(SCRAPE_LABELS)
    for name, matchers in found:
        assert name in exported, f"{name} is not exported (in {expr})"
        labels |= exported[name]
        if matchers:
            body = matchers[1:-1]
            parsed = MATCHER.findall(body)
            assert "".join(m.group(0) for m in MATCHER.finditer(body)).strip() == body.strip(), matchers
            for label, _ in parsed:
                assert label in exported[name] | SCRAPE_LABELS, f"{name} has no label {label}"
    for group in re.findall(r"\bby\s*\(([^)]*)\)", plain):
        for label in (x.strip() for x in group.split(",")):
            assert label in labels, f"no metric of {expr} has label {label}"


def exported_names(text: str) -> dict[str, set[str]]:
    """Each sample name the exposition can hold (a family's name with its type's suffixes), with
    the labels its samples carry."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        labels = {k for sample in family.samples for k in sample.labels}
        for suffix in SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = labels - ({"le"} if suffix != "_bucket" else set())
    return out


def test_the_dashboard_uses_a_datasource_variable_and_shows_what_the_issue_asks() -> None:
    data = dashboard()
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in data["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    exprs = "\n".join(queries(data))
    for needed in (
        "histogram_quantile(0.99, sum by (le, outcome) (rate(a2a_handshake_duration_seconds_bucket",
        "histogram_quantile(0.5, sum by (le, skill) (rate(a2a_task_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le, skill) (rate(a2a_task_duration_seconds_bucket",
        "sum by (error_code) (rate(a2a_errors_total",
        "sum(a2a_sessions_active",
        "a2a_subscriber_lag_events_bucket",
        "sum by (method, binding) (rate(a2a_requests_total",
        "a2a_calls_in_flight",
    ):
        assert needed in exprs, needed
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))


def test_the_checker_refuses_what_is_wrong() -> None:
    exported = {"a2a_requests_total": {"method", "binding"}}
    check('sum by (method) (rate(a2a_requests_total{job=~"$job"}[5m]))', exported)
    bad = [
        "sum(rate(a2a_requests_total[5m])",  # unbalanced
        "sum(rate(a2a_request_total[5m]))",  # a name nobody exports
        'sum(rate(a2a_requests_total{task_id="x"}[5m]))',  # a label it does not have
        "sum by (skill) (rate(a2a_requests_total[5m]))",
        "avg(rate(a2a_requests_total[5m]))",  # a function the dashboard does not use
        "sum(rate(process_cpu_seconds_total[5m]))",  # not ours
    ]
    for expr in bad:
        with pytest.raises(AssertionError):
            check(expr, exported)


@pytest.mark.asyncio
async def test_every_query_names_metrics_a_running_server_exports() -> None:
    settings = ServerSettings(
        observability=ObservabilitySettings(metrics_port=0), limits=Limits(max_streams_per_principal=1)
    )
    once = ClientSettings(timeout=10.0, resilience=ResiliencePolicy(max_attempts=1))
    async with (
        AgentStack(ReferenceAgent(), grpc=settings, host="127.0.0.1", grpc_port=0) as stack,
        A2AClient(stack.grpc_address, settings=once) as client,
        httpx.AsyncClient(timeout=10) as http,
    ):
        # Calls that give every labelled metric of the dashboard a sample of its own.
        sent = await client.send_message(A2AClient.text_request("echo counted"))
        slow = await client.send_message(A2AClient.text_request("slow 0.3", return_immediately=True))
        subscriber = aiter(client.subscribe_to_task(slow.task.id))
        await anext(subscriber)
        with pytest.raises(errors.RateLimitedError):
            async for _ in client.subscribe_to_task(slow.task.id):
                pass
        _ = [e async for e in subscriber]
        async with client.session() as session:
            await session.get_task(sent.task.id)
        upstream = GrpcUpstream(stack.grpc_address)
        try:
            await upstream.unary(
                "GetTask", GetTaskRequest(id=sent.task.id), Call({"a2a-version": "1.0"}, 5.0)
            )
        finally:
            await upstream.aclose()
        assert stack.ops is not None
        scraped = await http.get(stack.ops.url + "/metrics")
    assert scraped.status_code == 200
    exported = exported_names(scraped.text)
    data = dashboard()
    for expr in queries(data):
        check(expr, exported)
    job = next(v for v in data["templating"]["list"] if v["name"] == "job")
    (metric,) = re.findall(r"label_values\((a2a_[a-z0-9_]+), job\)", job["query"])
    assert metric in exported
