"""An official-SDK agent for the ITK tests: the kit's Python v1.0 agent's behaviour on a2a-sdk 1.3.0.

Run as its own process (``python tests/itk_sdk_agent.py --httpPort 0 --grpcPort 0``); prints
``ITK agent ready http=H grpc=G``. Written here from the behaviour the kit's reference agent
(a2aproject/a2a-itk agents/python/v10) has, on the SDK's public pieces: DefaultRequestHandler,
the SDK's JSON-RPC routes under /jsonrpc and REST routes under /rest (each with the card), its
GrpcHandler, in-memory stores, BasePushNotificationSender; outbound calls through the SDK's
``create_client`` restricted to the binding named. The instruction module is our example's.
Differences from the kit's agent, on purpose: v1.0 only (no v0.3 compat handlers), and the hold
time is ``--holdSeconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import uvicorn
from a2a.client import ClientConfig, create_client
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import BasePushNotificationSender, InMemoryPushNotificationConfigStore, TaskUpdater
from a2a.server.tasks.inmemory_task_store import InMemoryTaskStore
from a2a.types import a2a_pb2 as sdk
from a2a.types import a2a_pb2_grpc as sdk_grpc
from a2a.utils import TransportProtocol
from google.protobuf.message import DecodeError
from starlette.applications import Starlette
from starlette.routing import Mount

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "itk-agent"))
import instruction_pb2 as itk

HOST = "127.0.0.1"
FINISHED = "task-finished"
BINDINGS = {
    "JSONRPC": TransportProtocol.JSONRPC,
    "HTTP_JSON": TransportProtocol.HTTP_JSON,
    "HTTP+JSON": TransportProtocol.HTTP_JSON,
    "REST": TransportProtocol.HTTP_JSON,
    "GRPC": TransportProtocol.GRPC,
}


def instruction_of(message: sdk.Message) -> itk.Instruction | None:
    for part in message.parts:
        raw: bytes | None = None
        if part.HasField("raw"):
            raw = part.raw
        elif part.HasField("text"):
            try:
                raw = base64.b64decode(part.text, validate=True)
            except (binascii.Error, ValueError):
                raw = None
        if raw is None:
            continue
        found = itk.Instruction()
        try:
            found.ParseFromString(raw)
        except DecodeError:
            continue
        if found.WhichOneof("step"):
            return found
    return None


def holds(instruction: itk.Instruction) -> bool:
    if instruction.HasField("return_response"):
        return instruction.return_response.hold_task
    if instruction.HasField("steps"):
        return any(holds(step) for step in instruction.steps.instructions)
    return False


def event_texts(event: Any) -> list[str]:
    message = None
    if event.HasField("message"):
        message = event.message
    elif event.HasField("task") and event.task.status.HasField("message"):
        message = event.task.status.message
    elif event.HasField("status_update") and event.status_update.status.HasField("message"):
        message = event.status_update.status.message
    return [p.text for p in message.parts if p.text] if message is not None else []


async def resubscribing(client: Any, request: sdk.SendMessageRequest) -> list[str]:
    events = client.send_message(request)
    task_id = ""
    async for event in events:
        task_id = event.task.id if event.HasField("task") else event.status_update.task_id
        break
    await events.aclose()
    out: list[str] = []
    finished = False
    again = client.subscribe(sdk.SubscribeToTaskRequest(id=task_id))
    async for event in again:
        texts = event_texts(event)
        if event.HasField("task"):
            kept = [
                p.text
                for m in event.task.history
                if m.role == sdk.ROLE_AGENT
                for p in m.parts
                if FINISHED in p.text
            ]
            texts = kept[:1] or texts
        out.extend(t.replace(FINISHED, "") for t in texts)
        if any(FINISHED in t for t in texts):
            finished = True
            break
    await again.aclose()
    if not finished:
        await client.cancel_task(sdk.CancelTaskRequest(id=task_id))
    return out


async def call_agent(call: itk.CallAgent) -> list[str]:
    binding = BINDINGS.get(call.transport.upper())
    if binding is None:
        raise ValueError(f"unsupported transport {call.transport!r}")
    config = ClientConfig()
    config.grpc_channel_factory = grpc.aio.insecure_channel
    config.supported_protocol_bindings = [binding]
    config.streaming = call.streaming or binding == TransportProtocol.GRPC
    if call.HasField("push_notification"):
        url = call.push_notification.url
        url = url if url.startswith(("http://", "https://")) else "http://" + url
        config.push_notification_config = sdk.TaskPushNotificationConfig(
            url=url + "/notifications", token="itk-token"
        )
    async with httpx.AsyncClient(timeout=30.0) as http:
        config.httpx_client = http
        client = await create_client(call.agent_card_uri, client_config=config)
        message = sdk.Message(role=sdk.ROLE_USER, message_id=str(uuid.uuid4()))
        message.parts.add(
            raw=call.instruction.SerializeToString(),
            media_type="application/x-protobuf",
            filename="instruction.bin",
        )
        request = sdk.SendMessageRequest(message=message)
        if call.HasField("resubscribe"):
            return await resubscribing(client, request)
        out: list[str] = []
        async for event in client.send_message(request):
            out.extend(event_texts(event))
        return out


async def run(instruction: itk.Instruction) -> list[str]:
    if instruction.HasField("call_agent"):
        return await call_agent(instruction.call_agent)
    if instruction.HasField("return_response"):
        return [instruction.return_response.response]
    out: list[str] = []
    for step in instruction.steps.instructions:
        out.extend(await run(step))
    return out


class ItkExecutor(AgentExecutor):
    def __init__(self, hold_seconds: float) -> None:
        self.hold_seconds = hold_seconds

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        task = sdk.Task(id=context.task_id, context_id=context.context_id)
        task.status.state = sdk.TASK_STATE_SUBMITTED
        if context.message is not None:
            task.history.append(context.message)
        await event_queue.enqueue_event(task)
        await updater.start_work()
        instruction = instruction_of(context.message) if context.message is not None else None
        if instruction is None:
            text = sdk.Part(text="No valid instruction found in request")
            await updater.failed(updater.new_agent_message([text]))
            return
        try:
            response = "\n".join(await run(instruction))
        except Exception as exc:
            await updater.failed(updater.new_agent_message([sdk.Part(text=f"failed: {exc}")]))
            return
        if holds(instruction):
            held = updater.new_agent_message([sdk.Part(text=f"{response}\n{FINISHED}")])
            await updater.update_status(sdk.TASK_STATE_WORKING, message=held)
            await asyncio.sleep(self.hold_seconds)
            await updater.complete(held)
            return
        await updater.complete(updater.new_agent_message([sdk.Part(text=response)]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def serve(http_port: int, grpc_port: int, hold_seconds: float) -> None:
    http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
    card = sdk.AgentCard(
        name="ITK SDK v10 Agent (test)",
        description="the kit's Python v1.0 agent's behaviour on a2a-sdk",
        version="1.0.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    card.skills.add(id="itk", name="ITK instruction", description="runs itk.Instruction chains", tags=["itk"])
    card.capabilities.streaming = True
    card.capabilities.push_notifications = True
    for binding, url in (
        (TransportProtocol.GRPC, f"{HOST}:{grpc_port}"),
        (TransportProtocol.JSONRPC, f"http://{HOST}:{http_port}/jsonrpc/"),
        (TransportProtocol.HTTP_JSON, f"http://{HOST}:{http_port}/rest/"),
    ):
        card.supported_interfaces.add(protocol_binding=binding, url=url, protocol_version="1.0")
    pushes = InMemoryPushNotificationConfigStore()
    http = httpx.AsyncClient(timeout=10.0)
    handler = DefaultRequestHandler(
        agent_executor=ItkExecutor(hold_seconds),
        task_store=InMemoryTaskStore(),
        agent_card=card,
        push_config_store=pushes,
        push_sender=BasePushNotificationSender(http, pushes),
    )
    cards = create_agent_card_routes(agent_card=card)
    app = Starlette(
        routes=[
            Mount("/jsonrpc", routes=[*create_jsonrpc_routes(request_handler=handler, rpc_url="/"), *cards]),
            Mount("/rest", routes=[*create_rest_routes(request_handler=handler), *cards]),
        ]
    )
    server = grpc.aio.server()
    sdk_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"{HOST}:{grpc_port}")
    await server.start()
    web = uvicorn.Server(uvicorn.Config(app, host=HOST, port=http_port, log_level="warning", lifespan="off"))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(web, "should_exit", True))

    async def announce() -> None:
        while not web.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        print(f"ITK agent ready http={http_port} grpc={grpc_port}", flush=True)

    announcer = asyncio.create_task(announce())
    try:
        await web.serve()
    finally:
        announcer.cancel()
        await server.stop(1.0)
        await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--httpPort", type=int, default=10102)
    parser.add_argument("--grpcPort", type=int, default=11002)
    parser.add_argument("--holdSeconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(serve(args.httpPort, args.grpcPort, args.holdSeconds))


if __name__ == "__main__":
    main()
