"""Tenants and ids spelled like route literals reach their own operation, on both bridge directions.

One gRPC agent (the reference agent behind ``A2AServer``, every call recorded by an interceptor)
with our HTTP bridge in front of it (``GrpcUpstream``: HTTP in, gRPC out), and our reverse bridge
(``GrpcFront`` over ``RestUpstream``: gRPC in, HTTP+JSON out) whose JSON upstream is that same
HTTP bridge, its raw request paths recorded. So each test sees the path on the wire and the gRPC
request it became at the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.outbound import RestUpstream
from a2a_grpc.bridge.upstream import GrpcUpstream
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall
from a2a_grpc.tasks import InMemoryTaskStore
from tests.conftest import Authenticated

pytestmark = pytest.mark.asyncio(loop_scope="module")
TIMEOUT = 10.0
LITERAL_TENANTS = ["tasks", "message", "extendedAgentCard", "pushNotificationConfigs", "message:send", "card"]


class Recorder(Interceptor):
    """Records the method and request of every call the agent's seam receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Message]] = []

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        self.calls.append((method.name, request))
        return await call_next(request, context)

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        self.calls.append((method.name, request))
        return call_next(request, context)


@dataclass
class PathRecording:
    """An ASGI app in front of ``app`` that records each request's verb and raw path."""

    app: BridgeApp
    seen: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.seen.append((scope["method"], scope["raw_path"].decode("latin-1")))
        await self.app(scope, receive, send)


@dataclass
class Mesh:
    recorder: Recorder
    front: PathRecording
    http: httpx.AsyncClient
    """A plain HTTP client of the bridge (HTTP in, gRPC out)."""
    client: A2AClient
    """A gRPC client of the reverse bridge, whose upstream is the HTTP bridge."""

    def clear(self) -> None:
        self.recorder.calls.clear()
        self.front.seen.clear()

    def received(self) -> list[tuple[str, Message]]:
        """The calls the agent received since :meth:`clear`."""
        return list(self.recorder.calls)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[Mesh]:
    recorder = Recorder()
    settings = ServerSettings(host="127.0.0.1", port=0, interceptors=(Authenticated(), recorder))
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), settings)
    await server.start()
    grpc_upstream = GrpcUpstream(server.address)
    front = PathRecording(BridgeApp(grpc_upstream))
    http = HttpServer(front, "127.0.0.1", 0, grace=1.0)
    http.bind()
    await http.start()
    rest = RestUpstream(http.url)
    try:
        async with (
            httpx.AsyncClient(base_url=http.url, headers={"a2a-version": "1.0"}, timeout=TIMEOUT) as client,
            GrpcFront(rest, ServerSettings(host="127.0.0.1", port=0, grace_seconds=1.0)) as reverse,
            A2AClient(reverse.address, timeout=TIMEOUT) as a2a,
        ):
            yield Mesh(recorder, front, client, a2a)
    finally:
        await rest.aclose()
        await http.stop()
        await grpc_upstream.aclose()
        await server.stop(grace=0.2)
        await server.store.close()


@pytest_asyncio.fixture(loop_scope="module")
async def mesh(shared: Mesh) -> Mesh:
    shared.clear()
    return shared


async def echo_over_http(mesh: Mesh) -> None:
    response = await mesh.http.post("/message:send", json=send_body("echo still here"))
    assert response.status_code == 200, response.text


def fields(request: Message, *names: str) -> dict[str, object]:
    """``names`` (and ``tenant``) of a recorded request, with their values."""
    return {name: getattr(request, name) for name in ("tenant", *names)}


def send_body(text: str) -> dict[str, Any]:
    return {"message": {"messageId": text, "role": "ROLE_USER", "parts": [{"text": text}]}}


# -- HTTP in, gRPC out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        ("/tasks/tasks", "ListTasks", {"tenant": "tasks"}),
        ("/tasks/extendedAgentCard", "GetExtendedAgentCard", {"tenant": "tasks"}),
        ("/%74asks/tasks", "ListTasks", {"tenant": "tasks"}),
        ("/tasks/%74asks", "GetTask", {"id": "tasks"}),
        ("/tasks/%65xtendedAgentCard", "GetTask", {"id": "extendedAgentCard"}),
        ("/extendedAgentCard/tasks", "ListTasks", {"tenant": "extendedAgentCard"}),
        ("/message%3Asend/extendedAgentCard", "GetExtendedAgentCard", {"tenant": "message:send"}),
        ("/tasks/tasks/pushNotificationConfigs", "ListTaskPushNotificationConfigs", {"task_id": "tasks"}),
        (
            "/tasks/tasks/pushNotificationConfigs/pushNotificationConfigs",
            "ListTaskPushNotificationConfigs",
            {"tenant": "tasks", "task_id": "pushNotificationConfigs"},
        ),
        ("/tasks/urn:task:1", "GetTask", {"id": "urn:task:1"}),
        ("/card/tasks/t1:subscribe", "SubscribeToTask", {"tenant": "card", "id": "t1"}),
    ],
)
async def test_a_get_reaches_the_agent_as_the_operation_its_path_names(
    mesh: Mesh, path: str, method: str, expected: dict[str, str]
) -> None:
    await mesh.http.get(path)
    ((name, request),) = mesh.received()
    assert name == method
    assert fields(request, *expected) == {"tenant": "", **expected}


