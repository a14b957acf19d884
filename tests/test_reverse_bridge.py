"""The gRPC → HTTP bridge: GrpcFront over an agent that speaks JSON-RPC or HTTP+JSON.

1. Our gRPC client drives the official SDK's agent, served by the SDK's own JSON-RPC and REST apps,
   through ``GrpcFront`` + ``open_json_upstream``: all eleven RPCs and every error the SDK produces,
   each error arriving as our class with the spec's gRPC code.
2. Transport behaviour against the same real peers: an agent that goes away (UNAVAILABLE naming
   it, and the front serves on), a client that leaves a stream (the HTTP stream is closed), a
   deadline (the HTTP call is cut), service parameters and the interface's tenant.
3. The JSON wire itself, against a scripted HTTP server: answers the bridge must refuse, error
   forms of both bindings, and errors that arrive as SSE events after the stream has started;
   ids and tenants that would climb out of the agent's path (``..``) refused before anything is
   sent, every other value one segment of an A2A route (a recording agent sees the raw paths).
4. The SSE parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import httpx
import orjson
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from a2a_grpc import errors, types
from a2a_grpc.bridge.errordetails import ERROR_INFO_TYPE
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import CARD_PATH, JsonRpcUpstream, RestUpstream, open_json_upstream
from a2a_grpc.bridge.routes import Router, compile_routes
from a2a_grpc.bridge.sse import SseDecoder, SseEvent
from a2a_grpc.bridge.upstream import Call, Upstream
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.server import ServerSettings
from tests.json_peers import JSONRPC_PATH, JsonPeer, Seen, bind, sdk_json_peer, serve_asgi
from tests.webhook import until

T = TypeVar("T")
C = grpc.StatusCode
TIMEOUT = 5.0
LIMIT = 5.0
"""Upper bound of every wait for something to happen server-side."""
HOOK = "https://hooks.example.com/hook"  # a public name: the webhook policy refuses loopback
BINDINGS = ["JSONRPC", "HTTP+JSON"]
SETTINGS = ServerSettings(host="127.0.0.1", port=0, grace_seconds=1.0)
V1 = {"a2a-version": "1.0"}
interop = pytest.mark.interop
in_module_loop = pytest.mark.asyncio(loop_scope="module")
"""Every async test runs in the module's event loop, where the shared servers live."""


async def collect(events: AsyncIterable[T]) -> list[T]:
    return [event async for event in events]


async def drain(events: AsyncIterable[T], into: list[T]) -> None:
    """Append each event to ``into`` as it arrives (what came before a failure stays visible)."""
    async for event in events:
        into.append(event)


def kinds(events: list[types.StreamResponse]) -> list[str]:
    return [str(event.WhichOneof("payload")) for event in events]


@dataclass
class Bridge:
    binding: str
    peer: JsonPeer
    upstream: Upstream
    front: GrpcFront
    client: A2AClient

    def sent(self, method: str, rest_path: str) -> list[Seen]:
        """What reached the SDK for ``method`` (JSON-RPC) or at a path ending in ``rest_path`` (REST)."""
        if self.binding == "JSONRPC":
            return [
                r for r in self.peer.recorder.to(JSONRPC_PATH) if orjson.loads(r.body)["method"] == method
            ]
        return self.peer.recorder.to(rest_path)


@contextlib.asynccontextmanager
async def bridge(binding: str, **peer: Any) -> AsyncIterator[Bridge]:
    """An SDK agent over ``binding``, GrpcFront over ``open_json_upstream`` of it, our client of that."""
    async with sdk_json_peer((binding,), **peer) as agent:
        upstream = await open_json_upstream(agent.url)
        try:
            async with (
                GrpcFront(upstream, SETTINGS) as front,
                A2AClient(front.address, timeout=TIMEOUT) as client,
            ):
                yield Bridge(binding, agent, upstream, front, client)
        finally:
            await upstream.aclose()


class Bridges:
    """One bridge per (binding, SDK agent options), shared by the module's tests.

    Starting and stopping uvicorn costs ~0.2 s; sharing keeps the module at a few seconds. Tests
    only rely on what they create themselves (fresh task and context ids), and each starts with
    an empty request record.
    """

    def __init__(self) -> None:
        self._open: dict[
            tuple[str, tuple[tuple[str, Any], ...]], tuple[Bridge, contextlib.AsyncExitStack]
        ] = {}

    async def get(self, binding: str, **peer: Any) -> Bridge:
        key = (binding, tuple(sorted(peer.items())))
        if key not in self._open:
            stack = contextlib.AsyncExitStack()
            self._open[key] = (await stack.enter_async_context(bridge(binding, **peer)), stack)
        shared = self._open[key][0]
        shared.peer.recorder.requests.clear()
        return shared

    async def aclose(self) -> None:
        await asyncio.gather(*(stack.aclose() for _, stack in self._open.values()))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bridges() -> AsyncIterator[Bridges]:
    shared = Bridges()
    try:
        yield shared
    finally:
        await shared.aclose()


@pytest_asyncio.fixture(params=BINDINGS, loop_scope="module")
async def bridged(request: pytest.FixtureRequest, bridges: Bridges) -> Bridge:
    return await bridges.get(request.param)


async def send(client: A2AClient, text: str, **options: Any) -> types.Task:
    response = await client.send_message(A2AClient.text_request(text, **options))
    assert response.HasField("task"), response
    return response.task


# ==== 1. the eleven RPCs ============================================================================


@interop
@in_module_loop
async def test_the_card_chooses_the_upstream(bridged: Bridge) -> None:
    kind = JsonRpcUpstream if bridged.binding == "JSONRPC" else RestUpstream
    assert isinstance(bridged.upstream, kind)
    assert bridged.upstream.url == bridged.peer.interface_url(bridged.binding)
    card = await bridged.upstream.card()
    assert card.name == "a2a-sdk peer"
    assert [i.protocol_binding for i in card.supported_interfaces] == ["GRPC", bridged.binding]


