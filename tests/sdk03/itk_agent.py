"""An official-SDK v0.3 agent for the ITK tests: the kit's Python v0.3 agent's behaviour on a2a-sdk 0.3.

Runs INSIDE build/sdk03-venv (a2a-sdk 0.3.x), never in our virtualenv:

    build/sdk03-venv/bin/python tests/sdk03/itk_agent.py --httpPort 0 --grpcPort 0 [--holdSeconds S]

and prints ``ITK agent ready http=H grpc=G`` once it serves (port 0: a free port). Written here from
the behaviour the kit's v0.3 agents have (a2aproject/a2a-itk agents/ts/v03 and go/v03; its Python
v0.3 agent lives in a2a-python's v0.3 branch), on the SDK's public pieces only:

* serving: the SDK's JSON-RPC app mounted at ``/jsonrpc`` and its HTTP+JSON app at ``/rest``
  (routes ``/rest/v1/...``), the card at ``/.well-known/agent-card.json`` under the root and both
  mounts; its GrpcHandler (``a2a.v1.A2AService``) on the gRPC port; DefaultRequestHandler with
  in-memory task and push-config stores and BasePushNotificationSender (push bodies: v0.3 Task JSON).
* the card: v0.3 (``protocolVersion`` 0.3.0, ``url`` the JSON-RPC endpoint, preferred JSONRPC,
  ``additionalInterfaces`` for the three bindings).
* the instruction (instruction.proto of our example): the first FilePart's bytes (base64), else a
  text part in base64; none: the task FAILS with "No valid instruction found in request".
* the outbound call: the SDK's ClientFactory restricted to the binding named (jsonrpc, http_json,
  grpc; any case), streaming when asked and always over gRPC; the nested message is one FilePart
  (``application/x-protobuf``, ``instruction.bin``); push: a client push config
  ``<url>/notifications`` with token ``itk-token``; resubscribe: stream, drop it after the first
  event, ``resubscribe``, read until ``task-finished``, cancel if it never comes.
* hold (any ``return_response.hold_task``): WORKING with the result and ``task-finished``, the same
  status re-sent five times over ``--holdSeconds`` (the SDK's resubscribe only taps events still
  to come, so a late subscriber needs a fresh one), then COMPLETED with it; cancel ends it CANCELED.

Differences from the kit's agents, on purpose: the hold time is ``--holdSeconds`` (kit: 10 s), and
a hold that runs out COMPLETES the task (the kit's v0.3 agents FAIL it; nothing reads it then).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import httpx
import uvicorn
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.grpc import a2a_pb2_grpc
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.apps import A2ARESTFastAPIApplication, A2AStarletteApplication
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.tasks import (
    BasePushNotificationSender,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
    TaskUpdater,
)
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    FilePart,
    FileWithBytes,
    Message,
    Part,
    PushNotificationConfig,
    Role,
    Task,
    TaskIdParams,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    TextPart,
    TransportProtocol,
)
from google.protobuf.message import DecodeError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "itk-agent"))
import instruction_pb2 as itk

HOST = "127.0.0.1"
CARD_PATH = "/.well-known/agent-card.json"
FINISHED = "task-finished"
NO_INSTRUCTION = "No valid instruction found in request"
HOLD_TICKS = 5
BINDINGS = {
    "JSONRPC": TransportProtocol.jsonrpc,
    "HTTP_JSON": TransportProtocol.http_json,
    "HTTP+JSON": TransportProtocol.http_json,
    "REST": TransportProtocol.http_json,
    "GRPC": TransportProtocol.grpc,
}
FAILED = (TaskState.failed, TaskState.rejected, TaskState.canceled)


def _parse(raw: bytes) -> itk.Instruction | None:
    found = itk.Instruction()
    try:
        found.ParseFromString(raw)
    except DecodeError:
        return None
    return found if found.WhichOneof("step") else None


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def instruction_of(message: Message) -> itk.Instruction | None:
    for part in message.parts:
        root = part.root
        raw: bytes | None = None
        if isinstance(root, FilePart) and isinstance(root.file, FileWithBytes):
            raw = _unbase64(root.file.bytes)
        elif isinstance(root, TextPart):
            raw = _unbase64(root.text)
        found = _parse(raw) if raw is not None else None
        if found is not None:
            return found
    return None


def holds(instruction: itk.Instruction) -> bool:
    if instruction.HasField("return_response"):
        return instruction.return_response.hold_task
    if instruction.HasField("steps"):
        return any(holds(step) for step in instruction.steps.instructions)
    return False


def _texts(message: Message | None) -> list[str]:
    if message is None:
        return []
    return [p.root.text for p in message.parts if isinstance(p.root, TextPart) and p.root.text]


def _check(task: Task, who: str) -> None:
    if task.status.state in FAILED:
        said = " ".join(_texts(task.status.message)) or "no message"
        raise RuntimeError(f"the agent at {who} ended its task {task.status.state.value}: {said}")


def event_texts(event: Any, who: str) -> list[str]:
    """The texts of what the SDK client yields: a Message, or (task, update): the update's status
    message, or the task's status message when the event was the task itself."""
    if isinstance(event, Message):
        return _texts(event)
    task, update = event
    _check(task, who)
    if update is None:
        return _texts(task.status.message)
    if isinstance(update, TaskStatusUpdateEvent):
        return _texts(update.status.message)
    return []


