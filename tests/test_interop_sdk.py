"""Interoperability with the official a2a-sdk (1.3) over gRPC, both ways, through real servers.

1. The SDK's gRPC client (``ClientFactory`` + ``GrpcTransport``, built from our card) drives our
   ``A2AServer`` through all eleven RPCs and every A2A error our server produces; each error must
   reach the SDK as its own class, with the spec's gRPC code on the wire.
2. Our ``A2AClient`` drives an SDK gRPC server (``DefaultRequestHandler`` + ``GrpcHandler``) through
   the same RPCs and errors; each SDK error must reach us as our class of the same name.

Where the SDK server departs from the specification the tests assert what actually happens and
say so in a comment (look for "SDK deviation").
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from a2a.client import ClientCallContext
from a2a.client.service_parameters import ServiceParametersFactory, with_a2a_extensions
from a2a.types import a2a_pb2 as sdk
from a2a.types import a2a_pb2_grpc as sdk_grpc
from a2a.utils import errors as sdk_errors
from a2a.utils.grpc_status import status_from_call
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.session.frames import BINDING_URI
from a2a_grpc.status import to_rpc_status
from tests.sdk_peers import REQUIRED_EXTENSION, SdkPeer, TunedAgent, sdk_peer, sdk_server

pytestmark = pytest.mark.interop

T = TypeVar("T")
TIMEOUT = 5.0
CTX = ClientCallContext(timeout=TIMEOUT)
HOOK = "https://hooks.example.com/hook"  # a public name: the webhook policy refuses loopback
SPEC_CODE = {row.name: row.grpc_code for row in errors.ERROR_TABLE}
"""The spec's gRPC code of each A2A error, by the error's name (the same in both libraries)."""

Call = Callable[[], Awaitable[object]]


async def collect(events: AsyncIterable[T]) -> list[T]:
    return [event async for event in events]


def kinds(events: list[Any]) -> list[str]:
    return [event.WhichOneof("payload") for event in events]


# --- building SDK requests --------------------------------------------------------------------------


def sdk_request(
    text: str | None,
    *,
    task_id: str = "",
    context_id: str = "",
    return_immediately: bool = False,
    history_length: int | None = None,
) -> sdk.SendMessageRequest:
    """A SendMessageRequest of the SDK's classes; ``text=None`` leaves the message without parts."""
    message = sdk.Message(
        message_id=str(uuid.uuid4()), role=sdk.ROLE_USER, task_id=task_id, context_id=context_id
    )
    if text is not None:
        message.parts.add(text=text)
    request = sdk.SendMessageRequest(message=message)
    request.configuration.return_immediately = return_immediately
    if history_length is not None:
        request.configuration.history_length = history_length
    return request


async def send(peer: SdkPeer, text: str | None, **options: Any) -> sdk.StreamResponse:
    """SendMessage (the unary RPC) through the SDK client; the one response, as the SDK hands it over."""
    (event,) = await collect(peer.unary.send_message(sdk_request(text, **options), context=CTX))
    return event


async def sdk_task(peer: SdkPeer, text: str, **options: Any) -> sdk.Task:
    event = await send(peer, text, **options)
    assert event.HasField("task"), event
    return event.task


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[SdkPeer]:
    async with sdk_peer() as p:
        yield p


# ==== 1. the SDK's client, our server: the eleven RPCs ==============================================


@pytest.mark.asyncio
async def test_sdk_client_is_built_from_our_card(peer: SdkPeer) -> None:
    card = peer.server.card()
    interface = card.supported_interfaces[0]
    assert (interface.protocol_binding, interface.url, interface.protocol_version) == (
        "GRPC",
        peer.server.address,
        "1.0",
    )
    # ClientFactory picked its gRPC transport from the card: a JSON-RPC client could not call us.
    task = await sdk_task(peer, "echo card")
    assert task.status.state == sdk.TASK_STATE_COMPLETED


@pytest.mark.asyncio
async def test_sdk_send_message_returns_a_completed_task(peer: SdkPeer) -> None:
    task = await sdk_task(peer, "echo hello")
    assert task.id
    assert task.context_id
    assert task.status.state == sdk.TASK_STATE_COMPLETED
    assert [(a.name, [p.text for p in a.parts]) for a in task.artifacts] == [("echo", ["echo hello"])]
    assert [(m.role, m.parts[0].text, m.task_id) for m in task.history] == [
        (sdk.ROLE_USER, "echo hello", task.id)
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True], ids=["SendMessage", "SendStreamingMessage"])
async def test_sdk_send_message_returns_a_direct_message(peer: SdkPeer, streaming: bool) -> None:
    client = peer.client if streaming else peer.unary
    events = await collect(client.send_message(sdk_request("reply hi there"), context=CTX))
    assert kinds(events) == ["message"]
    message = events[0].message
    assert (message.role, [p.text for p in message.parts]) == (sdk.ROLE_AGENT, ["hi there"])
    assert message.task_id == ""
    assert message.context_id
    # No task was created for a direct reply.
    listed = await peer.client.list_tasks(sdk.ListTasksRequest(context_id=message.context_id), context=CTX)
    assert (listed.total_size, list(listed.tasks)) == (0, [])


@pytest.mark.asyncio
@pytest.mark.parametrize(("history_length", "expected"), [(None, 2), (0, 0), (1, 1), (10, 2)])
async def test_sdk_history_length_on_send_and_get(
    peer: SdkPeer, history_length: int | None, expected: int
) -> None:
    # "ask" leaves two messages: the user's and the agent's question (input-required).
    task = await sdk_task(peer, "ask", history_length=history_length)
    assert task.status.state == sdk.TASK_STATE_INPUT_REQUIRED
    assert task.status.message.parts[0].text == "what should I work on?"
    assert len(task.history) == expected
    request = sdk.GetTaskRequest(id=task.id)
    if history_length is not None:
        request.history_length = history_length
    got = await peer.client.get_task(request, context=CTX)
    assert len(got.history) == expected
    assert got.history[-1:] == task.history[-1:]
    assert (got.id, got.status.state) == (task.id, sdk.TASK_STATE_INPUT_REQUIRED)


