"""The ``a2a-grpc`` command: serve an agent, and talk to one."""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import json
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.tasks.store import MAX_PAGE_SIZE

DEFAULT_STORE = "sqlite:///.a2a/tasks.db"
DEFAULT_GRPC_PORT = 50051
LOG_LEVELS = ("debug", "info", "warning", "error")
EXAMPLE_ADDRESS = f"127.0.0.1:{DEFAULT_GRPC_PORT}"


class CliError(Exception):
    """A problem worth one line to the user."""


def _json(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message), indent=2)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _os_reason(exc: OSError) -> str:
    """An OSError as a phrase: its own message without the "[Errno N]" prefix."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        text += (
            " (another process listens there: pick another port, or start both with --reuse-port to share it)"
        )
    return text


# --- argument types: a bad value is refused here, with the command's usage, before anything runs ---


def _number(text: str, kind: type[int] | type[float], what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None


def _seconds(text: str) -> float:
    value = float(_number(text, float, "a number of seconds"))
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _page_size(text: str) -> int:
    value = int(_number(text, int, f"a whole number 1..{MAX_PAGE_SIZE}"))
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_PAGE_SIZE}, not {value}")
    return value


def _history_length(text: str) -> int:
    value = int(_number(text, int, "a whole number, 0 or more"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(_number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(_number(text, int, "a port number 0..65535"))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, not {value}")
    return value


def _host_port(text: str, *, listen: bool) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (host 127.0.0.1); ArgumentTypeError says how to fix it."""
    lowest = 0 if listen else 1
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not HOST:PORT; an IPv6 address looks like [::1]:50051"
            )
        port = port[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            if text.isdigit():
                example = f"127.0.0.1:{text}"
            else:
                example = f"{text}:{DEFAULT_GRPC_PORT}" if text and "/" not in text else EXAMPLE_ADDRESS
            raise argparse.ArgumentTypeError(f"{text!r} has no port: give HOST:PORT, e.g. {example}")
        if ":" in host:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not HOST:PORT; put an IPv6 address in brackets, e.g. [::1]:50051"
            )
    if not port:
        raise argparse.ArgumentTypeError(f"{text!r} has no port: give HOST:PORT, e.g. {EXAMPLE_ADDRESS}")
    if not port.isdigit() or not lowest <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"the port in {text!r} must be a number {lowest}..65535")
    return host or "127.0.0.1", int(port)


def _listen_address(text: str) -> tuple[str, int]:
    return _host_port(text, listen=True)


def _grpc_address(text: str) -> str:
    """A gRPC target to dial, ``host:port`` (IPv6 in brackets)."""
    host, port = _host_port(text, listen=False)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _agent_address(text: str) -> str:
    """A gRPC ``HOST:PORT``, or an http(s) URL whose agent card says where the gRPC interface is."""
    if _is_url(text):
        if not urlsplit(text).hostname:
            raise argparse.ArgumentTypeError(f"{text!r} is not a URL with a host")
        return text
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give HOST:PORT (gRPC) or an http(s):// URL (its agent card)"
        )
    return _grpc_address(text)


def _http_url(text: str) -> str:
    if not _is_url(text) or not urlsplit(text).hostname:
        raise argparse.ArgumentTypeError(f"must be an http(s):// URL, not {text!r}")
    return text


# --- serving ------------------------------------------------------------------------------------


