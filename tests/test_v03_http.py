"""v0.3 clients on the bridge's HTTP front, beside v1.0 ones (BridgeSettings.serve_v03).

The official a2a-sdk 0.3.26 client (tests/sdk03, its own virtualenv) drives OUR AgentStack on
JSON-RPC and HTTP+JSON through every scenario of the harness, from an interface and from our
merged card; a v1.0 client shares the tasks; hostile requests get precise v0.3 errors and the
server keeps serving; v0.3 can be turned off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc.agent import RequestContext, TaskUpdater
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.bridge.upstream import GrpcUpstream
from a2a_grpc.client import A2AClient
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import ServerSettings
from a2a_grpc.service import CallContext, Interceptor, Method, UnaryCall
from tests.bridge_peers import serve_stack
from tests.sdk03.plugin import one, run_sdk03_client, steps
from tests.test_auth import api_key, authentication
from tests.webhook import Receiver, until

pytestmark = [pytest.mark.interop, pytest.mark.asyncio]

CARD = "/.well-known/agent-card.json"
V03 = ("jsonrpc", "rest")


class Agent(ReferenceAgent):
    """The reference agent, plus the harness's ``input`` word (input-required, as ``ask``)."""

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        fresh = context.task is None or context.task.status.state != types.TASK_STATE_INPUT_REQUIRED
        if fresh and context.text.strip() == "input":
            await updater.require_input("what should I work on?")
            return
        await super().execute(context, updater)