@pytest.mark.asyncio
async def test_sdk_streaming_message_yields_task_then_ordered_updates(peer: SdkPeer) -> None:
    events = await collect(peer.client.send_message(sdk_request("stream 3"), context=CTX))
    assert kinds(events) == [
        "task",
        "status_update",
        "artifact_update",
        "artifact_update",
        "artifact_update",
        "status_update",
    ]
    task = events[0].task
    assert task.status.state == sdk.TASK_STATE_SUBMITTED
    assert [m.parts[0].text for m in task.history] == ["stream 3"]
    assert events[1].status_update.status.state == sdk.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events[2:5]]
    assert [c.artifact.parts[0].text for c in chunks] == ["chunk 0", "chunk 1", "chunk 2"]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, False), (True, True)]
    assert len({c.artifact.artifact_id for c in chunks}) == 1
    assert events[-1].status_update.status.state == sdk.TASK_STATE_COMPLETED
    updates = [e.status_update if e.HasField("status_update") else e.artifact_update for e in events[1:]]
    assert {(u.task_id, u.context_id) for u in updates} == {(task.id, task.context_id)}
    stored = await peer.client.get_task(sdk.GetTaskRequest(id=task.id), context=CTX)
    assert stored.status.state == sdk.TASK_STATE_COMPLETED
    assert [p.text for p in stored.artifacts[0].parts] == ["chunk 0", "chunk 1", "chunk 2"]


@pytest.mark.asyncio
async def test_sdk_multi_turn_continues_the_task_over_a_stream(peer: SdkPeer) -> None:
    asked = await sdk_task(peer, "ask")
    follow_up = sdk_request("the report", task_id=asked.id, context_id=asked.context_id)
    events = await collect(peer.client.send_message(follow_up, context=CTX))
    assert kinds(events) == ["task", "status_update", "status_update"]
    assert (events[0].task.id, events[0].task.status.state) == (asked.id, sdk.TASK_STATE_INPUT_REQUIRED)
    assert [e.status_update.status.state for e in events[1:]] == [
        sdk.TASK_STATE_WORKING,
        sdk.TASK_STATE_COMPLETED,
    ]
    assert events[-1].status_update.status.message.parts[0].text == "thanks, you said: the report"
    done = await peer.client.get_task(sdk.GetTaskRequest(id=asked.id), context=CTX)
    assert [m.parts[0].text for m in done.history] == [
        "ask",
        "what should I work on?",
        "the report",
        "thanks, you said: the report",
    ]


@pytest.mark.asyncio
async def test_sdk_list_tasks_filters_and_pages(peer: SdkPeer) -> None:
    context_id = str(uuid.uuid4())
    created = [(await sdk_task(peer, f"echo {i}", context_id=context_id)).id for i in range(3)]
    failed = await sdk_task(peer, "fail on purpose", context_id=context_id)
    assert failed.status.state == sdk.TASK_STATE_FAILED
    created.append(failed.id)
    await sdk_task(peer, "echo in another context")

    request = sdk.ListTasksRequest(context_id=context_id, page_size=3)
    first = await peer.client.list_tasks(request, context=CTX)
    assert (first.total_size, first.page_size, len(first.tasks)) == (4, 3, 3)
    assert first.next_page_token
    request = sdk.ListTasksRequest(context_id=context_id, page_size=3, page_token=first.next_page_token)
    second = await peer.client.list_tasks(request, context=CTX)
    assert (second.total_size, len(second.tasks), second.next_page_token) == (4, 1, "")
    # Most recently updated first, every task exactly once.
    assert [t.id for t in [*first.tasks, *second.tasks]] == created[::-1]
    assert all(not t.artifacts for t in first.tasks)  # include_artifacts is off by default

    only_failed = await peer.client.list_tasks(
        sdk.ListTasksRequest(context_id=context_id, status=sdk.TASK_STATE_FAILED), context=CTX
    )
    assert [t.id for t in only_failed.tasks] == [failed.id]
    request = sdk.ListTasksRequest(context_id=context_id)
    request.status_timestamp_after.CopyFrom(second.tasks[0].status.timestamp)  # the oldest one
    assert (await peer.client.list_tasks(request, context=CTX)).total_size == 4
    request.status_timestamp_after.CopyFrom(failed.status.timestamp)
    assert [t.id for t in (await peer.client.list_tasks(request, context=CTX)).tasks] == [failed.id]
    with_artifacts = await peer.client.list_tasks(
        sdk.ListTasksRequest(
            context_id=context_id, status=sdk.TASK_STATE_COMPLETED, include_artifacts=True, history_length=0
        ),
        context=CTX,
    )
    assert len(with_artifacts.tasks) == 3
    assert all(t.artifacts and not t.history for t in with_artifacts.tasks)


@pytest.mark.asyncio
@pytest.mark.parametrize("text", ["slow 30", "ask"], ids=["running", "input-required"])
async def test_sdk_cancel_task_sent_with_return_immediately(peer: SdkPeer, text: str) -> None:
    task = await sdk_task(peer, text, return_immediately=True)
    assert task.status.state in (
        sdk.TASK_STATE_SUBMITTED,
        sdk.TASK_STATE_WORKING,
        sdk.TASK_STATE_INPUT_REQUIRED,
    )
    canceled = await peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)
    assert (canceled.id, canceled.status.state) == (task.id, sdk.TASK_STATE_CANCELED)
    stored = await peer.client.get_task(sdk.GetTaskRequest(id=task.id), context=CTX)
    assert stored.status.state == sdk.TASK_STATE_CANCELED


@pytest.mark.asyncio
async def test_sdk_subscribe_to_a_running_task(peer: SdkPeer) -> None:
    task = await sdk_task(peer, "slow 0.4", return_immediately=True)
    events = await collect(peer.client.subscribe(sdk.SubscribeToTaskRequest(id=task.id), context=CTX))
    assert kinds(events)[0] == "task"
    assert set(kinds(events)[1:]) == {"status_update"}
    snapshot = events[0].task
    assert (snapshot.id, snapshot.context_id) == (task.id, task.context_id)
    assert snapshot.status.state in (sdk.TASK_STATE_SUBMITTED, sdk.TASK_STATE_WORKING)
    updates = [e.status_update for e in events[1:]]
    assert len(updates) >= 2
    assert [u.status.state for u in updates[:-1]] == [sdk.TASK_STATE_WORKING] * (len(updates) - 1)
    assert updates[-1].status.state == sdk.TASK_STATE_COMPLETED
    assert updates[-1].status.message.parts[0].text == "done"
    assert {u.task_id for u in updates} == {task.id}


