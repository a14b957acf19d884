"""A2A v1.0.1 on the wire, checked against served agents.

* The error table (section 5.4, and 9.5 for the standard JSON-RPC errors) walked row by row, on
  every binding: each error is provoked for real and its gRPC status code and ErrorInfo, its
  JSON-RPC code, its HTTP status and ``google.rpc.Status`` body, and the answer's Content-Type are
  read off the wire. The JSON bindings are tried on the bridge inside ``a2a-grpc serve``
  (``local``) and on a bridge in front of the agent's gRPC port (``grpc``); gRPC straight to the
  agent (``direct``) and through the reverse bridge in front of our own JSON bindings
  (``reverse-jsonrpc``, ``reverse-rest``: two conversions, the codes must survive both).
* The official SDK's three clients (its bare gRPC, JSON-RPC and REST transports) decode each of
  those errors into the SDK's own class, and saw the v1.0.1 code doing so.
* Media types (sections 9.1, 11.1, 8): what each answer carries, what each request may carry,
  and what the reverse bridge sends and reads.
* Unrecognized members are ignored (section 5.7), nothing else is.
* The agent card's Last-Modified and If-Modified-Since (section 8.6, RFC 9110).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
import grpc.aio
import httpx
import pytest
import pytest_asyncio
from a2a.client import ClientCallContext
from a2a.client.transports.grpc import GrpcTransport
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.client.transports.rest import RestTransport
from a2a.types import a2a_pb2 as sdk
from a2a.utils import errors as sdk_errors
from google.protobuf import message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from a2a_grpc import errors, types
from a2a_grpc.agent import RequestContext, TaskUpdater
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.errordetails import BAD_REQUEST_TYPE, ERROR_INFO_TYPE
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream
from a2a_grpc.bridge.rest import http_status_for
from a2a_grpc.bridge.upstream import CARD_PATH, Call, GrpcUpstream
from a2a_grpc.client import A2AClient
from a2a_grpc.server import ServerSettings
from a2a_grpc.service import operation_name
from a2a_grpc.status import to_rpc_status
from tests.bridge_http_peers import http_bridge
from tests.bridge_peers import Stack, _rest_request, serve_stack
from tests.conftest import Authenticated
from tests.sdk_peers import REQUIRED_EXTENSION, TunedAgent

ASYNC = pytest.mark.asyncio(loop_scope="module")
"""Every async test runs in the module's event loop, where the module-scoped servers live."""

TIMEOUT = 10.0
HOOK = "https://hooks.example.com/hook"  # a public name: the webhook policy refuses loopback
JSON, A2A_JSON, PROBLEM, SSE = (
    "application/json",
    "application/a2a+json",
    "application/problem+json",
    "text/event-stream",
)
SERVICE = types.A2A_SERVICE.full_name
OUTPUT = {m.name: message_factory.GetMessageClass(m.output_type) for m in types.A2A_SERVICE.methods}
ROWS = {row.name: row for row in errors.ERROR_TABLE}


class Spec(NamedTuple):
    """One row as the specification gives it, written out by hand (not read from our table)."""

    name: str
    jsonrpc_code: int
    grpc_code: grpc.StatusCode
    http_status: int
    reason: str

    @property
    def problem_type(self) -> str:
        a2a_specific = -32099 <= self.jsonrpc_code <= -32001
        return (
            "https://a2a-protocol.org/errors/" + self.reason.lower().replace("_", "-") if a2a_specific else ""
        )


C = grpc.StatusCode
SPEC = {
    row[0]: Spec(*row)
    for row in (
        # A2A v1.0.1, section 5.4 (reasons: section 10.6's rule, the error's name in UPPER_SNAKE_CASE)
        ("TaskNotFoundError", -32001, C.NOT_FOUND, 404, "TASK_NOT_FOUND"),
        ("TaskNotCancelableError", -32002, C.FAILED_PRECONDITION, 400, "TASK_NOT_CANCELABLE"),
        (
            "PushNotificationNotSupportedError",
            -32003,
            C.FAILED_PRECONDITION,
            400,
            "PUSH_NOTIFICATION_NOT_SUPPORTED",
        ),
        ("UnsupportedOperationError", -32004, C.FAILED_PRECONDITION, 400, "UNSUPPORTED_OPERATION"),
        ("ContentTypeNotSupportedError", -32005, C.INVALID_ARGUMENT, 400, "CONTENT_TYPE_NOT_SUPPORTED"),
        ("InvalidAgentResponseError", -32006, C.INTERNAL, 500, "INVALID_AGENT_RESPONSE"),
        (
            "ExtendedAgentCardNotConfiguredError",
            -32007,
            C.FAILED_PRECONDITION,
            400,
            "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
        ),
        ("ExtensionSupportRequiredError", -32008, C.FAILED_PRECONDITION, 400, "EXTENSION_SUPPORT_REQUIRED"),
        ("VersionNotSupportedError", -32009, C.FAILED_PRECONDITION, 400, "VERSION_NOT_SUPPORTED"),
        # Section 9.5 gives the JSON-RPC codes; gRPC and HTTP follow section 3.3.2's categories, the
        # reasons a2a-sdk's (the spec names none), as documented in a2a_grpc/errors.py.
        ("JSONParseError", -32700, C.INVALID_ARGUMENT, 400, "JSON_PARSE"),
        ("InvalidRequestError", -32600, C.INVALID_ARGUMENT, 400, "INVALID_REQUEST"),
        ("MethodNotFoundError", -32601, C.UNIMPLEMENTED, 404, "METHOD_NOT_FOUND"),
        ("InvalidParamsError", -32602, C.INVALID_ARGUMENT, 400, "INVALID_PARAMS"),
        ("InternalError", -32603, C.INTERNAL, 500, "INTERNAL_ERROR"),
    )
}
"""What the wire must show; the walk below compares the wire with this, not with our table."""


