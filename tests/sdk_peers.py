"""Peers for the interoperability tests: real a2a-sdk servers and clients, and small agents of ours.

* :class:`SdkAgentExecutor` is an a2a-sdk ``AgentExecutor`` with the reference agent's skills
  (echo, ``reply``, ``stream N``, ``slow SECONDS``, ``fail TEXT``, ``ask``), served by
  :func:`sdk_server` through the SDK's own ``DefaultRequestHandler`` and ``GrpcHandler``.
* :func:`sdk_client` builds the SDK's client the way the SDK intends: ``ClientFactory`` with a
  ``ClientConfig`` that speaks gRPC, from our agent card converted with ``interop.to_sdk``.
* :class:`TunedAgent` is our reference agent with a card that lacks capabilities, requires an
  extension, or declares an extended card it does not have; it also misbehaves on request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.client.transports.grpc import GrpcTransport
from a2a.helpers import new_task_from_user_message, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.tasks import InMemoryPushNotificationConfigStore, InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as sdk
from a2a.types import a2a_pb2_grpc as sdk_grpc
from a2a.utils.constants import TransportProtocol

from a2a_grpc import interop, types
from a2a_grpc.agent import RequestContext as OurRequestContext
from a2a_grpc.agent import TaskUpdater as OurTaskUpdater
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore as OurTaskStore
from tests.conftest import Authenticated

__all__ = [
    "REQUIRED_EXTENSION",
    "SdkAgentExecutor",
    "SdkPeer",
    "TunedAgent",
    "sdk_card",
    "sdk_client",
    "sdk_peer",
    "sdk_server",
    "sdk_transport",
    "serve",
]

REQUIRED_EXTENSION = "https://example.invalid/ext/required/v1"
STOP_GRACE = 1.0


# --- our side -----------------------------------------------------------------------------------


class TunedAgent(ReferenceAgent):
    """The reference agent with a card tuned per test, plus two ways to misbehave.

    ``silent`` ends without any output (the server must answer InvalidAgentResponse) and
    ``crash`` raises a plain exception before any output (the server must answer InternalError).
    """

    def __init__(
        self,
        *,
        streaming: bool = True,
        push: bool = True,
        extended: bool = True,
        extended_configured: bool = True,
        required_extension: str = "",
    ) -> None:
        super().__init__()
        caps = self.card.capabilities
        caps.streaming, caps.push_notifications, caps.extended_agent_card = streaming, push, extended
        if required_extension:
            caps.extensions.add(uri=required_extension, description="must be declared", required=True)
        if not extended_configured:
            self.extended_card = None

    async def execute(self, context: OurRequestContext, updater: OurTaskUpdater) -> None:
        match context.text.strip():
            case "silent":
                return
            case "crash":
                raise RuntimeError("secret detail that must not reach the wire")
        await super().execute(context, updater)


@contextlib.asynccontextmanager
async def serve(agent: ReferenceAgent | None = None) -> AsyncIterator[A2AServer]:
    """Our A2AServer on 127.0.0.1, a free port, with an in-memory task store; every caller is
    authenticated (as tests.conftest.Authenticated does), so the extended card is served."""
    settings = ServerSettings(host="127.0.0.1", port=0, interceptors=[Authenticated()])
    server = A2AServer(agent or ReferenceAgent(), OurTaskStore(), settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(STOP_GRACE)


@contextlib.asynccontextmanager
async def sdk_client(card: types.AgentCard, *, streaming: bool = True) -> AsyncIterator[Client]:
    """The SDK's client for an agent card of ours, built by the SDK's ClientFactory over gRPC."""
    config = ClientConfig(
        streaming=streaming,
        supported_protocol_bindings=[TransportProtocol.GRPC],
        grpc_channel_factory=grpc.aio.insecure_channel,
    )
    client = ClientFactory(config).create(interop.to_sdk(card))  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()


@dataclass
class SdkPeer:
    """Our server and the SDK's clients of it."""

    server: A2AServer
    client: Client
    """Built by ClientFactory with streaming on: ``send_message`` uses SendStreamingMessage."""
    unary: Client
    """Built by ClientFactory with streaming off: ``send_message`` uses SendMessage."""
    transport: GrpcTransport
    """The bare transport, card-less: it makes every call, whatever the card declares."""


