"""Identifiers (task, context, message and push config ids; tenants) checked at every operation's entry.

1. The rule itself (:func:`a2a_grpc._validation.check_identifier`) and its table: every request type
   of the method table is listed, every listed path is a string field.
2. Against a real server, over gRPC, JSON-RPC and HTTP+JSON (one ``AgentStack``): dot segments,
   control characters and overlong values are InvalidParams naming the field; a forged log line
   never reaches the logs; legitimate ids (uuids, our hex ids, unicode letters, ``a.b``, ``..a``)
   still work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from google.protobuf.descriptor import FieldDescriptor

from a2a_grpc import errors, types
from a2a_grpc._validation import IDENTIFIER_FIELDS, MAX_ID_CHARS, check_identifier, check_identifiers
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import ServerSettings
from a2a_grpc.service import METHODS

V = {"a2a-version": "1.0"}
TIMEOUT = 10.0
HOOK = "https://hooks.example.com/hook"  # stored, never delivered to
FORGED = "INFO forged"
HOSTILE = [".", "..", "a\nINFO forged", "a\rb", "a\x00b", "a\x7fb", "a\x85b", "a\u2028b", "a\u202eb"]
LEGIT = [
    str(uuid.uuid4()),
    uuid.uuid4().hex,
    "ünïcødé-识别符",
    "a.b",
    "..a",
    "a..",
    "%2e%2e",
    "a/../b",
    "x" * MAX_ID_CHARS,
]


# ==== 1. the rule ================================================================================


@pytest.mark.parametrize("value", [*HOSTILE, "x" * (MAX_ID_CHARS + 1)])
def test_a_hostile_value_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(errors.InvalidParamsError) as info:
        check_identifier(value, "message.task_id")
    assert [v.field for v in info.value.field_violations] == ["message.task_id"]
    assert "\n" not in info.value.message
    assert "\r" not in info.value.message
    assert len(info.value.message) < 200  # an overlong value is not quoted back


@pytest.mark.parametrize("value", ["", *LEGIT])
def test_a_legitimate_value_passes(value: str) -> None:
    check_identifier(value, "id")


def test_every_request_type_has_its_identifier_fields_listed() -> None:
    assert set(IDENTIFIER_FIELDS) == {method.request for method in METHODS.values()}
    for request_type, paths in IDENTIFIER_FIELDS.items():
        for path in paths:
            descriptor = request_type.DESCRIPTOR
            *parents, name = path.split(".")
            for parent in parents:
                descriptor = descriptor.fields_by_name[parent].message_type
            field = descriptor.fields_by_name[name]
            assert field.type == FieldDescriptor.TYPE_STRING, path
    # Every tenant, id and *_id string field of a request is listed (a new one must be added).
    for request_type, paths in IDENTIFIER_FIELDS.items():
        for field in request_type.DESCRIPTOR.fields:
            if field.type == FieldDescriptor.TYPE_STRING and (
                field.name in ("tenant", "id") or field.name.endswith("_id")
            ):
                assert field.name in paths, (request_type.__name__, field.name)


def test_nested_and_repeated_fields_are_named_by_their_path() -> None:
    request = A2AClient.text_request("hi")
    request.message.reference_task_ids.extend(["ok", ".."])
    with pytest.raises(errors.InvalidParamsError) as info:
        check_identifiers(request)
    assert info.value.field_violations[0].field == "message.reference_task_ids[1]"
    request = A2AClient.text_request("hi")
    request.configuration.task_push_notification_config.id = "a\nb"
    with pytest.raises(errors.InvalidParamsError) as info:
        check_identifiers(request)
    assert info.value.field_violations[0].field == "configuration.task_push_notification_config.id"


# ==== 2. against a real server, on every binding ===================================================


@pytest_asyncio.fixture
async def stack() -> AsyncIterator[AgentStack]:
    async with AgentStack(
        ReferenceAgent(),
        grpc=ServerSettings(host="127.0.0.1", port=0, log_requests=True),
        http_port=0,
        bridge=BridgeSettings(log_requests=True),
    ) as started:
        yield started


@pytest_asyncio.fixture
async def client(stack: AgentStack) -> AsyncIterator[A2AClient]:
    async with A2AClient(stack.grpc_address, timeout=TIMEOUT) as opened:
        yield opened


@pytest_asyncio.fixture
async def http(stack: AgentStack) -> AsyncIterator[httpx.AsyncClient]:
    assert stack.http_url is not None
    async with httpx.AsyncClient(base_url=stack.http_url, headers=V, timeout=TIMEOUT) as opened:
        yield opened


async def completed_task(client: A2AClient) -> str:
    response = await client.send_message(A2AClient.text_request("echo hi"))
    return response.task.id


Call = Callable[[A2AClient, str, str], Awaitable[Any]]
"""One operation with a hostile value in one field: (client, existing task id, value)."""


async def _stream_first(events: AsyncIterator[types.StreamResponse]) -> None:
    async for _ in events:
        return


def _send_with(where: str) -> Call:
    async def call(client: A2AClient, task_id: str, value: str) -> Any:
        request = A2AClient.text_request("echo hi")
        if where == "message.message_id":
            request.message.message_id = value
        elif where == "message.context_id":
            request.message.context_id = value
        elif where == "message.task_id":
            request.message.task_id = value
        elif where == "tenant":
            request.tenant = value
        else:
            config = request.configuration.task_push_notification_config
            config.url, config.id = HOOK, value
        return await client.send_message(request)

    return call


CALLS: dict[str, tuple[str, Call]] = {
    "SendMessage message_id": ("message.message_id", _send_with("message.message_id")),
    "SendMessage context_id": ("message.context_id", _send_with("message.context_id")),
    "SendMessage task_id": ("message.task_id", _send_with("message.task_id")),
    "SendMessage tenant": ("tenant", _send_with("tenant")),
    "SendMessage push config id": (
        "configuration.task_push_notification_config.id",
        _send_with("configuration.task_push_notification_config.id"),
    ),
    "SendStreamingMessage task_id": (
        "message.task_id",
        lambda c, t, v: _stream_first(c.send_streaming_message(A2AClient.text_request("echo", task_id=v))),
    ),
    "GetTask id": ("id", lambda c, t, v: c.get_task(v)),
    "GetTask tenant": ("tenant", lambda c, t, v: c.get_task(t, tenant=v)),
    "ListTasks context_id": (
        "context_id",
        lambda c, t, v: c.list_tasks(types.ListTasksRequest(context_id=v)),
    ),
    "CancelTask id": ("id", lambda c, t, v: c.cancel_task(v)),
    "SubscribeToTask id": ("id", lambda c, t, v: _stream_first(c.subscribe_to_task(v))),
    "CreatePushConfig id": (
        "id",
        lambda c, t, v: c.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=t, id=v, url=HOOK)
        ),
    ),
    "CreatePushConfig task_id": (
        "task_id",
        lambda c, t, v: c.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=v, url=HOOK)
        ),
    ),
    "GetPushConfig id": ("id", lambda c, t, v: c.get_task_push_notification_config(t, v)),
    "GetPushConfig task_id": ("task_id", lambda c, t, v: c.get_task_push_notification_config(v, "p")),
    "ListPushConfigs task_id": ("task_id", lambda c, t, v: c.list_task_push_notification_configs(v)),
    "DeletePushConfig id": ("id", lambda c, t, v: c.delete_task_push_notification_config(t, v)),
    "DeletePushConfig tenant": (
        "tenant",
        lambda c, t, v: c.delete_task_push_notification_config(t, "p", tenant=v),
    ),
    "GetExtendedAgentCard tenant": (
        "tenant",
        lambda c, t, v: c._unary(
            "GetExtendedAgentCard", types.GetExtendedAgentCardRequest(tenant=v), None, None
        ),
    ),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("operation", list(CALLS))
async def test_hostile_ids_are_refused_over_grpc_naming_the_field(client: A2AClient, operation: str) -> None:
    field, call = CALLS[operation]
    task_id = await completed_task(client)
    for value in ["..", ".", "a\nINFO forged", "x" * (MAX_ID_CHARS + 1)]:
        with pytest.raises(errors.InvalidParamsError) as info:
            await call(client, task_id, value)
        assert [v.field for v in info.value.field_violations] == [field], (operation, value)


@pytest.mark.asyncio
async def test_a_forged_log_line_never_reaches_the_logs(
    stack: AgentStack, client: A2AClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = await completed_task(client)
    forged = f"a\n{FORGED}"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(errors.InvalidParamsError):
            await client.create_task_push_notification_config(
                types.TaskPushNotificationConfig(task_id=task_id, id=forged, url=HOOK)
            )
        with pytest.raises(errors.InvalidParamsError):
            await client.get_task_push_notification_config(task_id, forged)
        answer = await http.get(f"/tasks/{task_id}/pushNotificationConfigs/{quote(forged, safe='')}")
        assert answer.status_code == 400
        rpc = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": forged}}
        assert "error" in (await http.post("/", json=rpc)).json()
    assert caplog.records  # the access logs did log these calls
    lines = caplog.text.splitlines()
    assert not [line for line in lines if line.lstrip().startswith(FORGED)]
    assert all("\n" not in r.getMessage() for r in caplog.records if "forged" in r.getMessage())


def _violations_of(error: errors.A2AError) -> list[str]:
    return [v.field for v in error.field_violations]


@pytest.mark.asyncio
@pytest.mark.parametrize("value", ["..", ".", "a\nb", "x" * (MAX_ID_CHARS + 1)])
async def test_hostile_ids_are_refused_over_the_json_bindings(
    client: A2AClient, http: httpx.AsyncClient, value: str
) -> None:
    task_id = await completed_task(client)
    # JSON-RPC: the value in the params.
    for method, params, field in [
        ("GetTask", {"id": value}, "id"),
        ("GetTaskPushNotificationConfig", {"taskId": task_id, "id": value}, "id"),
        ("DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": "p", "tenant": value}, "tenant"),
        ("ListTasks", {"contextId": value}, "context_id"),
    ]:
        rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = (await http.post("/", json=rpc)).json()
        error = from_jsonrpc_error(reply["error"])
        assert isinstance(error, errors.InvalidParamsError), (method, reply)
        assert _violations_of(error) == [field], (method, reply)
    # HTTP+JSON: the value in the path, percent-encoded so that the HTTP client sends it as is.
    encoded = quote(value, safe="").replace(".", "%2E")
    for path, field in [
        (f"/tasks/{encoded}", "id"),
        (f"/tasks/{task_id}/pushNotificationConfigs/{encoded}", "id"),
        (f"/{encoded}/tasks/{task_id}", "tenant"),
    ]:
        answer = await http.get(path)
        assert answer.status_code == 400, (path, answer.text)
        error = from_rest_error(answer.status_code, answer.json())
        assert isinstance(error, errors.InvalidParamsError), (path, answer.text)
        assert _violations_of(error) == [field], (path, answer.text)


@pytest.mark.asyncio
async def test_legitimate_ids_still_work(client: A2AClient, http: httpx.AsyncClient) -> None:
    task_id = await completed_task(client)
    for value in LEGIT:
        # An unknown task: looked up, not refused.
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task(value)
        # A push config id, a context id and a message id of the caller's choosing.
        config = types.TaskPushNotificationConfig(task_id=task_id, id=value, url=HOOK)
        assert (await client.create_task_push_notification_config(config)).id == value
        assert (await client.get_task_push_notification_config(task_id, value)).id == value
        request = A2AClient.text_request("echo hi", context_id=value)
        request.message.message_id = value
        response = await client.send_message(request)
        assert response.task.context_id == value
        listed = await client.list_tasks(types.ListTasksRequest(context_id=value))
        assert response.task.id in [t.id for t in listed.tasks]
        # Over HTTP+JSON, the id percent-encoded as one segment, tenant-less.
        answer = await http.get(f"/tasks/{task_id}/pushNotificationConfigs/{quote(value, safe='')}")
        assert answer.status_code == 200, (value, answer.text)
        assert answer.json()["id"] == value
        await client.delete_task_push_notification_config(task_id, value)