def load_agent(spec: str, app_dir: str = ".") -> Any:
    """The agent named ``module:attribute``, importing ``module`` from ``app_dir`` first."""
    from a2a_grpc.agent import Agent

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"--agent must look like module:attribute, not {spec!r}")
    directory = os.path.abspath(app_dir)
    if not os.path.isdir(directory):
        raise CliError(f"--app-dir {app_dir!r} is not a directory")
    # Like uvicorn's --app-dir: the user's own module is found from where they stand. An entry
    # point script puts only its own bin/ directory on sys.path.
    if directory not in sys.path[:1]:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        where = "the current directory" if directory == os.getcwd() else _shown(directory)
        if missing == module_name or module_name.startswith(missing + "."):
            raise CliError(
                f"cannot import {module_name!r}: no module {missing!r} in {where} or on the "
                "Python path (--app-dir DIR says where to look)"
            ) from None
        raise CliError(_failure(f"importing {module_name!r} failed", exc)) from None
    except Exception as exc:
        raise CliError(_failure(f"importing {module_name!r} failed", exc)) from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    try:
        agent = obj() if isinstance(obj, type) else obj
    except Exception as exc:
        raise CliError(_failure(f"creating the agent {spec} failed", exc)) from None
    if not isinstance(agent, Agent):
        raise CliError(f"{spec} is not an a2a_grpc.agent.Agent (or a class of one)")
    return agent


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it is under it (shorter to read)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def _failure(what: str, exc: BaseException) -> str:
    """One line: what failed, the exception, and the file and line where it was raised."""
    if isinstance(exc, SyntaxError):
        text, filename, line = exc.msg, exc.filename, exc.lineno
    else:
        text, filename, line = str(exc), None, None
        # The innermost frame of the user's code, not of the import machinery.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if not frame.filename.startswith("<frozen") and "importlib" not in frame.filename:
                filename, line = frame.filename, frame.lineno
                break
    where = f" ({_shown(filename)}, line {line})" if filename else ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{what}: {type(exc).__name__}{': ' + first if first else ''}{where}"


def _self_command() -> str:
    """How the user can run this command again from their shell."""
    found = shutil.which("a2a-grpc")
    script = sys.argv[0]
    if os.path.basename(script) == "a2a-grpc":  # the installed entry point
        if found and os.path.exists(script) and os.path.samefile(found, script):
            return "a2a-grpc"
        return shlex.quote(_shown(os.path.abspath(script)))
    if found:
        return "a2a-grpc"
    return f"{shlex.quote(_shown(sys.executable))} -m a2a_grpc.cli"


def _dial_address(host: str, port: int) -> str:
    """Where a client on this machine reaches a server listening on ``host``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def _bind_http(app: Any, host: str, port: int, reuse_port: bool) -> Any:
    # The composition root: the CLI is the one place that puts the bridge and the runtime together.
    from bridge.httpserver import HttpServer

    http = HttpServer(app, host, port, reuse_port=reuse_port)
    try:
        http.bind()
    except OSError as exc:
        raise CliError(_os_reason(exc)) from None
    return http


async def serve(args: argparse.Namespace) -> int:
    from a2a_grpc.push import PushNotifier
    from a2a_grpc.server import A2AServer, ServerSettings
    from a2a_grpc.tasks import open_store

    agent = load_agent(args.agent, args.app_dir)
    try:
        settings = ServerSettings(host=args.host, port=args.grpc_port, reuse_port=args.reuse_port)
        store = open_store(args.store, check_integrity=args.integrity_check)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from None
    notifier = PushNotifier()
    http: Any = None
    server: A2AServer | None = None
    try:
        interfaces: list[types.AgentInterface] = []
        if args.http_port is not None:
            from bridge.app import BridgeApp, bridge_interfaces

            # Bound first, so that the card can name the port.
            http = _bind_http(None, args.http_host or args.host, args.http_port, args.reuse_port)
            base = (args.public_url or http.url).rstrip("/")
            interfaces = bridge_interfaces(base)
        server = A2AServer(agent, store, settings, notifier=notifier, extra_interfaces=interfaces)
        try:
            await server.start()
        except OSError as exc:
            raise CliError(_os_reason(exc)) from None
        except RuntimeError as exc:
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
        hint = f"{_self_command()} send {_dial_address(args.host, server.port)} 'hello'"
        print(f"a2a-grpc: try  {hint}   (Ctrl-C stops)", flush=True)
        await _until_signal()
    finally:
        if http is not None:
            await http.stop()
        if server is not None:
            await server.stop()
        await notifier.aclose()
        await store.close()
    return 0


async def _fetch_card(source: str, timeout: float) -> types.AgentCard:
    """The agent card at an http(s) URL (a base URL gets the well-known path)."""
    import httpx

    from bridge.jsonclient import card_url_for, fetch_card

    async with httpx.AsyncClient() as http:
        try:
            return await fetch_card(card_url_for(source), client=http, timeout=timeout)
        except errors.A2AError as exc:
            raise CliError(f"cannot use the card at {source}: {exc.message}") from None


async def _card_source(source: str, timeout: float) -> types.AgentCard:
    """An agent card from a JSON file or an http(s) URL (a base URL gets the well-known path)."""
    from bridge import codec

    if _is_url(source):
        return await _fetch_card(source, timeout)
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

    host, port = args.listen
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
        http = _bind_http(app, host, port, args.reuse_port)
        if app.public_url is None:
            app.public_url = http.url
        await http.start()
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

    host, port = args.listen
    upstream = await open_json_upstream(args.upstream)
    front = GrpcFront(upstream, ServerSettings(host=host, port=port, reuse_port=args.reuse_port))
    try:
        try:
            await front.start()
        except OSError as exc:
            raise CliError(_os_reason(exc)) from None
        except RuntimeError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc}") from None
        print(f"a2a-grpc: bridging gRPC at {front.address} to {args.upstream}", flush=True)
        await _until_signal()
    finally:
        await front.stop()
        await upstream.aclose()
    return 0


# --- talking to an agent ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where the client commands call: a gRPC address, and the tenant its card names for it."""

    address: str
    tenant: str = ""


