"""W3C trace context on every hop: strict parsing, hostile headers that never break a call, and
one trace across a JSON client -> the bridge -> agent A (gRPC) -> agent B over a session (A
delegating to B), with spans off (propagation) and on (an in-memory span exporter), a webhook
delivery, and the reverse bridge (gRPC client -> reverse bridge -> JSON agent)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from a2a_grpc import errors, types
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import open_json_upstream
from a2a_grpc.bridge.upstream import GrpcUpstream
from a2a_grpc.client import A2AClient
from a2a_grpc.observability import context, spans, trace
from a2a_grpc.observability.logs import CallIds
from a2a_grpc.observability.settings import ObservabilitySettings
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import DelegationPolicy, ReferenceAgent
from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import METHODS, CallContext, Interceptor, Method, Service, StreamCall, UnaryCall
from a2a_grpc.tasks import InMemoryTaskStore
from tests.bridge_http_peers import http_bridge, rpc, send_body
from tests.bridge_peers import serve_stack
from tests.webhook import Receiver, until

ASYNC = pytest.mark.asyncio

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


# -- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACEPARENT, TRACEPARENT),
        (f"00-{TRACE_ID}-{CLIENT_SPAN}-00", f"00-{TRACE_ID}-{CLIENT_SPAN}-00"),
        # A later version: its first four fields, sent on as version 00 with the sampled flag only.
        (f"cc-{TRACE_ID}-{CLIENT_SPAN}-03-what-comes-later", f"00-{TRACE_ID}-{CLIENT_SPAN}-01"),
        (f"01-{TRACE_ID}-{CLIENT_SPAN}-02", f"00-{TRACE_ID}-{CLIENT_SPAN}-00"),
        (f"ff-{TRACE_ID}-{CLIENT_SPAN}-01", None),  # version ff is invalid
        (f"00-{TRACE_ID.upper()}-{CLIENT_SPAN}-01", None),  # upper-case hex
        (f"00-{'0' * 32}-{CLIENT_SPAN}-01", None),  # all-zero trace id
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE_ID}-{CLIENT_SPAN}-01-extra", None),  # version 00 is exactly 55 characters
        (f"cc-{TRACE_ID}-{CLIENT_SPAN}-01extra", None),  # a later version: "-" after the flags
        (f"00-{TRACE_ID[:-1]}-{CLIENT_SPAN}-01", None),
        (f"00-{TRACE_ID}-{CLIENT_SPAN}-1", None),
        (f"0-{TRACE_ID}-{CLIENT_SPAN}-011", None),
        (f"00_{TRACE_ID}_{CLIENT_SPAN}_01", None),
        (f"00-{TRACE_ID[:-1]}g-{CLIENT_SPAN}-01", None),
        (f" 00-{TRACE_ID}-{CLIENT_SPAN}-01"[:55], None),
        ("", None),
        (None, None),
        ("garbage", None),
        ("x" * 100_000, None),
        ("00-" + "é" * 52, None),
    ],
)
def test_traceparent_is_read_by_the_w3c_rules(value: str | None, expected: str | None) -> None:
    assert trace.parse_traceparent(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TRACESTATE, TRACESTATE),
        ("congo=t61rcWkgMzE , rojo=00f067aa0ba902b7,,\t", TRACESTATE),  # spaces and empty members
        ("tenant@vendor=x", "tenant@vendor=x"),
        ("a=1,a=2", None),  # a key twice
        ("Upper=1", None),
        ("a=", None),
        ("a=b ", "a=b"),  # trailing spaces belong to the list, not the value
        ("a=b=c", None),
        ("=b", None),
        ("a", None),
        ("k" * 257 + "=v", None),
        ("a=" + "v" * 257, None),
        (",".join(f"k{i}=v" for i in range(32)), ",".join(f"k{i}=v" for i in range(32))),
        (",".join(f"k{i}=v" for i in range(33)), None),  # 33 members: dropped whole
        (",".join(f"k{i}=v" for i in range(10_000)), None),
        ("a=b" + "," * 100_000, None),  # longer than any valid value
        ("", None),
        (None, None),
    ],
)
def test_tracestate_is_read_by_the_w3c_rules(value: str | None, expected: str | None) -> None:
    assert trace.parse_tracestate(value) == expected


def test_an_invalid_traceparent_starts_a_new_trace_and_drops_the_tracestate() -> None:
    assert trace.continued(TRACEPARENT, TRACESTATE) == context.TraceHeaders(TRACEPARENT, TRACESTATE)
    assert trace.continued(TRACEPARENT, "a=1,a=2") == context.TraceHeaders(TRACEPARENT, None)
    fresh = [trace.continued(bad, TRACESTATE) for bad in (None, "garbage", TRACEPARENT.upper())]
    for started in fresh:
        assert trace.parse_traceparent(started.traceparent) == started.traceparent
        assert started.tracestate is None
    assert len({started.traceparent.split("-")[1] for started in fresh}) == 3


def test_outgoing_metadata_carries_the_current_trace_or_the_one_the_caller_names() -> None:
    current = context.TraceHeaders(TRACEPARENT, TRACESTATE)
    assert trace.carry((("a", "b"),), current) == (
        ("a", "b"),
        ("traceparent", TRACEPARENT),
        ("tracestate", TRACESTATE),
    )
    assert trace.carry((), None) == ()
    own_parent = f"00-{'1' * 32}-{'2' * 16}-01"
    own = (("traceparent", own_parent), ("tracestate", "mine=1"), ("a", "b"))
    token = context.TRACE.set(current)
    try:
        # Named by the caller: that is the parent, sent as given (without spans nothing else is made).
        assert trace.parent_of(own) == context.TraceHeaders(own_parent, "mine=1")
        assert trace.carry(own, trace.parent_of(own)) == own
        # With spans, the client span (child of the one named) is sent in its place.
        span = context.TraceHeaders(f"00-{'1' * 32}-{'3' * 16}-01", "mine=1")
        assert trace.carry(own, span) == (
            ("a", "b"),
            ("traceparent", span.traceparent),
            ("tracestate", "mine=1"),
        )
        # None named: the call being served's; an invalid one named: none (and it is sent as given).
        assert trace.parent_of((("a", "b"),)) == current
        assert trace.parent_of(None) == current
        garbage = (("traceparent", "garbage"),)
        assert trace.parent_of(garbage) is None
        assert trace.carry(garbage, trace.parent_of(garbage)) == garbage
    finally:
        context.TRACE.reset(token)


def test_the_opentelemetry_sdk_is_not_loaded_without_spans() -> None:
    code = (
        "import sys, a2a_grpc.server, a2a_grpc.client, a2a_grpc.session.client, a2a_grpc.push\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_spans_without_the_sdk_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    spans.uninstall()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(RuntimeError, match=r"pip install a2a-grpc\[otel\]"):
        spans.setup(ObservabilitySettings(spans=True), "agent")
    assert trace.recorder() is None


def test_spans_need_the_trace_context() -> None:
    with pytest.raises(ValueError, match="trace_context"):
        ObservabilitySettings(spans=True, trace_context=False)
    with pytest.raises(ValueError, match="trace_context must be True or False"):
        ObservabilitySettings(trace_context="yes")  # type: ignore[arg-type]


def test_setup_exports_over_otlp_until_the_last_release() -> None:
    spans.uninstall()
    settings = ObservabilitySettings(spans=True, otlp_endpoint="http://127.0.0.1:9")
    spans.setup(settings, "agent")
    spans.setup(settings, "agent")  # a second server of the process: the same provider
    assert trace.recorder() is not None
    spans.release()
    assert trace.recorder() is not None
    spans.release()  # the last one: flushed and shut down
    assert trace.recorder() is None


# -- what a served call sees ---------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    front: str
    received: str | None  # the traceparent as received
    trace: context.TraceHeaders | None  # TRACE while the call runs
    call_id: str | None


@dataclass
class Recording(Interceptor):
    """Records what each call received and what TRACE / CALL_ID hold while it runs."""

    calls: list[Seen] = field(default_factory=list)

    def _seen(self, method: Method, ctx: CallContext) -> None:
        self.calls.append(
            Seen(method.name, ctx.front, ctx.traceparent, context.TRACE.get(), context.CALL_ID.get())
        )

    async def unary(
        self, method: Method, request: Message, ctx: CallContext, call_next: UnaryCall
    ) -> Message:
        self._seen(method, ctx)
        return await call_next(request, ctx)

    def stream(
        self, method: Method, request: Message, ctx: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        self._seen(method, ctx)
        return call_next(request, ctx)

    def sends(self, method: str = "SendMessage") -> list[Seen]:
        return [c for c in self.calls if c.method == method]


def trace_id_of(headers: context.TraceHeaders | str | None) -> str:
    value = headers.traceparent if isinstance(headers, context.TraceHeaders) else headers
    assert value is not None
    return value.split("-")[1]


@ASYNC
async def test_the_links_set_trace_and_call_id_for_the_calls_task_only() -> None:
    seen: list[tuple[Any, Any]] = []

    async def endpoint(request: Message, ctx: CallContext) -> Message:
        seen.append((context.TRACE.get(), context.CALL_ID.get()))
        return types.Task()

    def events(request: Message, ctx: CallContext) -> AsyncIterator[Message]:
        async def run() -> AsyncIterator[Message]:
            seen.append((context.TRACE.get(), context.CALL_ID.get()))
            yield types.StreamResponse()

        return run()

    # As in every server's seam: the logs' ids (the call id), then the trace.
    service = Service(
        {n: events if m.streaming else endpoint for n, m in METHODS.items()},
        [CallIds("agent"), trace.TraceLink()],
    )
    call = CallContext(traceparent=TRACEPARENT, tracestate=TRACESTATE)
    after: list[tuple[Any, Any]] = []

    async def unary() -> None:  # a front runs each call in a task of its own
        await service.unary("GetTask")(types.GetTaskRequest(id="t"), call)
        after.append((context.TRACE.get(), context.CALL_ID.get()))  # what the access log reads

    await asyncio.create_task(unary())
    assert seen.pop() == (context.TraceHeaders(TRACEPARENT, TRACESTATE), call.call_id)
    assert after.pop() == (context.TraceHeaders(TRACEPARENT, TRACESTATE), call.call_id)
    assert context.TRACE.get() is None  # the task's context ended with the call
    assert context.CALL_ID.get() is None

    async def stream() -> None:
        async with contextlib.aclosing(
            service.stream("SubscribeToTask")(types.SubscribeToTaskRequest(), call)
        ) as s:
            async for _ in s:
                pass

    await asyncio.create_task(stream())
    assert seen.pop() == (context.TraceHeaders(TRACEPARENT, TRACESTATE), call.call_id)
    assert context.TRACE.get() is None


HOSTILE = [
    {"traceparent": "garbage"},
    {"traceparent": TRACEPARENT.upper()},
    {"traceparent": f"00-{'0' * 32}-{'0' * 16}-00"},
    {"traceparent": f"ff-{TRACE_ID}-{CLIENT_SPAN}-01"},
    {"traceparent": "0" * 4000},
    {"traceparent": TRACEPARENT, "tracestate": "x" * 4000},
    {"traceparent": TRACEPARENT, "tracestate": ",".join(f"k{i}=v" for i in range(500))},
    {"traceparent": "garbage", "tracestate": TRACESTATE},
]


@ASYNC
async def test_hostile_trace_headers_never_break_a_call_on_any_front() -> None:
    recording = Recording()
    # 10,000 members: more than gRPC metadata takes by default (8 KiB), but a Call frame has room.
    huge = {"traceparent": TRACEPARENT, "tracestate": ",".join(f"k{i}=v" for i in range(10_000))}
    async with serve_stack(interceptors=[recording]) as stack:
        async with A2AClient(stack.address, timeout=10) as client:
            for headers in HOSTILE:
                response = await client.send_message(
                    A2AClient.text_request("echo hi"), metadata=list(headers.items())
                )
                assert response.task.status.state == types.TASK_STATE_COMPLETED
            async with client.session(agent_name="t") as session:
                for headers in [*HOSTILE, huge]:
                    response = await session.send_message(
                        A2AClient.text_request("echo hi"), metadata=list(headers.items())
                    )
                    assert response.task.status.state == types.TASK_STATE_COMPLETED
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            for headers in HOSTILE:
                answer = await http.post(
                    "/",
                    json=rpc("SendMessage", send_body("echo hi")),
                    headers={"a2a-version": "1.0", **headers},
                )
                assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    sends = recording.sends()
    assert len(sends) == 3 * len(HOSTILE) + 1
    assert {c.front for c in sends} == {"grpc", "session", "http"}
    for call, headers in zip(sends, [*HOSTILE, *HOSTILE, huge, *HOSTILE], strict=True):
        assert call.trace is not None
        assert call.call_id
        assert trace.parse_traceparent(call.trace.traceparent) == call.trace.traceparent  # always valid
        if trace.parse_traceparent(headers["traceparent"]):  # continued, its bad tracestate dropped
            assert call.trace == context.TraceHeaders(TRACEPARENT, None)
        else:  # a new trace
            assert trace_id_of(call.trace) not in (TRACE_ID, "0" * 32)
            assert call.trace.tracestate is None


@ASYNC
async def test_a_session_call_has_its_own_trace_not_the_hellos() -> None:
    recording = Recording()
    async with serve_stack(interceptors=[recording]) as stack:
        hello = {"traceparent": TRACEPARENT}
        async with A2AClient(stack.address, timeout=10) as client, client.session(metadata=hello) as session:
            other = f"00-{'a' * 32}-{'b' * 16}-01"
            await session.send_message(A2AClient.text_request("echo 1"), metadata=[("traceparent", other)])
            await session.send_message(A2AClient.text_request("echo 2"))
    first, second = recording.sends()
    assert first.received == other
    assert first.trace == context.TraceHeaders(other)
    assert second.received is None
    assert trace_id_of(second.trace) not in (TRACE_ID, "a" * 32)


# -- the three-hop chain -------------------------------------------------------------------------


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    spans.install(provider)
    try:
        yield memory
    finally:
        spans.uninstall()
        provider.shutdown()


@dataclass
class Chain:
    url: str  # the bridge's
    a: A2AServer
    b: A2AServer
    seen_by_b: Recording
    seen_by_a: Recording


@contextlib.asynccontextmanager
async def chain(spans_on: bool, notifier: PushNotifier | None = None) -> AsyncIterator[Chain]:
    """agent B; agent A (delegating to B, over a session: B's card offers one); the HTTP bridge
    over a gRPC upstream (``a2a-grpc bridge http-to-grpc``) in front of A."""
    observe = ObservabilitySettings(spans=spans_on)
    seen_by_b, seen_by_a = Recording(), Recording()
    b = A2AServer(
        ReferenceAgent(),
        InMemoryTaskStore(),
        ServerSettings(host="127.0.0.1", port=0, interceptors=[seen_by_b], observability=observe),
    )
    await b.start()
    a = A2AServer(
        ReferenceAgent(DelegationPolicy(allow=[b.address], timeout=10)),
        InMemoryTaskStore(),
        ServerSettings(host="127.0.0.1", port=0, interceptors=[seen_by_a], observability=observe),
        notifier=notifier,
    )
    await a.start()
    upstream = GrpcUpstream(a.address)
    try:
        async with http_bridge(upstream) as bridge:
            yield Chain(bridge.url, a, b, seen_by_b, seen_by_a)
    finally:
        await upstream.aclose()
        await a.stop(1.0)
        await b.stop(1.0)


async def delegate_over_json(url: str, b: A2AServer, **fields: Any) -> dict[str, Any]:
    body = rpc("SendMessage", send_body(f"delegate {b.address} echo relayed", **fields))
    headers = {"a2a-version": "1.0", "traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        answer = await http.post("/", json=body, headers=headers)
    task: dict[str, Any] = answer.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED", json.dumps(task)
    return task


@ASYNC
async def test_without_spans_the_delegate_over_a_session_sees_the_json_clients_trace() -> None:
    async with chain(spans_on=False) as hops:
        await delegate_over_json(hops.url, hops.b)
    (at_a,) = hops.seen_by_a.sends()
    (at_b,) = hops.seen_by_b.sends()
    assert (at_a.front, at_a.received) == ("grpc", TRACEPARENT)  # the bridge passed it on
    assert at_b.front == "session"
    # Without spans nobody makes a span: the context travels on unchanged, tracestate included.
    assert at_b.received == TRACEPARENT
    assert at_b.trace == context.TraceHeaders(TRACEPARENT, TRACESTATE)
    assert at_a.call_id != at_b.call_id


def finished(exporter: InMemorySpanExporter, kind: SpanKind, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.kind == kind and s.name == name]
    assert len(found) == 1, [
        (s.kind, s.name, dict(s.attributes or {})) for s in exporter.get_finished_spans()
    ]
    return found[0]


def parent_of(span: ReadableSpan) -> int:
    assert span.parent is not None
    return span.parent.span_id


@ASYNC
async def test_with_spans_one_trace_and_a_parent_link_at_every_hop(exporter: InMemorySpanExporter) -> None:
    async with chain(spans_on=True) as hops:
        task = await delegate_over_json(hops.url, hops.b)
        name_a = hops.a.agent.card.name
        name_b = hops.b.agent.card.name
        await until(lambda: len(exporter.get_finished_spans()) >= 4)
    clients = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CLIENT and s.name.endswith("SendMessage")
    ]
    servers = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert (len(clients), len(servers)) == (2, 2), exporter.get_finished_spans()
    at_a = next(s for s in servers if s.attributes and s.attributes["a2a.front"] == "grpc")
    at_b = next(s for s in servers if s.attributes and s.attributes["a2a.front"] == "session")
    bridge = next(s for s in clients if s.parent is not None and s.parent.span_id == int(CLIENT_SPAN, 16))
    delegation = next(s for s in clients if s is not bridge)
    # One trace, the JSON client's, at every hop.
    assert {f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans()} == {TRACE_ID}
    # JSON client -> bridge (client span) -> A (server span) -> A's delegation (client span) -> B.
    assert parent_of(bridge) == int(CLIENT_SPAN, 16)
    assert parent_of(at_a) == bridge.context.span_id
    assert parent_of(delegation) == at_a.context.span_id
    assert parent_of(at_b) == delegation.context.span_id
    assert at_a.attributes is not None
    assert at_b.attributes is not None
    assert at_a.attributes["a2a.agent"] == name_a
    assert at_b.attributes["a2a.agent"] == name_b
    assert at_a.attributes["a2a.task.id"] == task["id"]
    assert at_a.attributes["a2a.task.state"] == "TASK_STATE_COMPLETED"
    assert at_a.attributes["a2a.outcome"] == "ok"
    assert at_b.attributes["a2a.outcome"] == "ok"
    assert (at_a.attributes["rpc.method"], at_a.attributes["rpc.system"]) == ("SendMessage", "a2a")
    # A's agent read B's card first (a2a-grpc's card service): a CLIENT span of A's call too.
    card = finished(exporter, SpanKind.CLIENT, "AgentCardService/GetAgentCard")
    assert parent_of(card) == at_a.context.span_id
    assert (card.attributes or {})["rpc.service"] == "a2a_grpc.discovery.v1.AgentCardService"
    # What B was told while serving: its own span's context, in the same trace.
    (seen,) = hops.seen_by_b.sends()
    assert seen.trace is not None
    assert seen.trace.traceparent == f"00-{TRACE_ID}-{at_b.context.span_id:016x}-01"
    assert seen.received == f"00-{TRACE_ID}-{delegation.context.span_id:016x}-01"


KEY = "0123456789abcdef-trace"


@ASYNC
async def test_span_attributes_name_caller_skill_task_and_outcome(exporter: InMemorySpanExporter) -> None:
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        observability=ObservabilitySettings(spans=True),
        authentication=Authentication([ApiKeyScheme([ApiKey("carol", key=KEY)])]),
    )
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), settings)
    await server.start()
    try:
        async with A2AClient(server.address, timeout=10) as client:
            key = ("x-api-key", KEY)
            with pytest.raises(errors.TaskNotFoundError):
                await client.get_task("no-such-task", metadata=[key, ("traceparent", TRACEPARENT)])
            with pytest.raises(errors.UnauthenticatedError):
                await client.get_task("t", metadata=[("x-api-key", "wrong")])
            await client.send_message(
                A2AClient.text_request("echo hi"), metadata=[key, ("a2a-grpc-skill", "echo")]
            )
    finally:
        await server.stop(1.0)
    refused, unknown = (
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.SERVER and s.name == "A2AService/GetTask"
    )
    assert refused.attributes is not None
    assert refused.attributes["a2a.outcome"] == "TASK_NOT_FOUND"
    assert refused.attributes["a2a.task.id"] == "no-such-task"
    assert refused.attributes["a2a.caller"] == "carol"  # the principal's id, never its key
    assert refused.attributes["rpc.grpc.status_code"] == 5
    # The traceparent the client named is its CLIENT span's parent; the server's is that span.
    asked = next(
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.CLIENT and s.name == "A2AService/GetTask" and s.parent is not None
    )
    assert parent_of(asked) == int(CLIENT_SPAN, 16)
    assert parent_of(refused) == asked.context.span_id
    assert unknown.attributes is not None
    assert unknown.attributes["rpc.grpc.status_code"] == 16
    assert "a2a.caller" not in unknown.attributes  # refused before anyone was named
    sent = finished(exporter, SpanKind.SERVER, "A2AService/SendMessage")
    assert sent.attributes is not None
    assert (sent.attributes["a2a.skill"], sent.attributes["a2a.caller"]) == ("echo", "carol")
    assert sent.attributes["a2a.task.state"] == "TASK_STATE_COMPLETED"
    assert sent.attributes["a2a.agent"] == server.agent.card.name
    every = [v for span in exporter.get_finished_spans() for v in (span.attributes or {}).values()]
    assert KEY not in every
    # Our client's own spans: CLIENT, in the same trace as the server's.
    client_send = finished(exporter, SpanKind.CLIENT, "A2AService/SendMessage")
    assert parent_of(sent) == client_send.context.span_id
    assert client_send.context.trace_id == sent.context.trace_id


# -- webhooks ------------------------------------------------------------------------------------

LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))


@pytest.mark.parametrize("spans_on", [False, True])
@ASYNC
async def test_a_webhook_delivery_carries_the_tasks_trace(
    receiver: Receiver, spans_on: bool, request: pytest.FixtureRequest
) -> None:
    memory = request.getfixturevalue("exporter") if spans_on else None
    push = {"taskPushNotificationConfig": {"url": receiver.url("hook"), "token": "tok"}}
    async with (
        PushNotifier(policy=LOOPBACK, initial_backoff=0.01) as notifier,
        chain(spans_on, notifier) as hops,
    ):
        task = await delegate_over_json(hops.url, hops.b, configuration=push)
        await until(lambda: bool(receiver.paths("hook")))
    delivered = receiver.paths("hook")
    parents = {seen.headers.get("traceparent") for seen in delivered}
    assert len(parents) == 1
    (parent,) = parents
    assert trace.parse_traceparent(parent) == parent
    assert trace_id_of(parent) == TRACE_ID
    assert {seen.headers.get("tracestate") for seen in delivered} == {TRACESTATE}
    if memory is not None:  # the delivery's parent is the task's span: A's SendMessage
        at_a = next(
            s
            for s in memory.get_finished_spans()
            if s.kind == SpanKind.SERVER and (s.attributes or {})["a2a.front"] == "grpc"
        )
        assert (at_a.attributes or {})["a2a.task.id"] == task["id"]
        assert parent == f"00-{TRACE_ID}-{at_a.context.span_id:016x}-01"
    else:
        assert parent == TRACEPARENT


# -- the reverse bridge --------------------------------------------------------------------------


@pytest.mark.parametrize("spans_on", [False, True])
@ASYNC
async def test_the_reverse_bridge_carries_the_trace_to_the_json_agent(
    spans_on: bool, request: pytest.FixtureRequest
) -> None:
    memory = request.getfixturevalue("exporter") if spans_on else None
    observe = ObservabilitySettings(spans=spans_on)
    recording = Recording()
    async with serve_stack(interceptors=[recording], observability=observe) as agent:
        upstream = await open_json_upstream(agent.url)
        front = GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0, observability=observe))
        try:
            async with front, A2AClient(front.address, timeout=10) as client:
                response = await client.send_message(
                    A2AClient.text_request("echo hi"),
                    metadata=[("traceparent", TRACEPARENT), ("tracestate", TRACESTATE)],
                )
                assert response.task.status.state == types.TASK_STATE_COMPLETED
        finally:
            await upstream.aclose()
    (seen,) = recording.sends()
    assert seen.front == "http"
    assert seen.received is not None
    assert trace_id_of(seen.received) == TRACE_ID
    assert seen.trace is not None
    assert seen.trace.tracestate == TRACESTATE
    if memory is None:
        assert seen.received == TRACEPARENT
        return
    finished_spans = memory.get_finished_spans()
    at_front = next(
        s for s in finished_spans if s.kind == SpanKind.SERVER and (s.attributes or {})["a2a.front"] == "grpc"
    )
    at_agent = next(
        s for s in finished_spans if s.kind == SpanKind.SERVER and (s.attributes or {})["a2a.front"] == "http"
    )
    outbound = next(
        s for s in finished_spans if s.kind == SpanKind.CLIENT and parent_of(s) == at_front.context.span_id
    )
    caller = next(s for s in finished_spans if s.kind == SpanKind.CLIENT and s.parent is not None
                  and s.parent.span_id == int(CLIENT_SPAN, 16))  # fmt: skip
    assert parent_of(at_front) == caller.context.span_id  # our client's span, child of the one it named
    assert parent_of(at_agent) == outbound.context.span_id
    assert seen.received == f"00-{TRACE_ID}-{outbound.context.span_id:016x}-01"


@ASYNC
async def test_with_spans_a_stream_through_the_bridge_is_one_trace(exporter: InMemorySpanExporter) -> None:
    async with chain(spans_on=True) as hops:
        body = rpc("SendStreamingMessage", send_body("echo streamed"))
        headers = {"a2a-version": "1.0", "traceparent": TRACEPARENT, "accept": "text/event-stream"}
        async with httpx.AsyncClient(base_url=hops.url, timeout=20) as http:
            answer = await http.post("/", json=body, headers=headers)
        assert answer.status_code == 200
        assert "TASK_STATE_COMPLETED" in answer.text
        await until(lambda: len(exporter.get_finished_spans()) >= 2)
    bridge = finished(exporter, SpanKind.CLIENT, "A2AService/SendStreamingMessage")
    at_a = finished(exporter, SpanKind.SERVER, "A2AService/SendStreamingMessage")
    assert parent_of(bridge) == int(CLIENT_SPAN, 16)
    assert parent_of(at_a) == bridge.context.span_id
    assert at_a.context.trace_id == int(TRACE_ID, 16)
    assert at_a.attributes is not None
    assert at_a.attributes["a2a.task.state"] == "TASK_STATE_COMPLETED"
    assert at_a.attributes["a2a.outcome"] == "ok"
    assert (bridge.attributes or {})["a2a.outcome"] == "ok"


def test_an_agents_own_spans_continue_the_calls_trace() -> None:
    tracer = TracerProvider().get_tracer("agent")
    token = context.TRACE.set(context.TraceHeaders(TRACEPARENT, TRACESTATE))
    try:
        with tracer.start_as_current_span("lookup", context=spans.otel_context()) as own:
            assert f"{own.get_span_context().trace_id:032x}" == TRACE_ID
            assert own.parent is not None
            assert own.parent.span_id == int(CLIENT_SPAN, 16)
            assert own.get_span_context().trace_state.get("congo") == "t61rcWkgMzE"
    finally:
        context.TRACE.reset(token)
    with tracer.start_as_current_span("alone", context=spans.otel_context()) as alone:
        assert alone.parent is None  # outside a call: a trace of its own


@ASYNC
async def test_with_spans_an_invalid_traceparent_starts_a_new_trace(exporter: InMemorySpanExporter) -> None:
    observe = ObservabilitySettings(spans=True)
    settings = ServerSettings(host="127.0.0.1", port=0, observability=observe)
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), settings)
    await server.start()
    method = METHODS["SendMessage"]
    try:
        # A bare channel: the server reads exactly what was sent (our client would send its own span).
        async with grpc.aio.insecure_channel(server.address) as channel:
            send = channel.unary_unary(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
            )
            for headers in HOSTILE:
                metadata = (("a2a-version", "1.0"), *headers.items())
                response = await send(A2AClient.text_request("echo hi"), metadata=metadata, timeout=10)
                assert response.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await server.stop(1.0)
    served = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(served) == len(HOSTILE)
    for span, headers in zip(served, HOSTILE, strict=True):
        if trace.parse_traceparent(headers["traceparent"]):
            assert parent_of(span) == int(CLIENT_SPAN, 16)
            assert span.context.trace_id == int(TRACE_ID, 16)
        else:  # a root span: a new trace
            assert span.parent is None
            assert span.context.trace_id not in (0, int(TRACE_ID, 16))
        assert span.attributes is not None
        assert span.attributes["a2a.outcome"] == "ok"
