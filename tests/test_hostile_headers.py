"""Hostile headers and hostile values: a client error with a short, clear message, never a 500.

Every refusal here names what is wrong, in our words (no Python text), stays small whatever the
caller sent, and the process serves the next request. The HTTP front is tried in front of each
kind of upstream, since each fails differently on a bad header when nothing checks it first:

* ``local``: the bridge inside ``a2a-grpc serve`` (``LocalUpstream``; no metadata hop at all),
* ``grpc``: the bridge in front of a gRPC agent in this process (``GrpcUpstream``: gRPC refuses
  non-ASCII metadata with an exception of its own, and metadata past 8 KiB at random),
* ``process``: ``a2a-grpc bridge http-to-grpc`` as its own process.

The gRPC front of the reverse bridge (``GrpcFront`` over a JSON upstream) gets the same treatment
for the metadata it passes on as HTTP headers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.aio
import httpx
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from a2a_grpc import errors, server, types
from a2a_grpc._validation import MAX_ID_CHARS
from a2a_grpc.bridge import grpcfront
from a2a_grpc.bridge.errordetails import ERROR_INFO_TYPE
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream, open_json_upstream
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import Call, GrpcUpstream, check_header
from a2a_grpc.client import A2AClient
from a2a_grpc.server import ServerSettings
from tests.bridge_http_peers import RawConnection, RecordingAgent, http_bridge, http_request, rpc, send_body
from tests.bridge_peers import Stack, bridge_process, serve_stack
from tests.json_peers import JSONRPC_PATH, sdk_json_peer

ASYNC = pytest.mark.asyncio(loop_scope="module")
"""Every async test runs in the module's event loop, where the module-scoped servers live."""

TIMEOUT = 10.0
SMALL = 2048
"""The most bytes a refusal may take, whatever the size of what the caller sent."""
HUGE = 100_000
IN_URL = 60_000
"""A huge value inside a URL: past ~64 kB, uvicorn's HTTP parser answers 400 itself, before the app."""
VIAS = ("local", "grpc", "process")
BINDINGS = ("jsonrpc", "rest")
PYTHON_TEXT = re.compile(
    r"invalid literal|object is not|object has no|has no len|NoneType|Traceback|<class |"
    r" object at 0x|\b[A-Z][A-Za-z]*(Error|Exception)\b|\bint\(\)|\bdict\b|\bbytes-like\b"
)
"""What a message built from a Python exception's text looks like."""


# --- the stacks -----------------------------------------------------------------------------------------


@dataclass
class Fronts:
    agent: RecordingAgent
    local: Stack
    urls: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fronts() -> AsyncIterator[Fronts]:
    agent = RecordingAgent()
    async with contextlib.AsyncExitStack() as exits:
        local = await exits.enter_async_context(serve_stack(agent))
        upstream = GrpcUpstream(local.address)
        exits.push_async_callback(upstream.aclose)
        over_grpc = await exits.enter_async_context(http_bridge(upstream))
        process = await exits.enter_async_context(bridge_process(local.address))
        yield Fronts(agent, local, {"local": local.url, "grpc": over_grpc.url, "process": process})


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as http:
        yield http


async def send(http: httpx.AsyncClient, binding: str, headers: dict[str, Any]) -> httpx.Response:
    """SendMessage "echo" over ``binding``; header values may be bytes (sent as they are)."""
    base = {"A2A-Version": "1.0", **headers}
    if binding == "jsonrpc":
        body = json.dumps(rpc("SendMessage", send_body("echo hostile"), rpc_id="h-1"))
        return await http.post("/", content=body, headers={**base, "Content-Type": "application/json"})
    body = json.dumps(send_body("echo hostile"))
    return await http.post(
        "/message:send", content=body, headers={**base, "Content-Type": "application/a2a+json"}
    )


