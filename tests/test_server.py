"""The gRPC binding end to end: lifecycle, streams, cancellation, persistence, bad input."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import DelegationPolicy, ReferenceAgent, reference_card
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.status import from_rpc_error
from a2a_grpc.tasks import InMemoryTaskStore, InvalidTransitionError, SqliteTaskStore
from tests.conftest import Authenticated, Served, serve, shutdown
from tests.webhook import Receiver, until

pytestmark = pytest.mark.asyncio
WAIT = 10.0


class GatedAgent(Agent):
    """Emits `chunks` artifact chunks after the test opens the gate, then completes."""

    def __init__(self, chunks: int = 20) -> None:
        self.card = reference_card()
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.chunks = chunks

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.working()
        self.started.set()
        await self.gate.wait()
        artifact_id = None
        for i in range(self.chunks):
            artifact_id = await updater.artifact(
                [types.Part(text=str(i))], artifact_id=artifact_id, append=i > 0
            )
        await updater.complete()


async def collect(stream: object) -> list[types.StreamResponse]:
    return [event async for event in stream]  # type: ignore[attr-defined]


async def test_send_message_completes_a_task_with_its_artifact(reference: Served) -> None:
    response = await reference.client.send_message(A2AClient.text_request("echo hi"))
    task = response.task
    assert task.status.state == types.TASK_STATE_COMPLETED
    assert task.artifacts[0].parts[0].text == "echo hi"
    assert [m.role for m in task.history] == [types.ROLE_USER]
    assert task.context_id
    assert task.history[0].task_id == task.id
    stored = await reference.client.get_task(task.id)
    assert stored == task


async def test_history_length_and_return_immediately(reference: Served) -> None:
    request = A2AClient.text_request("slow 0.3", return_immediately=True)
    request.configuration.history_length = 0
    task = (await reference.client.send_message(request)).task
    assert task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
    assert len(task.history) == 0
    full = await reference.client.get_task(task.id)
    assert len(full.history) >= 1
    assert len((await reference.client.get_task(task.id, history_length=1)).history) == 1


async def test_direct_reply_creates_no_task(reference: Served) -> None:
    response = await reference.client.send_message(A2AClient.text_request("reply hello"))
    assert response.WhichOneof("payload") == "message"
    assert response.message.parts[0].text == "hello"
    assert response.message.context_id
    events = await collect(reference.client.send_streaming_message(A2AClient.text_request("reply yo")))
    assert [e.WhichOneof("payload") for e in events] == ["message"]
    assert (await reference.client.list_tasks()).total_size == 0


async def test_stream_starts_with_the_task_and_ends_at_the_terminal_state(reference: Served) -> None:
    events = await collect(reference.client.send_streaming_message(A2AClient.text_request("stream 4")))
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds == ["task", "status_update"] + ["artifact_update"] * 4 + ["status_update"]
    assert events[0].task.status.state == types.TASK_STATE_SUBMITTED
    assert [e.artifact_update.artifact.parts[0].text for e in events[2:6]] == [f"chunk {i}" for i in range(4)]
    assert [e.artifact_update.append for e in events[2:6]] == [False, True, True, True]
    assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
    task = await reference.client.get_task(events[0].task.id)
    assert [p.text for p in task.artifacts[0].parts] == [f"chunk {i}" for i in range(4)]


async def test_stream_closes_at_an_interrupted_state_and_the_task_continues(reference: Served) -> None:
    events = await collect(reference.client.send_streaming_message(A2AClient.text_request("ask")))
    assert events[-1].status_update.status.state == types.TASK_STATE_INPUT_REQUIRED
    task_id = events[0].task.id
    again = A2AClient.text_request("blue", task_id=task_id)
    events = await collect(reference.client.send_streaming_message(again))
    assert events[0].task.id == task_id
    assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
    assert "blue" in events[-1].status_update.status.message.parts[0].text
    history = (await reference.client.get_task(task_id)).history
    assert [m.role for m in history] == [types.ROLE_USER, types.ROLE_AGENT, types.ROLE_USER, types.ROLE_AGENT]


async def test_several_subscribers_see_the_same_events_in_the_same_order() -> None:
    agent = GatedAgent(chunks=30)
    served = await serve(agent)
    try:
        client = served.client
        task = (await client.send_message(A2AClient.text_request("go", return_immediately=True))).task
        await asyncio.wait_for(agent.started.wait(), WAIT)
        streams = [client.subscribe_to_task(task.id) for _ in range(3)]
        firsts = [await asyncio.wait_for(anext(s), WAIT) for s in streams]  # type: ignore[arg-type]
        assert all(f.task.id == task.id for f in firsts)
        agent.gate.set()
        results = await asyncio.wait_for(asyncio.gather(*(collect(s) for s in streams)), WAIT)
        wire = [[e.SerializeToString() for e in r] for r in results]
        assert wire[0] == wire[1] == wire[2]
        assert len(results[0]) == 31
        assert results[0][-1].status_update.status.state == types.TASK_STATE_COMPLETED
    finally:
        await shutdown(served)


async def test_a_client_that_disconnects_mid_stream_loses_nothing() -> None:
    agent = GatedAgent(chunks=50)
    served = await serve(agent, stream_window=4)
    try:
        stream = served.client.send_streaming_message(A2AClient.text_request("go"))
        first = await asyncio.wait_for(anext(stream), WAIT)  # type: ignore[arg-type]
        await asyncio.wait_for(anext(stream), WAIT)  # type: ignore[arg-type]
        await stream.aclose()  # type: ignore[attr-defined]
        agent.gate.set()
        for _ in range(200):
            task = await served.client.get_task(first.task.id)
            if task.status.state == types.TASK_STATE_COMPLETED:
                break
            await asyncio.sleep(0.02)
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert [p.text for p in task.artifacts[0].parts] == [str(i) for i in range(50)]
    finally:
        await shutdown(served)


async def test_cancel_stops_a_running_task_and_ends_its_subscriptions(reference: Served) -> None:
    client = reference.client
    task = (await client.send_message(A2AClient.text_request("slow 30", return_immediately=True))).task
    stream = client.subscribe_to_task(task.id)
    assert (await asyncio.wait_for(anext(stream), WAIT)).task.id == task.id  # type: ignore[arg-type]
    canceled = await client.cancel_task(task.id)
    assert canceled.status.state == types.TASK_STATE_CANCELED
    rest = await asyncio.wait_for(collect(stream), WAIT)
    assert rest[-1].status_update.status.state == types.TASK_STATE_CANCELED
    with pytest.raises(errors.TaskNotCancelableError):
        await client.cancel_task(task.id)
    with pytest.raises(errors.UnsupportedOperationError):
        await collect(client.subscribe_to_task(task.id))


async def test_tasks_survive_a_restart_with_the_sqlite_store(tmp_path: object) -> None:
    path = f"{tmp_path}/tasks.db"
    first = await serve(ReferenceAgent(), SqliteTaskStore(path))
    try:
        done = (await first.client.send_message(A2AClient.text_request("echo keep me"))).task
        asked = (await first.client.send_message(A2AClient.text_request("ask"))).task
    finally:
        await shutdown(first)
    second = await serve(ReferenceAgent(), SqliteTaskStore(path))
    try:
        assert await second.client.get_task(done.id) == done
        listed = await second.client.list_tasks()
        assert {t.id for t in listed.tasks} == {done.id, asked.id}
        # The interrupted task continues after the restart.
        resumed = await second.client.send_message(A2AClient.text_request("later", task_id=asked.id))
        assert resumed.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await shutdown(second)


async def test_illegal_transitions_are_refused_and_terminal_states_are_final() -> None:
    seen: list[BaseException] = []

    class Backwards(Agent):
        card = reference_card()

        async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
            await updater.complete()
            try:
                await updater.working()
            except InvalidTransitionError as exc:
                seen.append(exc)
            try:
                await updater.artifact([types.Part(text="late")])
            except errors.UnsupportedOperationError as exc:
                seen.append(exc)

    served = await serve(Backwards())
    try:
        task = (await served.client.send_message(A2AClient.text_request("x"))).task
        await asyncio.sleep(0.05)
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert [type(e) for e in seen] == [InvalidTransitionError, errors.UnsupportedOperationError]
        assert "TASK_STATE_COMPLETED" in str(seen[0])
        stored = await served.client.get_task(task.id)
        assert stored.status.state == types.TASK_STATE_COMPLETED
        assert not stored.artifacts
    finally:
        await shutdown(served)


async def test_an_agent_crash_fails_the_task_without_leaking_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Crashing(Agent):
        card = reference_card()

        async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
            await updater.working()
            raise KeyError("secret-detail")

    served = await serve(Crashing())
    try:
        with caplog.at_level(logging.ERROR, logger="a2a_grpc.handler"):
            task = (await served.client.send_message(A2AClient.text_request("x"))).task
        assert task.status.state == types.TASK_STATE_FAILED
        assert task.status.message.parts[0].text == errors.INTERNAL_MESSAGE
        assert "secret-detail" not in task.SerializeToString().decode("utf-8", "replace")
        assert "secret-detail" in caplog.text
    finally:
        await shutdown(served)


async def _still_serving(client: A2AClient) -> None:
    assert (await client.send_message(A2AClient.text_request("echo ok"))).task.status.state == (
        types.TASK_STATE_COMPLETED
    )


def _violation_fields(exc: errors.A2AError) -> list[str]:
    return [v.field for v in exc.field_violations]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.ClearField("message"), "message"),
        (lambda r: r.message.ClearField("parts"), "message.parts"),
        (lambda r: setattr(r.message, "message_id", ""), "message.message_id"),
        (lambda r: setattr(r.message, "role", 9), "message.role"),
        (lambda r: r.message.parts.add(), "message.parts[1]"),
        (lambda r: setattr(r.configuration, "history_length", -1), "configuration.history_length"),
    ],
    ids=["missing-message", "no-parts", "no-message-id", "unknown-role", "empty-part", "negative-history"],
)
async def test_invalid_messages_name_the_field(reference: Served, mutate: object, field: str) -> None:
    request = A2AClient.text_request("echo x")
    mutate(request)  # type: ignore[operator]
    with pytest.raises(errors.InvalidParamsError) as caught:
        await reference.client.send_message(request)
    assert caught.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert _violation_fields(caught.value) == [field]
    await _still_serving(reference.client)


async def test_unknown_task_and_terminal_task(reference: Served) -> None:
    client = reference.client
    with pytest.raises(errors.TaskNotFoundError, match="nope"):
        await client.get_task("nope")
    with pytest.raises(errors.TaskNotFoundError):
        await client.send_message(A2AClient.text_request("hi", task_id="nope"))
    done = (await client.send_message(A2AClient.text_request("echo x"))).task
    with pytest.raises(errors.UnsupportedOperationError, match="terminal"):
        await client.send_message(A2AClient.text_request("more", task_id=done.id))
    waiting = (await client.send_message(A2AClient.text_request("ask"))).task
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.send_message(A2AClient.text_request("more", task_id=waiting.id, context_id="other"))
    assert _violation_fields(caught.value) == ["message.context_id"]
    await _still_serving(client)


async def test_list_tasks_bad_input(reference: Served) -> None:
    client = reference.client
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.list_tasks(types.ListTasksRequest(page_token="not-a-token"))
    assert _violation_fields(caught.value) == ["page_token"]
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.list_tasks(types.ListTasksRequest(status=42))
    assert _violation_fields(caught.value) == ["status"]
    with pytest.raises(errors.InvalidParamsError) as caught:
        await client.list_tasks(types.ListTasksRequest(page_size=1000))
    assert _violation_fields(caught.value) == ["page_size"]
    await _still_serving(client)


async def test_list_tasks_filters_and_pages(reference: Served) -> None:
    client = reference.client
    context = "ctx-1"
    ids = [
        (await client.send_message(A2AClient.text_request(f"echo {i}", context_id=context))).task.id
        for i in range(5)
    ]
    await client.send_message(A2AClient.text_request("fail x"))
    seen: list[str] = []
    token = ""
    while True:
        page = await client.list_tasks(
            types.ListTasksRequest(context_id=context, page_size=2, page_token=token)
        )
        assert page.total_size == 5
        seen += [t.id for t in page.tasks]
        assert all(not t.artifacts for t in page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    failed = await client.list_tasks(types.ListTasksRequest(status=types.TASK_STATE_FAILED))
    assert failed.total_size == 1


async def test_oversized_messages_are_refused_and_the_server_keeps_serving() -> None:
    served = await serve(ReferenceAgent(), max_receive_message_bytes=64 * 1024)
    try:
        request = A2AClient.text_request("x" * (200 * 1024))
        with pytest.raises(errors.TransportError) as caught:
            await served.client.send_message(request)
        assert caught.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        await _still_serving(served.client)
    finally:
        await shutdown(served)


@pytest.mark.parametrize("version", ["9.9", "0.3", "2.0", "1.1"])
async def test_unsupported_a2a_version(reference: Served, version: str) -> None:
    async with A2AClient(reference.server.address, version=version) as client:
        with pytest.raises(errors.VersionNotSupportedError, match=version):
            await client.send_message(A2AClient.text_request("echo x"))
    await _still_serving(reference.client)


@pytest.mark.parametrize("version", ["1.0", "1", "1.0.3"])
async def test_supported_a2a_version_spellings(reference: Served, version: str) -> None:
    async with A2AClient(reference.server.address, version=version) as client:
        await _still_serving(client)


async def test_required_extension_must_be_declared() -> None:
    agent = ReferenceAgent()
    agent.card.capabilities.extensions.add(uri="urn:example:ext", required=True)
    served = await serve(agent)
    try:
        with pytest.raises(errors.ExtensionSupportRequiredError, match="urn:example:ext"):
            await served.client.send_message(A2AClient.text_request("echo x"))
        async with A2AClient(served.server.address, extensions=["urn:example:ext"]) as client:
            await _still_serving(client)
    finally:
        await shutdown(served)


async def test_capability_checks() -> None:
    agent = ReferenceAgent()
    agent.card.capabilities.streaming = False
    agent.card.capabilities.push_notifications = False
    agent.card.capabilities.extended_agent_card = False
    served = await serve(agent, interceptors=[Authenticated()])
    try:
        client = served.client
        with pytest.raises(errors.UnsupportedOperationError, match="streaming"):
            await collect(client.send_streaming_message(A2AClient.text_request("echo x")))
        task = (await client.send_message(A2AClient.text_request("echo x"))).task
        with pytest.raises(errors.UnsupportedOperationError, match="streaming"):
            await collect(client.subscribe_to_task(task.id))
        config = types.TaskPushNotificationConfig(task_id=task.id, url="https://hooks.example.com/hook")
        with pytest.raises(errors.PushNotificationNotSupportedError):
            await client.create_task_push_notification_config(config)
        with pytest.raises(errors.PushNotificationNotSupportedError):
            await client.list_task_push_notification_configs(task.id)
        with pytest.raises(errors.UnsupportedOperationError):
            await client.get_extended_agent_card()
    finally:
        await shutdown(served)
    agent = ReferenceAgent()
    agent.extended_card = None
    served = await serve(agent, interceptors=[Authenticated()])
    try:
        with pytest.raises(errors.ExtendedAgentCardNotConfiguredError):
            await served.client.get_extended_agent_card()
    finally:
        await shutdown(served)


async def test_push_notification_configs(reference: Served) -> None:
    client = reference.client
    task = (await client.send_message(A2AClient.text_request("echo x"))).task
    config = types.TaskPushNotificationConfig(task_id=task.id, url="https://hooks.example.com/h", token="t")
    created = await client.create_task_push_notification_config(config)
    assert created.id
    assert created.url == config.url
    assert await client.get_task_push_notification_config(task.id, created.id) == created
    listed = await client.list_task_push_notification_configs(task.id)
    assert list(listed.configs) == [created]
    await client.delete_task_push_notification_config(task.id, created.id)
    await client.delete_task_push_notification_config(task.id, created.id)  # idempotent
    with pytest.raises(errors.TaskNotFoundError):
        await client.get_task_push_notification_config(task.id, created.id)
    with pytest.raises(errors.TaskNotFoundError):
        await client.list_task_push_notification_configs("nope")
    with pytest.raises(errors.InvalidParamsError):
        await client.create_task_push_notification_config(
            types.TaskPushNotificationConfig(task_id=task.id, url="ftp://x")
        )


async def test_card_declares_the_grpc_interface() -> None:
    served = await serve(ReferenceAgent(), interceptors=[Authenticated()])
    try:
        card = served.server.card()
        grpc_interface = card.supported_interfaces[0]
        assert grpc_interface.protocol_binding == "GRPC"
        assert grpc_interface.url == served.server.address
        assert "://" not in grpc_interface.url
        extended = await served.client.get_extended_agent_card()
        assert extended.supported_interfaces[0] == grpc_interface
    finally:
        await shutdown(served)


async def test_health_and_reflection(reference: Served) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(reference.server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="lf.a2a.v1.A2AService"), timeout=WAIT
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="lf.a2a.v1.A2AService"),
        ]
        answers = [a async for a in stub.ServerReflectionInfo(iter(requests), timeout=WAIT)]
        names = {s.name for s in answers[0].list_services_response.service}
        assert "lf.a2a.v1.A2AService" in names
        assert "grpc.health.v1.Health" in names
        assert answers[1].file_descriptor_response.file_descriptor_proto


async def test_push_notifications_reach_a_real_webhook(receiver: Receiver) -> None:
    loopback = WebhookPolicy(allow=("127.0.0.0/8",))  # the receiver's address; refused by default
    notifier = PushNotifier(initial_backoff=0.01, max_backoff=0.05, timeout=2.0, policy=loopback)
    agent = ReferenceAgent()
    server = A2AServer(agent, InMemoryTaskStore(), ServerSettings(port=0), notifier=notifier)
    await server.start()
    try:
        async with A2AClient(server.address, timeout=WAIT) as client:
            # A webhook given with the message itself.
            request = A2AClient.text_request("stream 3")
            hook = request.configuration.task_push_notification_config
            hook.url, hook.token = receiver.url("first"), "tok-1"
            task = (await client.send_message(request)).task
            await until(lambda: len(receiver.paths("first")) == 5)
            events = [json_format.Parse(r.body, types.StreamResponse()) for r in receiver.paths("first")]
            assert [e.WhichOneof("payload") for e in events] == ["status_update"] + [
                "artifact_update"
            ] * 3 + ["status_update"]
            assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
            assert {e.status_update.task_id or e.artifact_update.task_id for e in events} == {task.id}
            assert receiver.paths("first")[0].headers["x-a2a-notification-token"] == "tok-1"
            # A webhook registered later, on a task waiting for input.
            waiting = (await client.send_message(A2AClient.text_request("ask"))).task
            config = types.TaskPushNotificationConfig(task_id=waiting.id, url=receiver.url("second"))
            config.authentication.scheme, config.authentication.credentials = "Bearer", "abc"
            await client.create_task_push_notification_config(config)
            await client.send_message(A2AClient.text_request("answer", task_id=waiting.id))
            await until(lambda: len(receiver.paths("second")) == 2)
            states = [
                json_format.Parse(r.body, types.StreamResponse()).status_update.status.state
                for r in receiver.paths("second")
            ]
            assert states == [types.TASK_STATE_WORKING, types.TASK_STATE_COMPLETED]
            assert receiver.paths("second")[0].headers["authorization"] == "Bearer abc"
    finally:
        await server.stop(grace=1.0)
        await notifier.aclose()


async def test_a_call_without_a2a_version_is_read_as_0_3_and_refused(reference: Served) -> None:
    from google.protobuf import message_factory

    method = types.A2A_SERVICE.methods_by_name["GetTask"]
    async with grpc.aio.insecure_channel(reference.server.address) as channel:
        call = channel.unary_unary(
            "/lf.a2a.v1.A2AService/GetTask",
            request_serializer=types.GetTaskRequest.SerializeToString,
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(types.GetTaskRequest(id="x"), timeout=WAIT)
    error = from_rpc_error(caught.value)
    assert isinstance(error, errors.VersionNotSupportedError)
    assert "no a2a-version was sent" in error.message


async def test_delegation_to_another_agent_over_a2a() -> None:
    other = await serve(ReferenceAgent())
    reference = await serve(ReferenceAgent(DelegationPolicy(allow=[other.server.address])))
    try:
        request = A2AClient.text_request(f"delegate {other.server.address} echo relayed")
        task = (await reference.client.send_message(request)).task
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "echo relayed"
        delegated = await other.client.list_tasks()
        assert delegated.total_size == 1
        assert delegated.tasks[0].status.state == types.TASK_STATE_COMPLETED
    finally:
        await shutdown(reference)
        await shutdown(other)