@interop
@in_module_loop
async def test_send_message_returns_a_completed_task(bridged: Bridge) -> None:
    task = await send(bridged.client, "echo hello")
    assert isinstance(task, types.Task)
    assert task.status.state == types.TASK_STATE_COMPLETED
    assert [(a.name, [p.text for p in a.parts]) for a in task.artifacts] == [("echo", ["echo hello"])]
    assert [(m.role, m.parts[0].text) for m in task.history] == [(types.ROLE_USER, "echo hello")]
    assert len(bridged.sent("SendMessage", "/message:send")) == 1


@interop
@in_module_loop
@pytest.mark.parametrize("streaming", [False, True], ids=["SendMessage", "SendStreamingMessage"])
async def test_a_direct_message_reply(bridged: Bridge, streaming: bool) -> None:
    request = A2AClient.text_request("reply hi there")
    if streaming:
        events = await collect(bridged.client.send_streaming_message(request, timeout=TIMEOUT))
        assert kinds(events) == ["message"]
        message = events[0].message
    else:
        message = (await bridged.client.send_message(request)).message
    assert (message.role, [p.text for p in message.parts]) == (types.ROLE_AGENT, ["hi there"])


@interop
@in_module_loop
async def test_streaming_message_yields_the_task_then_ordered_updates(bridged: Bridge) -> None:
    events = await collect(
        bridged.client.send_streaming_message(A2AClient.text_request("stream 3"), timeout=TIMEOUT)
    )
    assert kinds(events) == [
        "task",
        "status_update",
        "artifact_update",
        "artifact_update",
        "artifact_update",
        "status_update",
    ]
    task = events[0].task
    assert events[1].status_update.status.state == types.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events[2:5]]
    assert [c.artifact.parts[0].text for c in chunks] == ["chunk 0", "chunk 1", "chunk 2"]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, False), (True, True)]
    assert {c.task_id for c in chunks} == {task.id}
    assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
    stored = await bridged.client.get_task(task.id)
    assert [p.text for p in stored.artifacts[0].parts] == ["chunk 0", "chunk 1", "chunk 2"]


@interop
@in_module_loop
async def test_get_task_with_history_length(bridged: Bridge) -> None:
    asked = await send(bridged.client, "ask")
    assert asked.status.state == types.TASK_STATE_INPUT_REQUIRED
    done = await send(bridged.client, "the report", task_id=asked.id, context_id=asked.context_id)
    assert done.status.state == types.TASK_STATE_COMPLETED
    full = ["ask", "what should I work on?", "the report"]
    assert [m.parts[0].text for m in (await bridged.client.get_task(asked.id)).history] == full
    got = await bridged.client.get_task(asked.id, history_length=1)
    assert [m.parts[0].text for m in got.history] == full[-1:]


@interop
@in_module_loop
async def test_list_tasks_filters_and_pages(bridged: Bridge) -> None:
    client = bridged.client
    context_id = str(uuid.uuid4())
    created = [(await send(client, f"echo {i}", context_id=context_id)).id for i in range(3)]
    failed = await send(client, "fail on purpose", context_id=context_id)
    created.append(failed.id)
    await send(client, "echo elsewhere")
    first = await client.list_tasks(types.ListTasksRequest(context_id=context_id, page_size=3))
    assert (first.total_size, first.page_size, len(first.tasks)) == (4, 3, 3)
    assert first.next_page_token
    second = await client.list_tasks(
        types.ListTasksRequest(context_id=context_id, page_size=3, page_token=first.next_page_token)
    )
    assert (len(second.tasks), second.next_page_token) == (1, "")
    assert [t.id for t in [*first.tasks, *second.tasks]] == created[::-1]
    only_failed = await client.list_tasks(
        types.ListTasksRequest(context_id=context_id, status=types.TASK_STATE_FAILED)
    )
    assert [t.id for t in only_failed.tasks] == [failed.id]


@interop
@in_module_loop
async def test_cancel_a_slow_task(bridged: Bridge) -> None:
    task = await send(bridged.client, "slow 30", return_immediately=True)
    assert task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
    canceled = await bridged.client.cancel_task(task.id)
    assert (canceled.id, canceled.status.state) == (task.id, types.TASK_STATE_CANCELED)
    assert (await bridged.client.get_task(task.id)).status.state == types.TASK_STATE_CANCELED


@interop
@in_module_loop
async def test_subscribe_to_a_running_task(bridged: Bridge) -> None:
    task = await send(bridged.client, "slow 0.15", return_immediately=True)
    events = await collect(bridged.client.subscribe_to_task(task.id, timeout=TIMEOUT))
    assert kinds(events)[0] == "task"
    assert set(kinds(events)[1:]) == {"status_update"}
    assert events[0].task.id == task.id
    updates = [e.status_update for e in events[1:]]
    assert updates[-1].status.state == types.TASK_STATE_COMPLETED
    assert updates[-1].status.message.parts[0].text == "done"


@interop
@in_module_loop
async def test_push_notification_config_crud(bridged: Bridge) -> None:
    client = bridged.client
    task = await send(client, "ask")
    config = types.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url=HOOK, token="secret")
    config.authentication.scheme = "Bearer"
    assert await client.create_task_push_notification_config(config) == config
    other = types.TaskPushNotificationConfig(task_id=task.id, id="hook-2", url=HOOK + "/2")
    assert await client.create_task_push_notification_config(other) == other
    assert await client.get_task_push_notification_config(task.id, "hook-1") == config
    listed = await client.list_task_push_notification_configs(task.id)
    assert sorted(c.id for c in listed.configs) == ["hook-1", "hook-2"]
    await client.delete_task_push_notification_config(task.id, "hook-1")
    listed = await client.list_task_push_notification_configs(task.id)
    assert [c.id for c in listed.configs] == ["hook-2"]
    with pytest.raises(errors.TaskNotFoundError):
        await client.get_task_push_notification_config(task.id, "hook-1")


