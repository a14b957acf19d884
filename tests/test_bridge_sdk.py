"""The official a2a-sdk's JSON-RPC and HTTP+JSON clients drive our bridge.

The SDK's clients are built the way the SDK intends: its ``A2ACardResolver`` fetches the card our
bridge serves at ``/.well-known/agent-card.json``, and ``ClientFactory`` with a ``ClientConfig``
whose ``supported_protocol_bindings`` is JSONRPC, or HTTP+JSON, picks the matching interface from
that card. Every test runs over both bindings, against the bridge in this process (as
``a2a-grpc serve --http-port`` runs it) and against a separate ``a2a-grpc bridge http-to-grpc``
process; refusals must reach the SDK as its own exception classes.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from a2a.client import A2ACardResolver, Client, ClientCallContext, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as sdk
from a2a.utils import errors as sdk_errors
from a2a.utils.constants import TransportProtocol

from a2a_grpc import errors
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.session.frames import BINDING_URI
from tests.bridge_peers import LATE_SECONDS, LateAgent, Stack, bridge_process, collect, serve_stack
from tests.conftest import Authenticated
from tests.sdk_peers import TunedAgent

pytestmark = pytest.mark.interop
ASYNC = pytest.mark.asyncio(loop_scope="module")
"""Every async test runs in the module's event loop, where the module-scoped servers live."""

TIMEOUT = 10.0
CTX = ClientCallContext(timeout=TIMEOUT)
HOOK = "https://hooks.example.com/hook"  # a public name: the webhook policy refuses loopback
PROTOCOLS = {"jsonrpc": TransportProtocol.JSONRPC, "rest": TransportProtocol.HTTP_JSON}


# --- our side: the agent and the two bridges in front of it -------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def main() -> AsyncIterator[Stack]:
    async with serve_stack(TunedAgent(), interceptors=[Authenticated()]) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def process(main: Stack) -> AsyncIterator[Stack]:
    async with bridge_process(main.address) as url:
        yield Stack(main.address, url, main.server)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def no_push() -> AsyncIterator[Stack]:
    async with serve_stack(TunedAgent(push=False)) as stack:
        yield stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def late() -> AsyncIterator[Stack]:
    """An agent that fails after a while, behind a bridge that starts SSE streams before that."""
    async with serve_stack(LateAgent(), BridgeSettings(first_event_wait=LATE_SECONDS / 6)) as stack:
        yield stack


# --- the SDK's side -----------------------------------------------------------------------------------