@pytest.mark.asyncio
async def test_sdk_subscriber_sees_another_client_resume_an_interrupted_task(peer: SdkPeer) -> None:
    asked = await sdk_task(peer, "ask")
    async with contextlib.aclosing(
        peer.client.subscribe(sdk.SubscribeToTaskRequest(id=asked.id), context=CTX)
    ) as events:
        first = await anext(events)
        assert (first.task.id, first.task.status.state) == (asked.id, sdk.TASK_STATE_INPUT_REQUIRED)
        done = await sdk_task(peer, "go on", task_id=asked.id)  # the unary client, a second channel
        assert done.status.state == sdk.TASK_STATE_COMPLETED
        rest = await collect(events)
    assert [e.status_update.status.state for e in rest] == [sdk.TASK_STATE_WORKING, sdk.TASK_STATE_COMPLETED]


@pytest.mark.asyncio
async def test_sdk_subscriber_that_leaves_early_does_not_hold_the_task(peer: SdkPeer) -> None:
    task = await sdk_task(peer, "slow 30", return_immediately=True)
    async with contextlib.aclosing(
        peer.client.subscribe(sdk.SubscribeToTaskRequest(id=task.id), context=CTX)
    ) as events:
        assert (await anext(events)).HasField("task")
        assert (await anext(events)).HasField("status_update")
    canceled = await peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)
    assert canceled.status.state == sdk.TASK_STATE_CANCELED


@pytest.mark.asyncio
async def test_sdk_tenant_scopes_tasks(peer: SdkPeer) -> None:
    request = sdk_request("echo tenant")
    request.tenant = "acme"
    (event,) = await collect(peer.unary.send_message(request, context=CTX))
    task_id = event.task.id
    got = await peer.client.get_task(sdk.GetTaskRequest(id=task_id, tenant="acme"), context=CTX)
    assert got.status.state == sdk.TASK_STATE_COMPLETED
    listed = await peer.client.list_tasks(sdk.ListTasksRequest(tenant="acme"), context=CTX)
    assert [t.id for t in listed.tasks] == [task_id]
    with pytest.raises(sdk_errors.TaskNotFoundError):
        await peer.client.get_task(sdk.GetTaskRequest(id=task_id), context=CTX)


@pytest.mark.asyncio
async def test_sdk_receives_raw_bytes_artifacts(peer: SdkPeer) -> None:
    task = await sdk_task(peer, "bytes 70000")
    (part,) = task.artifacts[0].parts
    assert (part.raw, part.media_type) == (b"\x00" * 70000, "application/octet-stream")


@pytest.mark.asyncio
async def test_sdk_push_notification_config_crud(peer: SdkPeer) -> None:
    task = await sdk_task(peer, "ask")
    config = sdk.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url=HOOK, token="secret")
    config.authentication.scheme = "Bearer"
    config.authentication.credentials = "credentials"
    created = await peer.client.create_task_push_notification_config(config, context=CTX)
    answered = sdk.TaskPushNotificationConfig()
    answered.CopyFrom(config)
    answered.authentication.credentials = ""  # the credentials never come back (security.redact)
    assert created == answered
    generated = await peer.client.create_task_push_notification_config(
        sdk.TaskPushNotificationConfig(task_id=task.id, url=HOOK + "/2"), context=CTX
    )
    assert generated.id
    assert generated.id != "hook-1"
    assert (generated.task_id, generated.url) == (task.id, HOOK + "/2")

    got = await peer.client.get_task_push_notification_config(
        sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
    )
    assert got == answered
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id), context=CTX
    )
    assert sorted(c.id for c in listed.configs) == sorted(["hook-1", generated.id])
    assert listed.next_page_token == ""
    page = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_size=1), context=CTX
    )
    assert len(page.configs) == 1
    assert page.next_page_token
    request = sdk.ListTaskPushNotificationConfigsRequest(
        task_id=task.id, page_size=1, page_token=page.next_page_token
    )
    rest = await peer.client.list_task_push_notification_configs(request, context=CTX)
    assert [c.id for c in [*page.configs, *rest.configs]] == sorted(["hook-1", generated.id])
    assert rest.next_page_token == ""

    deleted = await peer.client.delete_task_push_notification_config(
        sdk.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
    )
    assert deleted is None
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id), context=CTX
    )
    assert [c.id for c in listed.configs] == [generated.id]
    with pytest.raises(sdk_errors.TaskNotFoundError):
        await peer.client.get_task_push_notification_config(
            sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
        )


@pytest.mark.asyncio
async def test_sdk_send_message_with_a_push_config_stores_it(peer: SdkPeer) -> None:
    request = sdk_request("echo pushed")
    request.configuration.task_push_notification_config.url = HOOK
    (event,) = await collect(peer.unary.send_message(request, context=CTX))
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=event.task.id), context=CTX
    )
    assert [(c.task_id, c.url) for c in listed.configs] == [(event.task.id, HOOK)]
    assert listed.configs[0].id


@pytest.mark.asyncio
async def test_sdk_push_config_sent_with_a_follow_up_message_is_stored(peer: SdkPeer) -> None:
    # SendMessageConfiguration.task_push_notification_config is stored whether the message creates
    # a task or continues one, as the SDK server does (see the mirror test).
    asked = await sdk_task(peer, "ask")
    request = sdk_request("go on", task_id=asked.id)
    request.configuration.task_push_notification_config.url = HOOK
    (event,) = await collect(peer.unary.send_message(request, context=CTX))
    assert event.task.status.state == sdk.TASK_STATE_COMPLETED
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=asked.id), context=CTX
    )
    assert [(c.task_id, c.url) for c in listed.configs] == [(asked.id, HOOK)]