@interop
@in_module_loop
async def test_get_extended_agent_card(bridged: Bridge) -> None:
    card = await bridged.client.get_extended_agent_card()
    assert isinstance(card, types.AgentCard)
    assert card.name == "a2a-sdk peer"
    assert card.description.endswith(" (extended)")


# ==== 1. the errors =================================================================================

Failing = Callable[[], Awaitable[object]]


async def _completed(client: A2AClient) -> str:
    return (await send(client, "echo done")).id


def _now(call: Callable[[A2AClient], Awaitable[object]]) -> Callable[[A2AClient], Awaitable[Failing]]:
    async def setup(client: A2AClient) -> Failing:
        return lambda: call(client)

    return setup


def _after_completed(
    call: Callable[[A2AClient, str], Awaitable[object]],
) -> Callable[[A2AClient], Awaitable[Failing]]:
    async def setup(client: A2AClient) -> Failing:
        task_id = await _completed(client)
        return lambda: call(client, task_id)

    return setup


def _no_parts() -> types.SendMessageRequest:
    request = A2AClient.text_request("x")
    del request.message.parts[:]
    return request


def _push(client: A2AClient) -> Awaitable[object]:
    return client.create_task_push_notification_config(
        types.TaskPushNotificationConfig(task_id="t", url=HOOK)
    )


@dataclass(frozen=True)
class Refusal:
    """A call the SDK refuses, the class our client must raise and the gRPC code it must receive."""

    id: str
    error: type[errors.A2AError]
    code: grpc.StatusCode
    setup: Callable[[A2AClient], Awaitable[Failing]]
    peer: dict[str, Any] = field(default_factory=dict)
    version: str = "1.0"


LIMITED = {"push": False, "streaming": False, "extended": False}
"""An SDK agent without push notifications, streaming or an extended card."""
REFUSALS = [
    Refusal("get-unknown-task", errors.TaskNotFoundError, C.NOT_FOUND, _now(lambda c: c.get_task("nope"))),
    Refusal(
        "cancel-unknown-task", errors.TaskNotFoundError, C.NOT_FOUND, _now(lambda c: c.cancel_task("nope"))
    ),
    Refusal(
        "subscribe-unknown-task",
        errors.TaskNotFoundError,
        C.NOT_FOUND,
        _now(lambda c: collect(c.subscribe_to_task("nope", timeout=TIMEOUT))),
    ),
    Refusal(
        "cancel-completed-task",
        errors.TaskNotCancelableError,
        C.FAILED_PRECONDITION,
        _after_completed(lambda c, t: c.cancel_task(t)),
    ),
    Refusal(
        "message-to-completed-task",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _after_completed(lambda c, t: c.send_message(A2AClient.text_request("more", task_id=t))),
    ),
    Refusal(
        "subscribe-to-completed-task",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _after_completed(lambda c, t: collect(c.subscribe_to_task(t, timeout=TIMEOUT))),
    ),
    Refusal(
        "message-without-parts",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now(lambda c: c.send_message(_no_parts())),
    ),
    Refusal(
        "negative-history-length",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now(lambda c: c.get_task("x", history_length=-1)),
    ),
    Refusal(
        "page-size-too-large",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now(lambda c: c.list_tasks(types.ListTasksRequest(page_size=1000))),
    ),
    Refusal(
        "push-unsupported",
        errors.PushNotificationNotSupportedError,
        C.FAILED_PRECONDITION,
        _now(_push),
        LIMITED,
    ),
    Refusal(
        "streaming-unsupported",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _now(
            lambda c: collect(c.send_streaming_message(A2AClient.text_request("stream 1"), timeout=TIMEOUT))
        ),
        LIMITED,
    ),
    Refusal(
        "extended-card-unsupported",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _now(lambda c: c.get_extended_agent_card()),
        LIMITED,
    ),
    Refusal(
        "extended-card-not-configured",
        errors.ExtendedAgentCardNotConfiguredError,
        C.FAILED_PRECONDITION,
        _now(lambda c: c.get_extended_agent_card()),
        {"extended_configured": False},
    ),
    Refusal(
        "version-not-supported",
        errors.VersionNotSupportedError,
        C.FAILED_PRECONDITION,
        _now(lambda c: c.get_task("x")),
        version="0.3",
    ),
]


@interop
@in_module_loop
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
async def test_sdk_errors_reach_our_client_with_the_spec_code(
    case: Refusal, binding: str, bridges: Bridges
) -> None:
    b = await bridges.get(binding, **case.peer)
    async with A2AClient(b.front.address, timeout=TIMEOUT, version=case.version) as client:
        failing = await case.setup(client)
        with pytest.raises(errors.A2AError) as info:
            await failing()
    assert type(info.value) is case.error, repr(info.value)
    assert info.value.grpc_code == case.code  # as received by our client, from the front
    assert info.value.grpc_code == case.error.spec.grpc_code


# ==== 2. transport behaviour ========================================================================