def refusal(response: httpx.Response, binding: str, status: int, code: int) -> dict[str, Any]:
    """The error of a refused request, checked: status, media type, size, our words; its ErrorInfo."""
    assert len(response.content) < SMALL, len(response.content)
    if binding == "jsonrpc":
        assert (response.status_code, response.headers["content-type"]) == (status, "application/json")
        body = response.json()
        assert (body["jsonrpc"], body["error"]["code"]) == ("2.0", code), body
        error, details = body["error"], body["error"]["data"]
    else:
        assert (response.status_code, response.headers["content-type"]) == (status, "application/a2a+json")
        error = response.json()["error"]
        assert error["code"] == status
        details = error["details"]
    assert not PYTHON_TEXT.search(error["message"]), error["message"]
    [info] = [d for d in details if d["@type"] == ERROR_INFO_TYPE]
    return {"message": error["message"], **info}


async def raw_get(url: str, path: str) -> httpx.Response:
    """GET ``path`` over a bare socket: httpx refuses URLs past 64 KiB, the HTTP server does not."""
    port = urlsplit(url).port
    assert port is not None
    connection = await RawConnection.open(port)
    try:
        await connection.send(http_request("GET", path))
        received = await connection.read_all(TIMEOUT)
    finally:
        await connection.close()
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return httpx.Response(int(lines[0].split()[1]), headers=headers, content=body)


async def still_serving(http: httpx.AsyncClient, binding: str) -> None:
    response = await send(http, binding, {})
    assert response.status_code == 200, response.text
    result = response.json()["result"] if binding == "jsonrpc" else response.json()
    assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


# --- headers the upstream hop cannot carry ---------------------------------------------------------------

BAD_VALUES = [
    pytest.param(
        "Authorization", "Bearer caf\xe9".encode("latin-1"), "byte 0xE9 at position 10", id="latin1-auth"
    ),
    pytest.param("Authorization", "Bearer caf\u00e9".encode(), "byte 0xC3 at position 10", id="utf8-auth"),
    pytest.param("A2A-Trace-Tag", b"\xff\xfe", "byte 0xFF at position 0", id="a2a-header"),
    pytest.param("traceparent", b"00-\x80-01", "byte 0x80 at position 3", id="traceparent"),
    pytest.param("tracestate", b"a=1\tb=2", "byte 0x09 at position 3", id="tab"),
    pytest.param("A2A-Trace-Bin", b"not base64!", "must be base64", id="bin-not-base64"),
    pytest.param("A2A-Trace-Bin", b"a", "must be base64", id="bin-one-char"),
]


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("name", "value", "said"), BAD_VALUES)
async def test_a_header_gRPC_cannot_carry_is_400_naming_it(
    fronts: Fronts, via: str, binding: str, name: str, value: bytes, said: str
) -> None:
    async with client(fronts.urls[via]) as http:
        response = await send(http, binding, {name: value})
        # JSON-RPC: an error object in a 200, as for every request that reached the JSON-RPC layer.
        info = refusal(response, binding, 200 if binding == "jsonrpc" else 400, -32600)
        assert (info["reason"], info["metadata"]) == ("INVALID_REQUEST", {"header": name.lower()})
        assert f"header {name.lower()} " in info["message"]
        assert said in info["message"]
        if binding == "rest":
            assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
        await still_serving(http, binding)


BIG = [
    pytest.param("Authorization", "Bearer " + "x" * 20_000, id="20k-authorization"),
    pytest.param("A2A-Extensions", ",".join(f"urn:x:{i}" for i in range(1500)), id="a2a-extensions"),
    pytest.param("A2A-Version", "1." + "0" * 9000, id="a2a-version"),
]


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("name", "value"), BIG)
async def test_headers_too_large_to_pass_on_are_431_naming_the_largest(
    fronts: Fronts, via: str, binding: str, name: str, value: str
) -> None:
    # Before: the gRPC upstream refused the call (RESOURCE_EXHAUSTED, its own words, 429 here), at
    # random between 8 and 16 KiB; the in-process upstream took anything.
    async with client(fronts.urls[via]) as http:
        response = await send(http, binding, {name: value})
        info = refusal(response, binding, 431, -32600)
        assert info["metadata"] == {"header": name.lower(), "limit_bytes": str(7 * 1024)}
        assert f"header {name.lower()} ({len(value)} bytes) is too large to pass on" in info["message"]
        if binding == "rest":
            assert response.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        await still_serving(http, binding)