@pytest.mark.asyncio
async def test_sdk_get_extended_agent_card(peer: SdkPeer) -> None:
    card = await peer.client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest(), context=CTX)
    assert isinstance(card, sdk.AgentCard)
    assert card.name == peer.server.card().name
    assert card.description.endswith("(extended card: shown to authenticated callers)")
    assert [(i.protocol_binding, i.url) for i in card.supported_interfaces] == [
        ("GRPC", peer.server.address),
        ("GRPC", peer.server.address),  # v0.3 (serve_v03)
        (BINDING_URI, peer.server.address),
    ]
    assert card.capabilities.streaming
    assert card.capabilities.push_notifications


# ==== 1. the SDK's client, our server: every A2A error ==============================================


async def _completed(peer: SdkPeer) -> sdk.Task:
    return await sdk_task(peer, "echo done")


async def _push_config_call(peer: SdkPeer, method: str) -> Call:
    task = await sdk_task(peer, "ask")
    request: Any = {
        "create": sdk.TaskPushNotificationConfig(task_id=task.id, url=HOOK),
        "get": sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook"),
        "list": sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id),
        "delete": sdk.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook"),
    }[method]
    suffix = "s" if method == "list" else ""
    fn = getattr(peer.client, f"{method}_task_push_notification_config{suffix}")
    return lambda: fn(request, context=CTX)


async def _send_with_push(peer: SdkPeer, url: str) -> list[sdk.StreamResponse]:
    request = sdk_request("echo with a webhook")
    request.configuration.task_push_notification_config.url = url
    return await collect(peer.unary.send_message(request, context=CTX))


async def _malformed_push_page_token(peer: SdkPeer) -> Call:
    task = await sdk_task(peer, "ask")
    request = sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_token="not a token")
    return lambda: peer.client.list_task_push_notification_configs(request, context=CTX)


async def _create_push_not_http(peer: SdkPeer) -> Call:
    task = await sdk_task(peer, "ask")
    config = sdk.TaskPushNotificationConfig(task_id=task.id, url="ftp://example.invalid/")
    return lambda: peer.client.create_task_push_notification_config(config, context=CTX)


async def _version_call(peer: SdkPeer) -> Call:
    # GrpcTransport always sends a2a-version 1.0 and appends the service parameters after it, so the
    # call carries two values; our server takes the last one, the caller's override.
    context = ClientCallContext(timeout=TIMEOUT, service_parameters={"A2A-Version": "9.9"})
    return lambda: peer.client.get_task(sdk.GetTaskRequest(id="any"), context=context)


async def _version_stream_call(peer: SdkPeer) -> Call:
    context = ClientCallContext(timeout=TIMEOUT, service_parameters={"A2A-Version": "0.3"})
    return lambda: collect(peer.client.send_message(sdk_request("stream 2"), context=context))


async def _cancel_completed(peer: SdkPeer) -> Call:
    task = await _completed(peer)
    return lambda: peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)


async def _message_to_completed(peer: SdkPeer) -> Call:
    task = await _completed(peer)
    return lambda: send(peer, "more", task_id=task.id)


async def _stream_to_completed(peer: SdkPeer) -> Call:
    task = await _completed(peer)
    return lambda: collect(peer.client.send_message(sdk_request("more", task_id=task.id), context=CTX))


async def _subscribe_completed(peer: SdkPeer) -> Call:
    task = await _completed(peer)
    return lambda: collect(peer.client.subscribe(sdk.SubscribeToTaskRequest(id=task.id), context=CTX))


async def _context_mismatch(peer: SdkPeer) -> Call:
    task = await sdk_task(peer, "ask")
    return lambda: send(peer, "more", task_id=task.id, context_id="another-context")


def _now(call: Callable[[SdkPeer], Awaitable[object]]) -> Callable[[SdkPeer], Awaitable[Call]]:
    """A case whose failing call needs no setup."""

    async def setup(peer: SdkPeer) -> Call:
        return lambda: call(peer)

    return setup


@dataclass(frozen=True)
class Refusal:
    """One way to make our server refuse a call, and the SDK class the refusal must arrive as."""

    id: str
    error: type[sdk_errors.A2AError]
    setup: Callable[[SdkPeer], Awaitable[Call]]
    agent: dict[str, Any] = field(default_factory=dict)
    """TunedAgent options: a card without some capability, a required extension, ..."""
    violation: str = ""
    """For InvalidParams: the field the BadRequest detail must name."""


NO_PUSH: dict[str, Any] = {"push": False}
NO_STREAMING: dict[str, Any] = {"streaming": False}
E = sdk_errors

