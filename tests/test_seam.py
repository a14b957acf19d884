"""The call seam (a2a_grpc.service): one chain of interceptors that every front runs.

The fronts: the gRPC servicer (``grpc``), the in-process bridge (``jsonrpc``, ``rest``: the same
server's chain, reached over HTTP) and the reverse bridge's gRPC front (``reverse``: ``GrpcFront``
over a JSON upstream, with a chain of its own). Each scenario runs over all four.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._accesslog import AccessLog
from a2a_grpc._handler import RequestHandler
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import open_json_upstream
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import (
    METHODS,
    CallContext,
    Interceptor,
    Method,
    Service,
    StreamCall,
    UnaryCall,
    operation_name,
)
from a2a_grpc.tasks import InMemoryTaskStore
from tests.bridge_peers import Binding, Stack, collect, open_binding, serve_stack

pytestmark = pytest.mark.asyncio

FRONTS = ("grpc", "jsonrpc", "rest", "reverse")
TIMEOUT = 10.0
V = {"A2A-Version": "1.0"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
Chain = list[Interceptor]


# --- interceptors under test ------------------------------------------------------------------


@dataclass
class Journal:
    """What the interceptors of one test saw, in order."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)
    contexts: list[CallContext] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, method: str) -> list[tuple[str, str]]:
        return [(who, what) for who, what, name in self.lines if name == method]