@interop
@in_module_loop
@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_agent_that_goes_away_is_unavailable_and_the_front_serves_on(binding: str) -> None:
    async with sdk_json_peer((binding,)) as agent:
        upstream = await open_json_upstream(agent.url)
    # The front's own answers are under test: a client that neither retries nor opens a breaker.
    plain = ClientSettings(timeout=TIMEOUT, resilience=ResiliencePolicy(max_attempts=1))
    try:
        async with (
            GrpcFront(upstream, SETTINGS) as front,
            A2AClient(front.address, settings=plain) as client,
        ):
            with pytest.raises(errors.UnavailableError) as unary:
                await client.get_task("x")
            with pytest.raises(errors.UnavailableError) as stream:
                await collect(
                    client.send_streaming_message(A2AClient.text_request("stream 1"), timeout=TIMEOUT)
                )
            for err in (unary.value, stream.value):
                assert err.grpc_code == C.UNAVAILABLE
                assert f"upstream agent at {agent.interface_url(binding)} is unavailable" in err.message
            channel = grpc.aio.insecure_channel(front.address)
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT
            )
            await channel.close()
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            async with sdk_json_peer((binding,), port=agent.port):  # the agent comes back on its port
                task = await send(client, "echo again")
            assert task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await upstream.aclose()


@in_module_loop
async def test_an_agent_nobody_serves_is_unavailable() -> None:
    sock = bind()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    with pytest.raises(errors.UnavailableError) as info:
        await open_json_upstream(url)
    assert f"upstream agent at {url}{CARD_PATH} is unavailable" in info.value.message
    upstream = JsonRpcUpstream(url)
    try:
        with pytest.raises(errors.UnavailableError) as call:
            await upstream.unary("GetTask", types.GetTaskRequest(id="x"), Call(V1, TIMEOUT))
        assert f"upstream agent at {url} is unavailable" in call.value.message
    finally:
        await upstream.aclose()


async def cancel_context(client: A2AClient, context_id: str) -> None:
    """Cancel the tasks a test left running in ``context_id`` (so the agent has no 30 s work left)."""
    for task in (await client.list_tasks(types.ListTasksRequest(context_id=context_id))).tasks:
        await client.cancel_task(task.id)


@interop
@in_module_loop
async def test_a_client_leaving_a_stream_closes_the_upstream_stream(bridged: Bridge) -> None:
    context_id = str(uuid.uuid4())
    request = A2AClient.text_request("slow 30", context_id=context_id)
    stream = bridged.client.send_streaming_message(request, timeout=TIMEOUT)
    first = await anext(stream)
    assert first.WhichOneof("payload") == "task"
    [sent] = bridged.sent("SendStreamingMessage", "/message:stream")
    assert not sent.aborted
    assert not sent.done
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    await until(lambda: sent.aborted and sent.done, LIMIT)  # the SDK saw us leave and ended its stream
    await cancel_context(bridged.client, context_id)


@interop
@in_module_loop
async def test_closing_an_upstream_stream_between_events_closes_the_http_stream(bridged: Bridge) -> None:
    context_id = str(uuid.uuid4())
    request = A2AClient.text_request("slow 30", context_id=context_id)
    events = bridged.upstream.stream("SendStreamingMessage", request, Call(V1, TIMEOUT))
    first = await anext(events)
    assert isinstance(first, types.StreamResponse)
    assert first.WhichOneof("payload") == "task"
    [sent] = bridged.sent("SendStreamingMessage", "/message:stream")
    await events.aclose()  # suspended at a yield, not in a read: only our own close can end the response
    await until(lambda: sent.aborted and sent.done, LIMIT)
    await cancel_context(bridged.client, context_id)


@interop
@in_module_loop
async def test_a_client_deadline_cuts_the_upstream_call(bridged: Bridge) -> None:
    context_id = str(uuid.uuid4())
    with pytest.raises(errors.DeadlineExceededError) as info:
        await bridged.client.send_message(
            A2AClient.text_request("slow 30", context_id=context_id), timeout=0.3
        )
    assert info.value.grpc_code == C.DEADLINE_EXCEEDED
    [sent] = bridged.sent("SendMessage", "/message:send")
    await until(lambda: sent.aborted, LIMIT)  # the SDK saw us hang up, long before its 30 s
    assert not sent.done
    await cancel_context(bridged.client, context_id)
    await until(lambda: sent.done, LIMIT)


@interop
@in_module_loop
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_the_call_timeout_bounds_the_upstream_call(bridged: Bridge, streaming: bool) -> None:
    context_id = str(uuid.uuid4())
    request = A2AClient.text_request("slow 30", context_id=context_id)
    call: Awaitable[object]
    if streaming:
        call = collect(bridged.upstream.stream("SendStreamingMessage", request, Call(V1, 0.2)))
    else:
        call = bridged.upstream.unary("SendMessage", request, Call(V1, 0.2))
    started = time.monotonic()
    with pytest.raises(errors.DeadlineExceededError) as info:
        await call
    assert time.monotonic() - started < 2.0
    assert "did not answer within 0.2 s" in info.value.message
    assert info.value.grpc_code == C.DEADLINE_EXCEEDED
    [sent] = bridged.sent(
        "SendStreamingMessage" if streaming else "SendMessage", ":stream" if streaming else ":send"
    )
    await until(lambda: sent.aborted, LIMIT)  # the SDK saw us hang up
    await cancel_context(bridged.client, context_id)
    await until(lambda: sent.done, LIMIT)