@ASYNC
@pytest.mark.parametrize("via", VIAS)
async def test_headers_within_the_limit_and_base64_bin_headers_pass(fronts: Fronts, via: str) -> None:
    token = "Bearer " + "t" * 6000  # a large but reasonable token: under the 7 KiB limit
    bin_value = base64.b64encode(b"\x00\xffbinary").decode().rstrip("=")  # unpadded, as gRPC writes it
    async with client(fronts.urls[via]) as http:
        response = await send(http, "rest", {"Authorization": token, "A2A-Trace-Bin": bin_value})
        assert response.status_code == 200, response.text
    if via == "local":  # the in-process agent sees the header as sent
        seen = fronts.agent.seen[-1].headers
        assert (seen["authorization"], seen["a2a-trace-bin"]) == (token, bin_value)


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_header_name_that_is_no_metadata_key_is_400(fronts: Fronts, binding: str) -> None:
    settings = BridgeSettings(forward_headers=("x-odd!name",))
    async with http_bridge(GrpcUpstream(fronts.local.address), settings) as bridge:
        try:
            response = await send(bridge.client, binding, {"X-Odd!Name": "v"})
            info = refusal(response, binding, 200 if binding == "jsonrpc" else 400, -32600)
            assert "header name 'x-odd!name' cannot be passed on" in info["message"]
            await still_serving(bridge.client, binding)
        finally:
            upstream = bridge.app.upstream
            assert isinstance(upstream, GrpcUpstream)
            await upstream.aclose()


def test_header_checks_in_isolation() -> None:
    check_header("authorization", "Bearer ok ~!")
    check_header("a2a-x-bin", "aGVsbG8")  # unpadded
    check_header("a2a-x-bin", "aGVsbG8=")
    for name, value in (
        ("a2a-x-bin", "aGVsbG8=="),
        ("a2a-x", "caf\u00e9"),
        ("a2a-x", "\u20ac"),
        ("A2A-X", "v"),
    ):
        with pytest.raises(errors.InvalidRequestError) as caught:
            check_header(name, value)
        assert len(caught.value.message) < 400
        assert not PYTHON_TEXT.search(caught.value.message)
    with pytest.raises(errors.InvalidRequestError, match="character U\\+20AC at position 0"):
        check_header("a2a-x", "\u20ac")
    assert Call({"a2a-x-bin": "aGVsbG8", "a2a-y": "z"}).metadata() == (
        ("a2a-x-bin", b"hello"),
        ("a2a-y", "z"),
    )
    with pytest.raises(errors.InvalidRequestError):  # a Call built by hand is checked before grpc sees it
        Call({"a2a-y": "caf\u00e9"}).metadata()


# --- hostile values: the answer stays small and says what is wrong -----------------------------------------


