"""One benchmark server process: ``python -m benchmarks.serve KIND [--cpu N] [--store URL]``.

The process pins itself to one CPU core, binds 127.0.0.1 on a free port and
prints ONE JSON line on stdout once it accepts calls::

    {"ready": true, "pid": 1234, "port": 40123, "pinned": true, "cpu": 0, "kind": "ours"}

It runs until SIGTERM/SIGINT or until its stdin reaches end of file, so it also
goes away when the benchmark runner dies without cleaning up. ``exec`` is a
special kind: ``python -m benchmarks.serve exec --cpu 0 -- CMD...`` pins itself,
prints ``{"pinned": ...}`` and replaces itself with CMD (which inherits the pinning).

Kinds:

* ``ours``: our A2AServer with ``benchmarks.agents.EchoAgent`` and ``--store``.
* ``sdk-grpc``: the a2a-sdk echo agent behind DefaultRequestHandler + GrpcHandler.
* ``sdk-jsonrpc`` / ``sdk-rest``: the same agent behind the SDK's Starlette JSON-RPC
  or REST routes, served by uvicorn.
* ``grpc-bare``: a generic gRPC handler answering SendMessage with canned bytes.
* ``grpc-bare-bidi``: a generic bidirectional-stream handler echoing every message.
* ``otlp-collector``: a dummy OpenTelemetry collector (OTLP/gRPC ``TraceService.Export``) that
  counts the spans it receives and drops them: where ``ours --tracing spans`` exports.

``ours --tracing`` chooses the instrumentation: ``default`` (the library's defaults: metrics
collected, W3C trace context read and continued), ``none`` (no instrumentation: metrics and
``ObservabilitySettings.trace_context`` off), ``propagation`` (trace context only, metrics off),
or ``spans`` (trace context and OpenTelemetry spans exported over OTLP to ``--otlp-endpoint``,
metrics off).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

__all__ = ["KINDS", "main", "pin_to_cpu"]

HOST = "127.0.0.1"
GRPC_MESSAGE_LIMIT = 64 * 1024 * 1024
STOP_GRACE_SECONDS = 0.5
BARE_SERVICE = "lf.a2a.v1.A2AService"
BIDI_SERVICE = "bench.Bare"
BIDI_METHOD = "Echo"


def pin_to_cpu(cpu: int | None) -> bool:
    """Pin this process (and the threads it starts later) to ``cpu``; False where that is impossible."""
    # Not checked against our own affinity: a server started by the pinned runner inherits the
    # runner's core and must still be able to move to its own.
    if cpu is None or not hasattr(os, "sched_setaffinity") or not 0 <= cpu < (os.cpu_count() or 1):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return os.sched_getaffinity(0) == {cpu}


def _grpc_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
        ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
    ]


async def _until_stopped() -> None:
    """Return on SIGTERM, SIGINT or end of stdin (the runner has gone)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):
            loop.remove_reader(stdin)
            stop.set()

    loop.add_reader(stdin, on_stdin)
    await stop.wait()


def _ready(port: int, kind: str, pinned: bool, cpu: int | None, **detail: Any) -> None:
    line = {"ready": True, "pid": os.getpid(), "port": port, "pinned": pinned, "cpu": cpu, "kind": kind}
    print(json.dumps({**line, **detail}), flush=True)


# -- servers -------------------------------------------------------------------------------------

Announce = Callable[..., None]


async def _serve_ours(args: argparse.Namespace, announce: Announce) -> None:
    from a2a_grpc.server import A2AServer, ServerSettings
    from a2a_grpc.tasks import open_store
    from benchmarks.agents import EchoAgent

    store = open_store(args.store)
    settings = ServerSettings(
        host=HOST,
        port=0,
        authentication=_authentication(args.auth),
        limits=_capacity_limits(args),
        # The load generator multiplexes up to 10,000 sessions over a few connections (session-idle);
        # a mesh's clients open one per peer, within the default 1,024 per connection.
        max_concurrent_streams=1_000_000,
    )
    settings = dataclasses.replace(settings, observability=_observability(args))
    server = A2AServer(EchoAgent(), store, settings)
    await server.start()
    try:
        announce(server.port, store=args.store, tracing=args.tracing)
        await _until_stopped()
    finally:
        await server.stop(STOP_GRACE_SECONDS)
        await store.close()