class WireVersions(Interceptor):
    """Records (method, wire_version, version) of every unary call the seam sees."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        self.seen.append((method.name, context.wire_version, context.version))
        return await call_next(request, context)


@contextlib.asynccontextmanager
async def agent_stack(
    bridge: BridgeSettings | None = None, interceptors: tuple[Interceptor, ...] = (), *, grpc_v03: bool = True
) -> AsyncIterator[AgentStack]:
    notifier = PushNotifier(policy=WebhookPolicy(allow=("127.0.0.0/8",)))  # the test's own receiver
    settings = ServerSettings(host="127.0.0.1", port=0, interceptors=interceptors, serve_v03=grpc_v03)
    try:
        async with AgentStack(Agent(), grpc=settings, http_port=0, bridge=bridge, notifier=notifier) as stack:
            yield stack
    finally:
        await notifier.aclose(5.0)  # given, so the stack leaves it open


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[AgentStack]:
    async with agent_stack() as served:
        yield served


@pytest.fixture
def http(stack: AgentStack) -> str:
    assert stack.http_url is not None
    return stack.http_url


def target(url: str, transport: str) -> str:
    return url + "/" if transport == "jsonrpc" else url


async def rpc(
    client: httpx.AsyncClient, method: str, params: Any, status: int = 200, **headers: str
) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    response = await client.post("/", json=body, headers=headers)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    assert answer["id"] == 7
    return answer


def v03_message(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": f"m-{text}-{id(extra)}",
        "role": "user",
        "parts": [{"kind": "text", "text": text}],
        **extra,
    }


# -- the official 0.3 client ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", V03)
async def test_the_sdk03_client_runs_every_scenario(
    sdk03_python: Path, stack: AgentStack, http: str, transport: str
) -> None:
    at = target(http, transport)
    scenarios = [
        ("send", "echo hello there"),
        ("send", "reply hi"),
        ("stream", "stream 3"),
        ("get", "echo keep me"),
        ("cancel", "30"),
        ("resubscribe", "1"),
        ("push-config", "http://127.0.0.1:9/hook"),
        ("errors",),
    ]
    runs = await asyncio.gather(*(run_sdk03_client(sdk03_python, transport, at, *s) for s in scenarios))
    echo, reply, stream, get, cancel, resub, push_config, errs = runs

    task = one(echo, "result")
    assert (task["kind"], task["state"]) == ("task", "completed")
    assert [(a["name"], a["texts"]) for a in task["artifacts"]] == [("echo", ["echo hello there"])]
    message = one(reply, "result")
    assert (message["kind"], message["role"], message["texts"]) == ("message", "agent", ["hi"])

    events = steps(stream, "event")
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert len(chunks) == 3
    assert len({c["artifactId"] for c in chunks}) == 1  # one artifact, appended to
    assert (events[-1]["kind"], events[-1]["state"], events[-1]["final"]) == (
        "status-update",
        "completed",
        True,
    )
    assert all(e["final"] is False for e in events[:-1] if e["kind"] == "status-update")
    assert one(stream, "result")["state"] == "completed"

    sent, got = one(get, "sent"), one(get, "result")
    assert (got["id"], got["state"], got["artifacts"]) == (sent["id"], "completed", sent["artifacts"])

    sent, canceled, after = one(cancel, "sent"), one(cancel, "cancel"), one(cancel, "result")
    assert sent["state"] in {"submitted", "working"}
    assert (canceled["id"], canceled["state"]) == (sent["id"], "canceled")
    assert (after["id"], after["state"]) == (sent["id"], "canceled")

    sent = one(resub, "sent")
    streamed = steps(resub, "event")
    assert streamed
    assert all(e.get("taskId", e.get("id")) == sent["id"] for e in streamed)
    assert one(resub, "result")["state"] == "completed"

    task_id = one(push_config, "sent")["id"]
    assert one(push_config, "sent")["state"] == "input-required"
    assert [(c["taskId"], c["id"], c["token"]) for c in steps(push_config, "set")] == [
        (task_id, "cfg-1", "token-cfg-1"),
        (task_id, "cfg-2", "token-cfg-2"),
    ]
    got = one(push_config, "get")
    assert (got["taskId"], got["id"], got["token"]) == (task_id, "cfg-2", "token-cfg-2")  # the one asked
    assert [c["id"] for c in one(push_config, "list")["configs"]] == ["cfg-1", "cfg-2"]
    assert one(push_config, "delete") == {"scenario": "push-config", "step": "delete", "deleted": True}
    assert [c["id"] for c in one(push_config, "list-after")["configs"]] == ["cfg-2"]

    expected = {  # probe: (JSON-RPC code, REST status), as the 0.3 client reports them
        "get-unknown": (-32001, 404),
        "cancel-unknown": (-32001, 404),
        "cancel-completed": (-32002, 409),
        # The 0.3 REST client reads no status on resubscribe: any non-SSE answer is its "400".
        "resubscribe-unknown": (-32001, 400),
    }
    for probe, (code, status) in expected.items():
        error = one(errs, probe)["error"]
        if transport == "jsonrpc":
            assert (error["class"], error["code"]) == ("A2AClientJSONRPCError", code), probe
        else:
            assert (error["class"], error["httpStatus"]) == ("A2AClientHTTPError", status), probe


@pytest.mark.parametrize("transport", V03)
async def test_the_sdk03_client_finds_us_through_the_merged_card(
    sdk03_python: Path, stack: AgentStack, http: str, transport: str
) -> None:
    card, sent = await asyncio.gather(
        run_sdk03_client(sdk03_python, transport, http + CARD, "card", card=True),
        run_sdk03_client(sdk03_python, transport, http + CARD, "send", "echo via card", card=True),
    )
    seen = one(card, "result")
    assert (seen["protocolVersion"], seen["preferredTransport"], seen["url"]) == (
        "0.3",
        "JSONRPC",
        http + "/",
    )
    assert seen["interfaces"] == [
        {"transport": "GRPC", "url": stack.grpc_address},  # the server's own v0.3 gRPC service
        {"transport": "JSONRPC", "url": http + "/"},
        {"transport": "HTTP+JSON", "url": http},
    ]
    assert (seen["streaming"], seen["pushNotifications"]) == (True, True)
    assert one(sent, "result")["state"] == "completed"


async def test_the_merged_card_still_parses_for_v10_clients(stack: AgentStack, http: str) -> None:
    async with httpx.AsyncClient(base_url=http) as client:
        document = (await client.get(CARD)).json()
    assert (document["protocolVersion"], document["url"]) == ("0.3", http + "/")
    parsed = transcoding.decode(document, types.AgentCard)  # the v0.3 members are ignored (spec 5.7)
    assert [i.protocol_version for i in parsed.supported_interfaces][-2:] == ["0.3", "0.3"]
    async with A2AClient.from_card(parsed) as v10:  # picks the gRPC 1.0 interface
        answer = await v10.send_message(A2AClient.text_request("echo from the card"))
    assert answer.task.status.state == types.TASK_STATE_COMPLETED


@pytest.mark.parametrize("transport", V03)
async def test_push_notifications_reach_a_webhook(
    sdk03_python: Path, stack: AgentStack, http: str, transport: str, receiver: Receiver
) -> None:
    lines = await run_sdk03_client(
        sdk03_python, transport, target(http, transport), "push", receiver.url("hook")
    )
    task = one(lines, "result")
    assert task["state"] == "completed"

    def states() -> list[str]:
        found = []
        for seen in receiver.paths("hook"):
            body = json.loads(seen.body)  # v1.0 StreamResponse: the documented loss
            found.append((body.get("task") or body.get("statusUpdate") or {}).get("status", {}).get("state"))
        return found

    await until(lambda: "TASK_STATE_COMPLETED" in states(), 15.0)


# -- both generations at once -----------------------------------------------------------------------


async def test_v10_and_v03_clients_share_tasks_at_the_same_time(
    sdk03_python: Path, stack: AgentStack, http: str
) -> None:
    async with A2AClient(stack.grpc_address) as v10, httpx.AsyncClient(base_url=http, timeout=30) as raw:
        made = await v10.send_message(A2AClient.text_request("echo from v1.0"))
        v10_task = made.task.id
        sdk_stream = asyncio.ensure_future(
            run_sdk03_client(sdk03_python, "jsonrpc", http + "/", "stream", "stream 5")
        )
        got = await asyncio.gather(
            run_sdk03_client(sdk03_python, "jsonrpc", http + "/", "get-task", v10_task),
            run_sdk03_client(sdk03_python, "rest", http, "get-task", v10_task, "1"),
        )
        for lines in got:
            seen = one(lines, "result")
            assert (seen["id"], seen["state"], seen["artifacts"][0]["texts"]) == (
                v10_task,
                "completed",
                ["echo from v1.0"],
            )
        answer = await rpc(raw, "message/send", {"message": v03_message("echo from v0.3")})
        v03_task = answer["result"]["id"]
        assert answer["result"]["kind"] == "task"
        task = await v10.get_task(v03_task)
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "echo from v0.3"
        v10_json = await raw.post(
            "/",
            json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": v03_task}},
            headers={"A2A-Version": "1.0"},
        )
        assert v10_json.json()["result"]["status"]["state"] == "TASK_STATE_COMPLETED"
        rest = await raw.get(f"/v1/tasks/{v03_task}")  # v0.3 REST: a2a.v1 ProtoJSON
        assert (rest.status_code, rest.json()["status"]["state"]) == (200, "TASK_STATE_COMPLETED")
        assert rest.json()["artifacts"][0]["parts"] == [{"text": "echo from v0.3"}]
        stream = await sdk_stream
        assert one(stream, "result")["state"] == "completed"


async def test_calls_are_marked_with_their_wire_version() -> None:
    seen = WireVersions()
    async with (
        agent_stack(interceptors=(seen,)) as served,
        httpx.AsyncClient(base_url=served.http_url) as raw,
    ):
        await rpc(raw, "tasks/get", {"id": "none"})
        await raw.get("/v1/tasks/none")
        await raw.post(
            "/",
            json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "none"}},
            headers={"A2A-Version": "1.0"},
        )
        await raw.get("/tasks/none?A2A-Version=1.0")  # spec 3.6.1: the version as a query parameter
    assert seen.seen == [
        ("GetTask", "0.3", "1.0"),
        ("GetTask", "0.3", "1.0"),
        ("GetTask", "", "1.0"),
        ("GetTask", "", "1.0"),
    ]


async def test_a_grpc_upstream_serves_v03_clients(sdk03_python: Path, stack: AgentStack) -> None:
    upstream = GrpcUpstream(stack.grpc_address)
    app = BridgeApp(upstream)
    server = HttpServer(app, "127.0.0.1", 0, grace=5.0)
    server.bind()
    app.public_url = server.url
    await server.start()
    try:
        lines = await asyncio.gather(
            run_sdk03_client(sdk03_python, "jsonrpc", server.url + "/", "stream", "stream 2"),
            run_sdk03_client(sdk03_python, "rest", server.url, "get", "echo over grpc"),
        )
        assert one(lines[0], "result")["state"] == "completed"
        assert one(lines[1], "result")["artifacts"][0]["texts"] == ["echo over grpc"]
    finally:
        await server.stop()
        await upstream.aclose()


# -- hostile ----------------------------------------------------------------------------------------


def reason(error: dict[str, Any]) -> str | None:
    for detail in error.get("data", []) if isinstance(error.get("data"), list) else []:
        if detail.get("@type", "").endswith("ErrorInfo"):
            return str(detail.get("reason"))
    return None


async def test_hostile_jsonrpc_gets_v03_errors_and_the_server_keeps_serving(
    stack: AgentStack, http: str
) -> None:
    async with httpx.AsyncClient(base_url=http, timeout=30) as raw:
        broken = await raw.post(
            "/",
            content=b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {',
            headers={"content-type": "application/json"},
        )
        assert broken.json()["error"]["code"] == -32700
        wrong = await rpc(raw, "message/send", {"message": 5})
        assert wrong["error"]["code"] == -32602
        kind = await rpc(raw, "message/send", {"message": v03_message("x", role="boss")})
        assert kind["error"]["code"] == -32602
        assert "role" in kind["error"]["message"]
        assert (await rpc(raw, "tasks/get", {"id": 5}))["error"]["code"] == -32602
        assert (await rpc(raw, "tasks/get", []))["error"]["code"] == -32602
        for name in ("tasks/list", "message/sendd", "agent/getCard", "tasks/pushNotificationConfig/put"):
            assert (await rpc(raw, name, {}))["error"]["code"] == -32601, name
        for version in ("1.0", "2.0", "1"):
            refused = await rpc(
                raw, "message/send", {"message": v03_message("x")}, **{"A2A-Version": version}
            )
            assert refused["error"]["code"] == -32603  # v0.3 has no -32009 (as SDK 1.x answers)
            assert reason(refused["error"]) == "VERSION_NOT_SUPPORTED"
        fine = await rpc(
            raw, "message/send", {"message": v03_message("echo versioned")}, **{"A2A-Version": "0.3"}
        )
        assert fine["result"]["status"]["state"] == "completed"
        many = v03_message("x", parts=[{"kind": "text", "text": "p"}] * 5000)
        limited = await rpc(raw, "message/send", {"message": many})
        assert (limited["error"]["code"], reason(limited["error"])) == (-32603, "LIMIT_EXCEEDED")
        deep: Any = {}
        for _ in range(200):
            deep = {"a": deep}
        nested = await rpc(raw, "message/send", {"message": v03_message("x", metadata=deep)})
        assert (nested["error"]["code"], reason(nested["error"])) == (-32603, "LIMIT_EXCEEDED")
        body = {"jsonrpc": "2.0", "id": 3, "method": "tasks/resubscribe", "params": {"id": "none"}}
        events = await raw.post("/", json=body)  # refused as an event stream: all v0.3 clients read
        assert events.headers["content-type"].startswith("text/event-stream")
        data = json.loads(events.text.split("data: ", 1)[1])
        assert (data["id"], data["error"]["code"]) == (3, -32001)
        push = await rpc(
            raw, "tasks/pushNotificationConfig/set", {"taskId": "t", "pushNotificationConfig": {"url": 3}}
        )
        assert push["error"]["code"] == -32602
        card = await rpc(raw, "agent/getAuthenticatedExtendedCard", None)
        assert reason(card["error"]) == "UNAUTHENTICATED"  # extended: for authenticated callers only
        still = await rpc(raw, "message/send", {"message": v03_message("echo still here")})
        assert still["result"]["status"]["state"] == "completed"


async def test_hostile_rest_gets_v03_errors_and_the_server_keeps_serving(
    stack: AgentStack, http: str
) -> None:
    async with httpx.AsyncClient(base_url=http, timeout=30) as raw:
        broken = await raw.post(
            "/v1/message:send", content=b"{", headers={"content-type": "application/json"}
        )
        assert (broken.status_code, broken.json()["type"]) == (400, "JSONParseError")
        wrong = await raw.post("/v1/message:send", json={"message": {"content": 5}})
        assert (wrong.status_code, wrong.json()["type"]) == (422, "InvalidParamsError")
        enum = await raw.post(
            "/v1/message:send", json={"message": {"role": "ROLE_BOSS", "content": [{"text": "x"}]}}
        )
        assert enum.status_code == 422
        unknown = await raw.get("/v1/tasks")
        assert (unknown.status_code, unknown.json()["type"]) == (404, "MethodNotFoundError")
        verb = await raw.delete("/v1/message:send")
        assert verb.status_code == 405
        for verb in ("GET", "POST"):  # the proto's GET, and the spec text's POST
            stream = await raw.request(verb, "/v1/tasks/no-such-task:subscribe")
            assert (stream.status_code, stream.json()["type"]) == (404, "TaskNotFoundError")
        missing = await raw.get("/v1/tasks/no-such-task")
        assert (missing.status_code, missing.json()["type"]) == (404, "TaskNotFoundError")
        assert missing.json()["error"]["status"] == "NOT_FOUND"  # the v1.0 body, for v1.0 readers
        many = {"message": {"messageId": "m", "role": "ROLE_USER", "content": [{"text": "p"}] * 5000}}
        limited = await raw.post("/v1/message:send", json=many)
        assert limited.json()["type"] == "LimitExceededError"
        # A2A-Version 1.0 (header or query): the v1.0 routes, where /v1 is a tenant.
        for headers, query in (({"A2A-Version": "1.0"}, ""), ({}, "?A2A-Version=1.0")):
            body = {
                "message": {
                    "messageId": f"v{query}",
                    "role": "ROLE_USER",
                    "parts": [{"text": "echo tenant v1"}],
                }
            }
            v10 = await raw.post("/v1/message:send" + query, json=body, headers=headers)
            assert v10.status_code == 200, v10.text
            assert v10.json()["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        # Push config: the whole request and the bare config both create one.
        made = await raw.post(
            "/v1/message:send",
            json={
                "message": {"messageId": "ask", "role": "ROLE_USER", "content": [{"text": "input"}]},
                "configuration": {"blocking": True},
            },
        )
        task_id = made.json()["task"]["id"]
        whole = {
            "parent": f"tasks/{task_id}",
            "configId": "a",
            "config": {"pushNotificationConfig": {"url": "http://127.0.0.1:9/a"}},
        }
        bare = {"pushNotificationConfig": {"id": "b", "url": "http://127.0.0.1:9/b"}}
        for body in (whole, bare):
            answer = await raw.post(f"/v1/tasks/{task_id}/pushNotificationConfigs", json=body)
            assert answer.status_code == 200, answer.text
        listed = await raw.get(f"/v1/tasks/{task_id}/pushNotificationConfigs")
        names = sorted(c["name"] for c in listed.json()["configs"])
        assert names == [f"tasks/{task_id}/pushNotificationConfigs/{c}" for c in ("a", "b")]
        clash = await raw.post(
            f"/v1/tasks/{task_id}/pushNotificationConfigs", json={**whole, "parent": "tasks/other"}
        )
        assert clash.status_code == 422
        gone = await raw.delete(f"/v1/tasks/{task_id}/pushNotificationConfigs/a")
        assert (gone.status_code, gone.json()) == (200, {})
        cancel = await raw.post(f"/v1/tasks/{task_id}:cancel", json={"name": f"tasks/{task_id}"})
        assert cancel.json()["status"]["state"] == "TASK_STATE_CANCELLED"
        assert (await raw.get(f"/v1/tasks/{task_id}")).json()["status"]["state"] == "TASK_STATE_CANCELLED"


async def test_another_principals_task_is_not_found_over_v03() -> None:
    async with (
        serve_stack(ReferenceAgent(), authentication=authentication()) as served,
        httpx.AsyncClient(base_url=served.url, timeout=30) as raw,
    ):
        alice, bob = api_key("alice"), api_key("bob")
        nobody = await rpc(raw, "message/send", {"message": v03_message("echo x")}, 401)
        assert reason(nobody["error"]) == "UNAUTHENTICATED"
        made = await rpc(raw, "message/send", {"message": v03_message("ask")}, **alice)
        task_id = made["result"]["id"]
        for method, params in (
            ("tasks/get", {"id": task_id}),
            ("tasks/cancel", {"id": task_id}),
            ("tasks/pushNotificationConfig/list", {"id": task_id}),
        ):
            refused = await rpc(raw, method, params, **bob)
            assert refused["error"]["code"] == -32001, method
        for verb, path in (("GET", f"/v1/tasks/{task_id}"), ("POST", f"/v1/tasks/{task_id}:cancel")):
            answer = await raw.request(verb, path, headers=bob, json={} if verb == "POST" else None)
            assert (answer.status_code, answer.json()["type"]) == (404, "TaskNotFoundError")
        card = (await rpc(raw, "agent/getAuthenticatedExtendedCard", None, **alice))["result"]
        assert (card["protocolVersion"], card["url"]) == ("0.3", served.url + "/")  # a2a.json's shape
        assert card["description"].endswith("(extended card: shown to authenticated callers)")
        assert (await raw.get("/v1/card", headers=alice)).json() == card
        mine = await rpc(raw, "tasks/get", {"id": task_id}, **alice)
        assert mine["result"]["status"]["state"] == "input-required"


# -- v0.3 turned off --------------------------------------------------------------------------------


async def test_serve_v03_false_removes_methods_routes_and_card_members() -> None:
    async with (
        agent_stack(BridgeSettings(serve_v03=False), grpc_v03=False) as served,
        httpx.AsyncClient(base_url=served.http_url) as raw,
    ):
        card = (await raw.get(CARD)).json()
        assert not {"url", "protocolVersion", "preferredTransport", "additionalInterfaces"} & card.keys()
        assert {i["protocolVersion"] for i in card["supportedInterfaces"]} == {"1.0"}
        assert (await rpc(raw, "message/send", {"message": v03_message("x")}))["error"]["code"] == -32601
        v10 = await raw.post("/v1/message:send", json={"message": {"content": [{"text": "x"}]}})
        assert v10.status_code == 400  # v1.0's refusal, as before v0.3 was served
        assert v10.json()["error"]["status"] == "FAILED_PRECONDITION"
        assert "type" not in v10.json()
        assert "VERSION_NOT_SUPPORTED" in v10.text