def _grpc_interface_address(url: str, card_url: str) -> str:
    """The dialable ``host:port`` of a card's GRPC interface URL (``host:port`` or ``scheme://host:port``)."""
    if "://" not in url:
        try:
            return _grpc_address(url)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"the GRPC interface of the card at {card_url} is unusable: {exc}") from None
    parts = urlsplit(url)
    if parts.scheme in ("https", "grpcs"):
        raise CliError(
            f"the card at {card_url} offers gRPC at {url}, over TLS, which this command does not speak yet"
        )
    if parts.scheme not in ("http", "grpc") or not parts.hostname or parts.port is None:
        raise CliError(f"the card at {card_url} offers gRPC at {url!r}, which is not HOST:PORT")
    host = parts.hostname
    return f"[{host}]:{parts.port}" if ":" in host else f"{host}:{parts.port}"


async def resolve_target(address: str, timeout: float) -> Target:
    """``address`` itself, or for an http(s) URL the first GRPC interface (card order) of its card."""
    if not _is_url(address):
        return Target(address)
    from a2a_grpc.handler import version_supported

    card = await _fetch_card(address, timeout)
    for interface in card.supported_interfaces:
        version = interface.protocol_version
        if interface.protocol_binding.upper() == "GRPC" and (not version or version_supported(version)):
            return Target(_grpc_interface_address(interface.url, address), interface.tenant)
    offered = ", ".join(
        " ".join(filter(None, (i.protocol_binding or "?", i.protocol_version, "at", i.url)))
        for i in card.supported_interfaces
    )
    raise CliError(
        f"the card at {address} lists no GRPC interface for A2A 1.0 (it offers {offered or 'none'}); "
        f"put gRPC in front of it with  a2a-grpc bridge grpc-to-http --upstream {address}"
    )


async def _with_client(args: argparse.Namespace, action: Any) -> int:
    from a2a_grpc.client import A2AClient

    target = await resolve_target(args.address, args.timeout)
    async with A2AClient(target.address, timeout=args.timeout) as client:
        return int(await action(client, target.tenant))


