"""The ``a2a-grpc`` command: serve an agent, and talk to one."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc import errors, types

DEFAULT_STORE = "sqlite:///.a2a/tasks.db"
DEFAULT_GRPC_PORT = 50051


class CliError(Exception):
    """A problem worth one line to the user."""


def _json(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message), indent=2)


def load_agent(spec: str) -> Any:
    from a2a_grpc.agent import Agent

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"--agent must look like module:attribute, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    agent = obj() if isinstance(obj, type) else obj
    if not isinstance(agent, Agent):
        raise CliError(f"{spec} is not an a2a_grpc.agent.Agent (or a class of one)")
    return agent


def _address(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"{flag} must look like HOST:PORT, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("a2a-grpc: stopping", flush=True)


def _bridge_settings(args: argparse.Namespace) -> Any:
    from bridge.app import BridgeSettings

    try:
        return BridgeSettings(
            public_url=args.public_url,
            max_body_bytes=args.max_body_mib * 1024 * 1024,
            heartbeat_seconds=args.heartbeat,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None


async def _start_http(app: Any, host: str, port: int) -> Any:
    # The composition root: the CLI is the one place that puts the bridge and the runtime together.
    from bridge.httpserver import HttpServer

    http = HttpServer(app, host, port)
    try:
        http.bind()
    except OSError as exc:
        raise CliError(str(exc)) from None
    if app.public_url is None:
        app.public_url = http.url
    await http.start()
    return http


async def serve(args: argparse.Namespace) -> int:
    from a2a_grpc.push import PushNotifier
    from a2a_grpc.server import A2AServer, ServerSettings
    from a2a_grpc.tasks import open_store

    agent = load_agent(args.agent)
    try:
        settings = ServerSettings(host=args.host, port=args.grpc_port)
        store = open_store(args.store)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    notifier = PushNotifier()
    http: Any = None
    interfaces: list[types.AgentInterface] = []
    if args.http_port is not None:
        # The composition root: the CLI is the one place that puts the bridge and the runtime together.
        from bridge.app import BridgeApp, bridge_interfaces
        from bridge.httpserver import HttpServer

        http = HttpServer(None, args.http_host or args.host, args.http_port)
        try:
            http.bind()  # first, so the card can name the port
        except OSError as exc:
            await store.close()
            raise CliError(str(exc)) from None
        base = (args.public_url or http.url).rstrip("/")
        interfaces = bridge_interfaces(base)
    server = A2AServer(agent, store, settings, notifier=notifier, extra_interfaces=interfaces)
    try:
        try:
            await server.start()
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot listen on {args.host}:{args.grpc_port}: {exc}") from None
        print(f"a2a-grpc: serving {agent.card.name!r} over gRPC at {server.address}", flush=True)
        if http is not None:
            from bridge.upstream import LocalUpstream

            assert server.handler is not None  # set by start()
            app = BridgeApp(LocalUpstream(server.handler), _bridge_settings(args))
            app.public_url = base
            http.app = app
            await http.start()
            print(f"a2a-grpc: serving JSON-RPC and HTTP+JSON at {http.url}", flush=True)
        print(f"a2a-grpc: task store {args.store}", flush=True)
        print(f"a2a-grpc: try  a2a-grpc send {server.address} 'hello'   (Ctrl-C stops)", flush=True)
        await _until_signal()
    finally:
        if http is not None:
            await http.stop()
        await server.stop()
        await notifier.aclose()
        await store.close()
    return 0


async def _card_source(source: str, timeout: float) -> types.AgentCard:
    """An agent card from a JSON file or an http(s) URL (a base URL gets the well-known path)."""
    from bridge import codec

    if source.startswith(("http://", "https://")):
        import httpx

        from bridge.jsonclient import card_url_for, fetch_card

        async with httpx.AsyncClient() as http:
            try:
                return await fetch_card(card_url_for(source), client=http, timeout=timeout)
            except errors.A2AError as exc:
                raise CliError(f"cannot use the card at {source}: {exc.message}") from None
    try:
        body = await asyncio.to_thread(Path(source).read_bytes)
    except OSError as exc:
        raise CliError(f"cannot read the card file {source}: {exc.strerror}") from None
    try:
        return codec.from_json(body, types.AgentCard)
    except errors.A2AError as exc:
        raise CliError(f"{source} is not an A2A agent card: {exc.message}") from None


async def bridge_http_to_grpc(args: argparse.Namespace) -> int:
    from bridge.app import BridgeApp
    from bridge.upstream import GrpcUpstream

    host, port = _address(args.listen, "--listen")
    _address(args.upstream, "--upstream")
    card = await _card_source(args.card, args.timeout) if args.card else None
    upstream = GrpcUpstream(args.upstream, card=card)
    http = None
    try:
        await upstream.wait_ready(args.timeout)
        if card is None:
            try:
                await upstream.card()
            except errors.A2AError as exc:
                raise CliError(
                    f"the upstream at {args.upstream} gave no card over gRPC ({type(exc).__name__}: "
                    f"{exc.message}); pass --card FILE|URL"
                ) from None
            print(
                "a2a-grpc: publishing the upstream's extended card (GetExtendedAgentCard); "
                "pass --card to publish a public one",
                flush=True,
            )
        app = BridgeApp(upstream, _bridge_settings(args))
        http = await _start_http(app, host, port)
        print(f"a2a-grpc: bridging JSON-RPC and HTTP+JSON at {http.url} to gRPC {args.upstream}", flush=True)
        await _until_signal()
    finally:
        if http is not None:
            await http.stop()
        await upstream.aclose()
    return 0


async def bridge_grpc_to_http(args: argparse.Namespace) -> int:
    from a2a_grpc.server import ServerSettings
    from bridge.grpcfront import GrpcFront
    from bridge.jsonclient import open_json_upstream

    host, port = _address(args.listen, "--listen")
    if not args.upstream.startswith(("http://", "https://")):
        raise CliError(f"--upstream must be an http(s):// URL, not {args.upstream!r}")
    upstream = await open_json_upstream(args.upstream)
    front = GrpcFront(upstream, ServerSettings(host=host, port=port))
    try:
        try:
            await front.start()
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot listen on {args.listen}: {exc}") from None
        print(f"a2a-grpc: bridging gRPC at {front.address} to {args.upstream}", flush=True)
        await _until_signal()
    finally:
        await front.stop()
        await upstream.aclose()
    return 0


async def _with_client(args: argparse.Namespace, action: Any) -> int:
    from a2a_grpc.client import A2AClient

    async with A2AClient(args.address, timeout=args.timeout) as client:
        return int(await action(client))


async def send(args: argparse.Namespace) -> int:
    from a2a_grpc.client import A2AClient

    request = A2AClient.text_request(
        args.text,
        task_id=args.task_id or "",
        context_id=args.context_id or "",
        return_immediately=args.return_immediately,
    )

    async def run(client: A2AClient) -> int:
        if args.stream:
            async for event in client.send_streaming_message(request, timeout=args.timeout):
                print(json.dumps(json_format.MessageToDict(event)), flush=True)
        else:
            print(_json(await client.send_message(request)))
        return 0

    return await _with_client(args, run)


async def card(args: argparse.Namespace) -> int:
    if args.address.startswith(("http://", "https://")):
        import httpx

        url = args.address.rstrip("/") + "/.well-known/agent-card.json"
        async with httpx.AsyncClient(timeout=args.timeout) as http:
            try:
                response = await http.get(url)
            except httpx.HTTPError as exc:
                raise CliError(f"cannot fetch {url}: {exc}") from None
        if response.status_code != 200:
            raise CliError(f"{url} answered HTTP {response.status_code}")
        print(json.dumps(response.json(), indent=2))
        return 0

    async def run(client: Any) -> int:
        print(_json(await client.get_extended_agent_card()))
        return 0

    return await _with_client(args, run)


async def tasks(args: argparse.Namespace) -> int:
    async def run(client: Any) -> int:
        if args.tasks_command == "get":
            print(_json(await client.get_task(args.id, history_length=args.history_length)))
        elif args.tasks_command == "cancel":
            print(_json(await client.cancel_task(args.id)))
        else:
            request = types.ListTasksRequest(
                context_id=args.context_id or "", page_token=args.page_token or ""
            )
            if args.status:
                name = args.status.upper()
                name = name if name.startswith("TASK_STATE_") else "TASK_STATE_" + name
                known = types.TaskState.DESCRIPTOR.values_by_name
                if name not in known:
                    choices = ", ".join(k.removeprefix("TASK_STATE_").lower() for k in known)
                    raise CliError(f"unknown status {args.status!r}; one of {choices}")
                request.status = known[name].number  # type: ignore[assignment]
            if args.page_size is not None:
                request.page_size = args.page_size
            print(_json(await client.list_tasks(request)))
        return 0

    return await _with_client(args, run)


def _bench(argv: list[str]) -> int:
    """``a2a-grpc bench``: the benchmark harness (``benchmarks/``), with its own options."""
    try:
        from benchmarks import main as bench
    except ImportError as exc:
        print(
            f"a2a-grpc: error: the benchmarks need the development install (make install): {exc}",
            file=sys.stderr,
        )
        return 1
    return int(bench(argv))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="a2a-grpc", description="A gRPC-native transport for the A2A protocol v1.0."
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def http_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--public-url", help="the bridge's base URL as clients reach it, for the agent card")
        p.add_argument(
            "--max-body-mib", type=int, default=16, help="largest request body in MiB (default: 16)"
        )
        p.add_argument(
            "--heartbeat",
            type=float,
            default=15.0,
            help="seconds between SSE keep-alive comments (default: 15)",
        )

    p = sub.add_parser(
        "serve",
        help="serve an agent over gRPC (and JSON over HTTP with --http-port)",
        description="Serve an agent over gRPC (A2AService, health checking, reflection) until interrupted; "
        "with --http-port, also JSON-RPC and HTTP+JSON in the same process.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--grpc-port",
        type=int,
        default=DEFAULT_GRPC_PORT,
        help=f"gRPC port; 0 picks a free one (default: {DEFAULT_GRPC_PORT})",
    )
    p.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help=f"task store: memory, or sqlite:///PATH (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--agent",
        default="a2a_grpc.reference_agent:ReferenceAgent",
        help="the agent, as module:attribute (an Agent or Agent class; default: the reference agent)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        help="also serve JSON-RPC and HTTP+JSON (the bridge, in this process) on this port; 0 picks one",
    )
    p.add_argument("--http-host", help="address of the HTTP port (default: --host)")
    http_args(p)
    p.set_defaults(func=serve)

    p = sub.add_parser(
        "bridge",
        help="bridge JSON-over-HTTP and gRPC, either way",
        description="Run the bridge as its own process: JSON-RPC and HTTP+JSON in front of a gRPC "
        "agent (http-to-grpc), or gRPC in front of a JSON-RPC / HTTP+JSON agent (grpc-to-http).",
    )
    bsub = p.add_subparsers(dest="bridge_command", required=True, metavar="DIRECTION")
    b = bsub.add_parser(
        "http-to-grpc",
        help="JSON-RPC and HTTP+JSON in front of a gRPC agent",
        description="Serve JSON-RPC (POST /), the HTTP+JSON routes and /.well-known/agent-card.json, "
        "forwarding every call to a gRPC A2A agent.",
    )
    b.add_argument(
        "--listen", default="127.0.0.1:8080", help="HOST:PORT to serve HTTP on (default: 127.0.0.1:8080)"
    )
    b.add_argument("--upstream", required=True, help="the gRPC agent, HOST:PORT")
    b.add_argument(
        "--card",
        help="the public card to publish, a JSON file or http(s) URL (default: the upstream's "
        "GetExtendedAgentCard answer)",
    )
    b.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the upstream at start (default: 10)"
    )
    http_args(b)
    b.set_defaults(func=bridge_http_to_grpc)
    b = bsub.add_parser(
        "grpc-to-http",
        help="gRPC in front of a JSON-RPC or HTTP+JSON agent",
        description="Serve lf.a2a.v1.A2AService over gRPC, forwarding every call to an agent that "
        "speaks JSON-RPC or HTTP+JSON (the first of the two its card lists).",
    )
    b.add_argument(
        "--listen", default="127.0.0.1:50052", help="HOST:PORT to serve gRPC on (default: 127.0.0.1:50052)"
    )
    b.add_argument(
        "--upstream", required=True, help="the JSON agent's base URL (its card is read from there)"
    )
    b.set_defaults(func=bridge_grpc_to_http)

    p = sub.add_parser(
        "bench",
        help="benchmark our servers against the official SDK and bare grpc.aio",
        description="Run the benchmark suite (docs/performance.md); see a2a-grpc bench --help.",
    )
    p.set_defaults(func=None)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("address", help="the agent's gRPC address, HOST:PORT")
        p.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds (default: 30)")

    p = sub.add_parser(
        "send", help="send a message", description="Send a text message; print the reply as JSON."
    )
    client_args(p)
    p.add_argument("text", help="the message text (the reference agent reads its first word as the skill)")
    p.add_argument("--stream", action="store_true", help="stream events (one JSON object per line)")
    p.add_argument("--task-id", help="continue this task")
    p.add_argument("--context-id", help="send within this context")
    p.add_argument("--return-immediately", action="store_true", help="do not wait for the task to finish")
    p.set_defaults(func=send)

    p = sub.add_parser(
        "card",
        help="print an agent's card",
        description="Print the card: over gRPC (HOST:PORT, GetExtendedAgentCard) or from "
        "an http(s):// base URL (/.well-known/agent-card.json).",
    )
    p.add_argument("address", help="HOST:PORT (gRPC) or http(s)://HOST:PORT")
    p.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds (default: 30)")
    p.set_defaults(func=card)

    p = sub.add_parser("tasks", help="get, list or cancel tasks", description="Work with an agent's tasks.")
    tsub = p.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    g = tsub.add_parser("get", help="print one task")
    client_args(g)
    g.add_argument("id", help="task id")
    g.add_argument("--history-length", type=int, help="at most this many history messages")
    c = tsub.add_parser("cancel", help="cancel a task")
    client_args(c)
    c.add_argument("id", help="task id")
    ls = tsub.add_parser("list", help="list tasks, most recently updated first")
    client_args(ls)
    ls.add_argument("--context-id", help="only this context")
    ls.add_argument("--status", help="only this state, e.g. working, completed")
    ls.add_argument("--page-size", type=int, help="1..100 (default 50)")
    ls.add_argument("--page-token", help="nextPageToken of the previous page")
    p.set_defaults(func=tasks)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the harness parses its own options (and --help)
        return _bench(argv[1:])
    args = parser().parse_args(argv)
    if (
        args.command == "serve"
        and args.store.startswith("sqlite:///")
        and not args.store.startswith("sqlite:////")
    ):
        Path(args.store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return int(asyncio.run(args.func(args)))
    except CliError as exc:
        print(f"a2a-grpc: error: {exc}", file=sys.stderr)
        return 1
    except errors.A2AError as exc:
        print(f"a2a-grpc: error: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`a2a-grpc ... | head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