# --- the agents and the ways to reach them ------------------------------------------------------------


class MediaAgent(TunedAgent):
    """TunedAgent that reads text parts only, as its card's input modes say; anything else is
    ContentTypeNotSupportedError, raised from ``execute`` before any output."""

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        kinds = sorted({p.media_type for p in context.message.parts if p.media_type} - {"text/plain"})
        if kinds:
            raise errors.ContentTypeNotSupportedError(
                f"this agent reads text/plain only, not {', '.join(kinds)}",
                metadata={"media_types": ",".join(kinds)},
            )
        await super().execute(context, updater)


AGENTS: Mapping[str, Callable[[], TunedAgent]] = {
    "main": MediaAgent,
    "limited": lambda: TunedAgent(streaming=False, push=False, extended=False),
    "unconfigured": lambda: TunedAgent(extended_configured=False),
    "strict": lambda: TunedAgent(required_extension=REQUIRED_EXTENSION),
}
JSON_VIAS = ("local", "grpc")
GRPC_VIAS = ("direct", "reverse-jsonrpc", "reverse-rest")


class Stacks:
    """The agents, each served once per way to reach it, made on first use for the whole module."""

    def __init__(self, exits: contextlib.AsyncExitStack) -> None:
        self._exits = exits
        self._made: dict[tuple[str, str], Stack] = {}

    async def get(self, agent: str, via: str = "local") -> Stack:
        key = (agent, via)
        if key in self._made:
            return self._made[key]
        exits = self._exits
        if via in ("local", "direct"):
            # Every caller authenticated: the extended card is only for them.
            stack = await exits.enter_async_context(
                serve_stack(AGENTS[agent](), interceptors=[Authenticated()])
            )
            self._made[(agent, "local")] = self._made[(agent, "direct")] = stack
            return stack
        base = await self.get(agent)
        if via == "grpc":
            upstream = GrpcUpstream(base.address)
            exits.push_async_callback(upstream.aclose)
            bridge = await exits.enter_async_context(http_bridge(upstream))
            stack = Stack(base.address, bridge.url, base.server)
        else:
            json_upstream = (
                JsonRpcUpstream(base.url + "/") if via == "reverse-jsonrpc" else RestUpstream(base.url)
            )
            exits.push_async_callback(json_upstream.aclose)
            front = await exits.enter_async_context(
                GrpcFront(json_upstream, ServerSettings(host="127.0.0.1", port=0))
            )
            stack = Stack(front.address, base.url, base.server)
        self._made[key] = stack
        return stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stacks() -> AsyncIterator[Stacks]:
    async with contextlib.AsyncExitStack() as exits:
        yield Stacks(exits)


# --- calls on the wire, on each binding ---------------------------------------------------------------


def text(value: str, **options: Any) -> types.SendMessageRequest:
    return A2AClient.text_request(value, **options)


def _metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple({"a2a-version": "1.0", **{k.lower(): v for k, v in headers.items()}}.items())