@ASYNC
@pytest.mark.parametrize("via", VIAS)
async def test_huge_values_get_small_answers_that_say_what_is_wrong(fronts: Fronts, via: str) -> None:
    huge = "z" * HUGE
    long = "z" * IN_URL
    async with client(fronts.urls[via]) as http:
        version = {"A2A-Version": "1.0"}
        # JSON-RPC: a method name
        response = await http.post("/", json=rpc(huge, {}), headers=version)
        info = refusal(response, "jsonrpc", 200, -32601)
        assert info["message"].endswith(f"\u2026 ({HUGE} characters) not found")
        # JSON-RPC: an id (every answer repeats the id: it is refused, the answer's id is null)
        response = await http.post("/", json=rpc("GetTask", {"id": "x"}, rpc_id=huge), headers=version)
        info = refusal(response, "jsonrpc", 200, -32600)
        assert response.json()["id"] is None
        assert info["message"] == f"id is {HUGE} characters long: at most 256 are read"
        # JSON-RPC and HTTP+JSON: a task id (past MAX_ID_CHARS: refused, not quoted back)
        response = await http.post("/", json=rpc("GetTask", {"id": huge}), headers=version)
        info = refusal(response, "jsonrpc", 200, -32602)
        assert info["message"] == f"invalid id: is {HUGE} characters long; at most {MAX_ID_CHARS} are allowed"
        response = await raw_get(fronts.urls[via], f"/tasks/{long}")
        message = refusal(response, "rest", 400, 0)["message"]
        assert message == f"invalid id: is {IN_URL} characters long; at most {MAX_ID_CHARS} are allowed"
        # HTTP+JSON: a path that is no route
        path = f"/{long}/nowhere/at/all"
        info = refusal(await raw_get(fronts.urls[via], path), "rest", 404, 0)
        assert info["message"].startswith("no route for 'GET' '/zzz")
        assert f"({len(path)} characters)" in info["message"]
        # HTTP+JSON: query values, known and unknown
        response = await raw_get(fronts.urls[via], f"/tasks?historyLength={long}")
        info = refusal(response, "rest", 400, 0)
        assert info["message"].startswith("invalid historyLength: must be an integer")
        response = await raw_get(fronts.urls[via], f"/tasks?status={long}")
        assert "must be a TaskState name" in refusal(response, "rest", 400, 0)["message"]
        response = await raw_get(fronts.urls[via], f"/tasks?{long}=1&pageSize=1")
        assert response.status_code == 200, response.text  # an unknown parameter is ignored
        # both: headers that are read, not passed on
        response = await http.get("/tasks", headers={**version, "Grpc-Timeout": huge})
        assert refusal(response, "rest", 400, 0)["message"].startswith("invalid Grpc-Timeout 'zzz")
        response = await http.post("/message:send", content=b"{}", headers={**version, "Content-Type": huge})
        assert "unsupported Content-Type 'zzz" in refusal(response, "rest", 415, 0)["message"]
        # a body value
        body = send_body("echo", message={"messageId": "m", "role": huge, "parts": [{"text": "x"}]})
        response = await http.post("/message:send", json=body, headers=version)
        assert refusal(response, "rest", 400, 0)["message"].startswith(
            "invalid message.role: must be a Role name"
        )
        await still_serving(http, "rest")
        await still_serving(http, "jsonrpc")


def _rpc(method: str, params: object, rpc_id: object = 1) -> tuple[str, bytes]:
    return "/", json.dumps({"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}).encode()


def _rest(body: object) -> tuple[str, bytes]:
    return "/message:send", body if isinstance(body, bytes) else json.dumps(body).encode()


BAD_INPUTS = [
    _rpc("GetTask", {"id": "x", "historyLength": "many"}),
    _rpc("SendMessage", {"message": 5}),
    _rpc("SendMessage", {"message": {"parts": [None]}}),
    _rpc("SendMessage", {"message": {"parts": [{"raw": 5}]}}),
    _rpc("SendMessage", {"message": {"parts": [{"text": 5}]}}),
    _rpc("ListTasks", {"statusTimestampAfter": 5}),
    _rpc("ListTasks", {"pageSize": 1e99}),
    _rpc("ListTasks", []),
    _rpc("ListTasks", {"status": {}}),
    _rpc("ListTasks", {}, rpc_id=1.5),
    ("/", b'"just a string"'),
    ("/", b"{\xff}"),
    ("/", b""),
    _rest({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "b"}]}}),
    _rest({"configuration": {"acceptedOutputModes": "text/plain"}}),
    _rest({"configuration": {"returnImmediately": "yes"}}),
    _rest([1, 2]),
    _rest(b"{,}"),
]


@ASYNC
@pytest.mark.parametrize(("path", "body"), BAD_INPUTS)
async def test_no_refusal_speaks_python(fronts: Fronts, path: str, body: bytes) -> None:
    async with client(fronts.urls["local"]) as http:
        response = await http.post(
            path, content=body, headers={"A2A-Version": "1.0", "Content-Type": "application/json"}
        )
    payload = response.json()
    error = payload["error"]
    assert response.status_code in (200, 400), response.text
    text = json.dumps(error)
    assert not PYTHON_TEXT.search(text), text


# --- the gRPC front of the reverse bridge -------------------------------------------------------------------


