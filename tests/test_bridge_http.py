"""The HTTP front of the bridge on a real socket: JSON-RPC and HTTP+JSON over the reference agent
(``A2AServer`` + ``LocalUpstream``), bad input, SSE, the agent card, headers, deadlines, a down
upstream, and ``a2a-grpc serve --http-port``.

Most tests share one bridge over the reference agent (starting uvicorn costs ~0.2 s); transport
facts that need a misbehaving upstream use a shared bridge over a :class:`ScriptedUpstream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.errordetails import BAD_REQUEST_TYPE, ERROR_INFO_TYPE
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import GrpcUpstream
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.session.frames import BINDING_URI
from a2a_grpc.tasks import InMemoryTaskStore
from tests.bridge_http_peers import (
    HOLD,
    VERSION,
    WAIT,
    HttpBridge,
    RawConnection,
    ScriptedUpstream,
    SseReader,
    free_port,
    http_bridge,
    http_request,
    message,
    reference_bridge,
    rpc,
    send_body,
    status_event,
)
from tests.bridge_peers import serve_stack
from tests.conftest import Authenticated
from tests.webhook import until

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the shared bridges live in the module's loop
BINDINGS = ["jsonrpc", "rest"]
LIMIT = 16 * 1024


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bridge() -> AsyncIterator[HttpBridge]:
    async with reference_bridge(max_body_bytes=LIMIT, heartbeat_seconds=0.05, first_event_wait=1.0) as b:
        yield b


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def scripted_bridge() -> AsyncIterator[HttpBridge]:
    settings = BridgeSettings(heartbeat_seconds=0.05, first_event_wait=0.2, forward_headers=("x-request-id",))
    async with http_bridge(ScriptedUpstream(), settings) as b:
        yield b


@pytest.fixture
def scripted(scripted_bridge: HttpBridge) -> ScriptedUpstream:
    upstream = scripted_bridge.app.upstream
    assert isinstance(upstream, ScriptedUpstream)
    return upstream.play()


# -- helpers ----------------------------------------------------------------------------------------


def rpc_error(response: httpx.Response, code: int, rpc_id: Any = 1) -> dict[str, Any]:
    """The JSON-RPC error object of ``response``, checked: HTTP 200, JSON, ``code``, ``rpc_id``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body.keys() == {"jsonrpc", "id", "error"}, body
    assert (body["jsonrpc"], body["id"], body["error"]["code"]) == ("2.0", rpc_id, code), body
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def rest_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The ``google.rpc.Status`` of an HTTP+JSON error response, checked against ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/a2a+json"  # spec 11.1, errors too
    body = response.json()
    assert body.keys() == {"error"}, body
    error = body["error"]
    assert error["code"] == status
    assert isinstance(error["status"], str)
    assert error["message"]
    return error  # type: ignore[no-any-return]


def info(details: list[dict[str, Any]]) -> dict[str, Any]:
    """The ErrorInfo among typed details."""
    found = [d for d in details if d["@type"] == ERROR_INFO_TYPE]
    assert len(found) == 1, details
    assert found[0]["domain"] == "a2a-protocol.org"
    return found[0]


def violated(details: list[dict[str, Any]]) -> list[str]:
    """The fields of the BadRequest among typed details."""
    found = [d for d in details if d["@type"] == BAD_REQUEST_TYPE]
    assert len(found) == 1, details
    return [v["field"] for v in found[0]["fieldViolations"]]


async def still_serving(b: HttpBridge) -> None:
    """Both bindings answer an echo after whatever the test sent."""
    response = await b.client.post("/", json=rpc("SendMessage", send_body("echo still here"), rpc_id="ok"))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    response = await b.client.post("/message:send", json=send_body("echo still here"))
    assert response.status_code == 200, response.text
    assert response.json()["task"]["artifacts"][0]["parts"][0]["text"] == "echo still here"


async def send(b: HttpBridge, text: str, **fields: Any) -> dict[str, Any]:
    """SendMessage over REST; the Task."""
    response = await b.client.post("/message:send", json=send_body(text, **fields))
    assert response.status_code == 200, response.text
    return response.json()["task"]  # type: ignore[no-any-return]


async def state_of(b: HttpBridge, task_id: str) -> str:
    response = await b.client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]["state"]  # type: ignore[no-any-return]


async def until_state(b: HttpBridge, task_id: str, state: str) -> None:
    async with asyncio.timeout(WAIT):
        for _ in itertools.count():
            if await state_of(b, task_id) == state:
                return
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def open_stream(
    b: HttpBridge,
    binding: str,
    method: str,
    params: dict[str, Any],
    rest: tuple[str, str],
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[httpx.Response, SseReader]]:
    """A streaming call on ``binding``; ``rest`` is the (verb, path) of the HTTP+JSON route."""
    if binding == "rest":
        verb, path = rest
        body = params if verb == "POST" else None
        request = b.client.build_request(verb, path, json=body, headers=headers)
    else:
        request = b.client.build_request("POST", "/", json=rpc(method, params, rpc_id="s-1"), headers=headers)
    response = await b.client.send(request, stream=True)
    reader = SseReader(response)
    try:
        yield response, reader
    finally:
        await reader.aclose()
        await response.aclose()


def payload(binding: str, data: str) -> dict[str, Any]:
    """The StreamResponse an SSE data line carries on ``binding``."""
    obj = json.loads(data)
    if binding == "jsonrpc":
        assert (obj["jsonrpc"], obj["id"]) == ("2.0", "s-1"), obj
        obj = obj["result"]
    transcoding.decode(obj, types.StreamResponse)  # it is a valid StreamResponse
    return obj  # type: ignore[no-any-return]