@dataclass
class Peer:
    """The SDK's clients of one bridge, over one binding."""

    binding: str
    stack: Stack
    card: sdk.AgentCard
    """As the SDK's card resolver read it from the bridge."""
    client: Client
    """Streaming on: ``send_message`` uses SendStreamingMessage."""
    unary: Client
    """Streaming off: ``send_message`` uses SendMessage."""


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for all clients: httpx would build one per client (~60 ms each)."""
    return ssl.create_default_context()


@contextlib.asynccontextmanager
async def sdk_clients(stack: Stack, binding: str) -> AsyncIterator[Peer]:
    # One httpx client for the resolver and both SDK clients (ClientConfig.httpx_client): the SDK
    # leaves a client it was given open, so it is closed here.
    async with httpx.AsyncClient(timeout=TIMEOUT, verify=_tls()) as http:
        card = await A2ACardResolver(http, stack.url).get_agent_card()
        clients = [
            ClientFactory(
                ClientConfig(
                    streaming=streaming, httpx_client=http, supported_protocol_bindings=[PROTOCOLS[binding]]
                )
            ).create(card)
            for streaming in (True, False)
        ]
        try:
            yield Peer(binding, stack, card, *clients)
        finally:
            for client in clients:
                await client.close()


@pytest.fixture(
    params=[
        pytest.param(("main", "jsonrpc"), id="in-process-jsonrpc"),
        pytest.param(("main", "rest"), id="in-process-rest"),
        pytest.param(("process", "jsonrpc"), id="bridge-process-jsonrpc"),
        pytest.param(("process", "rest"), id="bridge-process-rest"),
    ]
)
def target(request: pytest.FixtureRequest) -> tuple[Stack, str]:
    """(the bridge, the binding); sync, so it may set up the async module fixtures it names."""
    name, binding = request.param
    return request.getfixturevalue(name), binding


@pytest_asyncio.fixture(loop_scope="module")
async def peer(target: tuple[Stack, str]) -> AsyncIterator[Peer]:
    async with sdk_clients(*target) as p:
        yield p


def kinds(events: list[sdk.StreamResponse]) -> list[str]:
    return [event.WhichOneof("payload") for event in events]


def sdk_request(
    text: str, *, task_id: str = "", context_id: str = "", return_immediately: bool = False
) -> sdk.SendMessageRequest:
    message = sdk.Message(
        message_id=str(uuid.uuid4()), role=sdk.ROLE_USER, task_id=task_id, context_id=context_id
    )
    message.parts.add(text=text)
    request = sdk.SendMessageRequest(message=message)
    request.configuration.return_immediately = return_immediately
    return request


async def sdk_task(peer: Peer, text: str, **options: Any) -> sdk.Task:
    """SendMessage (the unary RPC) through the SDK; the task it answers with."""
    (event,) = await collect(peer.unary.send_message(sdk_request(text, **options), context=CTX))
    assert event.HasField("task"), event
    return event.task


# --- the operations -----------------------------------------------------------------------------------


@ASYNC
async def test_sdk_client_is_built_from_the_card_the_bridge_serves(peer: Peer) -> None:
    interfaces = [(i.protocol_binding, i.url, i.protocol_version) for i in peer.card.supported_interfaces]
    assert interfaces == [
        ("GRPC", peer.stack.address, "1.0"),
        ("GRPC", peer.stack.address, "0.3"),  # the v0.3 service, same port (serve_v03)
        (BINDING_URI, peer.stack.address, "1.0"),
        ("JSONRPC", peer.stack.url + "/", "1.0"),
        ("HTTP+JSON", peer.stack.url, "1.0"),
        ("JSONRPC", peer.stack.url + "/", "0.3"),  # the merged card: SDK 1.x still picks 1.0
        ("HTTP+JSON", peer.stack.url, "0.3"),
    ]
    assert peer.card.name == "a2a-grpc reference agent"
    assert (peer.card.capabilities.streaming, peer.card.capabilities.push_notifications) == (True, True)
    # The factory had only the JSON binding to choose from; the call goes through the bridge.
    task = await sdk_task(peer, "echo card")
    assert task.status.state == sdk.TASK_STATE_COMPLETED


@ASYNC
async def test_sdk_send_message(peer: Peer) -> None:
    task = await sdk_task(peer, "echo hello")
    assert task.id
    assert task.context_id
    assert task.status.state == sdk.TASK_STATE_COMPLETED
    assert [(a.name, [p.text for p in a.parts]) for a in task.artifacts] == [("echo", ["echo hello"])]
    assert [(m.role, m.parts[0].text, m.task_id) for m in task.history] == [
        (sdk.ROLE_USER, "echo hello", task.id)
    ]
    events = await collect(peer.unary.send_message(sdk_request("reply hi there"), context=CTX))
    assert kinds(events) == ["message"]
    assert (events[0].message.role, events[0].message.parts[0].text) == (sdk.ROLE_AGENT, "hi there")


@ASYNC
async def test_sdk_streaming_message_events_arrive_in_order(peer: Peer) -> None:
    events = await collect(peer.client.send_message(sdk_request("stream 3"), context=CTX))
    assert kinds(events) == ["task", "status_update", *["artifact_update"] * 3, "status_update"]
    task = events[0].task
    assert task.status.state == sdk.TASK_STATE_SUBMITTED
    assert events[1].status_update.status.state == sdk.TASK_STATE_WORKING
    chunks = [e.artifact_update for e in events[2:5]]
    assert [c.artifact.parts[0].text for c in chunks] == ["chunk 0", "chunk 1", "chunk 2"]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, False), (True, True)]
    assert events[-1].status_update.status.state == sdk.TASK_STATE_COMPLETED
    updates = [e.status_update if e.HasField("status_update") else e.artifact_update for e in events[1:]]
    assert {(u.task_id, u.context_id) for u in updates} == {(task.id, task.context_id)}
    stored = await peer.client.get_task(sdk.GetTaskRequest(id=task.id), context=CTX)
    assert stored.status.state == sdk.TASK_STATE_COMPLETED
    assert [p.text for p in stored.artifacts[0].parts] == ["chunk 0", "chunk 1", "chunk 2"]


@ASYNC
@pytest.mark.parametrize(("history_length", "expected"), [(None, 2), (0, 0), (1, 1)])
async def test_sdk_get_task(peer: Peer, history_length: int | None, expected: int) -> None:
    task = await sdk_task(peer, "ask")
    request = sdk.GetTaskRequest(id=task.id)
    if history_length is not None:
        request.history_length = history_length
    got = await peer.client.get_task(request, context=CTX)
    assert (got.id, got.context_id, got.status.state) == (
        task.id,
        task.context_id,
        sdk.TASK_STATE_INPUT_REQUIRED,
    )
    assert got.status.message.parts[0].text == "what should I work on?"
    assert [m.parts[0].text for m in got.history] == ["ask", "what should I work on?"][2 - expected :]


@ASYNC
async def test_sdk_tenant_named_like_a_route_literal_reaches_its_own_tasks(peer: Peer) -> None:
    """The SDK's REST client writes the tenant into the path as is: ``GET /tasks/tasks`` for the
    tasks of tenant ``tasks``, ``/tasks/extendedAgentCard`` for its card (docs/bridge.md)."""
    request = sdk_request("echo for tenant tasks")
    request.tenant = "tasks"
    (event,) = await collect(peer.unary.send_message(request, context=CTX))
    task_id = event.task.id
    listed = await peer.client.list_tasks(sdk.ListTasksRequest(tenant="tasks"), context=CTX)
    assert task_id in [t.id for t in listed.tasks]
    plain = await peer.client.list_tasks(sdk.ListTasksRequest(), context=CTX)
    assert task_id not in [t.id for t in plain.tasks]
    got = await peer.client.get_task(sdk.GetTaskRequest(id=task_id, tenant="tasks"), context=CTX)
    assert got.id == task_id
    card = await peer.client.get_extended_agent_card(
        sdk.GetExtendedAgentCardRequest(tenant="tasks"), context=CTX
    )
    assert "extended card" in card.description


@ASYNC
async def test_sdk_list_tasks(peer: Peer) -> None:
    context_id = str(uuid.uuid4())
    created = [(await sdk_task(peer, f"echo {i}", context_id=context_id)).id for i in range(3)]
    failed = await sdk_task(peer, "fail on purpose", context_id=context_id)
    created.append(failed.id)
    first = await peer.client.list_tasks(
        sdk.ListTasksRequest(context_id=context_id, page_size=3), context=CTX
    )
    assert (first.total_size, first.page_size, len(first.tasks)) == (4, 3, 3)
    assert first.next_page_token
    request = sdk.ListTasksRequest(context_id=context_id, page_size=3, page_token=first.next_page_token)
    second = await peer.client.list_tasks(request, context=CTX)
    assert (second.total_size, len(second.tasks), second.next_page_token) == (4, 1, "")
    assert [t.id for t in [*first.tasks, *second.tasks]] == created[::-1]
    assert all(not t.artifacts for t in first.tasks)
    only_failed = await peer.client.list_tasks(
        sdk.ListTasksRequest(context_id=context_id, status=sdk.TASK_STATE_FAILED), context=CTX
    )
    assert [t.id for t in only_failed.tasks] == [failed.id]
    with_artifacts = await peer.client.list_tasks(
        sdk.ListTasksRequest(context_id=context_id, status=sdk.TASK_STATE_COMPLETED, include_artifacts=True),
        context=CTX,
    )
    assert sorted(t.id for t in with_artifacts.tasks) == sorted(created[:3])
    assert all(t.artifacts for t in with_artifacts.tasks)


@ASYNC
async def test_sdk_cancel_a_slow_task(peer: Peer) -> None:
    task = await sdk_task(peer, "slow 5", return_immediately=True)
    assert task.status.state in (sdk.TASK_STATE_SUBMITTED, sdk.TASK_STATE_WORKING)
    canceled = await peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)
    assert (canceled.id, canceled.status.state) == (task.id, sdk.TASK_STATE_CANCELED)
    stored = await peer.client.get_task(sdk.GetTaskRequest(id=task.id), context=CTX)
    assert stored.status.state == sdk.TASK_STATE_CANCELED


@ASYNC
async def test_sdk_subscribe_sees_another_client_resume_the_task(peer: Peer) -> None:
    asked = await sdk_task(peer, "ask")
    subscription = peer.client.subscribe(sdk.SubscribeToTaskRequest(id=asked.id), context=CTX)
    async with contextlib.aclosing(subscription) as events:  # type: ignore[type-var]
        first = await anext(events)
        assert (first.task.id, first.task.status.state) == (asked.id, sdk.TASK_STATE_INPUT_REQUIRED)
        done = await sdk_task(peer, "the report", task_id=asked.id)
        assert done.status.state == sdk.TASK_STATE_COMPLETED
        rest = [event async for event in events]
    assert [e.status_update.status.state for e in rest] == [sdk.TASK_STATE_WORKING, sdk.TASK_STATE_COMPLETED]
    assert rest[-1].status_update.status.message.parts[0].text == "thanks, you said: the report"


@ASYNC
async def test_sdk_subscribe_to_a_task_being_canceled(peer: Peer) -> None:
    task = await sdk_task(peer, "slow 5", return_immediately=True)
    subscription = peer.client.subscribe(sdk.SubscribeToTaskRequest(id=task.id), context=CTX)
    async with contextlib.aclosing(subscription) as events:  # type: ignore[type-var]
        assert (await anext(events)).task.id == task.id
        await peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)
        rest = [event async for event in events]
    assert set(kinds(rest)) == {"status_update"}
    assert rest[-1].status_update.status.state == sdk.TASK_STATE_CANCELED


@ASYNC
async def test_sdk_push_notification_config_crud(peer: Peer) -> None:
    task = await sdk_task(peer, "ask")
    config = sdk.TaskPushNotificationConfig(task_id=task.id, id="hook-1", url=HOOK, token="secret")
    config.authentication.scheme = "Bearer"
    config.authentication.credentials = "credentials"
    answered = sdk.TaskPushNotificationConfig()
    answered.CopyFrom(config)
    answered.authentication.credentials = ""  # the credentials never come back (security.redact)
    assert await peer.client.create_task_push_notification_config(config, context=CTX) == answered
    generated = await peer.client.create_task_push_notification_config(
        sdk.TaskPushNotificationConfig(task_id=task.id, url=HOOK + "/2"), context=CTX
    )
    assert generated.id not in ("", "hook-1")
    assert (generated.task_id, generated.url) == (task.id, HOOK + "/2")
    got = await peer.client.get_task_push_notification_config(
        sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
    )
    assert got == answered
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id), context=CTX
    )
    assert sorted(c.id for c in listed.configs) == sorted(["hook-1", generated.id])
    page = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id, page_size=1), context=CTX
    )
    assert len(page.configs) == 1
    assert page.next_page_token
    await peer.client.delete_task_push_notification_config(
        sdk.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
    )
    listed = await peer.client.list_task_push_notification_configs(
        sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id), context=CTX
    )
    assert [c.id for c in listed.configs] == [generated.id]
    with pytest.raises(sdk_errors.TaskNotFoundError):
        await peer.client.get_task_push_notification_config(
            sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook-1"), context=CTX
        )


@ASYNC
async def test_sdk_get_extended_agent_card(peer: Peer) -> None:
    card = await peer.client.get_extended_agent_card(sdk.GetExtendedAgentCardRequest(), context=CTX)
    assert isinstance(card, sdk.AgentCard)
    assert card.name == peer.card.name
    assert card.description.endswith("(extended card: shown to authenticated callers)")
    assert [(i.protocol_binding, i.url) for i in card.supported_interfaces] == [
        ("GRPC", peer.stack.address),
        ("GRPC", peer.stack.address),  # v0.3 (serve_v03)
        (BINDING_URI, peer.stack.address),
        ("JSONRPC", peer.stack.url + "/"),
        ("HTTP+JSON", peer.stack.url),
        ("JSONRPC", peer.stack.url + "/"),  # again for v0.3 clients (protocolVersion 0.3)
        ("HTTP+JSON", peer.stack.url),
    ]


# --- the refusals -------------------------------------------------------------------------------------

Call = Callable[[], Awaitable[object]]


async def _unknown_task(peer: Peer) -> Call:
    return lambda: peer.client.get_task(sdk.GetTaskRequest(id="no-such-task"), context=CTX)


async def _cancel_completed(peer: Peer) -> Call:
    task = await sdk_task(peer, "echo done")
    return lambda: peer.client.cancel_task(sdk.CancelTaskRequest(id=task.id), context=CTX)


async def _message_to_completed(peer: Peer) -> Call:
    task = await sdk_task(peer, "echo done")
    return lambda: sdk_task(peer, "more", task_id=task.id)


async def _stream_to_completed(peer: Peer) -> Call:
    task = await sdk_task(peer, "echo done")
    return lambda: collect(peer.client.send_message(sdk_request("more", task_id=task.id), context=CTX))


async def _subscribe_completed(peer: Peer) -> Call:
    task = await sdk_task(peer, "echo done")
    return lambda: collect(peer.client.subscribe(sdk.SubscribeToTaskRequest(id=task.id), context=CTX))


async def _page_size_too_large(peer: Peer) -> Call:
    return lambda: peer.client.list_tasks(sdk.ListTasksRequest(page_size=100_000), context=CTX)


async def _version(peer: Peer) -> Call:
    context = ClientCallContext(timeout=TIMEOUT, service_parameters={"A2A-Version": "9.9"})
    return lambda: peer.client.get_task(sdk.GetTaskRequest(id="any"), context=context)


async def _crash(peer: Peer) -> Call:
    return lambda: sdk_task(peer, "crash")


async def _crash_stream(peer: Peer) -> Call:
    return lambda: collect(peer.client.send_message(sdk_request("crash"), context=CTX))


REFUSALS = {
    "task-not-found": (sdk_errors.TaskNotFoundError, _unknown_task),
    "cancel-completed-task": (sdk_errors.TaskNotCancelableError, _cancel_completed),
    "message-to-completed-task": (sdk_errors.UnsupportedOperationError, _message_to_completed),
    "stream-to-completed-task": (sdk_errors.UnsupportedOperationError, _stream_to_completed),
    "subscribe-to-completed-task": (sdk_errors.UnsupportedOperationError, _subscribe_completed),
    "page-size-too-large": (sdk_errors.InvalidParamsError, _page_size_too_large),
    "version-9.9": (sdk_errors.VersionNotSupportedError, _version),
    "agent-crashed": (sdk_errors.InternalError, _crash),
    "agent-crashed-stream": (sdk_errors.InternalError, _crash_stream),
}


@ASYNC
@pytest.mark.parametrize("case", REFUSALS)
async def test_sdk_raises_its_own_error_class(peer: Peer, case: str) -> None:
    expected, setup = REFUSALS[case]
    call = await setup(peer)
    with pytest.raises(sdk_errors.A2AError) as caught:
        await call()
    assert type(caught.value) is expected, repr(caught.value)
    if expected is sdk_errors.InternalError:
        assert caught.value.message == errors.INTERNAL_MESSAGE  # nothing of the crash reaches the client
    if expected is sdk_errors.TaskNotFoundError:
        assert caught.value.data == {"task_id": "no-such-task"}  # the ErrorInfo metadata


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize("method", ["create", "get", "list", "delete"])
async def test_sdk_push_configs_on_an_agent_without_push(no_push: Stack, binding: str, method: str) -> None:
    async with sdk_clients(no_push, binding) as peer:
        assert not peer.card.capabilities.push_notifications
        task = await sdk_task(peer, "ask")
        request: Any = {
            "create": sdk.TaskPushNotificationConfig(task_id=task.id, url=HOOK),
            "get": sdk.GetTaskPushNotificationConfigRequest(task_id=task.id, id="hook"),
            "list": sdk.ListTaskPushNotificationConfigsRequest(task_id=task.id),
            "delete": sdk.DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="hook"),
        }[method]
        call = getattr(
            peer.client, f"{method}_task_push_notification_config{'s' if method == 'list' else ''}"
        )
        with pytest.raises(sdk_errors.PushNotificationNotSupportedError):
            await call(request, context=CTX)


@ASYNC
@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [("late crash", sdk_errors.InternalError), ("late refuse", sdk_errors.InvalidParamsError)],
    ids=["crash", "refusal"],
)
async def test_sdk_reads_an_error_sent_after_the_stream_started(
    late: Stack, binding: str, text: str, expected: type[sdk_errors.A2AError]
) -> None:
    # The bridge has sent the SSE headers (first_event_wait passed) when the agent fails: the
    # error travels as an SSE ``event: error``, which the SDK must still map to its own class.
    async with sdk_clients(late, binding) as peer:
        with pytest.raises(sdk_errors.A2AError) as caught:
            await collect(peer.client.send_message(sdk_request(text), context=CTX))
    assert type(caught.value) is expected, repr(caught.value)
    assert caught.value.message == (
        errors.INTERNAL_MESSAGE if expected is sdk_errors.InternalError else "refused late"
    )
