"""An official a2a-sdk 0.3 agent on JSON-RPC, HTTP+JSON and gRPC, for the v0.3 interop tests.

Runs INSIDE build/sdk03-venv (a2a-sdk 0.3.x), never in our virtualenv:

    build/sdk03-venv/bin/python tests/sdk03/server.py

It binds 127.0.0.1 port 0 three times (JSON-RPC at '/', HTTP+JSON under /v1, gRPC), then prints
one JSON line naming them and the card URL, and serves until SIGTERM (or SIGINT). Everything is
the SDK's own: DefaultRequestHandler, in-memory task and push-config stores, the push sender.

Its skills follow our reference agent (a2a_grpc/reference_agent.py), by the message's first word:
``echo TEXT`` or anything else: completes with an artifact "echo" holding the whole text;
``reply TEXT``: a direct Message, no task; ``stream N``: N chunks appended to one artifact
"stream", then completed; ``slow S``: working updates for S seconds, then completed (CancelTask
cancels it); ``input``/``ask``: input-required, and the next message to the task completes it;
``fail [TEXT]``: failed with TEXT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys

import grpc
import httpx
import uvicorn
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
    Part,
    TaskState,
    TextPart,
    TransportProtocol,
)
from a2a.utils import new_agent_text_message, new_task

CARD_PATH = "/.well-known/agent-card.json"
MAX_SLOW_SECONDS = 600.0
MAX_STREAM_CHUNKS = 10_000


def _text(text: str) -> list[Part]:
    return [Part(root=TextPart(text=text))]


class Sdk03Executor(AgentExecutor):
    """The reference agent's skills, written on the 0.3 SDK's executor API."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        text = context.get_user_input().strip()
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        task = context.current_task
        if task is None and word.lower() == "reply":
            await event_queue.enqueue_event(
                new_agent_text_message(rest or "hello", context_id=context.context_id)
            )
            return
        if task is None:
            task = new_task(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        if task.status.state == TaskState.input_required:
            await updater.start_work()
            await updater.complete(updater.new_agent_message(_text(f"thanks, you said: {text}")))
            return
        match word.lower():
            case "stream":
                await self._stream(updater, min(int(rest or "3"), MAX_STREAM_CHUNKS))
            case "slow":
                await self._slow(updater, min(float(rest or "1"), MAX_SLOW_SECONDS))
            case "input" | "ask":
                await updater.requires_input(
                    updater.new_agent_message(_text("what should I work on?")), final=True
                )
            case "fail":
                await updater.failed(updater.new_agent_message(_text(rest or "failed on request")))
            case _:
                await updater.add_artifact(_text(text), name="echo", last_chunk=True)
                await updater.complete()

    async def _stream(self, updater: TaskUpdater, n: int) -> None:
        await updater.start_work()
        for i in range(n):
            await updater.add_artifact(
                _text(f"chunk {i}"),
                artifact_id="stream",
                name="stream",
                append=i > 0,
                last_chunk=i == n - 1,
            )
        await updater.complete()

    async def _slow(self, updater: TaskUpdater, seconds: float) -> None:
        await updater.start_work(updater.new_agent_message(_text("starting")))
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(0.1, left))
            await updater.start_work(
                updater.new_agent_message(_text(f"{max(0.0, end - loop.time()):.1f}s left"))
            )
        await updater.complete(updater.new_agent_message(_text("done")))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # The SDK cancels the running execute() itself; the executor reports the new state.
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel(updater.new_agent_message(_text("canceled on request")))


def agent_card(jsonrpc_url: str, rest_url: str, grpc_target: str) -> AgentCard:
    return AgentCard(
        name="a2a-sdk 0.3 peer",
        description="An official a2a-sdk 0.3 agent with the reference agent's skills",
        version="0.3.26",
        protocol_version="0.3.0",
        url=jsonrpc_url,
        preferred_transport=TransportProtocol.jsonrpc,
        additional_interfaces=[
            AgentInterface(url=jsonrpc_url, transport=TransportProtocol.jsonrpc),
            AgentInterface(url=rest_url, transport=TransportProtocol.http_json),
            AgentInterface(url=grpc_target, transport=TransportProtocol.grpc),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(id="echo", name="Echo", description="echo TEXT: an artifact with TEXT", tags=["echo"]),
            AgentSkill(id="stream", name="Stream", description="stream N: N chunks", tags=["stream"]),
            AgentSkill(id="slow", name="Slow", description="slow S: works S seconds", tags=["slow"]),
        ],
    )


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process stops all three fronts on SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


async def main() -> None:
    rpc_sock, rest_sock = _listen(), _listen()
    rpc_port, rest_port = rpc_sock.getsockname()[1], rest_sock.getsockname()[1]
    grpc_server = grpc.aio.server()
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    jsonrpc_url = f"http://127.0.0.1:{rpc_port}/"
    rest_url = f"http://127.0.0.1:{rest_port}"
    grpc_target = f"127.0.0.1:{grpc_port}"
    card = agent_card(jsonrpc_url, rest_url, grpc_target)

    push_http = httpx.AsyncClient(timeout=5.0)
    push_store = InMemoryPushNotificationConfigStore()
    handler = DefaultRequestHandler(
        agent_executor=Sdk03Executor(),
        task_store=InMemoryTaskStore(),
        push_config_store=push_store,
        push_sender=BasePushNotificationSender(push_http, push_store),
    )
    rpc_app = A2AStarletteApplication(card, handler).build(agent_card_url=CARD_PATH, rpc_url="/")
    rest_app = A2ARESTFastAPIApplication(card, handler).build(agent_card_url=CARD_PATH, rpc_url="")
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(card, handler), grpc_server)  # type: ignore[no-untyped-call]
    servers = [
        _Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        for app in (rpc_app, rest_app)
    ]
    await grpc_server.start()
    serving = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, (rpc_sock, rest_sock), strict=True)
    ]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not all(server.started for server in servers):
        if any(task.done() for task in serving):
            await asyncio.gather(*serving)  # raises what stopped a front
            raise SystemExit("an HTTP front stopped before it started")
        await asyncio.sleep(0.02)
    ready = {
        "ready": True,
        "pid": os.getpid(),
        "jsonrpc": jsonrpc_url,
        "rest": rest_url,
        "grpc": grpc_target,
        "card": f"http://127.0.0.1:{rpc_port}{CARD_PATH}",
    }
    print(json.dumps(ready), flush=True)

    await stop.wait()
    for server in servers:
        server.should_exit = True
    await grpc_server.stop(1.0)
    await asyncio.wait(serving, timeout=5.0)
    await push_http.aclose()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
