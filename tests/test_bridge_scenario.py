"""One scenario per A2A operation and per A2A error, run over gRPC direct, JSON-RPC and HTTP+JSON.

Spec section 5.1: an operation means the same on every binding. Each test here runs one scenario
body over one binding (``binding`` is parametrized over :data:`BINDINGS`); over the two JSON
bindings it runs the body over gRPC direct too, as the reference, and the two normalized outcomes
must be equal (ids and timestamps differ per run and are replaced by placeholders that keep which
values were equal). On top of that each test asserts what the outcome must be, and each refusal
the wire facts of its binding: the gRPC status code, the JSON-RPC error code with its typed
``data`` details, the HTTP status with its ``google.rpc.Status`` body (spec 5.4, via
``errors.ERROR_TABLE``).

The agent is served as ``a2a-grpc serve --http-port 0`` serves it (A2AServer, and
BridgeApp(LocalUpstream) on an HttpServer, in this process); the tests marked by the
``bridge-process`` id go through a separate ``a2a-grpc bridge http-to-grpc`` process instead.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.errordetails import BAD_REQUEST_TYPE, ERROR_INFO_TYPE
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.client import A2AClient
from a2a_grpc.session.frames import BINDING_URI
from tests.bridge_peers import (
    BINDINGS,
    LATE_SECONDS,
    Binding,
    LateAgent,
    Stack,
    WireError,
    bridge_process,
    collect,
    open_binding,
    serve_stack,
)
from tests.conftest import Authenticated
from tests.sdk_peers import REQUIRED_EXTENSION, TunedAgent

ASYNC = pytest.mark.asyncio(loop_scope="module")
"""Every async test runs in the module's event loop, where the module-scoped servers live."""

HOOK = "https://hooks.example.com/hook"  # a public name: the webhook policy refuses loopback
Scenario = Callable[[Binding], Awaitable[Any]]
Call = Callable[[], Awaitable[object]]


# --- the agents ---------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def main() -> AsyncIterator[Stack]:
    """The reference agent with every capability (and TunedAgent's ``crash`` and ``silent``); every
    caller is authenticated (the extended card is only for them)."""
    async with serve_stack(TunedAgent(), interceptors=[Authenticated()]) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def limited() -> AsyncIterator[Stack]:
    """A card without streaming, push notifications or an extended card."""
    async with serve_stack(TunedAgent(streaming=False, push=False, extended=False)) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def unconfigured() -> AsyncIterator[Stack]:
    """A card that declares an extended card the agent does not have."""
    async with serve_stack(TunedAgent(extended_configured=False), interceptors=[Authenticated()]) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def strict() -> AsyncIterator[Stack]:
    """A card that requires an extension."""
    async with serve_stack(TunedAgent(required_extension=REQUIRED_EXTENSION)) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def late() -> AsyncIterator[Stack]:
    """An agent that fails after a while, behind a bridge that starts SSE streams before that."""
    async with serve_stack(LateAgent(), BridgeSettings(first_event_wait=LATE_SECONDS / 6)) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def process(main: Stack) -> AsyncIterator[Stack]:
    """``a2a-grpc bridge http-to-grpc`` as its own process in front of ``main``'s gRPC port."""
    async with bridge_process(main.address) as url:
        yield Stack(main.address, url, main.server)


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Stack:
    """The stack fixture named by an indirect parameter (a sync fixture: an async test cannot
    call ``getfixturevalue`` on an async fixture from inside the running loop)."""
    value = request.getfixturevalue(request.param)
    assert isinstance(value, Stack)
    return value


DEPLOYED = [pytest.param("main", kind, id=f"in-process-{kind}") for kind in BINDINGS] + [
    pytest.param("process", kind, id=f"bridge-process-{kind}") for kind in ("jsonrpc", "rest")
]
"""In-process bridge over every binding, and the bridge process over the JSON ones (gRPC direct to the
agent behind it would be the in-process case again)."""


# --- normalizing and comparing ------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_KEYS = frozenset({"id", "taskId", "contextId", "messageId", "artifactId"})


def normalize(outcome: Any) -> Any:
    """``outcome`` as JSON data: messages in ProtoJSON, errors as their class, message, metadata and
    field violations; ids (and UUIDs inside texts) become ``<idN>`` in order of first appearance,
    timestamps ``<ts>``, page tokens ``<token>``."""
    ids: dict[str, str] = {}

    def placeholder(value: str) -> str:
        return ids.setdefault(value, f"<id{len(ids)}>")

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, Message):
            value = transcoding.encode(value)
        elif isinstance(value, errors.A2AError):
            value = {
                "error": type(value).__name__,
                "message": value.message,
                "metadata": value.metadata,
                "fieldViolations": [[v.field, v.description] for v in value.field_violations],
            }
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        if isinstance(value, str):
            if key in _ID_KEYS:
                return placeholder(value)
            if key.lower().endswith("timestamp"):
                return "<ts>"
            if key == "nextPageToken":
                return "<token>" if value else ""
            return _UUID.sub(lambda m: placeholder(m.group()), value)
        return value

    return walk(outcome)


async def run(scenario: Scenario, kind: str, stack: Stack, **options: Any) -> Any:
    async with open_binding(kind, stack, **options) as binding:
        return normalize(await scenario(binding))


