"""Prometheus metrics: a scripted run against real servers moves each metric by its expected delta,
every binding reaches the one metrics link, labels stay bounded under 10,000 tasks and hostile
input never becomes a label; ``/metrics`` on the bridge's port and on a metrics port of its own."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.ops import OpsApp
from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.bridge.upstream import Call, GrpcUpstream
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.mesh.drift import CHANGES
from a2a_grpc.observability.metrics import BINDINGS, Metrics, error_code
from a2a_grpc.observability.settings import ObservabilitySettings
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import METHODS, CallContext
from a2a_grpc.session.frames import CONNECT, ClientFrame, ServerFrame
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.tasks.eventlog import Backpressure, Retention, TaskLog
from tests.webhook import Receiver, until

ASYNC = pytest.mark.asyncio
V = {"A2A-Version": "1.0"}
ONCE = ClientSettings(timeout=10.0, resilience=ResiliencePolicy(max_attempts=1))
LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))


Key = tuple[str, tuple[tuple[str, str], ...]]


def snapshot() -> dict[Key, float]:
    """Every sample of every ``a2a_`` collector of the default registry."""
    out: dict[Key, float] = {}
    for family in REGISTRY.collect():
        if family.name.startswith("a2a_"):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


class Delta:
    """How far a sample moved since this object was made."""

    def __init__(self) -> None:
        self.before = snapshot()

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return snapshot().get(key, 0.0) - self.before.get(key, 0.0)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_webhook(text: str, url: str) -> types.SendMessageRequest:
    request = A2AClient.text_request(text)
    config = request.configuration.task_push_notification_config
    config.url, config.token = url, "tok"
    return request


@contextlib.asynccontextmanager
async def stack_of(agent: Agent, **grpc: object) -> AsyncIterator[tuple[AgentStack, PushNotifier]]:
    notifier = PushNotifier(
        policy=LOOPBACK, max_attempts=2, initial_backoff=0.01, max_backoff=0.02, timeout=2.0
    )
    settings = ServerSettings(**grpc)  # type: ignore[arg-type]
    try:
        async with AgentStack(
            agent,
            InMemoryTaskStore(),
            grpc=settings,
            host="127.0.0.1",
            grpc_port=0,
            http_port=0,
            notifier=notifier,
        ) as stack:
            yield stack, notifier
    finally:
        await notifier.aclose()


@ASYNC
async def test_a_scripted_run_moves_each_metric_by_its_delta(receiver: Receiver) -> None:
    async with (
        stack_of(ReferenceAgent(), limits=Limits(max_streams_per_principal=1)) as (stack, notifier),
        A2AClient(stack.grpc_address, settings=ONCE) as client,
    ):
        assert stack.http_url is not None
        # A unary call over gRPC, declaring its skill: its bytes both ways, its task's duration.
        delta = Delta()
        request = A2AClient.text_request("echo one")
        sent = await client.send_message(request, metadata=[("a2a-grpc-skill", "echo")])
        assert delta("a2a_requests_total", method="SendMessage", binding="grpc") == 1
        assert delta("a2a_request_duration_seconds_count", method="SendMessage", binding="grpc") == 1
        assert delta("a2a_received_bytes_total", binding="grpc") == request.ByteSize()
        assert delta("a2a_sent_bytes_total", binding="grpc") == sent.ByteSize()
        assert delta("a2a_task_duration_seconds_count", skill="echo", state="completed") == 1
        assert delta("a2a_calls_in_flight", binding="grpc") == 0
        assert delta("a2a_tasks_in_flight") == 0

        # A stream: every event counted; a task without a declared skill is skill "".
        delta = Delta()
        events = [e async for e in client.send_streaming_message(A2AClient.text_request("stream 3"))]
        assert delta("a2a_stream_events_total", method="SendStreamingMessage", binding="grpc") == len(events)
        assert delta("a2a_sent_bytes_total", binding="grpc") == sum(e.ByteSize() for e in events)
        assert delta("a2a_task_duration_seconds_count", skill="", state="completed") == 1
        failed = await client.send_message(A2AClient.text_request("fail on purpose"))
        assert failed.task.status.state == types.TASK_STATE_FAILED
        assert delta("a2a_task_duration_seconds_count", skill="", state="failed") == 1

        # An error, by its code.
        delta = Delta()
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task("no-such-task")
        assert delta("a2a_errors_total", error_code="TASK_NOT_FOUND") == 1
        assert delta("a2a_requests_total", method="GetTask", binding="grpc") == 1

        # A subscriber on a running task: in flight while it runs, its lag observed; a second
        # stream passes max_streams_per_principal (1) and is refused.
        delta = Delta()
        slow = await client.send_message(A2AClient.text_request("slow 0.5", return_immediately=True))
        subscriber = aiter(client.subscribe_to_task(slow.task.id))
        first = await anext(subscriber)
        assert first.WhichOneof("payload") == "task"
        assert delta("a2a_calls_in_flight", binding="grpc") == 1
        assert delta("a2a_tasks_in_flight") == 1
        with pytest.raises(errors.RateLimitedError):
            async for _ in client.subscribe_to_task(slow.task.id):
                pass
        assert delta("a2a_rate_limited_total", limit="max_streams_per_principal") == 1
        assert delta("a2a_errors_total", error_code="RATE_LIMITED") == 1
        rest = [e async for e in subscriber]
        assert rest[-1].status_update.status.state == types.TASK_STATE_COMPLETED
        assert delta("a2a_subscriber_lag_events_count") >= len(rest)
        assert delta("a2a_calls_in_flight", binding="grpc") == 0
        await until(lambda: delta("a2a_tasks_in_flight") == 0)

        # Webhooks: one receiver answers, one port refuses; the counters follow the notifier's.
        delta = Delta()
        before = (notifier.stats.delivered, notifier.stats.failed, notifier.stats.retried)
        await client.send_message(with_webhook("echo hooked", receiver.url()))
        await client.send_message(with_webhook("echo lost", f"http://127.0.0.1:{closed_port()}/hook"))
        await until(lambda: notifier.stats.failed > before[1] and notifier.stats.delivered > before[0])
        await until(lambda: not notifier.targets())
        assert (
            delta("a2a_webhook_deliveries_total", outcome="delivered") == notifier.stats.delivered - before[0]
        )
        assert delta("a2a_webhook_deliveries_total", outcome="failed") == notifier.stats.failed - before[1]
        assert delta("a2a_webhook_retries_total") == notifier.stats.retried - before[2] > 0
        assert len(receiver.requests) == notifier.stats.delivered - before[0]

        # Sessions: a handshake that opens, one that is refused, the gauge while one is open.
        delta = Delta()
        async with client.session() as session:
            assert delta("a2a_sessions_active") == 1
            await session.send_message(A2AClient.text_request("echo over a session"))
        assert delta("a2a_handshake_duration_seconds_count", outcome="opened") == 1
        assert delta("a2a_requests_total", method="SendMessage", binding="session") == 1
        await until(lambda: delta("a2a_sessions_active") == 0)
        with pytest.raises(errors.CapabilityMismatchError):
            async with client.session(required_skills=["no-such-skill"]):
                pass
        assert delta("a2a_handshake_duration_seconds_count", outcome="refused") == 1
        assert delta("a2a_sessions_active") == 0

        # The bridge's upstream calls: gRPC, and the in-process bridge's two JSON bindings.
        delta = Delta()
        call = Call({"a2a-version": "1.0"}, 5.0)
        upstreams = [
            ("grpc", GrpcUpstream(stack.grpc_address)),
            ("jsonrpc", JsonRpcUpstream(stack.http_url + "/")),
            ("rest", RestUpstream(stack.http_url)),
        ]
        for binding, upstream in upstreams:
            try:
                got = await upstream.unary("GetTask", types.GetTaskRequest(id=sent.task.id), call)
                assert isinstance(got, types.Task)
                assert got.id == sent.task.id
                streamed = [e async for e in upstream.stream("SendStreamingMessage", request, call)]
            finally:
                await upstream.aclose()
            assert (
                delta("a2a_bridge_upstream_duration_seconds_count", transport=binding, method="GetTask") == 1
            )
            assert delta("a2a_requests_total", method="GetTask", binding=binding) == 1
            assert delta("a2a_stream_events_total", method="SendStreamingMessage", binding=binding) == len(
                streamed
            )
        assert (
            delta(
                "a2a_bridge_upstream_duration_seconds_count", transport="grpc", method="SendStreamingMessage"
            )
            == 1
        )

        # The exposition on the bridge's port.
        async with httpx.AsyncClient(base_url=stack.http_url, timeout=10) as http:
            scraped = await http.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"] == CONTENT_TYPE_LATEST
        families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
        assert families["a2a_requests"].type == "counter"
        assert families["a2a_handshake_duration_seconds"].type == "histogram"
        assert families["a2a_sessions_active"].type == "gauge"


@ASYNC
async def test_every_binding_reaches_the_one_metrics_link() -> None:
    async with (
        stack_of(ReferenceAgent()) as (stack, _),
        A2AClient(stack.grpc_address, settings=ONCE) as client,
        httpx.AsyncClient(base_url=stack.http_url or "", timeout=10, headers=V) as http,
    ):
        assert stack.server is not None
        assert stack.server.service is not None
        links = [i for i in stack.server.service.interceptors if isinstance(i, Metrics)]
        assert len(links) == 1
        assert stack.server.service.interceptors[0] is links[0]
        delta = Delta()
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task("no-such-task")
        await client.send_message(A2AClient.text_request("echo over grpc"))  # an answer: bytes out
        async with client.session() as session:
            with pytest.raises(errors.TaskNotFoundError):
                await session.get_task("no-such-task")
        async with client.live("echo live") as live:
            events = [e async for e in live]
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "no-such-task"}}
        assert "error" in (await http.post("/", json=rpc)).json()
        assert (await http.get("/tasks/no-such-task")).status_code == 404
        message = {"message": {"messageId": "m-rest", "role": "ROLE_USER", "parts": [{"text": "echo rest"}]}}
        assert (await http.post("/message:send", json=message)).status_code == 200  # a body in
        for binding in ("grpc", "session", "jsonrpc", "rest"):
            assert delta("a2a_requests_total", method="GetTask", binding=binding) == 1, binding
        for binding in ("grpc", "session", "live", "jsonrpc", "rest"):  # each binding's own bytes
            assert delta("a2a_received_bytes_total", binding=binding) > 0, binding
            assert delta("a2a_sent_bytes_total", binding=binding) > 0, binding
        assert delta("a2a_requests_total", method="SendStreamingMessage", binding="live") == 1
        assert (
            delta("a2a_stream_events_total", method="SendStreamingMessage", binding="live") == len(events) > 0
        )
        assert delta("a2a_errors_total", error_code="TASK_NOT_FOUND") == 4


@ASYNC
async def test_with_metrics_off_the_link_is_not_in_the_chain_and_nothing_is_served() -> None:
    off = ObservabilitySettings(metrics=False)
    async with (
        stack_of(ReferenceAgent(), observability=off) as (stack, _),
        A2AClient(stack.grpc_address, settings=ONCE) as client,
        httpx.AsyncClient(base_url=stack.http_url or "", timeout=10) as http,
    ):
        assert stack.server is not None
        assert stack.server.service is not None
        assert not any(isinstance(i, Metrics) for i in stack.server.service.interceptors)
        delta = Delta()
        await client.send_message(A2AClient.text_request("echo quiet"))
        assert delta("a2a_requests_total", method="SendMessage", binding="grpc") == 0
        scraped = await http.get("/metrics")
        assert scraped.status_code == 404
        assert "a2a_requests_total" not in scraped.text


@ASYNC
async def test_a_grpc_only_server_and_the_reverse_bridge_serve_metrics_on_a_port_of_their_own() -> None:
    ops = ObservabilitySettings(metrics_port=0)
    async with (
        AgentStack(
            ReferenceAgent(), grpc=ServerSettings(observability=ops), host="127.0.0.1", grpc_port=0
        ) as grpc_only,
        stack_of(ReferenceAgent()) as (json_agent, _),
    ):
        assert grpc_only.http is None
        assert grpc_only.ops is not None
        assert grpc_only.ops.url.startswith("http://127.0.0.1:")
        async with A2AClient(grpc_only.grpc_address, settings=ONCE) as client:
            await client.send_message(A2AClient.text_request("echo counted"))
        assert json_agent.http_url is not None
        front = GrpcFront(JsonRpcUpstream(json_agent.http_url + "/"), ServerSettings(observability=ops))
        await front.start()
        try:
            assert front.ops is not None
            assert front.ops.port != grpc_only.ops.port
            delta = Delta()
            async with A2AClient(front.address, settings=ONCE) as client:
                await client.send_message(A2AClient.text_request("echo through the reverse bridge"))
            # Counted by the front (gRPC) and by the JSON agent behind it (its bridge's JSON-RPC).
            assert delta("a2a_requests_total", method="SendMessage", binding="grpc") == 1
            assert delta("a2a_requests_total", method="SendMessage", binding="jsonrpc") == 1
            assert (
                delta("a2a_bridge_upstream_duration_seconds_count", transport="jsonrpc", method="SendMessage")
                == 1
            )
            async with httpx.AsyncClient(timeout=10) as http:
                for url in (grpc_only.ops.url, front.ops.url):
                    scraped = await http.get(url + "/metrics")
                    assert scraped.status_code == 200
                    assert scraped.headers["content-type"] == CONTENT_TYPE_LATEST
                    assert 'a2a_requests_total{binding="grpc",method="SendMessage"}' in scraped.text
                    assert (await http.post(url + "/metrics")).status_code == 405
                    assert (await http.get(url + "/tasks")).status_code == 404  # nothing else
        finally:
            await front.stop()
            await front.upstream.aclose()
        assert front.ops is None
    assert grpc_only.ops is None  # stopped with the stack


@ASYNC
async def test_more_routes_mount_on_the_ops_app_exactly_or_under_a_prefix() -> None:
    seen: list[str] = []

    def answering(body: bytes):  # type: ignore[no-untyped-def]
        async def app(scope, receive, send):  # type: ignore[no-untyped-def]
            seen.append(scope["path"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        return app

    ops = OpsApp({"/debug/a2a/": answering(b"prefix"), "/debug/a2a/sessions": answering(b"exact")})
    ops.mount("/debug/a2a/sessions/", answering(b"longer prefix"))
    with pytest.raises(ValueError, match="starts with '/'"):
        ops.mount("debug", answering(b""))
    assert ops.paths == ["/debug/a2a/", "/debug/a2a/sessions", "/debug/a2a/sessions/", "/metrics"]
    transport = httpx.ASGITransport(app=ops)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        assert (await http.get("/debug/a2a/sessions")).text == "exact"
        assert (await http.get("/debug/a2a/sessions/abc/handshake")).text == "longer prefix"
        assert (await http.get("/debug/a2a/other")).text == "prefix"
        assert (await http.get("/debug/a2")).status_code == 404
        assert (await http.head("/metrics")).status_code == 200
        assert "a2a_requests_total" in (await http.get("/metrics")).text
    assert seen == ["/debug/a2a/sessions", "/debug/a2a/sessions/abc/handshake", "/debug/a2a/other"]
    assert OpsApp(metrics=False).route("/metrics") is None


@ASYNC
async def test_a_reader_cut_off_behind_the_window_is_counted() -> None:
    log = TaskLog("", "t", Retention(events=2, bytes=1 << 20), Backpressure(events=1, bytes=1 << 20))
    for i in range(5):
        log.append(types.StreamResponse(), i + 1)
    delta = Delta()
    reader = log.reader(after=0)
    with pytest.raises(errors.EventsNotRetainedError):
        async for _ in reader:
            pass
    assert delta("a2a_events_not_retained_total") == 1


class Alpha(Agent):
    """Completes every message at once; its card has one skill, ``alpha``."""

    def __init__(self) -> None:
        self.card = types.AgentCard(name="alpha", version="1.0")
        self.card.capabilities.streaming = True
        self.card.skills.add(id="alpha", name="Alpha")

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.complete()


ALLOWED = {
    "method": {*METHODS, "GetAgentCard", "other"},
    "binding": set(BINDINGS),
    # The cards of this file's agents (the registry is the process's: other tests' labels are there).
    "skill": {"", "other", "alpha", *(skill.id for skill in ReferenceAgent().card.skills)},
    "state": {"completed", "failed", "canceled", "rejected", "other"},
    "outcome": {"opened", "resumed", "refused", "timeout", "failed", "delivered", "dropped"}
    | {"registered", "refreshed", "uploaded"},  # the capability registry's
    "transport": {"grpc", "jsonrpc", "rest"},
    # Other tests' counters in this process's registry: closed sets too.
    "change": set(CHANGES),
    "kind": {"skill", "name", "all"},
    "result": {"hit", "miss", "stale", "failed"},
    "what": {"rates", "counts", "receipts"},
}


def label_sets() -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """Every ``a2a_`` family's distinct label sets (``le`` aside)."""
    out: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for family in REGISTRY.collect():
        if family.name.startswith("a2a_"):
            sets = out.setdefault(family.name, set())
            for sample in family.samples:
                sets.add(tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le")))
    return out


@ASYNC
@pytest.mark.timeout(180)
async def test_labels_stay_bounded_under_ten_thousand_distinct_tasks() -> None:
    server = A2AServer(Alpha(), InMemoryTaskStore(), ServerSettings())
    await server.start()
    try:
        assert server.service is not None
        send = server.service.unary("SendMessage")
        delta = Delta()
        ids = set()
        for i in range(10_000):
            headers = {"a2a-version": "1.0", "a2a-grpc-skill": "alpha" if i % 2 else f"skill-{i}"}
            context = CallContext.from_headers(
                headers, front=("grpc", "session", "live", "http", f"f{i}")[i % 5]
            )
            answer = await send(A2AClient.text_request(f"message {i}", context_id=f"ctx-{i}"), context)
            assert isinstance(answer, types.SendMessageResponse)
            ids.update((answer.task.id, answer.task.context_id))
        assert len(ids) == 20_000
        assert delta("a2a_task_duration_seconds_count", skill="alpha", state="completed") == 5_000
        assert delta("a2a_task_duration_seconds_count", skill="other", state="completed") == 5_000
        sets = label_sets()
        for family, found in sets.items():
            assert len(found) <= 11 * len(BINDINGS) + 10, family  # methods x bindings at most
            for labels in found:
                for name, value in labels:
                    assert value not in ids
                    assert value in ALLOWED.get(
                        name, {value} if name in ("error_code", "limit") else set()
                    ), (
                        family,
                        name,
                        value,
                    )
        codes = {v for labels in sets["a2a_errors"] for k, v in labels if k == "error_code"}
        reasons = {
            s.reason or s.grpc_code.name
            for s in (*errors.ERROR_TABLE, *errors.OUR_ERRORS, *errors.TRANSPORT_ERRORS)
        }
        assert codes <= reasons | {"INTERNAL"}
    finally:
        await server.stop(grace=1.0)


@ASYNC
async def test_hostile_input_never_becomes_a_label() -> None:
    hostile = 'Evil"} 1\nboom{x="' + "z" * 10_000
    async with (
        stack_of(ReferenceAgent()) as (stack, _),
        httpx.AsyncClient(base_url=stack.http_url or "", timeout=10, headers=V) as http,
        A2AClient(stack.grpc_address, settings=ONCE) as client,
    ):
        delta = Delta()
        rpc = {"jsonrpc": "2.0", "id": 1, "method": hostile, "params": {}}
        assert (await http.post("/", json=rpc)).json()["error"]["code"] == -32601  # method not found
        assert (await http.get("/" + "Q" * 2000 + "Method")).status_code == 404
        # A huge id: its error message quotes part of it; the label is the error's code.
        with pytest.raises(errors.A2AError) as refused:
            await client.get_task("w" * 100_000)
        code = error_code(refused.value)
        assert delta("a2a_errors_total", error_code=code) == 1
        failed = await client.send_message(A2AClient.text_request("fail " + "y" * 50_000))
        assert failed.task.status.state == types.TASK_STATE_FAILED
        async with client.session(agent_name=hostile[:200]) as session:
            with pytest.raises(errors.InvalidParamsError):
                await session.get_task("v" * 5_000)
        scraped = (await http.get("/metrics")).text
    for marker in ("Evil", "QQQQ", "wwww", "yyyy", "vvvv", "boom"):
        assert marker not in scraped
    for family in text_string_to_metric_families(scraped):
        for sample in family.samples:
            for name, value in sample.labels.items():
                assert len(value) <= 64, (sample.name, name)
                assert re.fullmatch(r"[A-Za-z0-9_.:+\-]*", value), (sample.name, name, value)


@ASYNC
async def test_a_handshake_that_never_comes_is_a_timeout_and_a_peer_that_leaves_a_failure() -> None:
    settings = ServerSettings(session=SessionSettings(handshake_timeout=0.3))
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), settings)
    await server.start()
    try:
        delta = Delta()
        async with grpc.aio.insecure_channel(server.address) as channel:
            connect = channel.stream_stream(
                CONNECT,
                request_serializer=ClientFrame.SerializeToString,
                response_deserializer=ServerFrame.FromString,
            )
            silent = connect()
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(silent.read(), 10)
            assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert delta("a2a_handshake_duration_seconds_count", outcome="timeout") == 1
            leaving = connect()
            await asyncio.sleep(0.05)
            leaving.cancel()
        await until(lambda: delta("a2a_handshake_duration_seconds_count", outcome="failed") == 1)
        assert delta("a2a_handshake_duration_seconds_count", outcome="opened") == 0
        assert delta("a2a_sessions_active") == 0
    finally:
        await server.stop(grace=1.0)