@pytest.mark.parametrize("tenant", LITERAL_TENANTS)
async def test_a_tenant_named_like_a_literal_sends_then_lists_its_own_tasks(mesh: Mesh, tenant: str) -> None:
    """A client that does not encode (the official SDK's REST client) writes /{tenant}/... as is."""
    prefix = "/" + tenant.replace(":", "%3A")
    sent = await mesh.http.post(f"{prefix}/message:send", json=send_body(f"echo for {tenant}"))
    assert sent.status_code == 200, sent.text
    task_id = sent.json()["task"]["id"]
    listed = await mesh.http.get(f"{prefix}/tasks")
    assert listed.status_code == 200, listed.text
    assert task_id in [t["id"] for t in listed.json()["tasks"]]
    got = await mesh.http.get(f"{prefix}/tasks/{task_id}")
    assert got.status_code == 200, got.text
    assert got.json()["id"] == task_id
    card = await mesh.http.get(f"{prefix}/extendedAgentCard")
    assert card.status_code == 200, card.text
    assert "extended card" in card.json()["description"]
    assert [(name, fields(request)["tenant"]) for name, request in mesh.received()] == [
        ("SendMessage", tenant),
        ("ListTasks", tenant),
        ("GetTask", tenant),
        ("GetExtendedAgentCard", tenant),
    ]
    # The tenant's task is its own: the default tenant does not see it.
    plain = await mesh.http.get("/tasks")
    assert task_id not in [t["id"] for t in plain.json()["tasks"]]


async def test_a_path_variable_that_is_not_utf8_is_400_naming_it_and_the_bridge_serves_on(
    mesh: Mesh,
) -> None:
    response = await mesh.http.get("/tasks/%FF%FE")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    violations = [d for d in error["details"] if d["@type"].endswith("BadRequest")]
    assert [v["field"] for v in violations[0]["fieldViolations"]] == ["id"]
    assert mesh.received() == []
    await echo_over_http(mesh)


# -- gRPC in, HTTP+JSON out (the reverse bridge) ------------------------------------------------------


@pytest.mark.parametrize("tenant", LITERAL_TENANTS)
async def test_the_reverse_bridge_reaches_a_literal_tenants_own_operations(mesh: Mesh, tenant: str) -> None:
    response = await mesh.client.send_message(
        A2AClient.text_request(f"echo via grpc {tenant}", tenant=tenant)
    )
    task_id = response.task.id
    listed = await mesh.client.list_tasks(types.ListTasksRequest(tenant=tenant))
    assert task_id in [t.id for t in listed.tasks]
    assert (await mesh.client.get_task(task_id, tenant=tenant)).id == task_id
    card = await mesh.client.get_extended_agent_card(tenant=tenant)
    assert "extended card" in card.description
    assert [(name, fields(request)["tenant"]) for name, request in mesh.received()] == [
        ("SendMessage", tenant),
        ("ListTasks", tenant),
        ("GetTask", tenant),
        ("GetExtendedAgentCard", tenant),
    ]
    paths = [path for _, path in mesh.front.seen]
    segment = paths[0].split("/")[1]
    assert paths == [
        f"/{segment}/message:send",
        f"/{segment}/tasks",
        f"/{segment}/tasks/{task_id}",
        f"/{segment}/extendedAgentCard",
    ]
    if tenant in ("tasks", "message", "extendedAgentCard", "pushNotificationConfigs"):
        assert segment == f"%{ord(tenant[0]):02X}{tenant[1:]}"  # spelled like a literal: encoded
    plain = await mesh.client.list_tasks()  # the default tenant does not see the tenant's task
    assert task_id not in [t.id for t in plain.tasks]


@pytest.mark.parametrize(
    ("call", "method", "expected", "path"),
    [
        (lambda c: c.get_task("tasks"), "GetTask", {"id": "tasks"}, "/tasks/%74asks"),
        (
            lambda c: c.get_task("extendedAgentCard"),
            "GetTask",
            {"id": "extendedAgentCard"},
            "/tasks/%65xtendedAgentCard",
        ),
        (
            lambda c: c.cancel_task("message:send"),
            "CancelTask",
            {"id": "message:send"},
            "/tasks/message%3Asend:cancel",
        ),
        (
            lambda c: c.get_task_push_notification_config("tasks", "pushNotificationConfigs"),
            "GetTaskPushNotificationConfig",
            {"task_id": "tasks", "id": "pushNotificationConfigs"},
            "/tasks/%74asks/pushNotificationConfigs/%70ushNotificationConfigs",
        ),
        (
            lambda c: c.list_task_push_notification_configs("pushNotificationConfigs", tenant="tasks"),
            "ListTaskPushNotificationConfigs",
            {"tenant": "tasks", "task_id": "pushNotificationConfigs"},
            "/%74asks/tasks/%70ushNotificationConfigs/pushNotificationConfigs",
        ),
    ],
)
async def test_the_reverse_bridge_reaches_a_task_named_like_a_literal(
    mesh: Mesh, call: Any, method: str, expected: dict[str, str], path: str
) -> None:
    with pytest.raises(errors.TaskNotFoundError):
        await call(mesh.client)
    assert [p.partition("?")[0] for _, p in mesh.front.seen] == [path]
    ((name, request),) = mesh.received()
    assert name == method
    assert fields(request, *expected) == {"tenant": "", **expected}
