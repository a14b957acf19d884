"""What a server publishes and how it treats what it cannot read: the public card over gRPC
(a2a_grpc.discovery.v1), the card's interfaces and streaming default, the public address, tenants
from the card, undecodable request bytes, huge ids, and the per-request log."""

from __future__ import annotations

import asyncio
import logging
import socket

import grpc
import httpx
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from a2a_grpc import errors, types
from a2a_grpc._validation import MAX_ID_CHARS
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import open_json_upstream
from a2a_grpc.client import A2AClient
from a2a_grpc.discovery import GET_AGENT_CARD
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.session.frames import BINDING_URI
from a2a_grpc.status import from_rpc_error
from a2a_grpc.tasks import InMemoryTaskStore
from tests.bridge_peers import serve_stack
from tests.conftest import Served, serve, shutdown

pytestmark = pytest.mark.asyncio


class Plain(Agent):
    """An agent whose card says nothing about capabilities or interfaces (the README's Shout)."""

    card = types.AgentCard(name="plain", description="says what it hears", version="1.0.0")

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.artifact([types.Part(text=context.text)], name="said")
        await updater.complete()


async def test_the_public_card_over_grpc_needs_no_extended_card() -> None:
    served = await serve(Plain())
    try:
        card = await served.client.get_agent_card()
        assert card.name == "plain"
        assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
            ("GRPC", served.server.address, "1.0"),
            ("GRPC", served.server.address, "0.3"),  # serve_v03: the v0.3 service, same port
            (BINDING_URI, served.server.address, "1.0"),
        ]
        with pytest.raises(errors.UnsupportedOperationError):
            await served.client.get_extended_agent_card()
    finally:
        await shutdown(served)


async def test_a_card_that_does_not_say_otherwise_streams() -> None:
    served = await serve(Plain())
    try:
        card = await served.client.get_agent_card()
        assert card.capabilities.streaming is True
        events = [e async for e in served.client.send_streaming_message(A2AClient.text_request("hi"))]
        assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
    finally:
        await shutdown(served)

    class NoStreams(Plain):
        card = types.AgentCard(name="still", capabilities=types.AgentCapabilities(streaming=False))

    served = await serve(NoStreams())
    try:
        assert (await served.client.get_agent_card()).capabilities.streaming is False
        with pytest.raises(errors.UnsupportedOperationError, match="streaming"):
            [e async for e in served.client.send_streaming_message(A2AClient.text_request("hi"))]
    finally:
        await shutdown(served)


async def test_public_address_and_the_agents_own_interfaces() -> None:
    class Declared(Plain):
        card = types.AgentCard(
            name="declared",
            supported_interfaces=[
                types.AgentInterface(url="lb.example:443", protocol_binding="GRPC", protocol_version="1.0"),
                types.AgentInterface(
                    url="https://a.example/a2a", protocol_binding="HTTP+JSON", protocol_version="1.0"
                ),
                types.AgentInterface(url="lb.example:443", protocol_binding="grpc", protocol_version="1.0"),
                types.AgentInterface(url="lb.example:443", protocol_binding="GRPC", protocol_version="0.3"),
            ],
        )

    served = await serve(Declared(), public_address="agents.example:50051")
    try:
        card = await served.client.get_agent_card()
        # The repeat (same binding, URL, tenant and version; binding case aside) is dropped; the
        # same address in another version is kept.
        assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
            ("GRPC", "agents.example:50051", "1.0"),
            ("GRPC", "agents.example:50051", "0.3"),
            (BINDING_URI, "agents.example:50051", "1.0"),
            ("GRPC", "lb.example:443", "1.0"),
            ("HTTP+JSON", "https://a.example/a2a", "1.0"),
            ("GRPC", "lb.example:443", "0.3"),
        ]
    finally:
        await shutdown(served)
    for bad in ("agents.example", ":50051", "host:0", "host:99999", "host:http"):
        with pytest.raises(ValueError, match="public_address must look like HOST:PORT"):
            ServerSettings(public_address=bad)