@contextlib.asynccontextmanager
async def sdk_peer(agent: ReferenceAgent | None = None) -> AsyncIterator[SdkPeer]:
    """Our server running ``agent`` (default: the reference agent) and the SDK's clients of it."""
    async with (
        serve(agent) as server,
        sdk_client(server.card()) as client,
        sdk_client(server.card(), streaming=False) as unary,
        sdk_transport(server.address) as transport,
    ):
        yield SdkPeer(server, client, unary, transport)


@contextlib.asynccontextmanager
async def sdk_transport(address: str, card: sdk.AgentCard | None = None) -> AsyncIterator[GrpcTransport]:
    """The SDK's bare gRPC transport: one method per RPC, no client-side capability checks."""
    transport = GrpcTransport(grpc.aio.insecure_channel(address), card)
    try:
        yield transport
    finally:
        await transport.close()


# --- the SDK's side -----------------------------------------------------------------------------


def _text(text: str) -> list[sdk.Part]:
    return [sdk.Part(text=text)]


class SdkAgentExecutor(AgentExecutor):
    """An a2a-sdk agent with the reference agent's skills, chosen by the message's first word."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        text = context.get_user_input().strip()
        word, _, rest = text.partition(" ")
        task = context.current_task
        if task is None and word == "reply":
            await event_queue.enqueue_event(new_text_message(rest or "hello", context_id=context.context_id))
            return
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        if task.status.state == sdk.TASK_STATE_INPUT_REQUIRED:
            await updater.start_work()
            await updater.complete(updater.new_agent_message(_text(f"thanks, you said: {text}")))
            return
        match word:
            case "stream":
                await updater.start_work()
                for i in range(int(rest or "3")):
                    await updater.add_artifact(
                        _text(f"chunk {i}"),
                        artifact_id="stream",
                        name="stream",
                        append=i > 0,
                        last_chunk=i == int(rest or "3") - 1,
                    )
                await updater.complete()
            case "slow":
                await updater.start_work(updater.new_agent_message(_text("starting")))
                loop = asyncio.get_running_loop()
                end = loop.time() + float(rest or "1")
                while (left := end - loop.time()) > 0:
                    await asyncio.sleep(min(0.05, left))
                    await updater.start_work(updater.new_agent_message(_text("working")))
                await updater.complete(updater.new_agent_message(_text("done")))
            case "fail":
                await updater.failed(updater.new_agent_message(_text(rest or "failed on request")))
            case "ask":
                await updater.requires_input(updater.new_agent_message(_text("what should I work on?")))
            case _:
                await updater.add_artifact(_text(text), name="echo", last_chunk=True)
                await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()


def sdk_card(*, streaming: bool = True, push: bool = True, extended: bool = True) -> sdk.AgentCard:
    card = sdk.AgentCard(
        name="a2a-sdk peer",
        description="An a2a-sdk agent with the reference agent's skills",
        version="1.0.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[sdk.AgentSkill(id="echo", name="Echo", description="echo", tags=["echo"])],
    )
    card.capabilities.streaming = streaming
    card.capabilities.push_notifications = push
    card.capabilities.extended_agent_card = extended
    return card


def sdk_handler(card: sdk.AgentCard, *, push: bool, extended_card: bool) -> DefaultRequestHandler:
    """The SDK's DefaultRequestHandler over :class:`SdkAgentExecutor`, in-memory stores; with
    ``extended_card``, an extended card that is ``card`` as it stands now, marked "(extended)"."""
    extended: sdk.AgentCard | None = None
    if extended_card:
        extended = sdk.AgentCard()
        extended.CopyFrom(card)
        extended.description += " (extended)"
    return DefaultRequestHandler(
        agent_executor=SdkAgentExecutor(),
        task_store=InMemoryTaskStore(),
        agent_card=card,
        push_config_store=InMemoryPushNotificationConfigStore() if push else None,
        extended_agent_card=extended,
    )


@contextlib.asynccontextmanager
async def sdk_server(
    *, streaming: bool = True, push: bool = True, extended: bool = True, extended_configured: bool = True
) -> AsyncIterator[str]:
    """An a2a-sdk gRPC server (DefaultRequestHandler + GrpcHandler) on 127.0.0.1; yields host:port."""
    card = sdk_card(streaming=streaming, push=push, extended=extended)
    handler = sdk_handler(card, push=push, extended_card=extended and extended_configured)
    server = grpc.aio.server()
    sdk_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    address = f"127.0.0.1:{port}"
    card.supported_interfaces.add(url=address, protocol_binding="GRPC", protocol_version="1.0")
    await server.start()
    try:
        yield address
    finally:
        await server.stop(None)
        await handler.aclose()