def _observability(args: argparse.Namespace) -> Any:
    from a2a_grpc.observability.settings import ObservabilitySettings

    if args.tracing == "none":
        return ObservabilitySettings(metrics=False, trace_context=False)
    if args.tracing == "propagation":
        return ObservabilitySettings(metrics=False)
    if args.tracing == "spans":
        return ObservabilitySettings(
            metrics=False, spans=True, otlp_endpoint=args.otlp_endpoint, service_name="bench"
        )
    return ObservabilitySettings()


def _capacity_limits(args: argparse.Namespace) -> Any:
    """The per-principal counts lifted out of the way: a benchmark measures what the server carries,
    and its one load generator is one principal (10,000 sessions, thousands of streams, gigabytes of
    tasks over a run). ``--rate`` checks a rate per principal (set far above what the load reaches:
    the cost of counting, never a refusal) in ``--rate-storage``."""
    from a2a_grpc.security.limits import Limits

    many = 1_000_000
    return Limits(
        max_running_tasks_per_principal=many,
        max_streams_per_principal=many,
        max_sessions_per_principal=many,
        max_detached_sessions_per_principal=many,
        rate_per_principal=args.rate,
        rate_storage=args.rate_storage,
    )


def _authentication(spec: str | None) -> Any:
    """``apikey`` (the key :data:`benchmarks.payload.BENCH_API_KEY`) or ``jwt:JWKS_PATH`` (issuer and
    audience ``bench``); None: no authentication."""
    if spec is None:
        return None
    from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication, BearerJwtScheme
    from benchmarks.payload import BENCH_API_KEY

    if spec == "apikey":
        return Authentication([ApiKeyScheme([ApiKey("bench", key=BENCH_API_KEY)])])
    kind, _, path = spec.partition(":")
    if kind != "jwt" or not path:
        raise SystemExit(f"--auth takes apikey or jwt:JWKS_PATH, not {spec!r}")
    return Authentication([BearerJwtScheme(issuer="bench", audience="bench", jwks_file=path)])


def _sdk_handler(url: str, binding: str) -> Any:
    """The SDK's DefaultRequestHandler over in-memory stores, with a card naming ``url``."""
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.tasks import InMemoryTaskStore

    from benchmarks.sdk_agent import SdkEchoExecutor, sdk_card

    card = sdk_card()
    card.supported_interfaces.add(url=url, protocol_binding=binding, protocol_version="1.0")
    return DefaultRequestHandler(
        agent_executor=SdkEchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )


async def _serve_sdk_grpc(args: argparse.Namespace, announce: Announce) -> None:
    import grpc
    from a2a.server.request_handlers import GrpcHandler
    from a2a.types import a2a_pb2_grpc

    server = grpc.aio.server(options=_grpc_options())
    port = server.add_insecure_port(f"{HOST}:0")
    handler = _sdk_handler(f"{HOST}:{port}", "GRPC")
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)  # type: ignore[no-untyped-call]
    await server.start()
    try:
        announce(port)
        await _until_stopped()
    finally:
        await server.stop(STOP_GRACE_SECONDS)
        await handler.aclose()


async def _serve_sdk_http(args: argparse.Namespace, announce: Announce) -> None:
    import uvicorn
    from a2a.server.routes import create_jsonrpc_routes, create_rest_routes
    from starlette.applications import Starlette

    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every keep-alive request after the first waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    url = f"http://{HOST}:{sock.getsockname()[1]}"
    jsonrpc = args.kind == "sdk-jsonrpc"
    handler = _sdk_handler(url, "JSONRPC" if jsonrpc else "HTTP+JSON")
    routes = list(create_jsonrpc_routes(handler, "/") if jsonrpc else create_rest_routes(handler))
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn handles SIGINT/SIGTERM itself while serving; end of stdin must stop it too.
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not server.started:
        if serving.done() or loop.time() > deadline:
            await serving
            raise RuntimeError("uvicorn did not start within 10 s")
        await asyncio.sleep(0.01)
    announce(sock.getsockname()[1], http=_uvicorn_http(config))
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):
            loop.remove_reader(stdin)
            server.should_exit = True

    loop.add_reader(stdin, on_stdin)
    try:
        await serving
    finally:
        await handler.aclose()


def _uvicorn_http(config: Any) -> str:
    cls = getattr(config, "http_protocol_class", None)
    return getattr(cls, "__name__", "") if cls is not None else ""