REFUSALS = [
    Refusal(
        "get-unknown-task",
        E.TaskNotFoundError,
        _now(lambda p: p.client.get_task(sdk.GetTaskRequest(id="no-such-task"), context=CTX)),
    ),
    Refusal(
        "cancel-unknown-task",
        E.TaskNotFoundError,
        _now(lambda p: p.client.cancel_task(sdk.CancelTaskRequest(id="no-such-task"), context=CTX)),
    ),
    Refusal(
        "subscribe-unknown-task",
        E.TaskNotFoundError,
        _now(
            lambda p: collect(p.client.subscribe(sdk.SubscribeToTaskRequest(id="no-such-task"), context=CTX))
        ),
    ),
    Refusal(
        "message-to-unknown-task", E.TaskNotFoundError, _now(lambda p: send(p, "hi", task_id="no-such-task"))
    ),
    Refusal(
        "push-config-for-unknown-task",
        E.TaskNotFoundError,
        _now(
            lambda p: p.client.create_task_push_notification_config(
                sdk.TaskPushNotificationConfig(task_id="no-such-task", url=HOOK), context=CTX
            )
        ),
    ),
    Refusal("get-unknown-push-config", E.TaskNotFoundError, lambda p: _push_config_call(p, "get")),
    Refusal("cancel-completed-task", E.TaskNotCancelableError, _cancel_completed),
    Refusal("message-to-completed-task", E.UnsupportedOperationError, _message_to_completed),
    Refusal("stream-to-completed-task", E.UnsupportedOperationError, _stream_to_completed),
    Refusal("subscribe-to-completed-task", E.UnsupportedOperationError, _subscribe_completed),
    Refusal(
        "message-without-parts",
        E.InvalidParamsError,
        _now(lambda p: send(p, None)),
        violation="message.parts",
    ),
    Refusal(
        "malformed-page-token",
        E.InvalidParamsError,
        _now(lambda p: p.client.list_tasks(sdk.ListTasksRequest(page_token="not a token"), context=CTX)),
        violation="page_token",
    ),
    Refusal(
        "malformed-push-page-token", E.InvalidParamsError, _malformed_push_page_token, violation="page_token"
    ),
    Refusal(
        "negative-history-length",
        E.InvalidParamsError,
        _now(lambda p: p.client.get_task(sdk.GetTaskRequest(id="x", history_length=-1), context=CTX)),
        violation="history_length",
    ),
    Refusal(
        "page-size-too-large",
        E.InvalidParamsError,
        _now(lambda p: p.client.list_tasks(sdk.ListTasksRequest(page_size=100_000), context=CTX)),
        violation="page_size",
    ),
    Refusal("create-push-url-not-http", E.InvalidParamsError, _create_push_not_http, violation="url"),
    # The push config inside SendMessage's configuration gets the checks that
    # CreateTaskPushNotificationConfig applies (url required, http/https only).
    Refusal(
        "send-push-url-not-http",
        E.InvalidParamsError,
        _now(lambda p: _send_with_push(p, "ftp://example.invalid/")),
        violation="url",
    ),
    Refusal(
        "send-push-url-missing", E.InvalidParamsError, _now(lambda p: _send_with_push(p, "")), violation="url"
    ),
    Refusal("context-mismatch", E.InvalidParamsError, _context_mismatch, violation="message.context_id"),
    # An A2AError the agent raises before any output reaches the caller as is, unary or streamed.
    Refusal("agent-refuses", E.InvalidParamsError, _now(lambda p: send(p, "stream many"))),
    Refusal(
        "agent-refuses-stream",
        E.InvalidParamsError,
        _now(lambda p: collect(p.client.send_message(sdk_request("slow forever"), context=CTX))),
    ),
    *(
        Refusal(
            f"push-{method}-unsupported",
            E.PushNotificationNotSupportedError,
            lambda p, m=method: _push_config_call(p, m),
            NO_PUSH,
        )
        for method in ("create", "get", "list", "delete")
    ),
    Refusal(
        "push-in-send-unsupported",
        E.PushNotificationNotSupportedError,
        _now(lambda p: _send_with_push(p, HOOK)),
        NO_PUSH,
    ),
    # The SDK's high-level client would not even try these (see the capability test below): use the
    # bare transport, which calls whatever it is asked to.
    Refusal(
        "streaming-unsupported",
        E.UnsupportedOperationError,
        _now(lambda p: collect(p.transport.send_message_streaming(sdk_request("stream 1"), context=CTX))),
        NO_STREAMING,
    ),
    Refusal(
        "subscribe-unsupported",
        E.UnsupportedOperationError,
        _now(lambda p: collect(p.transport.subscribe(sdk.SubscribeToTaskRequest(id="x"), context=CTX))),
        NO_STREAMING,
    ),
    Refusal(
        "extended-card-unsupported",
        E.UnsupportedOperationError,
        _now(lambda p: p.transport.get_extended_agent_card(sdk.GetExtendedAgentCardRequest(), context=CTX)),
        {"extended": False},
    ),
    Refusal(
        "extended-card-not-configured",
        E.ExtendedAgentCardNotConfiguredError,
        _now(lambda p: p.client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest(), context=CTX)),
        {"extended_configured": False},
    ),
    Refusal("version-9.9", E.VersionNotSupportedError, _version_call),
    Refusal("version-0.3-stream", E.VersionNotSupportedError, _version_stream_call),
    Refusal(
        "extension-required",
        E.ExtensionSupportRequiredError,
        _now(lambda p: send(p, "echo hi")),
        {"required_extension": REQUIRED_EXTENSION},
    ),
    Refusal("agent-crashed", E.InternalError, _now(lambda p: send(p, "crash"))),
    Refusal("agent-said-nothing", E.InvalidAgentResponseError, _now(lambda p: send(p, "silent"))),
    Refusal(
        "agent-said-nothing-stream",
        E.InvalidAgentResponseError,
        _now(lambda p: collect(p.client.send_message(sdk_request("silent"), context=CTX))),
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("case", REFUSALS, ids=[c.id for c in REFUSALS])
async def test_sdk_client_raises_the_matching_error(case: Refusal) -> None:
    async with sdk_peer(TunedAgent(**case.agent)) as p:
        call = await case.setup(p)
        with pytest.raises(sdk_errors.A2AError) as info:
            await call()
    err = info.value
    assert type(err) is case.error, repr(err)
    # The SDK chains the gRPC error it decoded: the wire carried the spec's code.
    rpc_error = err.__cause__
    assert isinstance(rpc_error, grpc.aio.AioRpcError)
    assert rpc_error.code() == SPEC_CODE[case.error.__name__]
    if case.violation:
        assert err.data is not None
        fields = [v["field"] for v in err.data["errors"]]
        assert any(f == case.violation or f.endswith("." + case.violation) for f in fields), err.data
    if case.error is E.InternalError:
        assert err.message == errors.INTERNAL_MESSAGE  # nothing of the exception leaks


def test_every_error_our_server_produces_is_covered() -> None:
    # Our gRPC server never checks media types, and the other three belong to the JSON bindings
    # (gRPC itself answers an unknown method, with a bare UNIMPLEMENTED).
    never = {"ContentTypeNotSupportedError", "JSONParseError", "InvalidRequestError", "MethodNotFoundError"}
    assert {case.error.__name__ for case in REFUSALS} == set(SPEC_CODE) - never


@pytest.mark.asyncio
async def test_sdk_declared_required_extension_is_accepted() -> None:
    async with sdk_peer(TunedAgent(required_extension=REQUIRED_EXTENSION)) as p:
        parameters = ServiceParametersFactory.create([with_a2a_extensions([REQUIRED_EXTENSION])])
        context = ClientCallContext(timeout=TIMEOUT, service_parameters=parameters)
        (event,) = await collect(p.unary.send_message(sdk_request("echo ext"), context=context))
        assert event.task.status.state == sdk.TASK_STATE_COMPLETED
        # The check passed, so the operation's own error comes through.
        with pytest.raises(sdk_errors.TaskNotFoundError):
            await p.client.get_task(sdk.GetTaskRequest(id="no-such-task"), context=context)


@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["1.0", "1.0.7", "1"])
async def test_sdk_accepted_versions_ignore_the_patch(peer: SdkPeer, version: str) -> None:
    context = ClientCallContext(timeout=TIMEOUT, service_parameters={"A2A-Version": version})
    (event,) = await collect(peer.unary.send_message(sdk_request("echo v"), context=context))
    assert event.task.status.state == sdk.TASK_STATE_COMPLETED