async def equivalent(
    scenario: Scenario, kind: str, stack: Stack, *, own: tuple[str, ...] = (), **options: Any
) -> Any:
    """The normalized outcome of ``scenario`` over ``kind``; for a JSON binding it must equal the
    outcome of the same scenario over gRPC direct to the same agent, except for the top-level
    members named in ``own`` (binding-specific by design)."""
    outcome = await run(scenario, kind, stack, **options)
    if kind != "grpc":
        reference = await run(scenario, "grpc", stack, **options)
        shared = {k: v for k, v in outcome.items() if k not in own}
        assert shared == {k: v for k, v in reference.items() if k not in own}, f"{kind} and gRPC disagree"
    return outcome


def text(value: str, **options: Any) -> types.SendMessageRequest:
    return A2AClient.text_request(value, **options)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    """The payload of each normalized StreamResponse (its only member)."""
    assert all(len(e) == 1 for e in events), events
    return [next(iter(e)) for e in events]


def texts(parts: list[dict[str, Any]]) -> list[str]:
    return [p["text"] for p in parts]


async def task_of(binding: Binding, value: str, **options: Any) -> types.Task:
    response = await binding.send_message(text(value, **options))
    assert response.HasField("task"), response
    return response.task


# --- the operations -----------------------------------------------------------------------------------


async def send_message(b: Binding) -> Any:
    trimmed = text("ask")
    trimmed.configuration.history_length = 0
    return {
        "task": await b.send_message(text("echo hello")),
        "reply": await b.send_message(text("reply hi there")),
        "trimmed": await b.send_message(trimmed),
    }