async def test_a_wildcard_bind_is_advertised_by_host_name(caplog: pytest.LogCaptureFixture) -> None:
    server = A2AServer(
        Plain(), InMemoryTaskStore(), ServerSettings(host="0.0.0.0", port=0, allow_unauthenticated=True)
    )
    with caplog.at_level(logging.WARNING, "a2a_grpc.server"):
        await server.start()
    try:
        assert server.card().supported_interfaces[0].url == f"{socket.gethostname()}:{server.port}"
        assert any("--public-address" in r.getMessage() for r in caplog.records)
    finally:
        await server.stop(0)


async def test_reflection_lists_the_card_service(reference: Served) -> None:
    async with grpc.aio.insecure_channel(reference.server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask() -> object:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for answer in stub.ServerReflectionInfo(ask()):
            names = {s.name for s in answer.list_services_response.service}
            break
    assert {"lf.a2a.v1.A2AService", "a2a_grpc.discovery.v1.AgentCardService"} <= names


async def test_the_reverse_bridge_publishes_the_json_agents_card_with_its_grpc_interface() -> None:
    async with serve_stack(ReferenceAgent()) as stack:
        upstream = await open_json_upstream(stack.url)
        front = GrpcFront(upstream, ServerSettings(port=0))
        await front.start()
        try:
            async with A2AClient(front.address, timeout=10) as client:
                card = await client.get_agent_card()
            bindings = [(i.protocol_binding, i.url) for i in card.supported_interfaces]
            assert bindings[0] == ("GRPC", front.address)
            assert ("JSONRPC", stack.url + "/") in bindings
            assert ("GRPC", stack.address) in bindings  # the agent's own interface stays
        finally:
            await front.stop(0)
            await upstream.aclose()


async def test_a_client_from_a_card_sends_the_interfaces_tenant_everywhere(reference: Served) -> None:
    card = types.AgentCard(
        name="tenanted",
        supported_interfaces=[
            types.AgentInterface(
                url="http://127.0.0.1:1/", protocol_binding="JSONRPC", protocol_version="1.0"
            ),
            types.AgentInterface(url="127.0.0.1:1", protocol_binding="GRPC", protocol_version="0.3"),
            types.AgentInterface(
                url=reference.server.address, protocol_binding="GRPC", protocol_version="1.0", tenant="acme"
            ),
        ],
    )
    acme = A2AClient.from_card(card, timeout=10)
    assert (acme.target, acme.tenant) == (reference.server.address, "acme")
    try:
        ask = (await acme.send_message(A2AClient.text_request("ask"))).task
        # Every other call finds the task: each carries tenant "acme".
        assert (await acme.get_task(ask.id)).id == ask.id
        listed = await acme.list_tasks()
        assert [t.id for t in listed.tasks] == [ask.id]
        hook = types.TaskPushNotificationConfig(task_id=ask.id, id="h", url="https://hooks.example.com/h")
        assert (await acme.create_task_push_notification_config(hook)).tenant == "acme"
        assert (await acme.get_task_push_notification_config(ask.id, "h")).url == hook.url
        assert len((await acme.list_task_push_notification_configs(ask.id)).configs) == 1
        await acme.delete_task_push_notification_config(ask.id, "h")
        slow = (await acme.send_message(A2AClient.text_request("slow 30", return_immediately=True))).task
        stream = acme.subscribe_to_task(slow.id)
        first = await anext(stream)
        assert first.task.id == slow.id
        await stream.aclose()
        assert (await acme.cancel_task(slow.id)).status.state == types.TASK_STATE_CANCELED
        # The default tenant sees none of it; a request naming its own tenant keeps it.
        assert not (await reference.client.list_tasks()).tasks
        with pytest.raises(errors.TaskNotFoundError):
            await reference.client.get_task(ask.id)
        mine = types.ListTasksRequest(tenant="other")
        assert not (await acme.list_tasks(mine)).tasks
        assert mine.tenant == "other"
    finally:
        await acme.close()
    with pytest.raises(
        errors.UnavailableError, match=r"no GRPC interface for A2A 1\.x; its card offers JSONRPC"
    ):
        A2AClient.from_card(
            types.AgentCard(name="x", supported_interfaces=card.supported_interfaces[:2]), v03=False
        )


async def _raw(address: str, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(payload, metadata=(("a2a-version", "1.0"),), timeout=10)
    return failed.value


@pytest.mark.parametrize(
    "method",
    ["/lf.a2a.v1.A2AService/SendMessage", "/lf.a2a.v1.A2AService/SubscribeToTask", GET_AGENT_CARD],
)
async def test_undecodable_request_bytes_are_invalid_argument(reference: Served, method: str) -> None:
    address = reference.server.address
    if "Subscribe" in method:  # a server-streaming method: read the stream to get the status
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_stream(method)(b"\xff\xff\xff", metadata=(("a2a-version", "1.0"),))
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                [m async for m in call]
        err = failed.value
    else:
        err = await _raw(address, method, b"\xff\xff\xff")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid" in (err.details() or "")
    assert "Error" not in (err.details() or "")  # no Python class name
    decoded = from_rpc_error(err)
    assert isinstance(decoded, errors.InvalidRequestError)
    assert (await reference.client.send_message(A2AClient.text_request("echo still here"))).task.id


async def test_the_reverse_bridge_refuses_undecodable_bytes_too() -> None:
    async with serve_stack(ReferenceAgent()) as stack:
        upstream = await open_json_upstream(stack.url)
        front = GrpcFront(upstream, ServerSettings(port=0))
        await front.start()
        try:
            err = await _raw(front.address, "/lf.a2a.v1.A2AService/GetTask", b"\x0a\xff")
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "lf.a2a.v1.GetTaskRequest" in (err.details() or "")
        finally:
            await front.stop(0)
            await upstream.aclose()


async def test_a_huge_id_is_not_echoed_whole(reference: Served) -> None:
    # Past MAX_ID_CHARS an id is refused unquoted; up to it, an unknown one is quoted cut short.
    for size, refusal in ((100_000, errors.InvalidParamsError), (MAX_ID_CHARS, errors.TaskNotFoundError)):
        huge = "x" * size
        for call in (
            lambda v: reference.client.get_task(v),
            lambda v: reference.client.cancel_task(v),
            lambda v: reference.client.send_message(A2AClient.text_request("hi", task_id=v)),
        ):
            with pytest.raises(refusal) as missing:
                await call(huge)
            assert len(missing.value.message) < 200
            assert f"{size} characters" in missing.value.message
            assert len(missing.value.metadata.get("task_id", "")) <= errors.MAX_DETAIL_BYTES


async def test_log_requests_writes_one_line_per_call(caplog: pytest.LogCaptureFixture) -> None:
    served = await serve(ReferenceAgent(), log_requests=True)
    try:
        with caplog.at_level(logging.INFO, "a2a_grpc.access"):
            await served.client.send_message(A2AClient.text_request("echo hi"))
            with pytest.raises(errors.TaskNotFoundError):
                await served.client.get_task("nope")
            [e async for e in served.client.send_streaming_message(A2AClient.text_request("stream 2"))]
            await asyncio.sleep(0)
        lines = [r.getMessage() for r in caplog.records if r.name == "a2a_grpc.access"]
        assert [line.split()[:3] for line in lines] == [
            ["grpc", "SendMessage", "OK"],
            ["grpc", "GetTask", "NOT_FOUND"],
            ["grpc", "SendStreamingMessage", "OK"],
        ]
        assert all(" ms peer=ipv" in line for line in lines)
    finally:
        await shutdown(served)


class Recorder(Agent):
    card = types.AgentCard(name="recorder")

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.headers.append(dict(context.headers))
        await updater.reply("seen")


async def test_binary_metadata_reaches_the_agent_as_the_bridge_would_give_it() -> None:
    agent = Recorder()
    async with serve_stack(agent) as stack:
        async with A2AClient(stack.address, timeout=10) as client:
            await client.send_message(A2AClient.text_request("x"), metadata=[("a2a-trace-bin", b"\x00\x01")])
        async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http:
            body = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}}
            sent = await http.post(
                "/message:send", json=body, headers={"A2A-Version": "1.0", "A2A-Trace-Bin": "AAE"}
            )
            assert sent.status_code == 200, sent.text
    assert [h["a2a-trace-bin"] for h in agent.headers] == ["AAE", "AAE"]