async def send(args: argparse.Namespace) -> int:
    from a2a_grpc.client import A2AClient

    async def run(client: A2AClient, tenant: str) -> int:
        request = A2AClient.text_request(
            args.text,
            task_id=args.task_id or "",
            context_id=args.context_id or "",
            return_immediately=args.return_immediately,
            tenant=tenant,
        )
        if args.history_length is not None:
            request.configuration.history_length = args.history_length
        if args.stream:
            async for event in client.send_streaming_message(request, timeout=args.timeout):
                print(json.dumps(json_format.MessageToDict(event)), flush=True)
        else:
            print(_json(await client.send_message(request)))
        return 0

    return await _with_client(args, run)


async def card(args: argparse.Namespace) -> int:
    if _is_url(args.address):  # the public card, as published there
        print(_json(await _fetch_card(args.address, args.timeout)))
        return 0

    async def run(client: Any, tenant: str) -> int:
        print(_json(await client.get_extended_agent_card(tenant=tenant)))
        return 0

    return await _with_client(args, run)


async def tasks(args: argparse.Namespace) -> int:
    async def run(client: Any, tenant: str) -> int:
        if args.tasks_command == "get":
            task = await client.get_task(args.id, history_length=args.history_length, tenant=tenant)
            print(_json(task))
        elif args.tasks_command == "cancel":
            from a2a_grpc.tasks import trim_task

            task = await client.cancel_task(args.id, tenant=tenant)
            # CancelTaskRequest has no history_length: the trim happens here.
            print(_json(trim_task(task, args.history_length)))
        else:
            request = types.ListTasksRequest(
                tenant=tenant, context_id=args.context_id or "", page_token=args.page_token or ""
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


# --- the parser ---------------------------------------------------------------------------------


def _version() -> str:
    from a2a_grpc.handler import SUPPORTED_VERSIONS

    try:
        ours = metadata.version("a2a-grpc")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        ours = "(not installed)"
    return f"a2a-grpc {ours} (A2A protocol {', '.join(SUPPORTED_VERSIONS)})"


LOG_LEVEL_HELP = (
    "how much the library logs to stderr: debug, info, warning or error (default: warning; "
    "the serve and bridge start-up lines are printed at any level)"
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="a2a-grpc", description="A gRPC-native transport for the A2A protocol v1.0."
    )
    top.add_argument("--version", action="version", version=_version())
    top.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", metavar="LEVEL", help=LOG_LEVEL_HELP
    )
    # Also accepted after the command; SUPPRESS keeps the top-level value when it is not given there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS, metavar="LEVEL", help=LOG_LEVEL_HELP
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], **kwargs)
        # Unknown arguments are reported with the usage of the command that was given them.
        p.set_defaults(usage_parser=p)
        return p

    def http_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--public-url",
            metavar="URL",
            help="the bridge's base URL as clients reach it, for the agent card",
        )
        p.add_argument(
            "--max-body-mib",
            metavar="MIB",
            type=_positive_int,
            default=16,
            help="largest request body in MiB (default: 16)",
        )
        p.add_argument(
            "--heartbeat",
            metavar="SECONDS",
            type=_seconds,
            default=15.0,
            help="seconds between SSE keep-alive comments (default: 15)",
        )

    def reuse_port_arg(p: argparse.ArgumentParser, ports: str) -> None:
        p.add_argument(
            "--reuse-port",
            action="store_true",
            help=f"share {ports} with other processes started with --reuse-port (the kernel spreads "
            "connections among them); without it a port in use is an error",
        )

    p = command(
        sub,
        "serve",
        help="serve an agent over gRPC (and JSON over HTTP with --http-port)",
        description="Serve an agent over gRPC (A2AService, health checking, reflection) until interrupted; "
        "with --http-port, also JSON-RPC and HTTP+JSON in the same process.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--grpc-port",
        metavar="PORT",
        type=_port,
        default=DEFAULT_GRPC_PORT,
        help=f"gRPC port; 0 picks a free one (default: {DEFAULT_GRPC_PORT})",
    )
    p.add_argument(
        "--store",
        metavar="URL",
        default=DEFAULT_STORE,
        help=f"task store: memory, or sqlite:///PATH (relative), sqlite:////PATH (absolute) "
        f"(default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--no-integrity-check",
        dest="integrity_check",
        action="store_false",
        help="skip the SQLite store's integrity check at start (PRAGMA quick_check reads the whole "
        "file: about 0.3 s per 100,000 tasks on an SSD; see SqliteTaskStore), for very large stores; "
        "a damaged store then fails its calls instead of refusing to start",
    )
    p.add_argument(
        "--agent",
        metavar="MODULE:ATTR",
        default="a2a_grpc.reference_agent:ReferenceAgent",
        help="the agent, as module:attribute (an Agent or Agent class; default: the reference agent)",
    )
    p.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="look for the --agent module in DIR first (default: the current directory)",
    )
    p.add_argument(
        "--http-port",
        metavar="PORT",
        type=_port,
        help="also serve JSON-RPC and HTTP+JSON (the bridge, in this process) on this port; 0 picks one",
    )
    p.add_argument("--http-host", metavar="HOST", help="address of the HTTP port (default: --host)")
    reuse_port_arg(p, "the gRPC and HTTP ports")
    http_args(p)
    p.set_defaults(func=serve)

    p = sub.add_parser(
        "bridge",
        parents=[common],
        help="bridge JSON-over-HTTP and gRPC, either way",
        description="Run the bridge as its own process: JSON-RPC and HTTP+JSON in front of a gRPC "
        "agent (http-to-grpc), or gRPC in front of a JSON-RPC / HTTP+JSON agent (grpc-to-http).",
    )
    bsub = p.add_subparsers(dest="bridge_command", required=True, metavar="DIRECTION")
    b = command(
        bsub,
        "http-to-grpc",
        help="JSON-RPC and HTTP+JSON in front of a gRPC agent",
        description="Serve JSON-RPC (POST /), the HTTP+JSON routes and /.well-known/agent-card.json, "
        "forwarding every call to a gRPC A2A agent.",
    )
    b.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen_address,
        default="127.0.0.1:8080",
        help="HOST:PORT to serve HTTP on; port 0 picks a free one (default: 127.0.0.1:8080)",
    )
    b.add_argument(
        "--upstream", metavar="HOST:PORT", type=_grpc_address, required=True, help="the gRPC agent, HOST:PORT"
    )
    b.add_argument(
        "--card",
        metavar="FILE|URL",
        help="the public card to publish, a JSON file or http(s) URL (default: the upstream's "
        "GetExtendedAgentCard answer)",
    )
    b.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=10.0,
        help="seconds to wait for the upstream at start (default: 10)",
    )
    reuse_port_arg(b, "the HTTP port")
    http_args(b)
    b.set_defaults(func=bridge_http_to_grpc)
    b = command(
        bsub,
        "grpc-to-http",
        help="gRPC in front of a JSON-RPC or HTTP+JSON agent",
        description="Serve lf.a2a.v1.A2AService over gRPC, forwarding every call to an agent that "
        "speaks JSON-RPC or HTTP+JSON (the first of the two its card lists).",
    )
    b.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen_address,
        default="127.0.0.1:50052",
        help="HOST:PORT to serve gRPC on; port 0 picks a free one (default: 127.0.0.1:50052)",
    )
    b.add_argument(
        "--upstream",
        metavar="URL",
        type=_http_url,
        required=True,
        help="the JSON agent's base URL (its card is read from there)",
    )
    reuse_port_arg(b, "the gRPC port")
    b.set_defaults(func=bridge_grpc_to_http)

    p = command(
        sub,
        "bench",
        help="benchmark our servers against the official SDK and bare grpc.aio",
        description="Run the benchmark suite (docs/performance.md); see a2a-grpc bench --help.",
    )
    p.set_defaults(func=None)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "address",
            type=_agent_address,
            help="the agent: its gRPC HOST:PORT ([::1]:PORT for IPv6), or an http(s):// URL whose "
            "agent card names its gRPC interface (the first GRPC entry, and its tenant, are used)",
        )
        p.add_argument(
            "--timeout",
            metavar="SECONDS",
            type=_seconds,
            default=30.0,
            help="deadline in seconds, above 0 (default: 30)",
        )

    p = command(
        sub, "send", help="send a message", description="Send a text message; print the reply as JSON."
    )
    client_args(p)
    p.add_argument("text", help="the message text (the reference agent reads its first word as the skill)")
    p.add_argument("--stream", action="store_true", help="stream events (one JSON object per line)")
    p.add_argument("--task-id", metavar="ID", help="continue this task")
    p.add_argument("--context-id", metavar="ID", help="send within this context")
    p.add_argument("--return-immediately", action="store_true", help="do not wait for the task to finish")
    p.add_argument(
        "--history-length",
        type=_history_length,
        metavar="N",
        help="the returned task carries at most its N most recent messages, 0: none "
        "(default: as many as the agent returns)",
    )
    p.set_defaults(func=send)

    p = command(
        sub,
        "card",
        help="print an agent's card",
        description="Print the card: over gRPC (HOST:PORT, GetExtendedAgentCard) or the public card "
        "published at an http(s):// base URL (/.well-known/agent-card.json) or card URL.",
    )
    p.add_argument(
        "address",
        type=_agent_address,
        help="HOST:PORT (gRPC; [::1]:PORT for IPv6) or http(s)://HOST:PORT",
    )
    p.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=30.0,
        help="deadline in seconds, above 0 (default: 30)",
    )
    p.set_defaults(func=card)

    p = sub.add_parser(
        "tasks",
        parents=[common],
        help="get, list or cancel tasks",
        description="Work with an agent's tasks.",
    )
    tsub = p.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    g = command(tsub, "get", help="print one task", description="Print one task (GetTask).")
    client_args(g)
    g.add_argument("id", help="task id")
    g.add_argument(
        "--history-length",
        type=_history_length,
        metavar="N",
        help="at most the N most recent history messages, 0: none (default: as many as the agent returns)",
    )
    c = command(tsub, "cancel", help="cancel a task", description="Cancel a task (CancelTask); print it.")
    client_args(c)
    c.add_argument("id", help="task id")
    c.add_argument(
        "--history-length",
        type=_history_length,
        metavar="N",
        help="print only the N most recent history messages, 0: none (CancelTask has no such "
        "field: this command trims the task it gets back; default: all)",
    )
    ls = command(
        tsub,
        "list",
        help="list tasks, most recently updated first",
        description="List tasks (ListTasks), most recently updated first.",
    )
    client_args(ls)
    ls.add_argument("--context-id", metavar="ID", help="only this context")
    ls.add_argument("--status", metavar="STATE", help="only this state, e.g. working, completed")
    ls.add_argument(
        "--page-size",
        type=_page_size,
        metavar="N",
        help=f"tasks per page, 1..{MAX_PAGE_SIZE} (default: the agent's, 50 for ours)",
    )
    ls.add_argument("--page-token", metavar="TOKEN", help="nextPageToken of the previous page")
    p.set_defaults(func=tasks)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line, or SystemExit(2) with the usage of the (sub)command that was given it."""
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown:
        getattr(args, "usage_parser", top).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _run(argv: list[str]) -> int:
    # `bench` hands everything after it to the harness, which parses its own options (and --help).
    first = 0
    while first < len(argv) and argv[first].startswith("--log-level"):
        first += 1 if "=" in argv[first] else 2
    if argv[first : first + 1] == ["bench"]:
        before = argparse.ArgumentParser(prog="a2a-grpc")
        before.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
        _configure_logging(before.parse_args(argv[:first]).log_level)
        return _bench(argv[first + 1 :])
    args = parse(argv)
    _configure_logging(args.log_level)
    return int(asyncio.run(args.func(args)))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
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