class Recorder(Interceptor):
    """Writes what it sees to the journal; a careful stream interceptor (closes what it reads)."""

    def __init__(self, name: str, journal: Journal, *, events: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.keep_events = events

    async def unary(self, method: Method, request: Any, context: CallContext, call_next: UnaryCall) -> Any:
        self.journal.lines.append((self.name, "in", method.name))
        self.journal.contexts.append(context)
        try:
            response = await call_next(request, context)
        except errors.A2AError as exc:
            self.journal.lines.append((self.name, type(exc).__name__, method.name))
            raise
        self.journal.lines.append((self.name, "out", method.name))
        return response

    async def stream(
        self, method: Method, request: Any, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Any]:
        self.journal.lines.append((self.name, "in", method.name))
        self.journal.contexts.append(context)
        try:
            async with contextlib.aclosing(call_next(request, context)) as events:  # type: ignore[type-var]
                async for event in events:
                    if self.keep_events:
                        self.journal.events.append(event)
                    yield event
        finally:
            self.journal.lines.append((self.name, "closed", method.name))
            self.journal.closed.set()


class Careless(Interceptor):
    """A stream interceptor that never closes what it reads: the seam must close it all the same."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def stream(
        self, method: Method, request: Any, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Any]:
        try:
            async for event in call_next(request, context):
                yield event
        finally:
            self.journal.lines.append(("careless", "closed", method.name))


class Refuser(Interceptor):
    """Refuses every call with ``error`` before it goes on."""

    def __init__(self, error: errors.A2AError) -> None:
        self.error = error

    async def unary(self, method: Method, request: Any, context: CallContext, call_next: UnaryCall) -> Any:
        raise self.error

    async def stream(
        self, method: Method, request: Any, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Any]:
        raise self.error
        yield  # an async generator, refusing before its first event


# --- the fronts -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def front(kind: str, chain: Chain) -> AsyncIterator[tuple[Binding, Stack]]:
    """A binding of ``kind`` (one of FRONTS) to the reference agent, every call passing ``chain``."""
    if kind != "reverse":
        async with serve_stack(interceptors=chain) as stack, open_binding(kind, stack) as binding:
            yield binding, stack
        return
    async with serve_stack() as stack:
        upstream = await open_json_upstream(stack.url)
        grpc_front = GrpcFront(upstream, ServerSettings(port=0, interceptors=chain))
        await grpc_front.start()
        try:
            reverse = Stack(grpc_front.address, stack.url, stack.server)
            async with open_binding("grpc", reverse) as binding:
                yield binding, stack
        finally:
            await grpc_front.stop(1.0)
            await upstream.aclose()


def message(text: str) -> types.SendMessageRequest:
    return A2AClient.text_request(text)


# --- every front ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FRONTS)
async def test_the_chain_runs_in_order_on_unary_and_streaming_calls(kind: str) -> None:
    journal = Journal()
    async with front(kind, [Recorder("outer", journal), Recorder("inner", journal)]) as (binding, _):
        await binding.send_message(message("echo hi"))
        await collect(binding.send_streaming_message(message("stream 2")))
    assert journal.of("SendMessage") == [("outer", "in"), ("inner", "in"), ("inner", "out"), ("outer", "out")]
    assert journal.of("SendStreamingMessage") == [
        ("outer", "in"),
        ("inner", "in"),
        ("inner", "closed"),
        ("outer", "closed"),
    ]


async def test_the_public_card_passes_the_grpc_fronts_chain() -> None:
    journal = Journal()
    async with (
        serve_stack(interceptors=[Recorder("only", journal)]) as stack,
        A2AClient(stack.address, timeout=TIMEOUT) as client,
    ):
        await client.get_agent_card()
    assert journal.of("GetAgentCard") == [("only", "in"), ("only", "out")]


REFUSALS = [errors.TaskNotFoundError("refused: no such thing"), errors.UnsupportedOperationError("refused")]


@pytest.mark.parametrize("kind", FRONTS)
@pytest.mark.parametrize("error", REFUSALS, ids=lambda e: type(e).__name__)
async def test_an_interceptor_refuses_a_call_with_its_own_error(kind: str, error: errors.A2AError) -> None:
    journal = Journal()
    async with front(kind, [Refuser(error), Recorder("behind", journal)]) as (binding, stack):
        with pytest.raises(type(error)) as unary:
            await binding.send_message(message("echo never"))
        unary_wire = binding.last_error
        with pytest.raises(type(error)) as streaming:
            await collect(binding.send_streaming_message(message("stream 2")))
        stream_wire = binding.last_error
        listed = await stack.server.store.list("", types.ListTasksRequest())
    assert journal.lines == []  # nothing behind the refusal ran
    assert list(listed.tasks) == []  # nor the agent
    spec = error.spec
    for caught, wire in ((unary, unary_wire), (streaming, stream_wire)):
        assert caught.value.message == error.message
        assert wire is not None
        if kind in ("grpc", "reverse"):
            assert wire.grpc_code == spec.grpc_code
        elif kind == "jsonrpc":
            assert (wire.http_status, wire.body["error"]["code"]) == (200, spec.jsonrpc_code)
        else:
            assert wire.http_status == spec.http_status
            assert wire.body["error"]["status"] == spec.grpc_code.name
        assert not wire.in_stream  # refused before the stream started: a real error


@pytest.mark.parametrize("kind", FRONTS)
async def test_an_interceptor_sees_every_event_of_a_stream(kind: str) -> None:
    journal = Journal()
    async with front(kind, [Recorder("watcher", journal, events=True)]) as (binding, _):
        received = await collect(binding.send_streaming_message(message("stream 3")))
    assert len(received) >= 5  # the task, working, three chunks, completed
    assert journal.events == received


@pytest.mark.parametrize("kind", FRONTS)
async def test_a_client_that_leaves_a_stream_runs_the_chains_finally_blocks(kind: str) -> None:
    journal = Journal()
    chain: Chain = [Careless(journal), Recorder("careful", journal)]
    async with front(kind, chain) as (binding, _):
        async with contextlib.aclosing(binding.send_streaming_message(message("slow 30"))) as events:
            first = await anext(events)
        # The client left after one event: every link's finally block runs, the careless one's too.
        await asyncio.wait_for(journal.closed.wait(), TIMEOUT)
        for _ in range(100):
            if ("careless", "closed") in journal.of("SendStreamingMessage"):
                break
            await asyncio.sleep(0.01)
        closings = [line for line in journal.of("SendStreamingMessage") if line[1] == "closed"]
        assert sorted(closings) == [("careful", "closed"), ("careless", "closed")]
        await binding.cancel_task(types.CancelTaskRequest(id=first.task.id))


@pytest.mark.parametrize("kind", ["grpc", "reverse"])
async def test_the_grpc_fronts_carry_call_id_deadline_trace_and_tenant(kind: str) -> None:
    journal = Journal()
    trace = [
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("tracestate", "k=v"),
    ]
    async with front(kind, [Recorder("seen", journal)]) as (binding, _):
        assert isinstance(binding, Binding)
        address = binding.client.target  # type: ignore[attr-defined]
        async with A2AClient(address, timeout=7.0, metadata=trace, tenant="acme") as client:
            for _ in range(3):
                await client.send_message(message("echo traced"))
        async with A2AClient(address, timeout=None) as client:
            await client.send_message(message("echo no deadline"))
    traced, untimed = journal.contexts[:3], journal.contexts[3]
    assert len({c.call_id for c in journal.contexts}) == 4
    for context in traced:
        assert (context.traceparent, context.tracestate) == (trace[0][1], trace[1][1])
        assert context.tenant == "acme"
        assert context.version == "1.0"
        assert (context.front, context.principal) == ("grpc", None)
        assert context.peer.startswith("ipv4:127.0.0.1:")
        assert context.deadline is not None
        assert 0 < context.deadline - asyncio.get_running_loop().time() <= 7.0
    assert untimed.deadline is None
    assert untimed.traceparent is None


async def test_the_in_process_bridge_carries_call_id_deadline_trace_and_tenant() -> None:
    journal = Journal()
    headers = {
        **V,
        "traceparent": TRACEPARENT,
        "tracestate": "k=v",
        "Grpc-Timeout": "7S",
    }
    body = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "echo traced"}]}}
    async with (
        serve_stack(interceptors=[Recorder("seen", journal)]) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as http,
    ):
        assert (await http.post("/acme/message:send", json=body, headers=headers)).status_code == 200
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {**body, "tenant": "acme"}}
        assert "result" in (await http.post("/", json=rpc, headers=headers)).json()
        assert (await http.post("/message:send", json=body, headers=V)).status_code == 200
    traced, untimed = journal.contexts[:2], journal.contexts[2]
    assert len({c.call_id for c in journal.contexts}) == 3
    for context in traced:
        assert (context.traceparent, context.tracestate) == (headers["traceparent"], "k=v")
        assert (context.tenant, context.version, context.front) == ("acme", "1.0", "http")
        assert context.peer.startswith("127.0.0.1:")
        assert context.deadline is not None
        assert 0 < context.deadline - asyncio.get_running_loop().time() <= 7.0
    assert untimed.deadline is None
    assert untimed.tenant == ""


async def test_the_access_log_is_the_outermost_link_and_names_a_refusal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = Refuser(errors.TaskNotFoundError("refused"))
    settings = ServerSettings(port=0, log_requests=True, interceptors=[refusal])
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), settings)
    await server.start()
    try:
        with caplog.at_level(logging.INFO, "a2a_grpc.access"):
            async with A2AClient(server.address, timeout=TIMEOUT) as client:
                with pytest.raises(errors.TaskNotFoundError):
                    await client.get_task("t")
                with pytest.raises(errors.TaskNotFoundError):
                    await collect(client.subscribe_to_task("t"))
    finally:
        await server.stop(1.0)
    lines = [r.getMessage().split(" ms ")[0].rsplit(" ", 1)[0] for r in caplog.records]
    assert lines == ["grpc GetTask NOT_FOUND", "grpc SubscribeToTask NOT_FOUND"]


# --- the operations cannot be reached without the checks ---------------------------------------


class NeedsExtension(Agent):
    card = types.AgentCard(
        name="strict",
        capabilities=types.AgentCapabilities(
            streaming=True,
            push_notifications=True,
            extensions=[types.AgentExtension(uri="urn:example:needed", required=True)],
        ),
    )

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        raise AssertionError("a refused call must not reach the agent")


def operations(handler: RequestHandler) -> list[tuple[Method, Callable[[Any, CallContext], Any]]]:
    """Every operation of the handler's public API, by the name the method table gives it."""
    return [(method, getattr(handler, method.operation)) for method in METHODS.values()]


async def call(method: Method, operation: Callable[[Any, CallContext], Any], context: CallContext) -> None:
    if method.streaming:
        await collect(operation(method.request(), context))
    else:
        await operation(method.request(), context)


@pytest.mark.parametrize("version", [None, "", "0.3", "2.0"])
async def test_an_operation_called_directly_checks_the_version(version: str | None) -> None:
    store = InMemoryTaskStore()
    handler = RequestHandler(ReferenceAgent(), store)
    for method, operation in operations(handler):
        with pytest.raises(errors.VersionNotSupportedError):
            await call(method, operation, CallContext(version=version))
    assert list((await store.list("", types.ListTasksRequest())).tasks) == []


async def test_a_streaming_operation_refuses_when_called_not_when_read() -> None:
    handler = RequestHandler(ReferenceAgent(), InMemoryTaskStore())
    with pytest.raises(errors.VersionNotSupportedError):
        handler.send_streaming_message(message("stream 2"), CallContext())


async def test_an_operation_called_directly_checks_the_required_extensions() -> None:
    handler = RequestHandler(NeedsExtension(), InMemoryTaskStore())
    for method, operation in operations(handler):
        with pytest.raises(errors.ExtensionSupportRequiredError):
            await call(method, operation, CallContext(version="1.0"))
    declared = CallContext(version="1.0", extensions=frozenset({"urn:example:needed"}))
    with pytest.raises(errors.TaskNotFoundError):  # past the checks: the operation itself answers
        await handler.get_task(types.GetTaskRequest(id="t"), declared)


async def test_the_seam_over_a_handler_checks_too() -> None:
    service = Service.serving(RequestHandler(ReferenceAgent(), InMemoryTaskStore()))
    with pytest.raises(errors.VersionNotSupportedError):
        await service.unary("GetTask")(types.GetTaskRequest(id="t"), CallContext())
    with pytest.raises(errors.VersionNotSupportedError):
        await collect(service.stream("SubscribeToTask")(types.SubscribeToTaskRequest(id="t"), CallContext()))


# --- the seam on its own ----------------------------------------------------------------------


def endpoints(journal: Journal) -> dict[str, UnaryCall | StreamCall]:
    """Every method answered by a stub: unary ones echo, streaming ones yield two events then wait."""

    async def unary(request: Any, context: CallContext) -> Any:
        journal.contexts.append(context)
        return request

    async def stream(request: Any, context: CallContext) -> AsyncIterator[Any]:
        journal.contexts.append(context)
        try:
            yield types.StreamResponse()
            yield types.StreamResponse()
            await asyncio.Event().wait()
        finally:
            journal.lines.append(("endpoint", "closed", ""))

    return {name: stream if m.streaming else unary for name, m in METHODS.items()}


async def test_the_seam_closes_every_link_when_its_reader_stops() -> None:
    journal = Journal()
    service = Service(endpoints(journal), [Recorder("careful", journal), Careless(journal)])
    stream = service.stream("SendStreamingMessage")(types.SendMessageRequest(), CallContext())
    async with contextlib.aclosing(stream) as events:
        await anext(events)
    # The careful link closes the careless one; nobody closes the endpoint but the seam.
    assert [who for who, what, _ in journal.lines if what == "closed"] == ["careless", "careful", "endpoint"]


async def test_an_interceptor_may_hand_on_another_context() -> None:
    class Authenticate(Interceptor):
        async def unary(
            self, method: Method, request: Any, context: CallContext, call_next: UnaryCall
        ) -> Any:
            return await call_next(request, dataclasses.replace(context, principal="alice"))

    journal = Journal()
    service = Service(endpoints(journal), [Authenticate()])
    await service.unary("GetTask")(types.GetTaskRequest(id="t"), CallContext())
    assert journal.contexts[-1].principal == "alice"


async def test_links_that_override_nothing_cost_nothing() -> None:
    table = endpoints(Journal())
    service = Service(table, [Interceptor(), Interceptor()])
    assert service.unary("GetTask") is table["GetTask"]


async def test_the_method_table_is_the_descriptor() -> None:
    assert [m.name for m in METHODS.values()] == [m.name for m in types.A2A_SERVICE.methods]
    for method in METHODS.values():
        assert method.path == f"/lf.a2a.v1.A2AService/{method.name}"
        assert method.request.DESCRIPTOR is method.descriptor.input_type
        assert method.response.DESCRIPTOR is method.descriptor.output_type
        assert method.streaming == method.descriptor.server_streaming
        assert method.operation == operation_name(method.name)
        assert callable(getattr(RequestHandler, method.operation))


async def test_a_service_serves_exactly_the_table() -> None:
    table = endpoints(Journal())
    del table["GetTask"]
    with pytest.raises(ValueError, match="missing \\['GetTask'\\]"):
        Service(table)


async def test_server_settings_take_a_list_of_interceptors() -> None:
    chain = [AccessLog(), Interceptor()]
    settings = ServerSettings(interceptors=chain)
    assert settings.interceptors == tuple(chain)
    with pytest.raises(ValueError, match="Interceptor"):
        ServerSettings(interceptors=[object()])  # type: ignore[list-item]


async def test_call_ids_are_unique() -> None:
    ids = {CallContext().call_id for _ in range(10_000)}
    assert len(ids) == 10_000