@interop
@in_module_loop
async def test_service_parameters_cross_and_nothing_else(bridged: Bridge) -> None:
    metadata = [
        ("authorization", "Bearer t0k3n"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("a2a-extensions", "https://example.invalid/ext/a/v1"),
        ("x-private", "stays here"),
    ]
    await bridged.client.send_message(A2AClient.text_request("echo h"), metadata=metadata)
    [sent] = bridged.sent("SendMessage", "/message:send")
    assert sent.headers["a2a-version"] == "1.0"
    assert sent.headers["authorization"] == "Bearer t0k3n"
    assert sent.headers["traceparent"] == metadata[1][1]
    assert sent.headers["a2a-extensions"] == "https://example.invalid/ext/a/v1"
    # JSON-RPC is application/json (spec 9.1); HTTP+JSON requests are application/a2a+json (11.1).
    if bridged.binding == "JSONRPC":
        assert (sent.headers["content-type"], sent.headers["accept"]) == (
            "application/json",
            "application/json",
        )
    else:
        assert sent.headers["content-type"] == "application/a2a+json"
        assert sent.headers["accept"] == "application/a2a+json, application/json"
    assert "x-private" not in sent.headers


@interop
@in_module_loop
@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_interface_tenant_is_sent_unless_the_request_names_one(
    binding: str, bridges: Bridges
) -> None:
    b = await bridges.get(binding, tenant="acme")
    await send(b.client, "echo t")
    await send(b.client, "echo u", tenant="other")
    if binding == "JSONRPC":
        tenants = [orjson.loads(r.body)["params"].get("tenant") for r in b.peer.recorder.to(JSONRPC_PATH)]
    else:
        tenants = [r.path.split("/")[1] for r in b.peer.recorder.to("/message:send")]
    assert tenants == ["acme", "other"]


@interop
@in_module_loop
async def test_the_first_json_interface_of_the_card_is_used() -> None:
    # A v0.3 interface makes the SDK add v0.3 members to its card (url, preferredTransport, ...):
    # the card must still be read, and that interface skipped.
    interfaces: list[str | tuple[str, str]] = [("JSONRPC", "0.3"), "HTTP+JSON", "JSONRPC"]
    async with sdk_json_peer(interfaces) as agent:
        async with httpx.AsyncClient() as http:
            raw = (await http.get(agent.url + CARD_PATH)).json()
        assert {"url", "preferredTransport", "protocolVersion"} <= raw.keys()  # not AgentCard fields
        chosen = await open_json_upstream(agent.url + "/")
        only_rpc = await open_json_upstream(agent.url + CARD_PATH, prefer=("JSONRPC",))
        try:
            assert isinstance(chosen, RestUpstream)
            assert chosen.url == agent.url
            assert isinstance(only_rpc, JsonRpcUpstream)
            assert only_rpc.url == agent.url + JSONRPC_PATH
            task = await only_rpc.unary("SendMessage", A2AClient.text_request("echo p"), Call(V1, TIMEOUT))
            assert isinstance(task, types.SendMessageResponse)
            assert task.task.status.state == types.TASK_STATE_COMPLETED
        finally:
            await chosen.aclose()
            await only_rpc.aclose()


@interop
@in_module_loop
async def test_a_card_without_a_json_interface_is_refused() -> None:
    async with sdk_json_peer([("JSONRPC", "2.0")]) as agent:
        with pytest.raises(errors.UnavailableError) as info:
            await open_json_upstream(agent.url)
    assert "has no JSONRPC or HTTP+JSON interface for A2A 1.0 or 0.x" in info.value.message
    assert "GRPC 1.0 at 127.0.0.1:1" in info.value.message
    assert f"JSONRPC 2.0 at {agent.url}{JSONRPC_PATH}" in info.value.message
    # A 0.3 interface is spoken in v0.3 (a2a_grpc.bridge.outbound03; tests/test_v03_client.py).
    async with sdk_json_peer([("JSONRPC", "0.3")]) as agent:
        upstream = await open_json_upstream(agent.url)
        try:
            assert type(upstream).__name__ == "JsonRpc03Upstream"
        finally:
            await upstream.aclose()


@interop
@in_module_loop
async def test_the_front_serves_health_and_reflection(bridged: Bridge) -> None:
    channel = grpc.aio.insecure_channel(bridged.front.address)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        status = await health.Check(
            health_pb2.HealthCheckRequest(service=types.A2A_SERVICE.full_name), timeout=TIMEOUT
        )
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [r async for r in reflection.ServerReflectionInfo(iter([request]), timeout=TIMEOUT)]
        names = {s.name for s in replies[0].list_services_response.service}
        assert types.A2A_SERVICE.full_name in names
    finally:
        await channel.close()


# ==== 3. the JSON wire, against a scripted server ===================================================

Script = Callable[[Request], Awaitable[Response]]


class Scripted:
    """An HTTP server that answers every request with the current :attr:`script` (set per test)."""

    def __init__(self) -> None:
        self.url = ""
        self.script: Script | None = None
        self.http: httpx.AsyncClient

    async def endpoint(self, request: Request) -> Response:
        assert self.script is not None
        return await self.script(request)

    def rpc(self) -> JsonRpcUpstream:
        return JsonRpcUpstream(self.url, client=self.http)

    def rest(self, url: str = "", tenant: str = "") -> RestUpstream:
        return RestUpstream(url or self.url, client=self.http, tenant=tenant)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scripted_server() -> AsyncIterator[Scripted]:
    server = Scripted()
    app = Starlette(routes=[Route("/{path:path}", server.endpoint, methods=["GET", "POST", "DELETE"])])
    # One HTTP client for all (a new one costs ~50 ms of TLS setup); the upstreams leave it open.
    async with serve_asgi(app) as port, httpx.AsyncClient() as server.http:
        server.url = f"http://127.0.0.1:{port}"
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def scripted(scripted_server: Scripted) -> AsyncIterator[Scripted]:
    yield scripted_server
    scripted_server.script = None


def rpc_reply(**members: Any) -> Script:
    """A JSON-RPC answer echoing the request's id, with ``members`` (which may replace the id)."""

    async def script(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return JSONResponse({"jsonrpc": "2.0", "id": body["id"], **members})

    return script


def sse(*chunks: str) -> Script:
    """An event stream sent in the given pieces, a few milliseconds apart ($ID: the JSON-RPC id)."""

    async def script(request: Request) -> Response:
        rpc_id = orjson.loads(await request.body() or b"{}").get("id", 0)

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk.replace("$ID", str(rpc_id)).encode()
                await asyncio.sleep(0.002)

        return StreamingResponse(body(), media_type="text/event-stream")

    return script


def status_event(state: str) -> str:
    return orjson.dumps(
        {"statusUpdate": {"taskId": "t", "contextId": "c", "status": {"state": state}}}
    ).decode()


async def call_once(upstream: Upstream, method: str = "GetTask", request: Any = None) -> Any:
    try:
        return await upstream.unary(method, request or types.GetTaskRequest(id="t"), Call(V1, TIMEOUT))
    finally:
        await upstream.aclose()


async def stream_once(upstream: Upstream, into: list[Any]) -> None:
    try:
        await drain(
            upstream.stream("SubscribeToTask", types.SubscribeToTaskRequest(id="t"), Call(V1, 5)), into
        )
    finally:
        await upstream.aclose()


@in_module_loop
@pytest.mark.parametrize(
    ("script", "problem"),
    [
        (rpc_reply(id=999, result={"id": "t"}), "answered JSON-RPC id 999 to request id 1"),
        (rpc_reply(id="1", result={"id": "t"}), "answered JSON-RPC id '1' to request id 1"),
        (rpc_reply(), "neither result nor error"),
        (
            rpc_reply(result={"id": "t", "artifacts": 5}),
            "sent a result that is not a Task: .*artifacts",
        ),
        (rpc_reply(result=[1]), "sent a result that is not a Task"),
        (rpc_reply(error="oops"), "sent a JSON-RPC error that is not an object"),
    ],
    ids=["wrong-id", "id-as-string", "no-result", "wrong-type", "not-an-object", "bad-error"],
)
async def test_unusable_jsonrpc_answers_are_invalid_agent_responses(
    scripted: Scripted, script: Script, problem: str
) -> None:
    scripted.script = script
    with pytest.raises(errors.InvalidAgentResponseError) as info:
        await call_once(scripted.rpc())
    assert info.value.message.startswith(f"GetTask: upstream agent at {scripted.url} ")
    assert re.search(problem, info.value.message), info.value.message


@in_module_loop
async def test_unknown_members_of_an_answer_are_ignored(scripted: Scripted) -> None:
    # Answers are read leniently: a newer agent's extra members must not make them unusable.
    scripted.script = rpc_reply(result={"id": "t", "fromTheFuture": {"x": 1}})
    task = await call_once(scripted.rpc())
    assert task == types.Task(id="t")


@in_module_loop
async def test_a_jsonrpc_answer_that_is_not_json_is_an_invalid_agent_response(scripted: Scripted) -> None:
    async def page(request: Request) -> Response:
        return Response("<html>hello</html>", media_type="text/html")

    scripted.script = page
    with pytest.raises(errors.InvalidAgentResponseError, match="sent a response that is not JSON"):
        await call_once(scripted.rpc())


@in_module_loop
async def test_jsonrpc_errors_and_null_results_decode(scripted: Scripted) -> None:
    detail = {"@type": ERROR_INFO_TYPE, "reason": "TASK_NOT_FOUND", "domain": errors.DOMAIN}
    scripted.script = rpc_reply(error={"code": -32001, "message": "no such task", "data": [detail]})
    with pytest.raises(errors.TaskNotFoundError, match="no such task"):
        await call_once(scripted.rpc())
    scripted.script = rpc_reply(error={"code": -32602, "message": "bad"}, id=None)  # an unreadable request
    with pytest.raises(errors.InvalidParamsError, match="bad"):
        await call_once(scripted.rpc())
    scripted.script = rpc_reply(result=None)
    delete = types.DeleteTaskPushNotificationConfigRequest(task_id="t", id="h")
    empty = await call_once(scripted.rpc(), "DeleteTaskPushNotificationConfig", delete)
    assert empty.DESCRIPTOR.full_name == "google.protobuf.Empty"


@in_module_loop
async def test_a_jsonrpc_stream_with_heartbeats_then_an_error_event(scripted: Scripted) -> None:
    working = f'{{"jsonrpc":"2.0","id":$ID,"result":{status_event("TASK_STATE_WORKING")}}}'
    failure = '{"jsonrpc":"2.0","id":$ID,"error":{"code":-32004,"message":"no more"}}'
    scripted.script = sse(": ping\r\n\r\n", "data: ", working + "\r", "\n\r\n", ": ping\r\n",
                          f"event: error\r\ndata: {failure}\r\n\r\n")  # fmt: skip
    got: list[Any] = []
    with pytest.raises(errors.UnsupportedOperationError, match="no more"):
        await stream_once(scripted.rpc(), got)
    assert [e.status_update.status.state for e in got] == [types.TASK_STATE_WORKING]


@in_module_loop
async def test_a_rest_stream_error_event_after_the_first_event(scripted: Scripted) -> None:
    detail = {"@type": ERROR_INFO_TYPE, "reason": "TASK_NOT_FOUND", "domain": errors.DOMAIN}
    failure = {"error": {"code": 404, "status": "NOT_FOUND", "message": "gone", "details": [detail]}}
    scripted.script = sse(
        f"data: {status_event('TASK_STATE_WORKING')}\n\n",
        f"event: error\ndata: {orjson.dumps(failure).decode()}\n\n",
    )
    got: list[Any] = []
    with pytest.raises(errors.TaskNotFoundError, match="gone"):
        await stream_once(scripted.rest(), got)
    assert [e.status_update.status.state for e in got] == [types.TASK_STATE_WORKING]


@in_module_loop
async def test_a_stream_answered_with_json_is_refused(scripted: Scripted) -> None:
    scripted.script = rpc_reply(result={"task": {"id": "t"}})
    with pytest.raises(
        errors.InvalidAgentResponseError, match="answered application/json, not text/event-stream"
    ):
        await stream_once(scripted.rpc(), [])


@in_module_loop
@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (503, "<html>down for maintenance</html>", errors.UnavailableError, "is unavailable: HTTP 503"),
        (502, "<html>bad gateway</html>", errors.TransportError, "HTTP 502 with no A2A error body"),
        (
            404,
            {"error": {"code": 404, "status": "NOT_FOUND", "message": "no t"}},
            errors.TransportError,
            "no t",
        ),
    ],
    ids=["proxy-503", "proxy-502", "status-without-reason"],
)
async def test_rest_error_statuses(
    scripted: Scripted, status: int, body: Any, error: type[errors.A2AError], message: str
) -> None:
    async def script(request: Request) -> Response:
        if isinstance(body, str):
            return Response(body, status_code=status, media_type="text/html")
        return JSONResponse(body, status_code=status)

    scripted.script = script
    with pytest.raises(errors.A2AError) as info:
        await call_once(scripted.rest())
    assert type(info.value) is error, repr(info.value)
    assert message in info.value.message
    if error is errors.UnavailableError:
        assert f"upstream agent at {scripted.url} is unavailable" in info.value.message