async def _serve_bare(args: argparse.Namespace, announce: Announce) -> None:
    import grpc

    server = grpc.aio.server(options=_grpc_options())
    if args.kind == "grpc-bare":
        canned = _canned_response()

        async def send_message(request: bytes, context: Any) -> bytes:
            return canned

        handler = grpc.unary_unary_rpc_method_handler(send_message)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(BARE_SERVICE, {"SendMessage": handler}),)
        )
    else:

        async def echo(requests: Any, context: Any) -> Any:
            async for request in requests:
                yield request

        handler = grpc.stream_stream_rpc_method_handler(echo)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(BIDI_SERVICE, {BIDI_METHOD: handler}),)
        )
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    try:
        announce(port)
        await _until_stopped()
    finally:
        await server.stop(STOP_GRACE_SECONDS)


def _canned_response() -> bytes:
    """A SendMessageResponse shaped like the real answer: a completed task, its history, one artifact."""
    import uuid

    from a2a_grpc import types
    from benchmarks.workload import TEXT

    task = types.Task(id=str(uuid.uuid4()), context_id=str(uuid.uuid4()))
    task.history.add(
        message_id="bench-0000000000000000",
        role=types.ROLE_USER,
        task_id=task.id,
        context_id=task.context_id,
        parts=[types.Part(text=TEXT)],
    )
    task.artifacts.add(artifact_id=str(uuid.uuid4()), name="echo", parts=[types.Part(text=TEXT)])
    task.status.state = types.TASK_STATE_COMPLETED
    task.status.timestamp.GetCurrentTime()
    return types.SendMessageResponse(task=task).SerializeToString()


async def _serve_collector(args: argparse.Namespace, announce: Announce) -> None:
    """Answers every OTLP trace export at once, counting its spans (logged on exit)."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    received = {"exports": 0, "spans": 0}

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        async def Export(self, request: Any, context: Any) -> Any:
            received["exports"] += 1
            received["spans"] += sum(
                len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
            )
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.aio.server(options=_grpc_options())
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    try:
        announce(port)
        await _until_stopped()
    finally:
        await server.stop(STOP_GRACE_SECONDS)
        spans, exports = received["spans"], received["exports"]
        print(f"otlp-collector received {spans} spans in {exports} exports", file=sys.stderr)


KINDS: dict[str, Callable[[argparse.Namespace, Announce], Coroutine[Any, Any, None]]] = {
    "ours": _serve_ours,
    "sdk-grpc": _serve_sdk_grpc,
    "sdk-jsonrpc": _serve_sdk_http,
    "sdk-rest": _serve_sdk_http,
    "grpc-bare": _serve_bare,
    "grpc-bare-bidi": _serve_bare,
    "otlp-collector": _serve_collector,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=[*KINDS, "exec"])
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    parser.add_argument("--store", default="memory", help="task store URL (kind 'ours')")
    parser.add_argument("--auth", metavar="SCHEME", help="kind 'ours': apikey, or jwt:JWKS_PATH")
    parser.add_argument("--rate", metavar="RATE", help="kind 'ours': Limits.rate_per_principal")
    parser.add_argument("--rate-storage", metavar="URL", help="kind 'ours': Limits.rate_storage")
    parser.add_argument(
        "--tracing",
        choices=("default", "none", "propagation", "spans"),
        default="default",
        help="kind 'ours': instrumentation: the library's defaults (metrics and trace context), none, "
        "trace context only, or spans (default: default)",
    )
    parser.add_argument("--otlp-endpoint", help="kind 'ours' with --tracing spans: where spans are exported")
    parser.add_argument("--cprofile", metavar="PATH", help="run under cProfile; write its stats here on exit")
    args = parser.parse_args(argv)
    pinned = pin_to_cpu(args.cpu)
    if args.kind == "exec":
        if not command:
            parser.error("exec needs a command after --")
        print(json.dumps({"pinned": pinned, "cpu": args.cpu}), flush=True)
        os.execvp(command[0], command)
    import logging

    logging.basicConfig(level=logging.WARNING)

    def announce(port: int, **detail: Any) -> None:
        _ready(port, args.kind, pinned, args.cpu, **detail)

    if args.cprofile:
        import cProfile

        with cProfile.Profile() as profile:
            asyncio.run(KINDS[args.kind](args, announce))
        profile.dump_stats(args.cprofile)
    else:
        asyncio.run(KINDS[args.kind](args, announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