@dataclass
class Reverse:
    front: GrpcFront
    recorded: Any
    binding: str


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["JSONRPC", "HTTP+JSON"])
async def reverse(request: pytest.FixtureRequest) -> AsyncIterator[Reverse]:
    async with sdk_json_peer((request.param,)) as agent:
        upstream = await open_json_upstream(agent.url)
        try:
            async with GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0)) as front:
                yield Reverse(front, agent.recorder, request.param)
        finally:
            await upstream.aclose()


def _sent(reverse: Reverse) -> dict[str, str]:
    path = JSONRPC_PATH if reverse.binding == "JSONRPC" else "/message:send"
    return reverse.recorded.to(path)[-1].headers  # type: ignore[no-any-return]


@ASYNC
async def test_the_grpc_front_passes_bin_metadata_on_as_base64(reverse: Reverse) -> None:
    # Before: bytes values were dropped without a word.
    async with A2AClient(reverse.front.address, timeout=TIMEOUT) as a2a:
        metadata = [("a2a-trace-bin", b"\x00\xffbinary"), ("authorization", "Bearer " + "t" * 6000)]
        await a2a.send_message(A2AClient.text_request("echo bin"), metadata=metadata)
    seen = _sent(reverse)
    assert base64.b64decode(seen["a2a-trace-bin"] + "==") == b"\x00\xffbinary"
    assert seen["authorization"] == "Bearer " + "t" * 6000


@ASYNC
async def test_the_grpc_front_refuses_oversized_metadata_without_an_internal_error(reverse: Reverse) -> None:
    # gRPC itself bounds what reaches the front (16 KiB hard limit): a clean refusal, never INTERNAL.
    async with A2AClient(reverse.front.address, timeout=TIMEOUT) as a2a:
        with pytest.raises(errors.A2AError) as caught:
            await a2a.send_message(A2AClient.text_request("echo"), metadata=[("authorization", "x" * 20_000)])
        assert caught.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED, repr(caught.value)
        response = await a2a.send_message(A2AClient.text_request("echo after"))
        assert response.task.status.state == types.TASK_STATE_COMPLETED


class _Aborted(Exception):
    pass


class _Context:
    """What a forwarding handler uses of a ``grpc.aio.ServicerContext``; records the abort."""

    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.metadata = metadata
        self.status: Any = None

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self.metadata

    def time_remaining(self) -> float:
        return TIMEOUT

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def trailing_metadata(self) -> tuple[()]:
        return ()

    async def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise _Aborted


class _NeverCalled:
    async def unary(self, method: str, request: Message, call: Call) -> Message:
        raise AssertionError("a refused call must not reach the upstream")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "metadata",
    [(("authorization", "Bearer caf\u00e9"),), (("a2a-trace", "a\nb"),), (("traceparent", "\u20ac"),)],
    ids=["non-ascii", "newline", "non-latin1"],
)
async def test_the_grpc_front_refuses_metadata_http_cannot_carry(
    metadata: tuple[tuple[str, str], ...],
) -> None:
    # A gRPC client of ours checks its metadata before sending; a peer that does not could still
    # send such a value, which httpx would fail to write (UnicodeEncodeError: an INTERNAL before).
    service = grpcfront.forwarding_service(_NeverCalled())  # type: ignore[arg-type]
    forward = server._unary_rpc(service.unary("GetTask"))
    context = _Context(metadata)
    with pytest.raises(_Aborted):
        await forward(types.GetTaskRequest(id="x"), context)  # type: ignore[arg-type]
    assert context.status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert context.status.details.startswith(f"header {metadata[0][0]} holds ")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [JsonRpcUpstream, RestUpstream])
async def test_json_upstreams_refuse_headers_they_cannot_write(kind: type[JsonRpcUpstream]) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    async with httpx.AsyncClient(transport=httpx.MockTransport(never)) as http:
        upstream = kind("http://agent.invalid/", client=http)
        call = Call({"a2a-version": "1.0", "authorization": "Bearer caf\u00e9"})
        with pytest.raises(errors.InvalidRequestError, match="header authorization holds byte 0xE9"):
            await upstream.unary("GetTask", types.GetTaskRequest(id="x"), call)