async def grpc_call(address: str, method: str, request: Message, headers: Mapping[str, str] = {}) -> Any:
    """The response, or the ``AioRpcError`` the call ended with."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=OUTPUT.get(method, types.Task).FromString,
        )
        try:
            return await call(request, metadata=_metadata(headers), timeout=TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            return exc


async def http_call(
    binding: str, url: str, method: str, request: Message, headers: Mapping[str, str] = {}, accept: str = ""
) -> httpx.Response:
    sent = {"A2A-Version": "1.0", **headers, **({"Accept": accept} if accept else {})}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        if binding == "jsonrpc":
            body = {"jsonrpc": "2.0", "id": "c-1", "method": method, "params": _json(request)}
            return await http.post("/", content=json.dumps(body), headers={**sent, "Content-Type": JSON})
        verb, path, query, members = _rest_request(method, request)
        if members is not None:
            sent["Content-Type"] = A2A_JSON
        content = json.dumps(members) if members is not None else None
        return await http.request(verb, path, params=query, content=content, headers=sent)


def _json(message: Message) -> Any:
    return transcoding.encode(message)


async def completed_task(binding: str, stack: Stack) -> str:
    """The id of a task that completed, created over ``binding`` (the failing call's own)."""
    if binding == "grpc":
        response = await grpc_call(stack.address, "SendMessage", text("echo done"))
        assert isinstance(response, types.SendMessageResponse), response
        return response.task.id
    reply = (await http_call(binding, stack.url, "SendMessage", text("echo done"))).json()
    return str((reply["result"] if binding == "jsonrpc" else reply)["task"]["id"])


# --- the table, walked ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provocation:
    """How to make the served agent answer with one row's error."""

    request: Callable[[str], tuple[str, Message]]
    """The failing call, given the id of a completed task (when :attr:`needs_task`)."""
    agent: str = "main"
    headers: Mapping[str, str] = field(default_factory=dict)
    needs_task: bool = False


def _no_parts(_: str) -> tuple[str, Message]:
    request = text("x")
    del request.message.parts[:]
    return "SendMessage", request


def _image(_: str) -> tuple[str, Message]:
    request = text("look")
    request.message.parts.add(url="https://example.invalid/cat.png", media_type="image/png")
    return "SendMessage", request


PROVOKED: Mapping[str, Provocation] = {
    "TaskNotFoundError": Provocation(lambda t: ("GetTask", types.GetTaskRequest(id="no-such-task"))),
    "TaskNotCancelableError": Provocation(
        lambda t: ("CancelTask", types.CancelTaskRequest(id=t)), needs_task=True
    ),
    "PushNotificationNotSupportedError": Provocation(
        lambda t: ("CreateTaskPushNotificationConfig", types.TaskPushNotificationConfig(task_id=t, url=HOOK)),
        agent="limited",
        needs_task=True,
    ),
    "UnsupportedOperationError": Provocation(
        lambda t: ("SendMessage", text("more", task_id=t)), needs_task=True
    ),
    "ContentTypeNotSupportedError": Provocation(_image),
    "InvalidAgentResponseError": Provocation(lambda t: ("SendMessage", text("silent"))),
    "ExtendedAgentCardNotConfiguredError": Provocation(
        lambda t: ("GetExtendedAgentCard", types.GetExtendedAgentCardRequest()), agent="unconfigured"
    ),
    "ExtensionSupportRequiredError": Provocation(lambda t: ("SendMessage", text("echo x")), agent="strict"),
    "VersionNotSupportedError": Provocation(
        lambda t: ("GetTask", types.GetTaskRequest(id="x")), headers={"A2A-Version": "9.9"}
    ),
    "InvalidParamsError": Provocation(_no_parts),
    "InternalError": Provocation(lambda t: ("SendMessage", text("crash"))),
}
"""Every row a request to an agent can provoke, on every binding."""


async def _raw_jsonrpc(url: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        return await http.post("/", content=body, headers={"A2A-Version": "1.0", "Content-Type": JSON})


async def _raw_rest(url: str, verb: str, path: str, body: bytes = b"", **headers: str) -> httpx.Response:
    sent = {"A2A-Version": "1.0", "Content-Type": A2A_JSON, **headers}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        return await http.request(verb, path, content=body or None, headers=sent)


JSON_ONLY: Mapping[str, Mapping[str, Callable[[str], Any]]] = {
    "JSONParseError": {
        "jsonrpc": lambda url: _raw_jsonrpc(url, b'{"jsonrpc": "2.0", "id": 1,'),
        "rest": lambda url: _raw_rest(url, "POST", "/message:send", b'{"message": '),
    },
    "InvalidRequestError": {
        "jsonrpc": lambda url: _raw_jsonrpc(url, b'{"jsonrpc": "1.0", "id": 1, "method": "GetTask"}'),
        "rest": lambda url: _raw_rest(url, "GET", "/tasks/x", **{"Grpc-Timeout": "soon"}),
    },
    "MethodNotFoundError": {
        "jsonrpc": lambda url: _raw_jsonrpc(url, b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/nosuch"}'),
        "rest": lambda url: _raw_rest(url, "GET", "/no/such/route"),
    },
}
"""The standard errors of the JSON bindings themselves (a body, an envelope, a route)."""
NOT_ON_GRPC = {"JSONParseError", "InvalidRequestError"}
"""Rows no gRPC call can provoke: gRPC carries no JSON and no JSON-RPC envelope."""
REFUSED_BY_HTTP = {"MethodNotFoundError": "NOT_FOUND"}
"""Rows the HTTP+JSON front answers before any operation runs (no route: 404), with the
google.rpc.Code of that HTTP status instead of the row's."""

WALK = [
    pytest.param(row.name, binding, via, id=f"{row.name}-{binding}-{via}")
    for row in errors.ERROR_TABLE
    for binding in ("grpc", "jsonrpc", "rest")
    for via in (GRPC_VIAS if binding == "grpc" else JSON_VIAS)
    if not (binding == "grpc" and row.name in NOT_ON_GRPC)
]


def _error_info(status: Any) -> error_details_pb2.ErrorInfo | None:
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


def check_grpc(row: Spec, outcome: Any) -> None:
    assert isinstance(outcome, grpc.aio.AioRpcError), outcome
    assert outcome.code() == row.grpc_code, (outcome.code(), outcome.details())
    status = rpc_status.from_call(outcome)
    if row.name == "MethodNotFoundError":  # gRPC answers an unknown method itself: a bare code
        assert status is None
        return
    assert status is not None
    info = _error_info(status)
    assert info is not None
    assert (info.reason, info.domain) == (row.reason, errors.DOMAIN)


def check_jsonrpc(row: Spec, response: httpx.Response) -> None:
    # Spec 9.1: JSON-RPC answers are application/json, errors included; they travel in an HTTP 200.
    assert (response.status_code, response.headers["content-type"]) == (200, JSON), response.text
    error = response.json()["error"]
    assert error["code"] == row.jsonrpc_code, error
    info = [d for d in error["data"] if d["@type"] == ERROR_INFO_TYPE]
    assert [(i["reason"], i["domain"]) for i in info] == [(row.reason, errors.DOMAIN)]


def check_rest(row: Spec, response: httpx.Response) -> None:
    # Spec 11.1 and 11.6: the table's HTTP status, a google.rpc.Status body, application/a2a+json.
    assert (response.status_code, response.headers["content-type"]) == (row.http_status, A2A_JSON), (
        response.text
    )
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (
        row.http_status,
        REFUSED_BY_HTTP.get(row.name, row.grpc_code.name),
    )
    info = [d for d in error["details"] if d["@type"] == ERROR_INFO_TYPE]
    assert [(i["reason"], i["domain"]) for i in info] == [(row.reason, errors.DOMAIN)]


def check_problem(row: Spec, response: httpx.Response) -> None:
    assert (response.status_code, response.headers["content-type"]) == (row.http_status, PROBLEM)
    problem = response.json()
    assert (problem["status"], problem["type"]) == (row.http_status, row.problem_type or "about:blank")


@ASYNC
@pytest.mark.parametrize(("name", "binding", "via"), WALK)
async def test_the_error_table_on_every_binding(stacks: Stacks, name: str, binding: str, via: str) -> None:
    row = SPEC[name]
    if name in JSON_ONLY and binding != "grpc":
        stack = await stacks.get("main", via)
        response = await JSON_ONLY[name][binding](stack.url)
        (check_jsonrpc if binding == "jsonrpc" else check_rest)(row, response)
        return
    if name == "MethodNotFoundError":  # over gRPC: a method the service does not have
        stack = await stacks.get("main", via)
        check_grpc(row, await grpc_call(stack.address, "NoSuchMethod", types.GetTaskRequest(id="x")))
        return
    case = PROVOKED[name]
    stack = await stacks.get(case.agent, via)
    task_id = await completed_task(binding, stack) if case.needs_task else ""
    method, request = case.request(task_id)
    if binding == "grpc":
        check_grpc(row, await grpc_call(stack.address, method, request, case.headers))
    elif binding == "jsonrpc":
        check_jsonrpc(row, await http_call(binding, stack.url, method, request, case.headers))
    else:
        check_rest(row, await http_call(binding, stack.url, method, request, case.headers))
        check_problem(row, await http_call(binding, stack.url, method, request, case.headers, PROBLEM))


def test_the_walk_covers_every_row_on_every_binding() -> None:
    walked = {(p.values[0], p.values[1]) for p in WALK}
    everything = {(row.name, b) for row in errors.ERROR_TABLE for b in ("grpc", "jsonrpc", "rest")}
    assert everything - walked == {(name, "grpc") for name in NOT_ON_GRPC}
    assert set(PROVOKED) | set(JSON_ONLY) == set(ROWS)
    a2a_specific = [row.name for row in errors.ERROR_TABLE if -32099 <= row.jsonrpc_code <= -32001]
    assert len(a2a_specific) == 9
    assert set(a2a_specific) <= set(PROVOKED)


def test_our_table_is_the_specs() -> None:
    assert list(SPEC) == list(ROWS)
    for name, spec in SPEC.items():
        row = ROWS[name]
        got = Spec(name, row.jsonrpc_code, row.grpc_code, row.http_status, row.reason)
        assert got == spec
        assert row.problem_type == spec.problem_type


# --- the official SDK's clients decode them --------------------------------------------------------------

SDK_BINDINGS = ("grpc", "jsonrpc", "rest")


@contextlib.asynccontextmanager
async def sdk_transport(binding: str, stack: Stack, seen: list[httpx.Response]) -> AsyncIterator[Any]:
    """The SDK's bare transport of ``binding``: it makes every call, whatever the card says."""
    card = sdk.AgentCard(name="ours")
    card.capabilities.extended_agent_card = True
    if binding == "grpc":
        transport: Any = GrpcTransport(grpc.aio.insecure_channel(stack.address), card)
        try:
            yield transport
        finally:
            await transport.close()
        return

    async def record(response: httpx.Response) -> None:
        seen.append(response)

    async with httpx.AsyncClient(timeout=TIMEOUT, event_hooks={"response": [record]}) as http:
        if binding == "jsonrpc":
            yield JsonRpcTransport(http, card, stack.url + "/")
        else:
            yield RestTransport(http, card, stack.url)


def _sdk_message(message: Message) -> Any:
    return getattr(sdk, message.DESCRIPTOR.name).FromString(message.SerializeToString())


SDK_WALK = [
    pytest.param(name, binding, id=f"{name}-{binding}") for name in PROVOKED for binding in SDK_BINDINGS
]


@ASYNC
@pytest.mark.interop
@pytest.mark.parametrize(("name", "binding"), SDK_WALK)
async def test_the_sdk_clients_decode_our_v101_codes_into_their_classes(
    stacks: Stacks, name: str, binding: str
) -> None:
    row = SPEC[name]
    case = PROVOKED[name]
    stack = await stacks.get(case.agent)
    task_id = await completed_task("grpc", stack) if case.needs_task else ""
    method, request = case.request(task_id)
    parameters = {"A2A-Version": "1.0", **case.headers}
    seen: list[httpx.Response] = []
    async with sdk_transport(binding, stack, seen) as transport:
        call = getattr(transport, operation_name(method))
        with pytest.raises(sdk_errors.A2AError) as caught:
            await call(
                _sdk_message(request),
                context=ClientCallContext(timeout=TIMEOUT, service_parameters=parameters),
            )
    assert type(caught.value) is getattr(sdk_errors, name), repr(caught.value)
    # ... and what the SDK decoded it from was the v1.0.1 form.
    if binding == "grpc":
        cause = caught.value.__cause__
        assert isinstance(cause, grpc.aio.AioRpcError)
        assert cause.code() == row.grpc_code
    else:
        status, media = (200, JSON) if binding == "jsonrpc" else (row.http_status, A2A_JSON)
        assert [(r.status_code, r.headers["content-type"]) for r in seen] == [(status, media)]


# --- media types -------------------------------------------------------------------------------------


@ASYNC
@pytest.mark.parametrize("via", JSON_VIAS)
async def test_every_answer_carries_its_bindings_media_type(stacks: Stacks, via: str) -> None:
    stack = await stacks.get("main", via)

    async def media(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.headers["content-type"].split(";")[0]

    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers={"A2A-Version": "1.0"}) as http:
        body = json.dumps(_json(text("echo media")))
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": json.loads(body)}
        # HTTP+JSON, spec 11.1: application/a2a+json, success and error bodies alike
        assert await media(
            await http.post("/message:send", content=body, headers={"Content-Type": A2A_JSON})
        ) == (
            200,
            A2A_JSON,
        )
        assert await media(await http.get("/tasks/nope")) == (404, A2A_JSON)
        assert await media(await http.get("/tasks/nope", headers={"Accept": PROBLEM})) == (404, PROBLEM)
        assert await media(await http.get("/no/route")) == (404, A2A_JSON)
        assert await media(await http.delete("/message:send")) == (405, A2A_JSON)
        assert await media(
            await http.post("/message:send", content=body, headers={"Content-Type": "text/plain"})
        ) == (
            415,
            A2A_JSON,
        )
        assert await media(await http.get("/extendedAgentCard")) == (200, A2A_JSON)
        async with http.stream(
            "POST", "/message:stream", content=body, headers={"Content-Type": A2A_JSON}
        ) as r:
            assert await media(r) == (200, SSE)
            await r.aread()
        # JSON-RPC, spec 9.1: application/json, errors and refusals included; streams are SSE
        assert await media(await http.post("/", json=rpc)) == (200, JSON)
        assert await media(await http.post("/", json={**rpc, "method": "Nope"})) == (200, JSON)
        assert await media(await http.post("/", content=b"x", headers={"Content-Type": "text/plain"})) == (
            415,
            JSON,
        )
        async with http.stream("POST", "/", json={**rpc, "method": "SendStreamingMessage"}) as r:
            assert await media(r) == (200, SSE)
            await r.aread()
        # The agent card, section 8: a plain JSON document
        assert await media(await http.get(CARD_PATH)) == (200, JSON)


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize(
    "content_type",
    [
        A2A_JSON,
        f"{A2A_JSON}; charset=utf-8",
        JSON,
        f"{JSON}; charset=utf-8",
        "Application/A2A+JSON",
        f"{A2A_JSON} ;q=1",
    ],
)
async def test_requests_are_read_in_either_json_media_type(
    stacks: Stacks, binding: str, content_type: str
) -> None:
    stack = await stacks.get("main")
    params = _json(text("echo typed"))
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as http:
        headers = {"A2A-Version": "1.0", "Content-Type": content_type}
        if binding == "jsonrpc":
            envelope = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
            response = await http.post("/", content=json.dumps(envelope), headers=headers)
            task = response.json()["result"]["task"]
        else:
            response = await http.post("/message:send", content=json.dumps(params), headers=headers)
            task = response.json()["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"


@ASYNC
@pytest.mark.parametrize("content_type", ["text/json", "application/a2a+jsonx", "application/x-a2a+json"])
async def test_other_media_types_are_415(stacks: Stacks, content_type: str) -> None:
    stack = await stacks.get("main")
    response = await _raw_rest(stack.url, "POST", "/message:send", b"{}", **{"Content-Type": content_type})
    assert (response.status_code, response.headers["content-type"]) == (415, A2A_JSON)
    assert "send application/a2a+json (or application/json)" in response.json()["error"]["message"]


def _agent(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.asyncio
@pytest.mark.parametrize("media", [A2A_JSON, JSON, f"{JSON}; charset=utf-8", f"{A2A_JSON}; charset=utf-8"])
async def test_the_reverse_bridge_sends_a2a_json_and_reads_either_type(media: str) -> None:
    sent: list[httpx.Request] = []
    task = {"id": "t-1", "status": {"state": "TASK_STATE_COMPLETED"}}

    def agent(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/tasks/gone":
            body = {
                "error": {
                    "code": 404,
                    "status": "NOT_FOUND",
                    "message": "gone",
                    "details": [_info("TASK_NOT_FOUND")],
                }
            }
            return httpx.Response(404, content=json.dumps(body), headers={"content-type": media})
        return httpx.Response(200, content=json.dumps({"task": task}), headers={"content-type": media})

    async with _agent(agent) as http:
        upstream = RestUpstream("http://agent.invalid", client=http)
        call = Call({"a2a-version": "1.0"})
        response = await upstream.unary("SendMessage", text("echo"), call)
        assert isinstance(response, types.SendMessageResponse)
        assert response.task.status.state == types.TASK_STATE_COMPLETED
        with pytest.raises(errors.TaskNotFoundError, match="gone"):
            await upstream.unary("GetTask", types.GetTaskRequest(id="gone"), call)
    post, get = sent
    assert (post.headers["content-type"], post.headers["accept"]) == (A2A_JSON, f"{A2A_JSON}, {JSON}")
    assert "content-type" not in get.headers  # a GET has no body to type
    assert get.headers["accept"] == f"{A2A_JSON}, {JSON}"


def _info(reason: str) -> dict[str, Any]:
    return {"@type": ERROR_INFO_TYPE, "reason": reason, "domain": errors.DOMAIN, "metadata": {}}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "code_name", "reason", "cls"),
    [
        (409, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE", errors.TaskNotCancelableError),
        (415, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED", errors.ContentTypeNotSupportedError),
        (502, "INTERNAL", "INVALID_AGENT_RESPONSE", errors.InvalidAgentResponseError),
        (400, "UNIMPLEMENTED", "UNSUPPORTED_OPERATION", errors.UnsupportedOperationError),
        (400, "UNIMPLEMENTED", "VERSION_NOT_SUPPORTED", errors.VersionNotSupportedError),
        (400, "UNIMPLEMENTED", "PUSH_NOTIFICATION_NOT_SUPPORTED", errors.PushNotificationNotSupportedError),
    ],
    ids=["409", "415", "502", "unimplemented-unsupported", "unimplemented-version", "unimplemented-push"],
)
async def test_the_reverse_bridge_decodes_a_v100_agents_codes(
    status: int, code_name: str, reason: str, cls: type[errors.A2AError]
) -> None:
    # A v1.0.0 agent over HTTP+JSON: the old status (and code name), the same ErrorInfo.
    def agent(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": status, "status": code_name, "message": "old", "details": [_info(reason)]}}
        return httpx.Response(status, content=json.dumps(body), headers={"content-type": JSON})

    async with _agent(agent) as http:
        upstream = RestUpstream("http://agent.invalid", client=http)
        with pytest.raises(cls) as caught:
            await upstream.unary("CancelTask", types.CancelTaskRequest(id="t"), Call({"a2a-version": "1.0"}))
    # Passed on by our fronts with the v1.0.1 codes.
    assert to_rpc_status(caught.value).code == cls.spec.grpc_code
    assert http_status_for(caught.value) == cls.spec.http_status


# --- unrecognized members (section 5.7) --------------------------------------------------------------

UNKNOWN = [
    pytest.param(lambda b: {**b, "futureField": {"x": [1, 2]}}, id="top-level"),
    pytest.param(lambda b: {**b, "message": {**b["message"], "futureFlag": True}}, id="in-message"),
    pytest.param(
        lambda b: {
            **b,
            "message": {**b["message"], "parts": [{**b["message"]["parts"][0], "hint": {"n": 1}}]},
        },
        id="in-a-part",
    ),
    pytest.param(
        lambda b: {**b, "configuration": {"acceptedOutputModes": ["text/plain"], "futureKnob": 3}},
        id="in-configuration",
    ),
    pytest.param(
        lambda b: {**b, "configuration": {"taskPushNotificationConfig": {"url": HOOK, "retries": 3}}},
        id="in-push-config",
    ),
]


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize("via", JSON_VIAS)
@pytest.mark.parametrize("change", UNKNOWN)
async def test_unrecognized_members_are_ignored(
    stacks: Stacks, via: str, binding: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    stack = await stacks.get("main", via)
    params = change(_json(text("echo still read")))
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers={"A2A-Version": "1.0"}) as http:
        if binding == "jsonrpc":
            envelope = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params, "extra": 1}
            reply = (await http.post("/", json=envelope)).json()
            task = reply["result"]["task"]
        else:
            response = await http.post("/message:send", json=params)
            assert response.status_code == 200, response.text
            task = response.json()["task"]
    assert task["artifacts"][0]["parts"][0]["text"] == "echo still read"


@ASYNC
async def test_unknown_query_parameters_are_ignored_on_every_route(stacks: Stacks) -> None:
    stack = await stacks.get("main")
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers={"A2A-Version": "1.0"}) as http:
        sent = await http.post("/message:send?debug=1&_=123", json=_json(text("echo q")))
        assert sent.status_code == 200, sent.text
        task_id = sent.json()["task"]["id"]
        got = await http.get(f"/tasks/{task_id}?debug=1&historyLength=0")
        assert (got.status_code, "history" in got.json()) == (200, False)
        # A known parameter with a bad value, or one that belongs in the body, is still refused.
        bad = await http.get(f"/tasks/{task_id}?debug=1&historyLength=-", headers={"Accept": PROBLEM})
        assert (bad.status_code, bad.json()["fieldViolations"][0]["field"]) == (400, "historyLength")
        misplaced = await http.post("/message:send?tenant=acme", json=_json(text("echo q")))
        assert misplaced.status_code == 400
        error = misplaced.json()["error"]
        assert "send tenant there, not in the query" in error["message"]


BESIDE_UNKNOWN = [
    pytest.param({"futureField": 1, "message": {"role": "ROLE_BOSS"}}, "message.role", id="bad-enum"),
    pytest.param({"message": {"futureFlag": 1, "role": 7.5}}, "message.role", id="fractional-enum"),
    pytest.param({"message": {"parts": [{"hint": 1, "raw": "!!"}]}}, "message.parts[0].raw", id="bad-base64"),
    pytest.param(
        {"configuration": {"futureKnob": 1, "historyLength": "x"}}, "configuration.historyLength", id="type"
    ),
    pytest.param({"message": {"extra": 1, "parts": {"text": "x"}}}, "message.parts", id="object-for-array"),
    pytest.param({"metadata": "x", "futureField": 2}, "metadata", id="string-for-object"),
]


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize(("params", "field_path"), BESIDE_UNKNOWN)
async def test_an_unknown_member_never_hides_a_bad_one(
    stacks: Stacks, binding: str, params: dict[str, Any], field_path: str
) -> None:
    stack = await stacks.get("main")
    message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "x"}]}
    body = {**params, "message": {**message, **params.get("message", {})}}
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT, headers={"A2A-Version": "1.0"}) as http:
        if binding == "jsonrpc":
            error = (
                await http.post(
                    "/", json={"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": body}
                )
            ).json()["error"]
            assert error["code"] == -32602
            details = error["data"]
        else:
            response = await http.post("/message:send", json=body)
            assert response.status_code == 400, response.text
            details = response.json()["error"]["details"]
    [bad] = [d for d in details if d["@type"] == BAD_REQUEST_TYPE]
    assert [v["field"] for v in bad["fieldViolations"]] == [field_path]


# --- the agent card: Last-Modified (section 8.6) -----------------------------------------------------


class CardUpstream:
    """An upstream that only has a card, which a test may change."""

    def __init__(self) -> None:
        self.card_ = types.AgentCard(name="card", description="v1", version="1.0")

    async def card(self) -> types.AgentCard:
        return self.card_

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        raise errors.UnsupportedOperationError("only a card here")

    def stream(self, method: str, request: Message, call: Call) -> Any:
        raise errors.UnsupportedOperationError("only a card here")

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


T0 = 1_790_000_000.75  # a wall-clock time with a fraction: Last-Modified is its whole second


@ASYNC
async def test_the_card_says_when_it_last_changed() -> None:
    upstream = CardUpstream()
    async with http_bridge(upstream) as bridge:
        app: BridgeApp = bridge.app
        clock = Clock(T0)
        app.card.clock = clock
        first = await bridge.client.get(CARD_PATH)
        assert first.headers["last-modified"] == http_date(int(T0)) == "Mon, 21 Sep 2026 14:13:20 GMT"
        clock.now += 3600  # unchanged an hour later: the same date
        for verb in ("GET", "HEAD"):
            again = await bridge.client.request(verb, CARD_PATH)
            assert (again.status_code, again.headers["last-modified"]) == (
                200,
                first.headers["last-modified"],
            )
        upstream.card_.description = "v2"  # the served content changes: a new ETag and a new date
        changed = await bridge.client.get(CARD_PATH)
        assert changed.headers["etag"] != first.headers["etag"]
        assert changed.headers["last-modified"] == http_date(int(T0) + 3600)


CONDITIONS = [
    # (If-None-Match, If-Modified-Since, status): If-None-Match decides alone when present (RFC 9110 13.2.2)
    pytest.param(None, "last-modified", 304, id="ims-same"),
    pytest.param(None, "later", 304, id="ims-later"),
    pytest.param(None, "earlier", 200, id="ims-earlier"),
    pytest.param(None, "rfc850", 304, id="ims-rfc850-form"),
    pytest.param(None, "asctime", 304, id="ims-asctime-form"),
    pytest.param(None, "not a date", 200, id="ims-invalid-is-ignored"),
    pytest.param(None, "twice", 200, id="ims-twice-is-ignored"),
    pytest.param('"stale"', "last-modified", 200, id="inm-mismatch-wins-over-ims"),
    pytest.param("etag", "earlier", 304, id="inm-match-wins-over-ims"),
    pytest.param("*", None, 304, id="inm-star"),
]


@ASYNC
@pytest.mark.parametrize("verb", ["GET", "HEAD"])
@pytest.mark.parametrize(("none_match", "modified_since", "status"), CONDITIONS)
async def test_conditional_card_requests(
    stacks: Stacks, verb: str, none_match: str | None, modified_since: str | None, status: int
) -> None:
    stack = await stacks.get("main")
    async with httpx.AsyncClient(base_url=stack.url, timeout=TIMEOUT) as http:
        full = await http.get(CARD_PATH)
        etag, last = full.headers["etag"], full.headers["last-modified"]
        when = email.utils.parsedate_to_datetime(last).timestamp()
        dates = {
            "last-modified": last,
            "later": http_date(when + 10),
            "earlier": http_date(when - 1),
            "rfc850": email.utils.parsedate_to_datetime(last).strftime("%A, %d-%b-%y %H:%M:%S GMT"),
            "asctime": email.utils.parsedate_to_datetime(last).strftime("%a %b %e %H:%M:%S %Y"),
            "not a date": "yesterday",
            "twice": f"{last}, {last}",
        }
        headers = {}
        if none_match is not None:
            headers["If-None-Match"] = etag if none_match == "etag" else none_match
        if modified_since is not None:
            headers["If-Modified-Since"] = dates[modified_since]
        response = await http.request(verb, CARD_PATH, headers=headers)
    assert response.status_code == status, headers
    assert (response.headers["etag"], response.headers["last-modified"]) == (etag, last)
    assert "max-age=" in response.headers["cache-control"]
    if status == 304 or verb == "HEAD":
        assert response.content == b""
    else:
        assert response.content == full.content