@in_module_loop
async def test_rest_requests_follow_the_proto_routes(scripted: Scripted) -> None:
    seen: list[tuple[str, str, bytes]] = []

    async def script(request: Request) -> Response:
        seen.append((request.method, f"{request.url.path}?{request.url.query}", await request.body()))
        return JSONResponse({"tasks": [], "nextPageToken": "", "pageSize": 2, "totalSize": 0})

    scripted.script = script
    request = types.ListTasksRequest(context_id="c/1", page_size=2)
    listed = await call_once(scripted.rest(scripted.url + "/", tenant="acme"), "ListTasks", request)
    assert isinstance(listed, types.ListTasksResponse)
    assert seen == [("GET", "/acme/tasks?contextId=c%2F1&pageSize=2", b"")]


@in_module_loop
async def test_an_invalid_answer_reaches_the_grpc_client_as_internal(scripted: Scripted) -> None:
    scripted.script = rpc_reply(id=7, result={})
    upstream = scripted.rpc()
    try:
        async with (
            GrpcFront(upstream, SETTINGS) as front,
            A2AClient(front.address, timeout=TIMEOUT) as client,
        ):
            with pytest.raises(errors.InvalidAgentResponseError) as info:
                await client.get_task("t")
    finally:
        await upstream.aclose()
    assert info.value.grpc_code == C.INTERNAL
    assert "answered JSON-RPC id 7" in info.value.message