@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["9.9", "0.3", ""], ids=["9.9", "0.3", "empty"])
async def test_version_not_supported_on_the_sdk_stub(version: str) -> None:
    """The SDK's generated stub, one a2a-version value: the rich status, read the SDK's way.

    Spec 3.6.2: an empty value means 0.3, which this 1.0-only server does not speak.
    """
    async with sdk_peer() as p, grpc.aio.insecure_channel(p.server.address) as channel:
        stub = sdk_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetTask(
                sdk.GetTaskRequest(id="x"), metadata=[("a2a-version", version)], timeout=TIMEOUT
            )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # spec v1.0.1 section 5.4
    status = status_from_call(info.value)
    assert status is not None
    error_info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(error_info)
    assert (error_info.domain, error_info.reason) == ("a2a-protocol.org", "VERSION_NOT_SUPPORTED")
    assert dict(error_info.metadata) == {"supported_versions": "1.0"}
    assert sdk_errors.A2A_REASON_TO_ERROR[error_info.reason] is sdk_errors.VersionNotSupportedError


@pytest.mark.asyncio
async def test_sdk_client_honours_missing_capabilities_itself() -> None:
    async with sdk_peer(TunedAgent(streaming=False, extended=False)) as p:
        # No streaming in the card: the SDK client falls back to SendMessage, which our server serves.
        events = await collect(p.client.send_message(sdk_request("stream 2"), context=CTX))
        assert kinds(events) == ["task"]
        assert events[0].task.status.state == sdk.TASK_STATE_COMPLETED
        with pytest.raises(NotImplementedError):
            await collect(p.client.subscribe(sdk.SubscribeToTaskRequest(id=events[0].task.id), context=CTX))
        # No extended card in the card: the SDK client answers with the public card, no call made.
        card = await p.client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest(), context=CTX)
        assert card.description == p.server.card().description


# ==== 2. our client, the SDK's server: the eleven RPCs ==============================================


@pytest_asyncio.fixture
async def sdk_agent() -> AsyncIterator[A2AClient]:
    async with sdk_server() as address, A2AClient(address, timeout=TIMEOUT) as client:
        yield client


async def our_task(client: A2AClient, text: str, **options: Any) -> types.Task:
    response = await client.send_message(A2AClient.text_request(text, **options))
    assert isinstance(response, types.SendMessageResponse)
    assert response.HasField("task"), response
    return response.task


@pytest.mark.asyncio
async def test_our_send_message_to_sdk_returns_a_completed_task(sdk_agent: A2AClient) -> None:
    task = await our_task(sdk_agent, "echo hello")
    assert isinstance(task, types.Task)  # our class, not the SDK's
    assert task.status.state == types.TASK_STATE_COMPLETED
    assert [(a.name, [p.text for p in a.parts]) for a in task.artifacts] == [("echo", ["echo hello"])]
    assert [(m.role, m.parts[0].text) for m in task.history] == [(types.ROLE_USER, "echo hello")]
    assert task.id
    assert task.context_id


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True], ids=["SendMessage", "SendStreamingMessage"])
async def test_our_send_message_to_sdk_returns_a_direct_message(
    sdk_agent: A2AClient, streaming: bool
) -> None:
    request = A2AClient.text_request("reply hi there")
    if streaming:
        events = await collect(sdk_agent.send_streaming_message(request, timeout=TIMEOUT))
        assert kinds(events) == ["message"]
        message = events[0].message
    else:
        response = await sdk_agent.send_message(request)
        assert response.WhichOneof("payload") == "message"
        message = response.message
    assert isinstance(message, types.Message)
    assert (message.role, [p.text for p in message.parts]) == (types.ROLE_AGENT, ["hi there"])


@pytest.mark.asyncio
async def test_our_streaming_message_from_sdk(sdk_agent: A2AClient) -> None:
    request = A2AClient.text_request("stream 3")
    events = await collect(sdk_agent.send_streaming_message(request, timeout=TIMEOUT))
    assert all(isinstance(e, types.StreamResponse) for e in events)
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
    assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
    stored = await sdk_agent.get_task(task.id)
    assert [p.text for p in stored.artifacts[0].parts] == ["chunk 0", "chunk 1", "chunk 2"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("history_length", "expected"), [(None, 3), (0, 0), (1, 1), (10, 3)])
async def test_our_multi_turn_and_history_length_with_sdk(
    sdk_agent: A2AClient, history_length: int | None, expected: int
) -> None:
    asked = await our_task(sdk_agent, "ask")
    assert asked.status.state == types.TASK_STATE_INPUT_REQUIRED
    assert asked.status.message.parts[0].text == "what should I work on?"
    request = A2AClient.text_request("the report", task_id=asked.id, context_id=asked.context_id)
    if history_length is not None:
        request.configuration.history_length = history_length
    response = await sdk_agent.send_message(request)
    done = response.task
    assert (done.id, done.status.state) == (asked.id, types.TASK_STATE_COMPLETED)
    assert done.status.message.parts[0].text == "thanks, you said: the report"
    # The SDK keeps a status message in history once the next status replaces it.
    full = ["ask", "what should I work on?", "the report"]
    assert [m.parts[0].text for m in done.history] == full[len(full) - expected :]
    got = await sdk_agent.get_task(asked.id, history_length=history_length)
    assert [m.parts[0].text for m in got.history] == full[len(full) - expected :]