def is_sse(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"


def raw_status(received: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", received)
    assert match, received[:200]
    return int(match.group(1))


def raw_json(received: bytes) -> Any:
    return json.loads(received.split(b"\r\n\r\n", 1)[1])


# -- the connection ---------------------------------------------------------------------------------


async def test_requests_on_a_kept_alive_connection_are_not_delayed(bridge: HttpBridge) -> None:
    # A response goes out in two writes (head, body); without TCP_NODELAY on the accepted socket,
    # Nagle's algorithm holds the body back until the client's delayed ACK: ~40 ms a request.
    timings = []
    for _ in range(7):
        started = time.monotonic()
        assert (await bridge.client.get("/healthz")).status_code == 200
        timings.append(time.monotonic() - started)
    assert sorted(timings)[3] < 0.02, [f"{t * 1000:.1f} ms" for t in timings]


# -- JSON-RPC: bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "rpc_id", "said"),
    [
        (b"{bad", -32700, None, "invalid JSON"),
        (b"[]", -32600, None, "batch"),
        (b'[{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}]', -32600, None, "batch"),
        (b'"SendMessage"', -32600, None, "must be an object"),
        (b"null", -32600, None, "must be an object"),
        (b'{"id":1,"method":"GetTask","params":{"id":"x"}}', -32600, 1, "jsonrpc"),
        (b'{"jsonrpc":"1.0","id":1,"method":"GetTask","params":{"id":"x"}}', -32600, 1, "jsonrpc"),
        (b'{"jsonrpc":"2.0","method":"GetTask","params":{"id":"x"}}', -32600, None, "no id"),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"GetTask"}', -32600, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":true,"method":"GetTask"}', -32600, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"GetTask"}', -32600, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":null,"method":"GetTask"}', -32600, None, "id must be"),
        (b'{"jsonrpc":"2.0","id":"x","method":5}', -32600, "x", "method must be a string"),
        (b'{"jsonrpc":"2.0","id":"x"}', -32600, "x", "method must be a string"),
    ],
    ids=[
        "invalid-json",
        "empty-batch",
        "batch",
        "string",
        "null",
        "no-jsonrpc",
        "jsonrpc-1.0",
        "no-id",
        "object-id",
        "bool-id",
        "fraction-id",
        "null-id",
        "number-method",
        "no-method",
    ],
)
async def test_jsonrpc_refuses_what_is_not_a_request(
    bridge: HttpBridge, body: bytes, code: int, rpc_id: Any, said: str
) -> None:
    response = await bridge.client.post("/", content=body, headers={"content-type": "application/json"})
    error = rpc_error(response, code, rpc_id)
    assert said in error["message"]
    reason = "JSON_PARSE" if code == -32700 else "INVALID_REQUEST"
    assert info(error["data"])["reason"] == reason
    await still_serving(bridge)


async def test_jsonrpc_unknown_method_names_it(bridge: HttpBridge) -> None:
    # "message/send" is a v0.3 method now (tests/test_v03_http.py); "tasks/list" is no method at all.
    response = await bridge.client.post("/", json=rpc("tasks/list", send_body("echo x")))
    error = rpc_error(response, -32601)
    assert info(error["data"]) == {
        "@type": ERROR_INFO_TYPE,
        "reason": "METHOD_NOT_FOUND",
        "domain": "a2a-protocol.org",
        "metadata": {"method": "tasks/list"},
    }
    await still_serving(bridge)


BAD_PARAMS = [
    ({"message": message("x", parts=[{"txt": "x", "text": 5}])}, "message.parts[0].text"),
    ({"message": message("x", role="ROLE_BOSS")}, "message.role"),
    ({"message": message("x", parts=[])}, "message.parts"),
    ({"message": message("x"), "configuration": {"historyLength": "many"}}, "configuration.historyLength"),
]
BAD_PARAMS_IDS = ["unknown-member-beside-a-wrong-type", "wrong-enum", "no-parts", "wrong-type"]


@pytest.mark.parametrize(("params", "field"), BAD_PARAMS, ids=BAD_PARAMS_IDS)
async def test_jsonrpc_bad_params_name_the_field(
    bridge: HttpBridge, params: dict[str, Any], field: str
) -> None:
    response = await bridge.client.post("/", json=rpc("SendMessage", params))
    error = rpc_error(response, -32602)
    assert info(error["data"])["reason"] == "INVALID_PARAMS"
    assert violated(error["data"]) == [field]
    await still_serving(bridge)


@pytest.mark.parametrize(("params", "field"), BAD_PARAMS, ids=BAD_PARAMS_IDS)
async def test_rest_bad_body_names_the_field(bridge: HttpBridge, params: dict[str, Any], field: str) -> None:
    error = rest_error(await bridge.client.post("/message:send", json=params), 400)
    assert error["status"] == "INVALID_ARGUMENT"
    assert violated(error["details"]) == [field]
    await still_serving(bridge)


@pytest.mark.parametrize("params", [[1], "x", None], ids=["array", "string", "null"])
async def test_jsonrpc_params_must_be_an_object(bridge: HttpBridge, params: Any) -> None:
    envelope = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": params}
    error = rpc_error(await bridge.client.post("/", json=envelope), -32602)
    assert "must be a JSON object" in error["message"]
    body = json.dumps(params).encode()
    headers = {"content-type": "application/json"}
    error = rest_error(await bridge.client.post("/tasks/x:cancel", content=body, headers=headers), 400)
    assert "must be a JSON object" in error["message"]
    await still_serving(bridge)


