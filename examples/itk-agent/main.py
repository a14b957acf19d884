"""The A2A Integration Test Kit's agent on a2a-grpc: ``main.py --httpPort H --grpcPort G``.

Serves, in one process (the layout the kit's runner and its agents use):

* gRPC on ``127.0.0.1:G``: ``lf.a2a.v1.A2AService`` (A2A 1.0) and ``a2a.v1.A2AService`` (0.3);
* on ``http://127.0.0.1:H``: JSON-RPC at ``/``, ``/jsonrpc`` and ``/jsonrpc/`` (the v0.3 method
  names too); HTTP+JSON at the root and under ``/rest/`` (the v0.3 routes ``/v1/...`` for a
  request without ``A2A-Version: 1.0``); the agent card at ``/.well-known/agent-card.json``,
  ``/jsonrpc/.well-known/agent-card.json`` and ``/rest/.well-known/agent-card.json``.

Port 0 picks a free port; the line ``ITK agent ready http=H grpc=G`` on stdout says which, once
both serve. ``--holdSeconds`` is how long a held task stays WORKING (the kit's agents: 10).
Webhooks to loopback are allowed (the kit's notification server listens on 127.0.0.1; a2a-grpc
refuses private targets by default, see docs/webhooks.md): run this agent on a trusted machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # agent.py, peer.py, instruction_pb2.py

from agent import ItkAgent
from layout import KitLayout

from a2a_grpc import types
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.upstream import LocalUpstream
from a2a_grpc.push import PushNotifier
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import open_store

HOST = "127.0.0.1"
PROTOCOL_VERSIONS = ("1.0", "0.3")
"""The A2A versions each interface is offered in: the 1.0 interfaces, then their 0.3 twins at the
same URLs (the kit's own agents publish both; a2a-grpc's server and HTTP front serve v0.3 beside
v1.0). The served card also carries the v0.3 members (``url``, ``preferredTransport`` JSON-RPC,
``additionalInterfaces``, ``protocolVersion``), so a v0.3 client reads it too."""
LOOPBACK = ("127.0.0.0/8", "::1/128")


def build_card(http_port: int, grpc_port: int) -> types.AgentCard:
    """The card the kit's agents publish: streaming and push notifications, one skill, and the
    three interfaces (gRPC, JSON-RPC under /jsonrpc/, HTTP+JSON under /rest/) for A2A 1.0, then
    the same three for A2A 0.3."""
    where = [
        ("GRPC", f"{HOST}:{grpc_port}"),
        ("JSONRPC", f"http://{HOST}:{http_port}/jsonrpc/"),
        ("HTTP+JSON", f"http://{HOST}:{http_port}/rest/"),
    ]
    return types.AgentCard(
        name="ITK a2a-grpc Agent",
        description="a2a-grpc's agent for the A2A Integration Test Kit: runs itk.Instruction chains.",
        version="1.0.0",
        capabilities=types.AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            types.AgentSkill(
                id="itk",
                name="ITK instruction",
                description="Runs the instruction of an application/x-protobuf part (instruction.bin).",
                tags=["itk", "interop"],
            )
        ],
        supported_interfaces=[
            types.AgentInterface(protocol_binding=binding, url=url, protocol_version=version)
            for version in PROTOCOL_VERSIONS
            for binding, url in where
        ],
    )


def free_port() -> int:
    # As the kit's runner picks ports: bind, read, close (the card must name the port before gRPC binds).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def serve(http_port: int, grpc_port: int, hold_seconds: float) -> None:
    http = HttpServer(None, HOST, http_port, grace=1.0)
    http.bind()  # the real port, held from now on
    grpc_port = grpc_port or free_port()
    agent = ItkAgent(build_card(http.port, grpc_port), hold_seconds=hold_seconds)
    notifier = PushNotifier(policy=WebhookPolicy(allow=LOOPBACK))
    store = open_store("memory")
    server = A2AServer(agent, store, ServerSettings(host=HOST, port=grpc_port), notifier=notifier)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
        assert server.handler is not None
        assert server.service is not None
        # No public_url: the card keeps exactly the interfaces above (no extra root ones).
        http.app = KitLayout(BridgeApp(LocalUpstream(server.handler, server.service)))
        await http.start()
        print(f"ITK agent ready http={http.port} grpc={grpc_port}", flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await server.stop(1.0)
        await http.stop()
        await notifier.aclose()
        await store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="a2a-grpc's agent for the A2A Integration Test Kit")
    parser.add_argument(
        "--httpPort", type=int, default=10102, help="JSON-RPC, HTTP+JSON and the card (0: free)"
    )
    parser.add_argument("--grpcPort", type=int, default=11002, help="gRPC (0: a free port)")
    parser.add_argument(
        "--holdSeconds", type=float, default=10.0, help="how long a held task stays WORKING (kit: 10)"
    )
    args = parser.parse_args(argv)
    level = os.environ.get("ITK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO))
    asyncio.run(serve(args.httpPort, args.grpcPort, args.holdSeconds))


if __name__ == "__main__":
    main()