# ==== 3b. path variables from hostile ids: only A2A routes reach the agent ==========================

UPSTREAM_BASE = "/agents/a"
"""Where the recording agent's HTTP+JSON interface lives: '..' would climb out of it."""


class PathRecorder:
    """An HTTP+JSON agent that records the raw path of every request and answers ``{}``."""

    def __init__(self) -> None:
        self.port = 0
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        raw = scope["raw_path"].decode("latin-1")
        if raw == CARD_PATH:
            body = orjson.dumps(
                {
                    "name": "recorder",
                    "supportedInterfaces": [
                        {
                            "url": f"http://127.0.0.1:{self.port}{UPSTREAM_BASE}",
                            "protocolBinding": "HTTP+JSON",
                            "protocolVersion": "1.0",
                        }
                    ],
                    "capabilities": {"streaming": True, "pushNotifications": True},
                }
            )
        else:
            self.seen.append((scope["method"], raw))
            body = b"{}"
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Recorded:
    agent: PathRecorder
    client: A2AClient


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded_bridge() -> AsyncIterator[Recorded]:
    agent = PathRecorder()
    async with serve_asgi(agent) as port:
        agent.port = port
        upstream = await open_json_upstream(f"http://127.0.0.1:{port}")
        assert isinstance(upstream, RestUpstream)
        try:
            async with (
                GrpcFront(upstream, SETTINGS) as front,
                A2AClient(front.address, timeout=TIMEOUT) as client,
            ):
                yield Recorded(agent, client)
        finally:
            await upstream.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def recorded(recorded_bridge: Recorded) -> Recorded:
    recorded_bridge.agent.seen.clear()
    return recorded_bridge


PathCall = Callable[[A2AClient, str], Awaitable[object]]


async def _first_event(events: AsyncIterable[object]) -> None:
    async for _ in events:
        return


PATH_CALLS: dict[str, tuple[str, str, PathCall]] = {
    # name: (the field the value goes in, the RPC, the call)
    "GetTask id": ("id", "GetTask", lambda c, v: c.get_task(v)),
    "GetTask tenant": ("tenant", "GetTask", lambda c, v: c.get_task("t", tenant=v)),
    "CancelTask id": ("id", "CancelTask", lambda c, v: c.cancel_task(v)),
    "ListPushConfigs task_id": (
        "task_id",
        "ListTaskPushNotificationConfigs",
        lambda c, v: c.list_task_push_notification_configs(v),
    ),
    "GetPushConfig task_id": (
        "task_id",
        "GetTaskPushNotificationConfig",
        lambda c, v: c.get_task_push_notification_config(v, "p"),
    ),
    "GetPushConfig id": (
        "id",
        "GetTaskPushNotificationConfig",
        lambda c, v: c.get_task_push_notification_config("t", v),
    ),
    "DeletePushConfig id": (
        "id",
        "DeleteTaskPushNotificationConfig",
        lambda c, v: c.delete_task_push_notification_config("t", v, tenant="admin"),
    ),
    "DeletePushConfig tenant": (
        "tenant",
        "DeleteTaskPushNotificationConfig",
        lambda c, v: c.delete_task_push_notification_config("t", "p", tenant=v),
    ),
    "CreatePushConfig task_id": (
        "task_id",
        "CreateTaskPushNotificationConfig",
        lambda c, v: c.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=v, url=HOOK)
        ),
    ),
}