@pytest.mark.asyncio
async def test_our_list_tasks_on_sdk_filters_and_pages(sdk_agent: A2AClient) -> None:
    context_id = str(uuid.uuid4())
    created = [(await our_task(sdk_agent, f"echo {i}", context_id=context_id)).id for i in range(3)]
    failed = await our_task(sdk_agent, "fail on purpose", context_id=context_id)
    assert failed.status.state == types.TASK_STATE_FAILED
    created.append(failed.id)
    await our_task(sdk_agent, "echo in another context")

    first = await sdk_agent.list_tasks(types.ListTasksRequest(context_id=context_id, page_size=3))
    assert isinstance(first, types.ListTasksResponse)
    assert (first.total_size, first.page_size, len(first.tasks)) == (4, 3, 3)
    assert first.next_page_token
    second = await sdk_agent.list_tasks(
        types.ListTasksRequest(context_id=context_id, page_size=3, page_token=first.next_page_token)
    )
    assert (len(second.tasks), second.next_page_token) == (1, "")
    assert [t.id for t in [*first.tasks, *second.tasks]] == created[::-1]
    only_failed = await sdk_agent.list_tasks(
        types.ListTasksRequest(context_id=context_id, status=types.TASK_STATE_FAILED)
    )
    assert [t.id for t in only_failed.tasks] == [failed.id]


@pytest.mark.asyncio
async def test_our_cancel_task_on_sdk(sdk_agent: A2AClient) -> None:
    task = await our_task(sdk_agent, "slow 30", return_immediately=True)
    assert task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
    canceled = await sdk_agent.cancel_task(task.id)
    assert isinstance(canceled, types.Task)
    assert (canceled.id, canceled.status.state) == (task.id, types.TASK_STATE_CANCELED)
    assert (await sdk_agent.get_task(task.id)).status.state == types.TASK_STATE_CANCELED


@pytest.mark.asyncio
async def test_our_subscribe_to_a_running_sdk_task(sdk_agent: A2AClient) -> None:
    task = await our_task(sdk_agent, "slow 0.3", return_immediately=True)
    events = await collect(sdk_agent.subscribe_to_task(task.id, timeout=TIMEOUT))
    assert kinds(events)[0] == "task"
    assert set(kinds(events)[1:]) == {"status_update"}
    assert events[0].task.id == task.id
    assert events[0].task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
    updates = [e.status_update for e in events[1:]]
    assert len(updates) >= 2
    assert updates[-1].status.state == types.TASK_STATE_COMPLETED
    assert updates[-1].status.message.parts[0].text == "done"


@pytest.mark.asyncio
async def test_our_push_notification_config_crud_on_sdk(sdk_agent: A2AClient) -> None:
    task = await our_task(sdk_agent, "ask")
    config = types.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url=HOOK, token="secret")
    config.authentication.scheme = "Bearer"
    created = await sdk_agent.create_task_push_notification_config(config)
    assert isinstance(created, types.TaskPushNotificationConfig)
    assert created == config
    # SDK: a config sent without an id gets the task's id as its id.
    defaulted = await sdk_agent.create_task_push_notification_config(
        types.TaskPushNotificationConfig(task_id=task.id, url=HOOK + "/2")
    )
    assert defaulted.id == task.id
    assert await sdk_agent.get_task_push_notification_config(task.id, "hook-1") == config
    listed = await sdk_agent.list_task_push_notification_configs(task.id)
    assert sorted(c.id for c in listed.configs) == sorted(["hook-1", task.id])
    assert await sdk_agent.delete_task_push_notification_config(task.id, "hook-1") is None
    listed = await sdk_agent.list_task_push_notification_configs(task.id)
    assert [c.id for c in listed.configs] == [task.id]
    with pytest.raises(errors.TaskNotFoundError):
        await sdk_agent.get_task_push_notification_config(task.id, "hook-1")


@pytest.mark.asyncio
async def test_our_push_config_sent_with_a_follow_up_message_on_sdk(sdk_agent: A2AClient) -> None:
    asked = await our_task(sdk_agent, "ask")
    request = A2AClient.text_request("go on", task_id=asked.id)
    request.configuration.task_push_notification_config.url = HOOK
    done = (await sdk_agent.send_message(request)).task
    assert done.status.state == types.TASK_STATE_COMPLETED
    listed = await sdk_agent.list_task_push_notification_configs(asked.id)
    assert [(c.task_id, c.url) for c in listed.configs] == [(asked.id, HOOK)]


@pytest.mark.asyncio
async def test_our_get_extended_agent_card_from_sdk(sdk_agent: A2AClient) -> None:
    card = await sdk_agent.get_extended_agent_card()
    assert isinstance(card, types.AgentCard)
    assert card.name == "a2a-sdk peer"
    assert card.description.endswith(" (extended)")
    assert card.capabilities.streaming


@pytest.mark.asyncio
async def test_our_unsupported_version_is_ignored_by_the_sdk_server() -> None:
    # SDK deviation: spec 3.6.2 says an agent MUST answer VersionNotSupportedError for a version it
    # does not support; a2a-sdk's GrpcHandler reads no a2a-version at all and serves the call.
    async with sdk_server() as address, A2AClient(address, timeout=TIMEOUT, version="9.9") as client:
        task = await our_task(client, "echo v")
    assert task.status.state == types.TASK_STATE_COMPLETED


# ==== 2. our client, the SDK's server: the errors ===================================================


async def _sdk_completed(client: A2AClient) -> types.Task:
    return await our_task(client, "echo done")


async def _our_cancel_completed(client: A2AClient) -> Call:
    task = await _sdk_completed(client)
    return lambda: client.cancel_task(task.id)


async def _our_message_to_completed(client: A2AClient) -> Call:
    task = await _sdk_completed(client)
    return lambda: client.send_message(A2AClient.text_request("more", task_id=task.id))