# -- both bindings: refused bodies ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b"echo hi"), ("application/x-www-form-urlencoded", b"text=echo+hi"), (None, b"{}")],
    ids=["text", "form", "none"],
)
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_body_that_is_not_json_is_415(
    bridge: HttpBridge, binding: str, content_type: str | None, body: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    path = "/" if binding == "jsonrpc" else "/message:send"
    response = await bridge.client.post(path, content=body, headers=headers)
    assert response.status_code == 415, response.text
    if binding == "jsonrpc":
        error = response.json()["error"]
        assert (response.json()["id"], error["code"]) == (None, -32600)
        details = error["data"]
    else:
        error = rest_error(response, 415)
        details = error["details"]
    assert "Content-Type" in error["message"]
    assert info(details)["metadata"] == {"content_type": content_type or ""}
    await still_serving(bridge)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/a2a+json"])
async def test_json_media_types_are_accepted(bridge: HttpBridge, content_type: str) -> None:
    headers = {"content-type": content_type}
    body = json.dumps(rpc("SendMessage", send_body("echo typed"))).encode()
    assert (await bridge.client.post("/", content=body, headers=headers)).json()["result"]["task"]
    body = json.dumps(send_body("echo typed")).encode()
    assert (await bridge.client.post("/message:send", content=body, headers=headers)).json()["task"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_body_over_the_limit_is_413(bridge: HttpBridge, binding: str, chunked: bool) -> None:
    big = send_body("echo " + "x" * (2 * LIMIT))
    body = json.dumps(rpc("SendMessage", big) if binding == "jsonrpc" else big).encode()
    path = "/" if binding == "jsonrpc" else "/message:send"
    request = http_request(
        "POST", path, body, [("Content-Type", "application/json")], chunk=4096 if chunked else 0
    )
    connection = await RawConnection.open(bridge.port)
    try:
        await connection.send(request)
        received = await connection.read_until(b"}}")
    finally:
        await connection.close()
    assert raw_status(received) == 413
    reply = raw_json(received)
    error = reply["error"]
    assert f"limit of {LIMIT} bytes" in error["message"]
    details = error["data"] if binding == "jsonrpc" else error["details"]
    (found,) = [d for d in details if d["@type"] == ERROR_INFO_TYPE]
    assert (found["reason"], found["metadata"]["limit"]) == ("LIMIT_EXCEEDED", "max_body_bytes")
    if binding == "jsonrpc":
        assert error["code"] == -32099
    else:
        assert (error["code"], error["status"]) == (413, "RESOURCE_EXHAUSTED")
    await still_serving(bridge)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_json_nested_past_1024_levels_is_a_parse_error(bridge: HttpBridge, binding: str) -> None:
    deep = "[" * 1100 + "]" * 1100
    headers = {"content-type": "application/json"}
    if binding == "jsonrpc":
        body = '{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":' + deep + "}"
        error = rpc_error(await bridge.client.post("/", content=body, headers=headers), -32700, None)
        assert info(error["data"])["reason"] == "JSON_PARSE"
    else:
        error = rest_error(await bridge.client.post("/message:send", content=deep, headers=headers), 400)
        assert info(error["details"])["reason"] == "JSON_PARSE"
    await still_serving(bridge)


@pytest.mark.parametrize("binding", BINDINGS)
async def test_deeply_nested_metadata_is_refused_by_its_limit(bridge: HttpBridge, binding: str) -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = {"k": deep}
    params = send_body("echo deep", metadata=deep)
    if binding == "jsonrpc":
        details = rpc_error(await bridge.client.post("/", json=rpc("SendMessage", params)), -32099)["data"]
    else:
        details = rest_error(await bridge.client.post("/message:send", json=params), 413)["details"]
    (found,) = [d for d in details if d["@type"] == ERROR_INFO_TYPE]
    assert found["metadata"]["limit"] == "max_struct_depth"
    await still_serving(bridge)


# -- HTTP+JSON: routes, verbs, problem details ---------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "path"), [("GET", "/nope"), ("POST", "/message:explode"), ("GET", "/v1/tasks/x/y/z")]
)
async def test_an_unknown_route_is_404_with_a_status_body(bridge: HttpBridge, verb: str, path: str) -> None:
    error = rest_error(await bridge.client.request(verb, path), 404)
    assert error["status"] == "NOT_FOUND"
    assert path in error["message"]
    assert info(error["details"])["reason"] == "METHOD_NOT_FOUND"
    await still_serving(bridge)


@pytest.mark.parametrize(
    ("verb", "path", "allow"),
    [
        ("DELETE", "/tasks/x", "GET"),
        ("GET", "/message:send", "POST"),
        ("PUT", "/tasks/x/pushNotificationConfigs", "GET, POST"),
        ("GET", "/", "POST"),
        ("POST", "/.well-known/agent-card.json", "GET, HEAD"),
    ],
)
async def test_a_wrong_verb_is_405_with_allow(bridge: HttpBridge, verb: str, path: str, allow: str) -> None:
    response = await bridge.client.request(verb, path)
    error = rest_error(response, 405)
    assert response.headers["allow"] == allow
    assert info(error["details"])["reason"] == "METHOD_NOT_FOUND"
    await still_serving(bridge)


async def test_problem_details_for_a_client_that_asks(bridge: HttpBridge) -> None:
    accept = {"accept": "application/problem+json"}
    response = await bridge.client.get("/tasks/no-such-task", headers=accept)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://a2a-protocol.org/errors/task-not-found"
    assert problem["status"] == 404
    assert "no-such-task" in problem["detail"]
    assert problem["title"]
    response = await bridge.client.get("/nope", headers=accept)
    assert (response.status_code, response.json()["type"], response.json()["status"]) == (
        404,
        "about:blank",
        404,
    )
    response = await bridge.client.delete("/tasks/x", headers=accept)
    assert (response.status_code, response.json()["status"], response.headers["allow"]) == (405, 405, "GET")
    done = await send(bridge, "echo x")
    response = await bridge.client.post(f"/tasks/{done['id']}:cancel", headers=accept)
    problem = response.json()
    assert (response.status_code, problem["status"]) == (400, 400)
    assert problem["type"] == "https://a2a-protocol.org/errors/task-not-cancelable"


# -- HTTP+JSON: wire facts --------------------------------------------------------------------------


async def test_path_and_query_parameters_reach_the_handler(bridge: HttpBridge) -> None:
    asked = await send(bridge, "ask")
    assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    answered = await send(bridge, "blue", message=message("blue", taskId=asked["id"]))
    assert answered["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = asked["id"]
    full = (await bridge.client.get(f"/tasks/{task_id}")).json()
    assert len(full["history"]) == 4
    assert (
        len((await bridge.client.get(f"/tasks/{task_id}", params={"historyLength": 1})).json()["history"])
        == 1
    )
    assert "history" not in (await bridge.client.get(f"/tasks/{task_id}?history_length=0")).json()
    error = rest_error(await bridge.client.get(f"/tasks/{task_id}?historyLength=-1"), 400)
    assert violated(error["details"]) == ["history_length"]
    error = rest_error(await bridge.client.get(f"/tasks/{task_id}?id=other"), 400)
    assert "in the path but 'other'" in error["message"]
    assert violated(error["details"]) == ["id"]
    # An unknown query parameter is ignored (spec 5.7), a known one with a bad value is not.
    ignored = await bridge.client.get(f"/tasks/{task_id}?verbose=true&historyLength=1")
    assert (ignored.status_code, len(ignored.json()["history"])) == (200, 1)
    error = rest_error(await bridge.client.get(f"/tasks/{task_id}?verbose=true&historyLength=x"), 400)
    assert violated(error["details"]) == ["historyLength"]


async def test_list_tasks_query_parameters(bridge: HttpBridge) -> None:
    context = f"ctx-{time.monotonic_ns()}"
    done = [
        await send(bridge, f"echo {i}", message=message(f"echo {i}", contextId=context)) for i in range(2)
    ]
    slow = await send(
        bridge,
        "slow 30",
        message=message("slow 30", contextId=context),
        configuration={"returnImmediately": True},
    )
    await until_state(bridge, slow["id"], "TASK_STATE_WORKING")

    async def listed(**query: str) -> dict[str, Any]:
        response = await bridge.client.get("/tasks", params={"contextId": context, **query})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    working = await listed(status="working")
    assert [t["id"] for t in working["tasks"]] == [slow["id"]]
    assert working["nextPageToken"] == ""
    completed = await listed(status="TASK_STATE_COMPLETED")
    assert {t["id"] for t in completed["tasks"]} == {t["id"] for t in done}
    assert all("artifacts" not in t for t in completed["tasks"])
    with_artifacts = await listed(status="completed", includeArtifacts="true")
    assert all(t["artifacts"][0]["parts"][0]["text"].startswith("echo") for t in with_artifacts["tasks"])
    first = await listed(pageSize="2")
    assert (len(first["tasks"]), first["totalSize"], first["pageSize"]) == (2, 3, 2)
    rest = await listed(pageSize="2", pageToken=first["nextPageToken"])
    assert len(rest["tasks"]) == 1
    assert {t["id"] for t in first["tasks"] + rest["tasks"]} == {slow["id"], *(t["id"] for t in done)}
    for bad in ({"status": "sleepy"}, {"pageSize": "many"}, {"includeArtifacts": "yes"}):
        error = rest_error(await bridge.client.get("/tasks", params=bad), 400)
        assert violated(error["details"]) == list(bad)
    canceled = await bridge.client.post(f"/tasks/{slow['id']}:cancel")
    assert canceled.json()["status"]["state"] == "TASK_STATE_CANCELED"


async def test_tenant_bindings_scope_tasks(bridge: HttpBridge) -> None:
    assert bridge.agent is not None
    response = await bridge.client.post("/acme/message:send", json=send_body("echo tenanted"))
    task = response.json()["task"]
    assert bridge.agent.seen[-1].tenant == "acme"
    assert (await bridge.client.get(f"/acme/tasks/{task['id']}")).status_code == 200
    for elsewhere in (f"/other/tasks/{task['id']}", f"/tasks/{task['id']}"):
        assert (
            info(rest_error(await bridge.client.get(elsewhere), 404)["details"])["reason"] == "TASK_NOT_FOUND"
        )
    assert [t["id"] for t in (await bridge.client.get("/acme/tasks")).json()["tasks"]] == [task["id"]]
    assert (await bridge.client.get("/other/tasks")).json()["totalSize"] == 0
    found = await bridge.client.post("/", json=rpc("GetTask", {"id": task["id"], "tenant": "acme"}))
    assert found.json()["result"]["id"] == task["id"]
    rpc_error(await bridge.client.post("/", json=rpc("GetTask", {"id": task["id"]})), -32001)
    clash = send_body("echo x", tenant="other")
    error = rest_error(await bridge.client.post("/acme/message:send", json=clash), 400)
    assert "'acme' in the path but 'other'" in error["message"]
    assert violated(error["details"]) == ["tenant"]
    response = await bridge.client.post("/", json=rpc("SendMessage", send_body("echo rpc", tenant="beta")))
    assert (
        await bridge.client.get(f"/beta/tasks/{response.json()['result']['task']['id']}")
    ).status_code == 200


async def test_http_statuses_follow_the_error_table(bridge: HttpBridge) -> None:
    c = bridge.client
    assert rest_error(await c.get("/tasks/nope"), 404)["status"] == "NOT_FOUND"
    done = await send(bridge, "echo done")
    error = rest_error(await c.post(f"/tasks/{done['id']}:cancel"), 400)
    assert (error["status"], info(error["details"])["reason"]) == (
        "FAILED_PRECONDITION",
        "TASK_NOT_CANCELABLE",
    )
    again = send_body("more", message=message("more", taskId=done["id"]))
    error = rest_error(await c.post("/message:send", json=again), 400)
    assert (error["status"], info(error["details"])["reason"]) == (
        "FAILED_PRECONDITION",
        "UNSUPPORTED_OPERATION",
    )
    error = rest_error(
        await c.post("/message:send", json=send_body("echo"), headers={"a2a-version": "0.3"}), 400
    )
    assert info(error["details"])["reason"] == "VERSION_NOT_SUPPORTED"
    bad_hook = {"url": "ftp://x.invalid/hook"}
    error = rest_error(await c.post(f"/tasks/{done['id']}/pushNotificationConfigs", json=bad_hook), 400)
    assert info(error["details"])["reason"] == "INVALID_PARAMS"
    error = rest_error(await c.get(f"/tasks/{done['id']}/pushNotificationConfigs/nope"), 404)
    assert info(error["details"])["reason"] == "TASK_NOT_FOUND"
    hook = {"url": "https://hooks.example.com/hook", "id": "cfg-1"}
    created = await c.post(f"/tasks/{done['id']}/pushNotificationConfigs", json=hook)
    assert created.json() == {"id": "cfg-1", "taskId": done["id"], "url": hook["url"]}
    listed = await c.get(f"/tasks/{done['id']}/pushNotificationConfigs")
    assert listed.json() == {"configs": [created.json()]}
    assert (await c.delete(f"/tasks/{done['id']}/pushNotificationConfigs/cfg-1")).json() == {}


@pytest.mark.parametrize("config_id", ["cfg-1", "cfg/1", "50%41", "a:b", "caf\u00e9 1"])
async def test_path_variables_are_percent_decoded_exactly_once(bridge: HttpBridge, config_id: str) -> None:
    # Route.expand (the reverse bridge's client) escapes "/", "%" and ":" in path variables; the
    # front must route on the raw path and decode each variable once.
    task = await send(bridge, "echo hooks")
    hook = {"id": config_id, "url": "https://hooks.example.com/hook"}
    created = await bridge.client.post(f"/tasks/{task['id']}/pushNotificationConfigs", json=hook)
    assert created.json()["id"] == config_id
    path = f"/tasks/{task['id']}/pushNotificationConfigs/{quote(config_id, safe='')}"
    response = await bridge.client.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == config_id


async def test_extended_card_route_carries_the_bridge_interfaces() -> None:
    # The extended card is for authenticated callers: a server whose every caller is.
    async with (
        serve_stack(ReferenceAgent(), interceptors=[Authenticated()]) as stack,
        httpx.AsyncClient(base_url=stack.url, headers={"A2A-Version": "1.0"}, timeout=10) as http,
    ):
        card = (await http.get("/extendedAgentCard")).json()
    assert "extended card" in card["description"]
    bindings = [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]]
    assert ("JSONRPC", stack.url + "/") in bindings
    assert ("HTTP+JSON", stack.url) in bindings


# -- streams --------------------------------------------------------------------------------------

STREAM_SEND = ("POST", "/message:stream")


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_stream_delivers_every_event_in_order(bridge: HttpBridge, binding: str) -> None:
    async with open_stream(bridge, binding, "SendStreamingMessage", send_body("stream 3"), STREAM_SEND) as (
        response,
        reader,
    ):
        is_sse(response)
        events = [payload(binding, item.data) for item in await reader.rest()]
    kinds = [next(iter(e)) for e in events]
    assert kinds == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
    assert events[0]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    chunks = [e["artifactUpdate"] for e in events[2:5]]
    assert [c["artifact"]["parts"][0]["text"] for c in chunks] == ["chunk 0", "chunk 1", "chunk 2"]
    assert [c.get("append", False) for c in chunks] == [False, True, True]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_the_tenant_stream_binding_reaches_the_handler(bridge: HttpBridge) -> None:
    assert bridge.agent is not None
    rest = ("POST", "/acme/message:stream")
    async with open_stream(bridge, "rest", "SendStreamingMessage", send_body("echo t"), rest) as (
        response,
        reader,
    ):
        is_sse(response)
        events = [payload("rest", item.data) for item in await reader.rest()]
    assert bridge.agent.seen[-1].tenant == "acme"
    task_id = events[0]["task"]["id"]
    assert (await bridge.client.get(f"/acme/tasks/{task_id}")).status_code == 200


@pytest.mark.parametrize("binding", BINDINGS)
async def test_each_event_is_flushed_as_it_is_produced(bridge: HttpBridge, binding: str) -> None:
    async with open_stream(bridge, binding, "SendStreamingMessage", send_body("slow 0.6"), STREAM_SEND) as (
        response,
        reader,
    ):
        is_sse(response)
        first = await reader.next_event()
        assert first is not None
        task_id = payload(binding, first.data)["task"]["id"]
        # The first event is on the client while the task is still running: nothing was held back.
        assert await state_of(bridge, task_id) in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
        rest = [payload(binding, item.data) for item in await reader.rest()]
    assert rest[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert all(e["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING" for e in rest[:-1])
    assert len(rest) >= 4  # "starting", progress every 0.1 s, "done"


SUBSCRIBE = "SubscribeToTask"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_idle_stream_gets_keep_alive_comments(bridge: HttpBridge, binding: str) -> None:
    waiting = await send(bridge, "ask")  # input-required: the subscription stays open and quiet
    rest = ("GET", f"/tasks/{waiting['id']}:subscribe")
    async with open_stream(bridge, binding, SUBSCRIBE, {"id": waiting["id"]}, rest) as (response, reader):
        is_sse(response)
        first = await reader.next()
        assert first is not None
        assert first.kind == "event"
        assert payload(binding, first.data)["task"]["id"] == waiting["id"]
        for _ in range(2):
            item = await reader.next()
            assert item is not None
            assert (item.kind, item.data) == ("comment", "keep-alive")


async def test_a_keep_alive_comes_between_events_of_a_quiet_upstream(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream
) -> None:
    gate = asyncio.Event()
    scripted.play(status_event(), gate, status_event(types.TASK_STATE_COMPLETED))
    async with open_stream(scripted_bridge, "rest", SUBSCRIBE, {}, ("GET", "/tasks/t-1:subscribe")) as (
        _,
        reader,
    ):
        first = await reader.next()
        assert first is not None
        assert first.kind == "event"
        item = await reader.next()
        assert item is not None
        assert (item.kind, item.data) == ("comment", "keep-alive")
        gate.set()
        last = await reader.next_event()
        assert last is not None
        assert payload("rest", last.data)["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
        assert await reader.next_event() is None
    assert scripted.ended_by == "done"


async def test_an_error_before_the_first_event_is_a_plain_error(bridge: HttpBridge) -> None:
    c = bridge.client
    for verb in ("GET", "POST"):
        error = rest_error(await c.request(verb, "/tasks/nope:subscribe"), 404)
        assert info(error["details"])["reason"] == "TASK_NOT_FOUND"
    error = rpc_error(await c.post("/", json=rpc(SUBSCRIBE, {"id": "nope"})), -32001)
    assert info(error["data"])["metadata"] == {"task_id": "nope"}
    done = await send(bridge, "echo done")
    error = rest_error(await c.get(f"/tasks/{done['id']}:subscribe"), 400)
    assert info(error["details"])["reason"] == "UNSUPPORTED_OPERATION"
    again = send_body("more", message=message("more", taskId=done["id"]))
    rpc_error(await c.post("/", json=rpc("SendStreamingMessage", again)), -32004)
    error = rest_error(await c.post("/message:stream", json={"message": message("x", parts=[])}), 400)
    assert violated(error["details"]) == ["message.parts"]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_error_after_the_first_event_is_a_final_error_event(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str
) -> None:
    scripted.play(status_event(), errors.TaskNotFoundError("task t-1 went away", metadata={"task_id": "t-1"}))
    async with open_stream(
        scripted_bridge, binding, SUBSCRIBE, {"id": "t-1"}, ("GET", "/tasks/t-1:subscribe")
    ) as (
        response,
        reader,
    ):
        is_sse(response)
        first = await reader.next_event()
        assert first is not None
        assert first.event is None
        assert payload(binding, first.data)["statusUpdate"]["taskId"] == "t-1"
        last = await reader.next_event()
        assert last is not None
        assert last.event == "error"
        obj = json.loads(last.data)
        assert await reader.next_event() is None  # the error ends the stream
    if binding == "rest":
        error = obj["error"]
        assert (error["code"], error["status"], error["message"]) == (404, "NOT_FOUND", "task t-1 went away")
        assert info(error["details"])["metadata"] == {"task_id": "t-1"}
    else:
        assert (obj["jsonrpc"], obj["id"], obj["error"]["code"]) == ("2.0", "s-1", -32001)
        assert info(obj["error"]["data"])["reason"] == "TASK_NOT_FOUND"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_unexpected_failure_mid_stream_leaks_nothing(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str, caplog: pytest.LogCaptureFixture
) -> None:
    scripted.play(status_event(), RuntimeError("secret-detail"))
    async with open_stream(
        scripted_bridge, binding, SUBSCRIBE, {"id": "t-1"}, ("GET", "/tasks/t-1:subscribe")
    ) as (
        _,
        reader,
    ):
        items = await reader.rest()
    assert [i.event for i in items] == [None, "error"]
    assert "secret-detail" not in items[1].data
    obj = json.loads(items[1].data)
    error = obj["error"]
    assert error["message"] == errors.INTERNAL_MESSAGE
    assert error["code"] == (500 if binding == "rest" else -32603)
    assert "secret-detail" in caplog.text  # logged, not sent


@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_answer_json_cannot_hold_is_an_invalid_agent_response(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str
) -> None:
    # A Timestamp past year 9999 made json_format raise: an untyped 500 "internal error" (found by
    # tests/test_properties.py); it is the agent's answer that is wrong, and the error says so.
    task = types.Task(id="t-1")
    task.status.timestamp.seconds = 2**62
    scripted.reply = task
    if binding == "rest":
        response = await scripted_bridge.client.get("/tasks/t-1")
        error = rest_error(response, errors.InvalidAgentResponseError.spec.http_status)
        details = error["details"]
    else:
        response = await scripted_bridge.client.post("/", json=rpc("GetTask", {"id": "t-1"}))
        details = rpc_error(response, errors.InvalidAgentResponseError.spec.jsonrpc_code)["data"]
    assert info(details)["reason"] == "INVALID_AGENT_RESPONSE"
    assert violated(details) == ["status.timestamp"]
    scripted.reply = types.Task(id="t-2")
    assert (await scripted_bridge.client.get("/tasks/t-2")).json()["id"] == "t-2"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_event_json_cannot_hold_ends_the_stream_with_an_invalid_agent_response(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str
) -> None:
    unwritable = status_event()
    unwritable.status_update.status.timestamp.seconds = 2**62
    scripted.play(status_event(), unwritable, status_event(types.TASK_STATE_COMPLETED))
    async with open_stream(
        scripted_bridge, binding, SUBSCRIBE, {"id": "t-1"}, ("GET", "/tasks/t-1:subscribe")
    ) as (_, reader):
        items = await reader.rest()
    assert [i.event for i in items] == [None, "error"]
    error = json.loads(items[1].data)["error"]
    details = error["details"] if binding == "rest" else error["data"]
    assert info(details)["reason"] == "INVALID_AGENT_RESPONSE"
    await until(lambda: scripted.ended_by != "", WAIT)
    assert scripted.ended_by == "closed"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_headers_go_out_after_first_event_wait_and_a_later_error_is_an_event(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str
) -> None:
    gate = asyncio.Event()
    scripted.play(gate, errors.TaskNotFoundError("too late"))
    started = time.monotonic()
    async with open_stream(
        scripted_bridge, binding, SUBSCRIBE, {"id": "t-1"}, ("GET", "/tasks/t-1:subscribe")
    ) as (
        response,
        reader,
    ):
        # The upstream has produced nothing (the gate is closed), yet the headers are here.
        assert not gate.is_set()
        is_sse(response)
        assert time.monotonic() - started < WAIT
        comment = await reader.next()
        assert comment is not None
        assert (comment.kind, comment.data) == ("comment", "keep-alive")
        gate.set()
        error = await reader.next_event()
        assert error is not None
        assert error.event == "error"
        assert "too late" in error.data
        assert await reader.next_event() is None


async def test_an_error_within_first_event_wait_is_a_plain_error(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream
) -> None:
    scripted.play(0.01, errors.UnsupportedOperationError("no streams here"))
    response = await scripted_bridge.client.get("/tasks/t-1:subscribe")
    assert rest_error(response, 400)["message"] == "no streams here"
    scripted.play(0.01, errors.UnsupportedOperationError("no streams here"))
    response = await scripted_bridge.client.post("/", json=rpc(SUBSCRIBE, {"id": "t-1"}))
    assert rpc_error(response, -32004)["message"] == "no streams here"


def subscribe_request(binding: str, task_id: str) -> bytes:
    if binding == "rest":
        return http_request("GET", f"/tasks/{task_id}:subscribe")
    body = json.dumps(rpc(SUBSCRIBE, {"id": task_id})).encode()
    return http_request("POST", "/", body, [("Content-Type", "application/json")])


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_client_that_disconnects_cancels_the_upstream_stream(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream, binding: str
) -> None:
    scripted.play(status_event(), HOLD)
    connection = await RawConnection.open(scripted_bridge.port)
    try:
        await connection.send(subscribe_request(binding, "t-1"))
        await connection.read_until(b"data: ")
        assert not scripted.closed.is_set()
    finally:
        await connection.close()
    await asyncio.wait_for(scripted.closed.wait(), WAIT)
    assert scripted.ended_by in ("cancelled", "closed")


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_disconnect_releases_the_subscription_and_the_task_goes_on(
    bridge: HttpBridge, binding: str
) -> None:
    assert bridge.server is not None
    handler = bridge.server.handler
    assert handler is not None
    waiting = await send(bridge, "ask")
    connection = await RawConnection.open(bridge.port)
    try:
        await connection.send(subscribe_request(binding, waiting["id"]))
        await connection.read_until(b"data: ")
        run = handler.runs.get("", waiting["id"])
        assert run is not None
        assert len(run.subscribers) == 1
    finally:
        await connection.close()
    await until(lambda: not run.subscribers, WAIT)
    answered = await send(bridge, "later", message=message("later", taskId=waiting["id"]))
    assert answered["status"]["state"] == "TASK_STATE_COMPLETED"


# -- the agent card ---------------------------------------------------------------------------------

CARD = "/.well-known/agent-card.json"


async def test_the_card_lists_the_bridge_interfaces_after_the_grpc_one(bridge: HttpBridge) -> None:
    assert bridge.server is not None
    response = await bridge.client.get(CARD)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    card = transcoding.decode(response.json(), types.AgentCard)
    assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
        ("GRPC", bridge.server.address, "1.0"),
        ("GRPC", bridge.server.address, "0.3"),  # the v0.3 service, same port (ServerSettings.serve_v03)
        (BINDING_URI, bridge.server.address, "1.0"),  # the session binding, on the gRPC port
        ("JSONRPC", bridge.url + "/", "1.0"),
        ("HTTP+JSON", bridge.url, "1.0"),
        ("JSONRPC", bridge.url + "/", "0.3"),  # the same URLs serve v0.3 clients (BridgeSettings.serve_v03)
        ("HTTP+JSON", bridge.url, "0.3"),
    ]
    assert card.name == "a2a-grpc reference agent"
    assert re.fullmatch(r'"[0-9a-f]{16,}"', response.headers["etag"])
    assert "max-age=300" in response.headers["cache-control"]


async def test_the_card_can_be_revalidated(bridge: HttpBridge) -> None:
    first = await bridge.client.get(CARD)
    etag = first.headers["etag"]
    assert (await bridge.client.get(CARD)).headers["etag"] == etag  # stable while the card is
    for condition in (etag, f"W/{etag}", "*", f'"other", {etag}'):
        response = await bridge.client.get(CARD, headers={"if-none-match": condition})
        assert response.status_code == 304, condition
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "max-age=300" in response.headers["cache-control"]
    stale = await bridge.client.get(CARD, headers={"if-none-match": '"stale"'})
    assert (stale.status_code, stale.content) == (200, first.content)


async def test_the_card_answers_head_but_not_post(bridge: HttpBridge) -> None:
    get = await bridge.client.get(CARD)
    head = await bridge.client.head(CARD)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    response = await bridge.client.post(CARD, json={})
    assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")


# -- headers, deadlines ---------------------------------------------------------------------------

SENT_HEADERS = {
    "Authorization": "Bearer t0ken",
    "A2A-Extensions": "urn:example:ext",
    "A2A-Trace-Tag": "blue",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=1",
    "Cookie": "session=secret",
    "X-Foo": "bar",
    "X-Forwarded-For": "10.0.0.1",
}
FORWARDED = {
    "authorization": "Bearer t0ken",
    "a2a-version": "1.0",
    "a2a-extensions": "urn:example:ext",
    "a2a-trace-tag": "blue",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=1",
}


@pytest.mark.parametrize("binding", BINDINGS)
async def test_only_allowlisted_headers_reach_the_agent(bridge: HttpBridge, binding: str) -> None:
    assert bridge.agent is not None
    if binding == "jsonrpc":
        response = await bridge.client.post(
            "/", json=rpc("SendMessage", send_body("echo h")), headers=SENT_HEADERS
        )
    else:
        response = await bridge.client.post("/message:send", json=send_body("echo h"), headers=SENT_HEADERS)
    assert response.status_code == 200
    seen = bridge.agent.seen[-1]
    assert dict(seen.headers) == FORWARDED
    assert seen.extensions == frozenset({"urn:example:ext"})


async def test_forward_headers_and_grpc_timeout_reach_the_upstream_call(
    scripted_bridge: HttpBridge, scripted: ScriptedUpstream
) -> None:
    c = scripted_bridge.client
    headers = {"X-Request-Id": "r-1", "X-Foo": "no", "Authorization": "Basic x"}
    for timeout, seconds in (("250m", 0.25), ("2S", 2.0), ("1M", 60.0), ("1.5", 1.5), (None, None)):
        sent = {**headers, "Grpc-Timeout": timeout} if timeout else headers
        assert (await c.get("/tasks/t-1", headers=sent)).status_code == 200
        method, request, call = scripted.calls[-1]
        assert (method, request) == ("GetTask", types.GetTaskRequest(id="t-1"))
        assert dict(call.headers) == {"x-request-id": "r-1", "authorization": "Basic x", "a2a-version": "1.0"}
        assert call.timeout == seconds


@pytest.mark.parametrize("binding", BINDINGS)
async def test_grpc_timeout_is_the_upstream_deadline(bridge: HttpBridge, binding: str) -> None:
    headers = {"grpc-timeout": "100m"}
    started = time.monotonic()
    if binding == "jsonrpc":
        response = await bridge.client.post(
            "/", json=rpc("SendMessage", send_body("slow 5")), headers=headers
        )
        error = rpc_error(response, -32603)
    else:
        response = await bridge.client.post("/message:send", json=send_body("slow 5"), headers=headers)
        error = rest_error(response, 504)
        assert error["status"] == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 3.0
    assert "did not finish within 0.1 s" in error["message"]


@pytest.mark.parametrize("value", ["bogus", "-1S", "0", "5X", "nanS", ""])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_invalid_grpc_timeout_is_refused(bridge: HttpBridge, binding: str, value: str) -> None:
    headers = {"grpc-timeout": value}
    if binding == "jsonrpc":
        error = rpc_error(
            await bridge.client.post("/", json=rpc("GetTask", {"id": "x"}), headers=headers), -32600
        )
    else:
        error = rest_error(await bridge.client.get("/tasks/x", headers=headers), 400)
    assert "Grpc-Timeout" in error["message"]


# -- an upstream over gRPC that is down, then up ------------------------------------------------------


async def test_an_unreachable_upstream_is_503_until_it_comes_up() -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    fast_retry = [
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.min_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 100),
    ]
    upstream = GrpcUpstream(target, options=fast_retry)
    server: A2AServer | None = None
    try:
        async with http_bridge(upstream) as b:
            error = rest_error(await b.client.post("/message:send", json=send_body("echo x")), 503)
            assert error["status"] == "UNAVAILABLE"
            assert f"upstream agent at {target} is unavailable" in error["message"]
            error = rpc_error(await b.client.post("/", json=rpc("SendMessage", send_body("echo x"))), -32603)
            assert f"upstream agent at {target} is unavailable" in error["message"]
            assert rest_error(await b.client.get(CARD), 503)["status"] == "UNAVAILABLE"

            server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=port))
            await server.start()
            async with asyncio.timeout(WAIT):
                while (
                    response := await b.client.post("/message:send", json=send_body("echo up"))
                ).status_code != 200:
                    assert response.status_code == 503, response.text
                    await asyncio.sleep(0.05)
            assert response.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            result = (await b.client.post("/", json=rpc("SendMessage", send_body("echo up")))).json()[
                "result"
            ]
            assert result["task"]["artifacts"][0]["parts"][0]["text"] == "echo up"
            card = (await b.client.get(CARD)).json()
            assert card["supportedInterfaces"][0] == {
                "url": target,
                "protocolBinding": "GRPC",
                "protocolVersion": "1.0",
            }
    finally:
        await upstream.aclose()
        if server is not None:
            await server.stop(grace=0.2)


# -- a2a-grpc serve --http-port -------------------------------------------------------------------


async def test_the_cli_serves_both_json_bindings_and_stops_cleanly_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "a2a_grpc.cli",
        "serve",
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--store",
        "memory",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = b""
    try:
        async with asyncio.timeout(20):
            while (found := re.search(rb"serving JSON-RPC and HTTP\+JSON at (http://\S+)", output)) is None:
                line = await proc.stdout.readline()
                assert line, output
                output += line
        url = found.group(1).decode()
        async with httpx.AsyncClient(base_url=url, headers=VERSION, timeout=WAIT) as client:
            reply = await client.post("/", json=rpc("SendMessage", send_body("echo via cli")))
            task = reply.json()["result"]["task"]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED"
            got = await client.get(f"/tasks/{task['id']}")
            assert got.json()["artifacts"][0]["parts"][0]["text"] == "echo via cli"
        os.kill(proc.pid, signal.SIGTERM)
        async with asyncio.timeout(15):
            output += await proc.stdout.read()
            code = await proc.wait()
        assert code == 0, output
        assert b"a2a-grpc: stopping" in output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