@in_module_loop
@pytest.mark.parametrize("operation", list(PATH_CALLS))
@pytest.mark.parametrize("value", [".", ".."])
async def test_a_dot_segment_id_is_refused_before_anything_is_sent(
    recorded: Recorded, operation: str, value: str
) -> None:
    field, _, call = PATH_CALLS[operation]
    with pytest.raises(errors.InvalidParamsError) as info:
        await call(recorded.client, value)
    assert info.value.grpc_code == C.INVALID_ARGUMENT
    assert [v.field for v in info.value.field_violations] == [field]
    assert recorded.agent.seen == []


@in_module_loop
@pytest.mark.parametrize("value", ["a\nINFO forged", "a\x00b", "x" * 257, "\u202eevil"])
async def test_an_id_no_agent_could_hold_is_refused_at_the_front(recorded: Recorded, value: str) -> None:
    """The front checks ids as our server does (control characters, length), before any URL is built."""
    with pytest.raises(errors.InvalidParamsError) as info:
        await recorded.client.get_task(value)
    assert [v.field for v in info.value.field_violations] == ["id"]
    assert recorded.agent.seen == []


@in_module_loop
async def test_the_attackers_calls_reach_nothing(recorded: Recorded) -> None:
    """The measured attack: GetTask("..") was a GET of the base path, Delete(admin, .., ..) a
    DELETE /agents/a/admin with the caller's credentials."""
    with pytest.raises(errors.InvalidParamsError):
        await recorded.client.get_task("..")
    with pytest.raises(errors.InvalidParamsError):
        await recorded.client.delete_task_push_notification_config("..", "..", tenant="admin")
    with pytest.raises(errors.InvalidParamsError):
        await _first_event(recorded.client.subscribe_to_task(".."))
    assert recorded.agent.seen == []


@in_module_loop
async def test_a_request_json_cannot_hold_is_invalid_params_and_nothing_is_sent(recorded: Recorded) -> None:
    """A Timestamp past year 9999 is valid protobuf but no RFC 3339 string: json_format raised and
    the gRPC caller got INTERNAL (found by tests/test_properties.py); now the field is named."""
    request = types.ListTasksRequest()
    request.status_timestamp_after.seconds = 2**62
    with pytest.raises(errors.InvalidParamsError) as info:
        await recorded.client.list_tasks(request)
    assert info.value.grpc_code == C.INVALID_ARGUMENT
    assert [v.field for v in info.value.field_violations] == ["statusTimestampAfter"]
    assert recorded.agent.seen == []
    await recorded.client.list_tasks(types.ListTasksRequest())
    assert [verb for verb, _ in recorded.agent.seen] == ["GET"]


ODD_VALUES = [
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "a/../b",
    "/",
    "../..",
    "..%2f..",
    "?x=1",
    "#f",
    ";x",
    "a\\..\\b",
    "a b",
    "caf\u00e9",
]


@in_module_loop
@pytest.mark.parametrize("operation", list(PATH_CALLS))
async def test_any_other_value_stays_one_segment_of_an_a2a_route(recorded: Recorded, operation: str) -> None:
    field, method, call = PATH_CALLS[operation]
    router = Router(compile_routes())
    for value in ODD_VALUES:
        recorded.agent.seen.clear()
        await call(recorded.client, value)
        ((verb, raw),) = recorded.agent.seen
        assert raw.startswith(UPSTREAM_BASE + "/"), (value, raw)
        path = raw[len(UPSTREAM_BASE) :].partition("?")[0]
        route, bound = router.match(verb, path)
        assert route is not None, (value, raw)
        assert route.method.name == method, (value, raw)
        assert isinstance(bound, dict)
        assert bound[field] == value, (value, raw)


# ==== 4. the SSE parser =============================================================================


def parse(*chunks: bytes) -> list[SseEvent]:
    decoder = SseDecoder()
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_sse_multi_line_data_is_joined_with_newlines() -> None:
    assert parse(b"data: a\ndata:b\ndata:  c\ndata\n\n") == [SseEvent("a\nb\n c\n")]


def test_sse_comments_heartbeats_and_unknown_fields_are_ignored() -> None:
    stream = b": ping\n\n:\nretry: 10\nfoo: bar\ndata: x\n: inside\n\n: ping\n\n"
    assert parse(stream) == [SseEvent("x")]


def test_sse_event_names_apply_to_one_event_and_the_last_id_persists() -> None:
    stream = b"event: error\nid: 7\ndata: e\n\ndata: m\n\nevent: lonely\n\ndata: n\n\n"
    assert parse(stream) == [
        SseEvent("e", "error", "7"),
        SseEvent("m", "message", "7"),
        SseEvent("n", "message", "7"),
    ]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_sse_every_line_ending_reads_the_same(eol: bytes) -> None:
    stream = eol.join([b"event: update", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    expected = [SseEvent("1\n2", "update"), SseEvent("3")]
    assert parse(stream) == expected
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == expected  # byte by byte


def test_sse_a_crlf_split_across_chunks_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [SseEvent("a\nb")]


def test_sse_utf8_split_across_chunks_and_a_leading_bom() -> None:
    text = "\ufeffdata: h\u00e9llo \u2028 w\u00f6rld\n\n".encode()
    assert parse(*(text[i : i + 1] for i in range(len(text)))) == [SseEvent("h\u00e9llo \u2028 w\u00f6rld")]


def test_sse_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert parse(b"data: whole\n\ndata: half\n") == [SseEvent("whole")]