async def resubscribing(client: Any, message: Message, who: str) -> list[str]:
    stream = client.send_message(message)
    first = await anext(stream)
    await stream.aclose()
    if isinstance(first, Message):
        return _texts(first)  # no task to come back to
    task_id = first[0].id
    out: list[str] = []
    finished = False
    again = client.resubscribe(TaskIdParams(id=task_id))
    try:
        async for event in again:
            task, _ = event
            _check(task, who)
            kept = [
                text
                for m in task.history or []
                if m.role == Role.agent
                for text in _texts(m)
                if FINISHED in text
            ]
            texts = kept[:1] or event_texts(event, who)
            out.extend(t.replace(FINISHED, "") for t in texts)
            if any(FINISHED in t for t in texts):
                finished = True
                break
    finally:
        await again.aclose()
    if not finished:
        await client.cancel_task(TaskIdParams(id=task_id))
    return out


async def call_agent(call: itk.CallAgent) -> list[str]:
    binding = BINDINGS.get(call.transport.upper())
    if binding is None:
        raise ValueError(f"unsupported transport {call.transport!r}")
    who = call.agent_card_uri
    streaming = call.streaming or binding == TransportProtocol.grpc
    if call.HasField("resubscribe") and not streaming:
        raise ValueError("the resubscribe behaviour needs streaming")
    pushes: list[PushNotificationConfig] = []
    if call.HasField("push_notification"):
        url = call.push_notification.url
        url = url if url.startswith(("http://", "https://")) else "http://" + url
        pushes.append(PushNotificationConfig(url=url.rstrip("/") + "/notifications", token="itk-token"))
    async with httpx.AsyncClient(timeout=30.0) as http:
        card = await A2ACardResolver(http, who).get_agent_card()
        config = ClientConfig(
            streaming=streaming,
            polling=False,
            httpx_client=http,
            grpc_channel_factory=grpc.aio.insecure_channel,
            supported_transports=[binding],
            use_client_preference=True,
            push_notification_configs=pushes,
        )
        client = ClientFactory(config).create(card)
        try:
            data = base64.b64encode(call.instruction.SerializeToString()).decode()
            file = FileWithBytes(bytes=data, mime_type="application/x-protobuf", name="instruction.bin")
            message = Message(
                role=Role.user,
                message_id=str(uuid.uuid4()),
                parts=[Part(root=FilePart(file=file))],
            )
            if call.HasField("resubscribe"):
                return await resubscribing(client, message, who)
            out: list[str] = []
            async for event in client.send_message(message):
                out.extend(event_texts(event, who))
            return out
        finally:
            await client.close()


async def run(instruction: itk.Instruction) -> list[str]:
    if instruction.HasField("call_agent"):
        return await call_agent(instruction.call_agent)
    if instruction.HasField("return_response"):
        return [instruction.return_response.response]
    out: list[str] = []
    for step in instruction.steps.instructions:
        out.extend(await run(step))
    return out


def _text_message(updater: TaskUpdater, text: str) -> Message:
    return updater.new_agent_message([Part(root=TextPart(text=text))])