@ASYNC
@pytest.mark.parametrize(("stack", "binding"), DEPLOYED, indirect=["stack"])
async def test_send_message(stack: Stack, binding: str) -> None:
    out = await equivalent(send_message, binding, stack)
    task = out["task"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert [(a["name"], texts(a["parts"])) for a in task["artifacts"]] == [("echo", ["echo hello"])]
    assert [(m["role"], m["taskId"], m["contextId"]) for m in task["history"]] == [
        ("ROLE_USER", task["id"], task["contextId"])
    ]
    reply = out["reply"]["message"]
    assert (reply["role"], texts(reply["parts"])) == ("ROLE_AGENT", ["hi there"])
    assert "taskId" not in reply
    trimmed = out["trimmed"]["task"]
    assert trimmed["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert "history" not in trimmed


async def send_streaming_message(b: Binding) -> Any:
    events = await collect(b.send_streaming_message(text("stream 3")))
    return {
        "events": events,
        "stored": await b.get_task(types.GetTaskRequest(id=events[0].task.id)),
        "reply": await collect(b.send_streaming_message(text("reply yo"))),
    }


@ASYNC
@pytest.mark.parametrize(("stack", "binding"), DEPLOYED, indirect=["stack"])
async def test_send_streaming_message(stack: Stack, binding: str) -> None:
    out = await equivalent(send_streaming_message, binding, stack)
    events = out["events"]
    assert kinds(events) == ["task", "statusUpdate", *["artifactUpdate"] * 3, "statusUpdate"]
    task = events[0]["task"]
    assert task["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert events[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    chunks = [e["artifactUpdate"] for e in events[2:5]]
    assert [texts(c["artifact"]["parts"]) for c in chunks] == [["chunk 0"], ["chunk 1"], ["chunk 2"]]
    assert [(c.get("append", False), c.get("lastChunk", False)) for c in chunks] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert {
        (e[k]["taskId"], e[k]["contextId"]) for e, k in zip(events[1:], kinds(events)[1:], strict=True)
    } == {(task["id"], task["contextId"])}
    stored = out["stored"]
    assert stored["status"]["state"] == "TASK_STATE_COMPLETED"
    assert texts(stored["artifacts"][0]["parts"]) == ["chunk 0", "chunk 1", "chunk 2"]
    assert kinds(out["reply"]) == ["message"]
    assert texts(out["reply"][0]["message"]["parts"]) == ["yo"]


async def get_task(b: Binding) -> Any:
    asked = await task_of(b, "ask")
    raw = await task_of(b, "bytes 1000")

    def get(history: int | None) -> Awaitable[types.Task]:
        request = types.GetTaskRequest(id=asked.id)
        if history is not None:
            request.history_length = history
        return b.get_task(request)

    return {
        "full": await get(None),
        "last": await get(1),
        "none": await get(0),
        "bytes": await b.get_task(types.GetTaskRequest(id=raw.id)),
    }


@ASYNC
@pytest.mark.parametrize(("stack", "binding"), DEPLOYED, indirect=["stack"])
async def test_get_task(stack: Stack, binding: str) -> None:
    out = await equivalent(get_task, binding, stack)
    full = out["full"]
    assert full["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert texts(full["status"]["message"]["parts"]) == ["what should I work on?"]
    assert [texts(m["parts"]) for m in full["history"]] == [["ask"], ["what should I work on?"]]
    assert out["last"]["history"] == full["history"][-1:]
    assert "history" not in out["none"]
    (part,) = out["bytes"]["artifacts"][0]["parts"]
    assert (part["raw"], part["mediaType"]) == (
        transcoding.encode(types.Part(raw=b"\0" * 1000))["raw"],
        "application/octet-stream",
    )


async def list_tasks(b: Binding) -> Any:
    context = str(uuid.uuid4())
    for i in range(3):
        await task_of(b, f"echo {i}", context_id=context)
    last = await task_of(b, "fail on purpose", context_id=context)
    await task_of(b, "echo elsewhere")
    first = await b.list_tasks(types.ListTasksRequest(context_id=context, page_size=3))
    second = await b.list_tasks(
        types.ListTasksRequest(context_id=context, page_size=3, page_token=first.next_page_token)
    )
    failed = await b.list_tasks(types.ListTasksRequest(context_id=context, status=types.TASK_STATE_FAILED))
    with_artifacts = await b.list_tasks(
        types.ListTasksRequest(
            context_id=context, status=types.TASK_STATE_COMPLETED, include_artifacts=True, history_length=0
        )
    )
    since = types.ListTasksRequest(context_id=context)
    since.status_timestamp_after.CopyFrom(last.status.timestamp)
    recent = await b.list_tasks(since)
    return {
        "first": first,
        "second": second,
        "failed": failed,
        "withArtifacts": with_artifacts,
        "recent": [t.id == last.id for t in recent.tasks],
    }


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_list_tasks(main: Stack, binding: str) -> None:
    out = await equivalent(list_tasks, binding, main)
    first, second = out["first"], out["second"]
    assert (first["totalSize"], first["pageSize"], len(first["tasks"]), first["nextPageToken"]) == (
        4,
        3,
        3,
        "<token>",
    )
    assert (second["totalSize"], len(second["tasks"]), second["nextPageToken"]) == (4, 1, "")
    listed = [*first["tasks"], *second["tasks"]]
    # Most recently updated first: the failed task, then echo 2, 1, 0.
    assert [texts(t["history"][0]["parts"]) for t in listed] == [
        ["fail on purpose"],
        ["echo 2"],
        ["echo 1"],
        ["echo 0"],
    ]
    assert all("artifacts" not in t for t in listed)
    assert [t["status"]["state"] for t in out["failed"]["tasks"]] == ["TASK_STATE_FAILED"]
    assert [(bool(t["artifacts"]), "history" in t) for t in out["withArtifacts"]["tasks"]] == [
        (True, False)
    ] * 3
    assert out["recent"] == [True]  # statusTimestampAfter: only the task updated last


async def cancel_task(b: Binding) -> Any:
    asked = await task_of(b, "ask")
    canceled = await b.cancel_task(types.CancelTaskRequest(id=asked.id))
    stored = await b.get_task(types.GetTaskRequest(id=asked.id))
    slow = await task_of(b, "slow 5", return_immediately=True)
    async with contextlib.aclosing(b.subscribe_to_task(types.SubscribeToTaskRequest(id=slow.id))) as events:
        first = await anext(events)
        slow_canceled = await b.cancel_task(types.CancelTaskRequest(id=slow.id))
        rest = [event async for event in events]
    # A slow task reports progress every 0.1 s: how many reports arrive before the cancel varies.
    return {
        "canceled": canceled,
        "stored": stored,
        "slow": [slow.status.state, first.task.status.state, slow_canceled.status.state],
        "slowEvents": sorted({e.WhichOneof("payload") for e in rest}),
        "slowLast": rest[-1].status_update.status.state,
        "slowStored": (await b.get_task(types.GetTaskRequest(id=slow.id))).status.state,
    }


@ASYNC
@pytest.mark.parametrize(("stack", "binding"), DEPLOYED, indirect=["stack"])
async def test_cancel_task(stack: Stack, binding: str) -> None:
    out = await equivalent(cancel_task, binding, stack)
    assert out["canceled"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert out["stored"] == out["canceled"]
    running = (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
    assert out["slow"][0] in running
    assert out["slow"][1] in running
    assert out["slow"][2] == types.TASK_STATE_CANCELED
    assert out["slowEvents"] == ["status_update"]
    assert out["slowLast"] == out["slowStored"] == types.TASK_STATE_CANCELED


async def subscribe_to_task(b: Binding) -> Any:
    asked = await task_of(b, "ask")
    async with contextlib.aclosing(b.subscribe_to_task(types.SubscribeToTaskRequest(id=asked.id))) as events:
        first = await anext(events)
        done = await b.send_message(text("the report", task_id=asked.id))
        rest = [event async for event in events]
    return {"events": [first, *rest], "done": done}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_to_task(main: Stack, binding: str) -> None:
    out = await equivalent(subscribe_to_task, binding, main)
    events = out["events"]
    assert kinds(events) == ["task", "statusUpdate", "statusUpdate"]
    assert events[0]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert [e["statusUpdate"]["status"]["state"] for e in events[1:]] == [
        "TASK_STATE_WORKING",
        "TASK_STATE_COMPLETED",
    ]
    final = events[-1]["statusUpdate"]["status"]["message"]
    assert texts(final["parts"]) == ["thanks, you said: the report"]
    done = out["done"]["task"]
    assert (done["id"], done["status"]["state"]) == (events[0]["task"]["id"], "TASK_STATE_COMPLETED")


async def push_config_crud(b: Binding) -> Any:
    task = await task_of(b, "ask")
    config = types.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url=HOOK, token="secret")
    config.authentication.scheme, config.authentication.credentials = "Bearer", "credentials"
    created = await b.create_task_push_notification_config(config)
    generated = await b.create_task_push_notification_config(
        types.TaskPushNotificationConfig(task_id=task.id, url=HOOK + "/2")
    )
    got = await b.get_task_push_notification_config(
        types.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1")
    )
    listed = await b.list_task_push_notification_configs(
        types.ListTaskPushNotificationConfigsRequest(task_id=task.id)
    )
    page = await b.list_task_push_notification_configs(
        types.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_size=1)
    )
    rest = await b.list_task_push_notification_configs(
        types.ListTaskPushNotificationConfigsRequest(
            task_id=task.id, page_size=1, page_token=page.next_page_token
        )
    )
    await b.delete_task_push_notification_config(
        types.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1")
    )
    after = await b.list_task_push_notification_configs(
        types.ListTaskPushNotificationConfigsRequest(task_id=task.id)
    )
    try:
        await b.get_task_push_notification_config(
            types.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1")
        )
        gone: object = "still there"
    except errors.A2AError as exc:
        gone = exc
    by_url = sorted(listed.configs, key=lambda c: c.url)  # listed by id, and a generated id is random
    return {
        "task": task.id,
        "created": created,
        "generated": generated,
        "got": got,
        "listed": by_url,
        "paged": sorted([*(c.url for c in page.configs), *(c.url for c in rest.configs)]),
        "morePages": [bool(page.next_page_token), bool(rest.next_page_token)],
        "after": after,
        "gone": gone,
    }


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_push_notification_config_crud(main: Stack, binding: str) -> None:
    out = await equivalent(push_config_crud, binding, main)
    created = out["created"]
    assert created == {
        "id": created["id"],
        "taskId": out["task"],
        "url": HOOK,
        "token": "secret",
        "authentication": {"scheme": "Bearer"},  # the credentials never come back (security.redact)
    }
    assert out["got"] == created
    generated = out["generated"]
    assert generated["id"] not in ("", created["id"])
    assert (generated["taskId"], generated["url"]) == (out["task"], HOOK + "/2")
    assert out["listed"] == [created, generated]
    assert out["paged"] == [HOOK, HOOK + "/2"]
    assert out["morePages"] == [True, False]
    assert out["after"]["configs"] == [generated]
    assert out["gone"]["error"] == "TaskNotFoundError"


async def extended_card(b: Binding) -> Any:
    card = await b.get_extended_agent_card()
    interfaces = [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces]
    del card.supported_interfaces[:]  # the bridge adds its own: compared below, per binding
    return {"card": card, "interfaces": interfaces}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_get_extended_agent_card(main: Stack, binding: str) -> None:
    out = await equivalent(extended_card, binding, main, own=("interfaces",))
    card = out["card"]
    assert card["name"] == "a2a-grpc reference agent"
    assert card["description"].endswith("(extended card: shown to authenticated callers)")
    assert card["capabilities"] == {"streaming": True, "pushNotifications": True, "extendedAgentCard": True}
    assert [s["name"] for s in card["skills"]][:2] == ["Echo", "Direct reply"]
    grpc_interface = [["GRPC", main.address, "1.0"], ["GRPC", main.address, "0.3"]]  # serve_v03
    session = [[BINDING_URI, main.address, "1.0"]]
    if binding == "grpc":
        assert out["interfaces"] == [*grpc_interface, *session]
    else:
        assert out["interfaces"] == [
            *grpc_interface,
            *session,
            ["JSONRPC", main.url + "/", "1.0"],
            ["HTTP+JSON", main.url, "1.0"],
            ["JSONRPC", main.url + "/", "0.3"],  # the same URLs serve v0.3 clients
            ["HTTP+JSON", main.url, "0.3"],
        ]


async def tenant_scope(b: Binding) -> Any:
    tenant = "tenant-" + uuid.uuid4().hex[:8]
    sent = await task_of(b, "echo tenant", tenant=tenant)
    got = await b.get_task(types.GetTaskRequest(id=sent.id, tenant=tenant))
    listed = await b.list_tasks(types.ListTasksRequest(tenant=tenant))
    try:
        await b.get_task(types.GetTaskRequest(id=sent.id))
        outside: object = "found outside its tenant"
    except errors.A2AError as exc:
        outside = exc
    return {"sent": sent, "got": got, "listed": [t.id for t in listed.tasks], "outside": outside}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_tenant_scopes_tasks(main: Stack, binding: str) -> None:
    out = await equivalent(tenant_scope, binding, main)
    assert out["got"] == out["sent"]
    assert out["listed"] == [out["sent"]["id"]]
    assert out["outside"]["error"] == "TaskNotFoundError"


async def rich_message(b: Binding) -> Any:
    request = text('echo héllo ☃ 𝄞 "quoted" \\ back\nslash')
    message = request.message
    message.parts.add(raw=bytes(range(256)), media_type="application/octet-stream", filename="b.bin")
    message.parts.add(url="https://example.invalid/f.pdf?a=1&b=2", media_type="application/pdf")
    data = message.parts.add().data.struct_value
    data.update(
        {"n": 1, "f": -2.5, "yes": True, "nil": None, "list": [1, "two", {"three": [3]}], "deep": {"a": {}}}
    )
    message.parts.add(text="with metadata", metadata={"only": "metadata"})
    message.metadata.update({"trace": "abc", "count": 3})
    message.reference_task_ids.append("another-task")
    request.metadata.update({"request": {"level": 1}})
    sent = await b.send_message(request)
    got = await b.get_task(types.GetTaskRequest(id=sent.task.id))
    return {"request": request.message, "sent": sent, "got": got}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_rich_messages_cross_every_binding_intact(main: Stack, binding: str) -> None:
    out = await equivalent(rich_message, binding, main)
    (stored,) = out["got"]["history"]
    request = out["request"]
    assert (stored["parts"], stored["metadata"], stored["referenceTaskIds"]) == (
        request["parts"],
        request["metadata"],
        request["referenceTaskIds"],
    )
    assert out["sent"]["task"]["history"] == out["got"]["history"]
    # The echo skill answers with the message's text parts, joined by newlines.
    assert texts(out["got"]["artifacts"][0]["parts"]) == [
        'echo héllo ☃ 𝄞 "quoted" \\ back\nslash\nwith metadata'
    ]


async def reserved_characters(b: Binding) -> Any:
    """Client-chosen ids are opaque strings: a slash, a colon, a percent sign or a space is part of it."""
    task = await task_of(b, "ask")
    found: list[list[str]] = []
    for wanted in ("hook/1", "a:b", "50%41", "with space"):
        config = types.TaskPushNotificationConfig(task_id=task.id, id=wanted, url=HOOK)
        await b.create_task_push_notification_config(config)
        request = types.GetTaskPushNotificationConfigRequest(task_id=task.id, id=wanted)
        try:
            found.append([wanted, (await b.get_task_push_notification_config(request)).url])
        except errors.A2AError as exc:
            found.append([wanted, f"{type(exc).__name__}: {exc.message}"])
    tenant = "acme/east"
    try:
        sent = await task_of(b, "echo tenant", tenant=tenant)
        state = types.TaskState.Name(
            (await b.get_task(types.GetTaskRequest(id=sent.id, tenant=tenant))).status.state
        )
    except errors.A2AError as exc:
        state = f"{type(exc).__name__}: {exc.message}"
    return {"configs": found, "tenant": state}


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_ids_with_reserved_characters_reach_the_agent_unchanged(main: Stack, binding: str) -> None:
    """On HTTP+JSON the ids travel percent-encoded in the path: the bridge must route on the path as
    sent and decode each variable once. (Routing on the decoded path, an encoded ``/`` or ``:`` split
    the id, MethodNotFound, and ``50%41`` was decoded twice and looked up as ``50A``.)"""
    out = await equivalent(reserved_characters, binding, main)
    assert out == {
        "configs": [["hook/1", HOOK], ["a:b", HOOK], ["50%41", HOOK], ["with space", HOOK]],
        "tenant": "TASK_STATE_COMPLETED",
    }


async def declared_extension(b: Binding) -> Any:
    return {
        "sent": await b.send_message(text("echo ext")),
        "streamed": [
            e.WhichOneof("payload") for e in await collect(b.send_streaming_message(text("stream 1")))
        ],
    }


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_declared_required_extension_is_accepted(strict: Stack, binding: str) -> None:
    out = await equivalent(declared_extension, binding, strict, extensions=[REQUIRED_EXTENSION])
    assert out["sent"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert out["streamed"] == ["task", "status_update", "artifact_update", "status_update"]


# --- the errors ---------------------------------------------------------------------------------------


def _now(call: Callable[[Binding], Awaitable[object]]) -> Callable[[Binding], Awaitable[Call]]:
    """A refusal whose failing call needs no setup."""

    async def setup(b: Binding) -> Call:
        return lambda: call(b)

    return setup


def _after(
    text_: str, call: Callable[[Binding, types.Task], Awaitable[object]]
) -> Callable[[Binding], Awaitable[Call]]:
    """A refusal of a call about a task created first by sending ``text_``."""

    async def setup(b: Binding) -> Call:
        task = await task_of(b, text_)
        return lambda: call(b, task)

    return setup


def _working(
    call: Callable[[Binding, types.Task], Awaitable[object]],
) -> Callable[[Binding], Awaitable[Call]]:
    """A refusal of a call about a task that is still working (``slow``, returned at once)."""

    async def setup(b: Binding) -> Call:
        task = await task_of(b, "slow 30", return_immediately=True)
        assert task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING), task

        async def refused() -> object:
            try:
                return await call(b, task)
            finally:
                await b.cancel_task(types.CancelTaskRequest(id=task.id))

        return refused

    return setup


def _push_call(method: str) -> Callable[[Binding, types.Task], Awaitable[object]]:
    def call(b: Binding, task: types.Task) -> Awaitable[object]:
        match method:
            case "create":
                config = types.TaskPushNotificationConfig(task_id=task.id, url=HOOK)
                return b.create_task_push_notification_config(config)
            case "get":
                return b.get_task_push_notification_config(
                    types.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook")
                )
            case "list":
                return b.list_task_push_notification_configs(
                    types.ListTaskPushNotificationConfigsRequest(task_id=task.id)
                )
        return b.delete_task_push_notification_config(
            types.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook")
        )

    return call


def _with_push(url: str) -> types.SendMessageRequest:
    request = text("echo with a webhook")
    request.configuration.task_push_notification_config.url = url
    return request


def _mutated(change: Callable[[types.SendMessageRequest], object]) -> types.SendMessageRequest:
    request = text("echo x")
    change(request)
    return request


def _stream(value: str, **options: Any) -> Callable[[Binding], Awaitable[object]]:
    """SendStreamingMessage of ``value``, read to the end."""
    return lambda b: collect(b.send_streaming_message(text(value, **options)))


def _get(task_id: str, history: int | None = None) -> types.GetTaskRequest:
    request = types.GetTaskRequest(id=task_id)
    if history is not None:
        request.history_length = history
    return request


@dataclass(frozen=True)
class Refusal:
    """One way to make the agent refuse a call, and what the refusal must be on every binding."""

    id: str
    error: type[errors.A2AError]
    setup: Callable[[Binding], Awaitable[Call]]
    stack: str = "main"
    """The fixture serving the agent: main, limited, unconfigured, strict or late."""
    options: dict[str, Any] = field(default_factory=dict)
    """open_binding options: the A2A-Version or A2A-Extensions to send."""
    violations: tuple[str, ...] = ()
    """For InvalidParams: the fields of the BadRequest detail, in order."""
    metadata: tuple[str, ...] = ()
    """The ErrorInfo metadata keys."""
    late: bool = False
    """The JSON bindings have started the SSE stream when the error comes: an ``event: error``."""


E = errors
NOT_FOUND = ("task_id",)
TASK_STATE = ("state", "task_id")
SUPPORTED = ("supported_versions",)
REFUSALS = [
    # TaskNotFoundError
    Refusal(
        "get-unknown-task",
        E.TaskNotFoundError,
        _now(lambda b: b.get_task(_get("no-such-task"))),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "cancel-unknown-task",
        E.TaskNotFoundError,
        _now(lambda b: b.cancel_task(types.CancelTaskRequest(id="no-such-task"))),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "subscribe-unknown-task",
        E.TaskNotFoundError,
        _now(lambda b: collect(b.subscribe_to_task(types.SubscribeToTaskRequest(id="no-such-task")))),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "message-to-unknown-task",
        E.TaskNotFoundError,
        _now(lambda b: b.send_message(text("hi", task_id="no-such-task"))),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "stream-to-unknown-task",
        E.TaskNotFoundError,
        _now(_stream("hi", task_id="no-such-task")),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "push-config-for-unknown-task",
        E.TaskNotFoundError,
        _now(
            lambda b: b.create_task_push_notification_config(
                types.TaskPushNotificationConfig(task_id="no-such-task", url=HOOK)
            )
        ),
        metadata=NOT_FOUND,
    ),
    Refusal(
        "get-unknown-push-config",
        E.TaskNotFoundError,
        _after("ask", _push_call("get")),
        metadata=("config_id", "task_id"),
    ),
    # TaskNotCancelableError
    Refusal(
        "cancel-completed-task",
        E.TaskNotCancelableError,
        _after("echo done", lambda b, t: b.cancel_task(types.CancelTaskRequest(id=t.id))),
        metadata=NOT_FOUND,
    ),
    # UnsupportedOperationError
    Refusal(
        "message-to-completed-task",
        E.UnsupportedOperationError,
        _after("echo done", lambda b, t: b.send_message(text("more", task_id=t.id))),
        metadata=TASK_STATE,
    ),
    Refusal(
        "stream-to-completed-task",
        E.UnsupportedOperationError,
        _after("echo done", lambda b, t: collect(b.send_streaming_message(text("more", task_id=t.id)))),
        metadata=TASK_STATE,
    ),
    # A message to a task that is working (not waiting for input) starts no second execution.
    Refusal(
        "message-to-working-task",
        E.UnsupportedOperationError,
        _working(lambda b, t: b.send_message(text("echo interloper", task_id=t.id))),
        metadata=TASK_STATE,
    ),
    Refusal(
        "stream-to-working-task",
        E.UnsupportedOperationError,
        _working(lambda b, t: collect(b.send_streaming_message(text("echo interloper", task_id=t.id)))),
        metadata=TASK_STATE,
    ),
    Refusal(
        "subscribe-to-completed-task",
        E.UnsupportedOperationError,
        _after("echo done", lambda b, t: collect(b.subscribe_to_task(types.SubscribeToTaskRequest(id=t.id)))),
    ),
    Refusal("streaming-unsupported", E.UnsupportedOperationError, _now(_stream("stream 1")), "limited"),
    Refusal(
        "subscribe-unsupported",
        E.UnsupportedOperationError,
        _after("ask", lambda b, t: collect(b.subscribe_to_task(types.SubscribeToTaskRequest(id=t.id)))),
        "limited",
    ),
    Refusal(
        "extended-card-unsupported",
        E.UnsupportedOperationError,
        _now(lambda b: b.get_extended_agent_card()),
        "limited",
    ),
    # PushNotificationNotSupportedError
    *(
        Refusal(
            f"push-{method}-unsupported",
            E.PushNotificationNotSupportedError,
            _after("ask", _push_call(method)),
            "limited",
        )
        for method in ("create", "get", "list", "delete")
    ),
    Refusal(
        "push-in-send-unsupported",
        E.PushNotificationNotSupportedError,
        _now(lambda b: b.send_message(_with_push(HOOK))),
        "limited",
    ),
    # ExtendedAgentCardNotConfiguredError
    Refusal(
        "extended-card-not-configured",
        E.ExtendedAgentCardNotConfiguredError,
        _now(lambda b: b.get_extended_agent_card()),
        "unconfigured",
    ),
    # ExtensionSupportRequiredError
    Refusal(
        "extension-required",
        E.ExtensionSupportRequiredError,
        _now(lambda b: b.send_message(text("echo x"))),
        "strict",
        metadata=("extensions",),
    ),
    Refusal(
        "extension-required-stream",
        E.ExtensionSupportRequiredError,
        _now(_stream("stream 1")),
        "strict",
        metadata=("extensions",),
    ),
    # VersionNotSupportedError
    Refusal(
        "version-9.9",
        E.VersionNotSupportedError,
        _now(lambda b: b.get_task(_get("any"))),
        options={"version": "9.9"},
        metadata=SUPPORTED,
    ),
    Refusal(
        "version-0.3-stream",
        E.VersionNotSupportedError,
        _now(_stream("stream 1")),
        options={"version": "0.3"},
        metadata=SUPPORTED,
    ),
    Refusal(
        "version-empty",
        E.VersionNotSupportedError,
        _now(lambda b: b.send_message(text("echo x"))),
        options={"version": ""},
        metadata=SUPPORTED,
    ),
    # InvalidParamsError, with the offending field named
    Refusal(
        "message-without-parts",
        E.InvalidParamsError,
        _now(lambda b: b.send_message(_mutated(lambda r: r.message.ClearField("parts")))),
        violations=("message.parts",),
    ),
    Refusal(
        "message-without-id",
        E.InvalidParamsError,
        _now(lambda b: b.send_message(_mutated(lambda r: setattr(r.message, "message_id", "")))),
        violations=("message.message_id",),
    ),
    Refusal(
        "unknown-role",
        E.InvalidParamsError,
        _now(lambda b: b.send_message(_mutated(lambda r: setattr(r.message, "role", 9)))),
        violations=("message.role",),
    ),
    Refusal(
        "negative-history-length",
        E.InvalidParamsError,
        _now(lambda b: b.get_task(_get("x", -1))),
        violations=("history_length",),
    ),
    Refusal(
        "malformed-page-token",
        E.InvalidParamsError,
        _now(lambda b: b.list_tasks(types.ListTasksRequest(page_token="not a token"))),
        violations=("page_token",),
    ),
    Refusal(
        "page-size-too-large",
        E.InvalidParamsError,
        _now(lambda b: b.list_tasks(types.ListTasksRequest(page_size=1000))),
        violations=("page_size",),
    ),
    *(
        Refusal(
            f"page-size-{size}",
            E.InvalidParamsError,
            _now(lambda b, size=size: b.list_tasks(types.ListTasksRequest(page_size=size))),
            violations=("page_size",),
        )
        for size in (0, -1, 101)
    ),
    Refusal(
        "unknown-status-filter",
        E.InvalidParamsError,
        _now(lambda b: b.list_tasks(types.ListTasksRequest(status=42))),  # type: ignore[arg-type]
        violations=("status",),
    ),
    Refusal(
        "negative-push-page-size",
        E.InvalidParamsError,
        _after(
            "ask",
            lambda b, t: b.list_task_push_notification_configs(
                types.ListTaskPushNotificationConfigsRequest(task_id=t.id, page_size=-1)
            ),
        ),
        violations=("page_size",),
    ),
    Refusal(
        "malformed-push-page-token",
        E.InvalidParamsError,
        _after(
            "ask",
            lambda b, t: b.list_task_push_notification_configs(
                types.ListTaskPushNotificationConfigsRequest(task_id=t.id, page_token="not a token")
            ),
        ),
        violations=("page_token",),
    ),
    Refusal(
        "create-push-url-not-http",
        E.InvalidParamsError,
        _after(
            "ask",
            lambda b, t: b.create_task_push_notification_config(
                types.TaskPushNotificationConfig(task_id=t.id, url="ftp://example.invalid/")
            ),
        ),
        violations=("url",),
    ),
    Refusal(
        "send-push-url-not-http",
        E.InvalidParamsError,
        _now(lambda b: b.send_message(_with_push("ftp://example.invalid/"))),
        violations=("configuration.task_push_notification_config.url",),
    ),
    Refusal(
        "context-mismatch",
        E.InvalidParamsError,
        _after("ask", lambda b, t: b.send_message(text("more", task_id=t.id, context_id="another-context"))),
        violations=("message.context_id",),
    ),
    # An A2AError the agent raises before any output reaches the caller as is, unary or streamed.
    Refusal("agent-refuses", E.InvalidParamsError, _now(lambda b: b.send_message(text("stream many")))),
    Refusal("agent-refuses-stream", E.InvalidParamsError, _now(_stream("slow forever"))),
    # InternalError: an agent crash, with nothing of the exception on the wire
    Refusal("agent-crashed", E.InternalError, _now(lambda b: b.send_message(text("crash")))),
    Refusal("agent-crashed-stream", E.InternalError, _now(_stream("crash"))),
    # InvalidAgentResponseError: the agent ended without any output
    Refusal(
        "agent-said-nothing", E.InvalidAgentResponseError, _now(lambda b: b.send_message(text("silent")))
    ),
    Refusal("agent-said-nothing-stream", E.InvalidAgentResponseError, _now(_stream("silent"))),
    # Errors after the bridge has started the SSE stream (first_event_wait passed): an SSE error event.
    Refusal("late-crash-stream", E.InternalError, _now(_stream("late crash")), "late", late=True),
    Refusal(
        "late-refusal-stream",
        E.InvalidParamsError,
        _now(_stream("late refuse")),
        "late",
        violations=("message.parts",),
        late=True,
    ),
]
THROUGH_PROCESS = [
    "get-unknown-task",
    "cancel-completed-task",
    "stream-to-completed-task",
    "version-9.9",
    "agent-crashed",
]
"""The refusals also run through the separate bridge process."""


async def refuse(case: Refusal, b: Binding) -> tuple[errors.A2AError, WireError]:
    call = await case.setup(b)
    with pytest.raises(errors.A2AError) as caught:
        await call()
    assert b.last_error is not None
    return caught.value, b.last_error


def check_wire(kind: str, err: errors.A2AError, wire: WireError, *, late: bool = False) -> None:
    """The binding-specific form of ``err`` (spec 5.4 via the error table, 9.5, 10.6, 11.6)."""
    row = errors.spec_for_type(type(err))
    assert row is not None
    assert row.exc_type is type(err)
    info = {
        "@type": ERROR_INFO_TYPE,
        "reason": row.reason,
        "domain": errors.DOMAIN,
        "metadata": err.metadata,
    }
    details: list[dict[str, Any]] = [info]
    if err.field_violations:
        violations = [{"field": v.field, "description": v.description} for v in err.field_violations]
        details.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations})
    if kind == "grpc":
        assert wire.grpc_code == row.grpc_code
        return
    # Refused before the first event: a plain error response; after it, an SSE ``event: error``.
    assert wire.in_stream == late
    # Spec 9.1: JSON-RPC answers are application/json; 11.1: HTTP+JSON answers application/a2a+json.
    media = (
        "text/event-stream" if late else "application/json" if kind == "jsonrpc" else "application/a2a+json"
    )
    assert wire.content_type.split(";")[0] == media, wire
    status = {
        "code": row.http_status,
        "status": row.grpc_code.name,
        "message": err.message,
        "details": details,
    }
    if kind == "jsonrpc":
        assert wire.http_status == 200
        assert wire.body["error"] == {"code": row.jsonrpc_code, "message": err.message, "data": details}
    else:
        assert wire.http_status == (200 if late else row.http_status)
        assert wire.body == {"error": status}


async def check_refusal(case: Refusal, kind: str, stack: Stack) -> None:
    async with open_binding(kind, stack, **case.options) as b:
        err, wire = await refuse(case, b)
    assert type(err) is case.error, repr(err)
    assert [v.field for v in err.field_violations] == list(case.violations)
    assert sorted(err.metadata) == sorted(case.metadata)
    check_wire(kind, err, wire, late=case.late)
    if case.error is E.InternalError:
        assert err.message == errors.INTERNAL_MESSAGE
        assert "secret" not in repr(wire.body)
    if kind != "grpc":
        async with open_binding("grpc", stack, **case.options) as b:
            reference, _ = await refuse(case, b)
        assert normalize(err) == normalize(reference), f"{kind} and gRPC disagree"


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize(
    ("case", "stack"), [pytest.param(c, c.stack, id=c.id) for c in REFUSALS], indirect=["stack"]
)
async def test_refusal(case: Refusal, stack: Stack, binding: str) -> None:
    await check_refusal(case, binding, stack)


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize("case", [c for c in REFUSALS if c.id in THROUGH_PROCESS], ids=THROUGH_PROCESS)
async def test_refusal_through_a_bridge_process(process: Stack, case: Refusal, binding: str) -> None:
    assert case.stack == "main"
    await check_refusal(case, binding, process)


@ASYNC
async def test_keep_alive_answers_are_not_held_back_by_nagle(main: Stack) -> None:
    """Each answer on a kept-alive HTTP connection comes at once, not after the client's delayed ACK.

    uvicorn writes a response's head and body in two writes; without TCP_NODELAY on the accepted
    connection, Nagle holds the body until the client ACKs the head, which Linux delays by 40 ms.
    asyncio sets TCP_NODELAY only on sockets whose ``proto`` is IPPROTO_TCP, and HttpServer.bind
    creates its listening socket with proto 0, so the connections it accepts never get it.
    """
    took: list[float] = []
    async with httpx.AsyncClient(base_url=main.url, timeout=10.0) as http:
        for _ in range(9):
            start = time.perf_counter()
            response = await http.get("/healthz")
            took.append(time.perf_counter() - start)
            assert response.status_code == 200
    assert statistics.median(took) < 0.02, [f"{t * 1000:.1f} ms" for t in took]


def test_every_error_our_server_produces_is_covered() -> None:
    # ContentTypeNotSupported: nothing in the server or the bridge checks part media types. The
    # JSON-RPC parse, request and method errors cannot happen over gRPC, so they have no equivalent.
    never = {"ContentTypeNotSupportedError", "JSONParseError", "InvalidRequestError", "MethodNotFoundError"}
    assert {c.error.spec.name for c in REFUSALS} == {r.name for r in errors.ERROR_TABLE} - never
    assert set(THROUGH_PROCESS) <= {c.id for c in REFUSALS}