async def _our_subscribe_completed(client: A2AClient) -> Call:
    task = await _sdk_completed(client)
    return lambda: collect(client.subscribe_to_task(task.id, timeout=TIMEOUT))


async def _our_context_mismatch(client: A2AClient) -> Call:
    task = await our_task(client, "ask")
    return lambda: client.send_message(A2AClient.text_request("more", task_id=task.id, context_id="other"))


async def _our_push_call(client: A2AClient, method: str) -> Call:
    task = await our_task(client, "ask")
    calls: dict[str, Call] = {
        "create": lambda: client.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=task.id, url=HOOK)
        ),
        "get": lambda: client.get_task_push_notification_config(task.id, "hook"),
        "list": lambda: client.list_task_push_notification_configs(task.id),
        "delete": lambda: client.delete_task_push_notification_config(task.id, "hook"),
    }
    return calls[method]


def _now_ours(call: Callable[[A2AClient], Awaitable[object]]) -> Callable[[A2AClient], Awaitable[Call]]:
    """A case whose failing call needs no setup."""

    async def setup(client: A2AClient) -> Call:
        return lambda: call(client)

    return setup


def _no_parts() -> types.SendMessageRequest:
    request = A2AClient.text_request("x")
    del request.message.parts[:]
    return request


@dataclass(frozen=True)
class SdkRefusal:
    """One way to make the SDK's server refuse a call, the class we must raise, the code the SDK sends."""

    id: str
    error: type[errors.A2AError]
    code: grpc.StatusCode
    setup: Callable[[A2AClient], Awaitable[Call]]
    server: dict[str, Any] = field(default_factory=dict)
    violation: str = ""


C = grpc.StatusCode
# a2a-sdk's GrpcHandler sends the v1.0.1 codes (section 5.4), as we do; the class comes from
# ErrorInfo.reason either way, and the received code is on grpc_code.
SDK_REFUSALS = [
    SdkRefusal(
        "get-unknown-task", errors.TaskNotFoundError, C.NOT_FOUND, _now_ours(lambda c: c.get_task("nope"))
    ),
    SdkRefusal(
        "cancel-unknown-task",
        errors.TaskNotFoundError,
        C.NOT_FOUND,
        _now_ours(lambda c: c.cancel_task("nope")),
    ),
    SdkRefusal(
        "subscribe-unknown-task",
        errors.TaskNotFoundError,
        C.NOT_FOUND,
        _now_ours(lambda c: collect(c.subscribe_to_task("nope", timeout=TIMEOUT))),
    ),
    SdkRefusal(
        "message-to-unknown-task",
        errors.TaskNotFoundError,
        C.NOT_FOUND,
        _now_ours(lambda c: c.send_message(A2AClient.text_request("hi", task_id="nope"))),
    ),
    SdkRefusal(
        "get-unknown-push-config", errors.TaskNotFoundError, C.NOT_FOUND, lambda c: _our_push_call(c, "get")
    ),
    SdkRefusal(
        "cancel-completed-task", errors.TaskNotCancelableError, C.FAILED_PRECONDITION, _our_cancel_completed
    ),
    SdkRefusal(
        "message-to-completed-task",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _our_message_to_completed,
    ),
    SdkRefusal(
        "subscribe-to-completed-task",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _our_subscribe_completed,
    ),
    SdkRefusal(
        "message-without-parts",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now_ours(lambda c: c.send_message(_no_parts())),
        violation="message.parts",
    ),
    SdkRefusal(
        "negative-history-length",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now_ours(lambda c: c.get_task("x", history_length=-1)),
    ),
    SdkRefusal(
        "malformed-page-token",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now_ours(lambda c: c.list_tasks(types.ListTasksRequest(page_token="not a token!"))),
    ),
    SdkRefusal(
        "page-size-too-large",
        errors.InvalidParamsError,
        C.INVALID_ARGUMENT,
        _now_ours(lambda c: c.list_tasks(types.ListTasksRequest(page_size=1000))),
    ),
    SdkRefusal("context-mismatch", errors.InvalidParamsError, C.INVALID_ARGUMENT, _our_context_mismatch),
    *(
        SdkRefusal(
            f"push-{method}-unsupported",
            errors.PushNotificationNotSupportedError,
            C.FAILED_PRECONDITION,
            lambda c, m=method: _our_push_call(c, m),
            {"push": False},
        )
        for method in ("create", "get", "list", "delete")
    ),
    SdkRefusal(
        "streaming-unsupported",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _now_ours(
            lambda c: collect(c.send_streaming_message(A2AClient.text_request("stream 1"), timeout=TIMEOUT))
        ),
        {"streaming": False},
    ),
    SdkRefusal(
        "subscribe-unsupported",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _now_ours(lambda c: collect(c.subscribe_to_task("x", timeout=TIMEOUT))),
        {"streaming": False},
    ),
    SdkRefusal(
        "extended-card-unsupported",
        errors.UnsupportedOperationError,
        C.FAILED_PRECONDITION,
        _now_ours(lambda c: c.get_extended_agent_card()),
        {"extended": False},
    ),
    SdkRefusal(
        "extended-card-not-configured",
        errors.ExtendedAgentCardNotConfiguredError,
        C.FAILED_PRECONDITION,
        _now_ours(lambda c: c.get_extended_agent_card()),
        {"extended_configured": False},
    ),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("case", SDK_REFUSALS, ids=[c.id for c in SDK_REFUSALS])
async def test_our_client_raises_the_matching_error_from_sdk(case: SdkRefusal) -> None:
    async with sdk_server(**case.server) as address, A2AClient(address, timeout=TIMEOUT) as client:
        call = await case.setup(client)
        with pytest.raises(errors.A2AError) as info:
            await call()
    err = info.value
    assert type(err) is case.error, repr(err)
    assert err.grpc_code == case.code
    if case.violation:
        assert case.violation in [v.field for v in err.field_violations], err.field_violations
    # Whatever code the SDK used, we would pass the error on with the spec's code.
    assert to_rpc_status(err).code == SPEC_CODE[case.error.spec.name]