class ItkExecutor(AgentExecutor):
    def __init__(self, hold_seconds: float) -> None:
        self.hold_seconds = hold_seconds

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None
        assert context.context_id is not None
        assert context.message is not None
        history = [context.message]
        task = Task(
            id=context.task_id,
            context_id=context.context_id,
            status=TaskStatus(state=TaskState.submitted),
            history=history,
        )
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        instruction = instruction_of(context.message)
        if instruction is None:
            await updater.failed(_text_message(updater, NO_INSTRUCTION))
            return
        try:
            response = "\n".join(await run(instruction))
        except Exception as exc:
            await updater.failed(_text_message(updater, f"failed: {exc}"))
            return
        if not holds(instruction):
            await updater.complete(_text_message(updater, response))
            return
        held = _text_message(updater, f"{response}\n{FINISHED}")
        await updater.update_status(TaskState.working, message=held)
        for _ in range(HOLD_TICKS):
            await asyncio.sleep(self.hold_seconds / HOLD_TICKS)
            await updater.update_status(TaskState.working, message=held)
        await updater.complete(held)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # The SDK cancels the running execute() itself; the executor reports the new state.
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()


def agent_card(http_port: int, grpc_port: int) -> AgentCard:
    jsonrpc = f"http://{HOST}:{http_port}/jsonrpc/"
    return AgentCard(
        name="ITK SDK v03 Agent (test)",
        description="the kit's Python v0.3 agent's behaviour on a2a-sdk 0.3",
        version="0.3.0",
        protocol_version="0.3.0",
        url=jsonrpc,
        preferred_transport=TransportProtocol.jsonrpc,
        additional_interfaces=[
            AgentInterface(url=jsonrpc, transport=TransportProtocol.jsonrpc),
            AgentInterface(url=f"http://{HOST}:{http_port}/rest", transport=TransportProtocol.http_json),
            AgentInterface(url=f"{HOST}:{grpc_port}", transport=TransportProtocol.grpc),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain", "application/x-protobuf"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="itk", name="ITK instruction", description="runs itk.Instruction chains", tags=["itk"]
            )
        ],
    )


async def serve(http_port: int, grpc_port: int, hold_seconds: float) -> None:
    web_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    web_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    web_sock.bind((HOST, http_port))
    web_sock.listen(128)
    http_port = web_sock.getsockname()[1]
    server = grpc.aio.server()
    grpc_port = server.add_insecure_port(f"{HOST}:{grpc_port}")
    card = agent_card(http_port, grpc_port)
    push_http = httpx.AsyncClient(timeout=10.0)
    pushes = InMemoryPushNotificationConfigStore()
    handler = DefaultRequestHandler(
        agent_executor=ItkExecutor(hold_seconds),
        task_store=InMemoryTaskStore(),
        push_config_store=pushes,
        push_sender=BasePushNotificationSender(push_http, pushes),
    )
    card_json = card.model_dump(mode="json", by_alias=True, exclude_none=True)

    async def card_endpoint(_: Request) -> JSONResponse:
        return JSONResponse(card_json)

    app = Starlette(
        routes=[
            Route(CARD_PATH, card_endpoint, methods=["GET"]),
            Mount(
                "/jsonrpc",
                app=A2AStarletteApplication(card, handler).build(agent_card_url=CARD_PATH, rpc_url="/"),
            ),
            Mount(
                "/rest",
                app=A2ARESTFastAPIApplication(card, handler).build(agent_card_url=CARD_PATH, rpc_url=""),
            ),
        ]
    )
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(card, handler), server)  # type: ignore[no-untyped-call]
    await server.start()
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(web, "should_exit", True))

    async def announce() -> None:
        while not web.started:  # noqa: ASYNC110 - uvicorn offers no event for it
            await asyncio.sleep(0.05)
        print(f"ITK agent ready http={http_port} grpc={grpc_port}", flush=True)

    announcer = asyncio.create_task(announce())
    try:
        await web.serve(sockets=[web_sock])
    finally:
        announcer.cancel()
        with contextlib.suppress(Exception):
            await server.stop(1.0)
        await push_http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="the kit's Python v0.3 agent's behaviour on a2a-sdk 0.3")
    parser.add_argument("--httpPort", type=int, default=10103, help="JSON-RPC, HTTP+JSON, the card (0: free)")
    parser.add_argument("--grpcPort", type=int, default=11003, help="gRPC (0: free)")
    parser.add_argument("--holdSeconds", type=float, default=10.0, help="how long a held task stays WORKING")
    args = parser.parse_args()
    asyncio.run(serve(args.httpPort, args.grpcPort, args.holdSeconds))


if __name__ == "__main__":
    main()
