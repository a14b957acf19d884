"""The benchmark cases: each is a server launcher, a load kind and a request builder.

Adding a case is adding one :class:`Case` to :data:`CASES`. ``launch`` starts
the servers (in a :class:`~benchmarks.servers.ServerSet`, pinned to the server
core) and says where they listen; ``request`` encodes the request once;
``load`` turns both into a workload for the load generator. ``requires`` may
name a reason to skip the case (a missing component), in which case it is
reported as skipped, never as a number. ``baselines`` are the cases its ratios
are computed against.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from benchmarks import payload
from benchmarks.agents import EchoAgent
from benchmarks.httpclient import HttpConnection, HttpError
from benchmarks.load import Workload
from benchmarks.payload import BENCH_API_KEY, BENCH_TRACEPARENT, GRPC_METADATA
from benchmarks.servers import (
    CLIENT_CPU,
    SERVER_CPU,
    Endpoint,
    ServerError,
    ServerSet,
    cli_ready,
    python_module,
)
from benchmarks.workload import stream_text
from benchmarks.workloads import (
    GrpcBidi,
    GrpcStream,
    GrpcUnary,
    HttpStream,
    HttpUnary,
    SessionHandshake,
    SessionStream,
    SessionUnary,
    SubscribeFanOut,
)

__all__ = ["CASES", "Case", "Options", "case_names"]

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Options:
    """The run's settings that cases need."""

    workdir: Path
    stream_events: int
    artifact_bytes: int
    artifact_chunk_bytes: int
    idle_sessions: int = 10_000
    resume_cuts: int = 100


Launcher = Callable[[ServerSet, Options], Awaitable[Endpoint]]
Shot = Callable[[Endpoint, "Options"], Awaitable[dict[str, Any]]]
RequestBuilder = Callable[[Endpoint, Options], payload.Template]
LoadKind = Callable[[Endpoint, payload.Template, Options], Workload]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    group: str
    """``baseline`` (the official SDK, bare gRPC), ``ours`` or ``bridge`` (our JSON bindings)."""
    summary: str
    launch: Launcher
    load: LoadKind | None
    """None for a single-shot case (``artifact-256mib``), measured once instead of per concurrency."""
    request: RequestBuilder | None
    unit: str
    """Per second, in the table: ``req/s``, ``events/s``, ``msg/s``, ``MB/s``."""
    baselines: tuple[str, ...]
    requires: Callable[[], str | None]
    """None if the case can run, else why not (it is then reported as skipped)."""
    shot: Shot | None = None
    """What a single-shot case measures (default: the large artifact over the unary binding)."""


# -- launchers -----------------------------------------------------------------------------------


def _bench_server(kind: str, *extra: str) -> Launcher:
    """A ``benchmarks.serve`` process of ``kind``; gRPC kinds fill grpc_port, HTTP kinds http_port."""

    async def launch(servers: ServerSet, options: Options) -> Endpoint:
        args = [kind, "--cpu", str(SERVER_CPU), *(a.format(workdir=options.workdir) for a in extra)]
        server = await servers.start(kind, python_module("benchmarks.serve", *args))
        port = int(server.info["port"])
        http = kind.startswith("sdk-") and kind != "sdk-grpc"
        return Endpoint(HOST, [server], grpc_port=0 if http else port, http_port=port if http else 0)

    return launch


_AGENT = "benchmarks.agents:EchoAgent"

BRIDGE_SERVE = ["serve", "--host", HOST, "--grpc-port", "0", "--http-port", "0", "--store", "memory"]
"""``a2a-grpc serve`` with the JSON bindings in-process (gRPC and HTTP ports from one process)."""
BRIDGE_PROXY = [
    "bridge",
    "http-to-grpc",
    "--listen",
    f"{HOST}:0",
    "--upstream",
    "{upstream}",
    "--card",
    "{card}",
]
"""``a2a-grpc bridge http-to-grpc``: the JSON bindings as a separate process in front of a gRPC agent."""


def _bridge_missing() -> str | None:
    if importlib.util.find_spec("uvicorn") is None:
        return "the bridge's HTTP dependencies are not installed (pip install 'a2a-grpc[http]')"
    return None


def _otel_missing() -> str | None:
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        return "the OpenTelemetry SDK is not installed (pip install 'a2a-grpc[otel]')"
    return None


def _cli(*args: str) -> list[str]:
    """``a2a-grpc ARGS`` pinned to the server core (``benchmarks.serve exec`` pins, then execs)."""
    return python_module(
        "benchmarks.serve", "exec", "--cpu", str(SERVER_CPU), "--", *python_module("a2a_grpc.cli", *args)
    )


async def _launch_inproc(servers: ServerSet, options: Options) -> Endpoint:
    server = await servers.start(
        "a2a-grpc-serve", _cli(*BRIDGE_SERVE, "--agent", _AGENT), cli_ready(want_grpc=True, want_http=True)
    )
    endpoint = Endpoint(
        HOST, [server], grpc_port=int(server.info["grpc_port"]), http_port=int(server.info["http_port"])
    )
    endpoint.paths = await _card_paths(HOST, endpoint.http_port)
    return endpoint


async def _launch_proxy(servers: ServerSet, options: Options) -> Endpoint:
    upstream = await servers.start(
        "ours", python_module("benchmarks.serve", "ours", "--cpu", str(SERVER_CPU))
    )
    target = f"{HOST}:{upstream.info['port']}"
    card = options.workdir / "echo-card.json"
    card.write_text(json_format.MessageToJson(EchoAgent.card))
    args = [a.format(upstream=target, card=card) for a in BRIDGE_PROXY]
    proxy = await servers.start("a2a-grpc-bridge", _cli(*args), cli_ready(want_grpc=False, want_http=True))
    endpoint = Endpoint(
        HOST, [upstream, proxy], grpc_port=int(upstream.info["port"]), http_port=int(proxy.info["http_port"])
    )
    endpoint.paths = await _card_paths(HOST, endpoint.http_port)
    return endpoint


CARD_PATH = "/.well-known/agent-card.json"


async def _card_paths(host: str, port: int) -> dict[str, str]:
    """The URL paths the agent card gives for the JSON-RPC and HTTP+JSON interfaces."""
    conn = HttpConnection(host, port)
    get = f"GET {CARD_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode()
    try:
        async with asyncio.timeout(10):
            status, body = await conn.request(get)
    except (OSError, HttpError, TimeoutError) as exc:
        raise ServerError(f"cannot read the agent card at {CARD_PATH}: {exc}") from None
    finally:
        await conn.close()
    if status != 200:
        raise ServerError(f"{CARD_PATH} answered HTTP {status}")
    paths: dict[str, str] = {}
    for interface in json.loads(body).get("supportedInterfaces", []):
        url = str(interface.get("url", ""))
        if url.startswith("http"):
            path = "/" + url.split("://", 1)[1].partition("/")[2]
            paths.setdefault(str(interface.get("protocolBinding")), path)
    return paths


# -- requests ------------------------------------------------------------------------------------


def _grpc_echo(endpoint: Endpoint, options: Options) -> payload.Template:
    return payload.grpc_send_request()


def _grpc_stream(endpoint: Endpoint, options: Options) -> payload.Template:
    return payload.grpc_send_request(stream_text(options.stream_events))


def _jsonrpc_path(endpoint: Endpoint) -> str:
    return endpoint.paths.get("JSONRPC", "/")


def _rest_prefix(endpoint: Endpoint) -> str:
    return endpoint.paths.get("HTTP+JSON", "/").rstrip("/")


def _jsonrpc_echo(endpoint: Endpoint, options: Options) -> payload.Template:
    return payload.jsonrpc_send_request(HOST, endpoint.http_port, path=_jsonrpc_path(endpoint))


def _jsonrpc_stream(endpoint: Endpoint, options: Options) -> payload.Template:
    return payload.jsonrpc_send_request(
        HOST,
        endpoint.http_port,
        text=stream_text(options.stream_events),
        path=_jsonrpc_path(endpoint),
        method="SendStreamingMessage",
    )


def _rest_echo(endpoint: Endpoint, options: Options) -> payload.Template:
    return payload.rest_send_request(HOST, endpoint.http_port, path=_rest_prefix(endpoint) + "/message:send")


# -- load kinds ----------------------------------------------------------------------------------


def _grpc_unary(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return GrpcUnary(endpoint.grpc_target, request)


def _grpc_streaming(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return GrpcStream(endpoint.grpc_target, request, options.stream_events)


def _grpc_bidi(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return GrpcBidi(endpoint.grpc_target, request)


def _http_jsonrpc(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return HttpUnary(HOST, endpoint.http_port, request, jsonrpc=True)


def _http_rest(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return HttpUnary(HOST, endpoint.http_port, request, jsonrpc=False)


def _sse_jsonrpc(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return HttpStream(HOST, endpoint.http_port, request, options.stream_events, jsonrpc=True)


# -- the registry --------------------------------------------------------------------------------


def _case(
    name: str,
    group: str,
    summary: str,
    launch: Launcher,
    load: LoadKind | None,
    request: RequestBuilder | None,
    unit: str,
    *baselines: str,
    shot: Shot | None = None,
    requires: Callable[[], str | None] | None = None,
) -> Case:
    if requires is None:
        requires = {"bridge": _bridge_missing, "tracing": _otel_missing}.get(group, _always)
    return Case(name, group, summary, launch, load, request, unit, baselines, requires, shot)


async def _session_artifact(endpoint: Endpoint, options: Options) -> dict[str, Any]:
    from benchmarks.session_cases import measure_session_artifact

    return await measure_session_artifact(endpoint, options.artifact_bytes, options.artifact_chunk_bytes)


async def _session_resume(endpoint: Endpoint, options: Options) -> dict[str, Any]:
    from benchmarks.session_cases import measure_resume_latency

    return await measure_resume_latency(endpoint, options.resume_cuts)


async def _idle_sessions(endpoint: Endpoint, options: Options) -> dict[str, Any]:
    from benchmarks.session_cases import measure_idle_sessions

    return await measure_idle_sessions(endpoint, options.idle_sessions)


def _always() -> str | None:
    return None


def _redis_missing() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (make redis; Debian: apt-get install redis-server)"
    return None


def _redis_ready(line: str, info: dict[str, Any]) -> bool:
    if line.startswith("{"):  # benchmarks.serve exec: where it pinned, then redis-server's own lines
        info.update(json.loads(line))
    return "Ready to accept connections" in line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def _start_redis(servers: ServerSet, options: Options) -> tuple[int, Any]:
    """A redis-server of the case's own (loopback, no persistence, pinned to the server core,
    stopped by PID with the case's servers): its port and its process."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerError(_redis_missing() or "redis-server is not installed")
    port = _free_port()
    flags = ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    flags += ["--dir", str(options.workdir)]
    pinned = python_module("benchmarks.serve", "exec", "--cpu", str(SERVER_CPU), "--", binary, *flags)
    redis = await servers.start("redis-server", pinned, _redis_ready)
    redis.info["pinned"] = True
    return port, redis


def _with_redis(kind: str = "ours") -> Launcher:
    """A redis-server of the case's own, then our server with ``--store redis://`` on it. Both count
    as the server: Redis's CPU and memory are the store's cost."""

    async def launch(servers: ServerSet, options: Options) -> Endpoint:
        port, redis = await _start_redis(servers, options)
        args = [kind, "--cpu", str(SERVER_CPU), "--store", f"redis://{HOST}:{port}/0"]
        server = await servers.start(kind, python_module("benchmarks.serve", *args))
        return Endpoint(HOST, [server, redis], grpc_port=int(server.info["port"]))

    return launch


_SERVE_OURS = _bench_server("ours")
_SERVE_SQLITE = _bench_server("ours", "--store", "sqlite:///{workdir}/tasks.db")
_SERVE_SDK_GRPC = _bench_server("sdk-grpc")
_SERVE_SDK_JSONRPC = _bench_server("sdk-jsonrpc")
_SERVE_APIKEY = _bench_server("ours", "--auth", "apikey")
_SERVE_JWT = _bench_server("ours", "--auth", "jwt:{workdir}/jwks.json")
_BENCH_RATE = "100000000/second"
"""A rate per principal the load never reaches: the cases measure the counting, never a refusal."""
_SERVE_RATES = _bench_server("ours", "--rate", _BENCH_RATE)


async def _launch_rates_redis(servers: ServerSet, options: Options) -> Endpoint:
    """grpc-unary counting its rate in a redis-server of its own, pinned to the server's core: what
    one call costs the core that serves it, Redis included."""
    port, redis = await _start_redis(servers, options)
    serve = _bench_server("ours", "--rate", _BENCH_RATE, "--rate-storage", f"redis://{HOST}:{port}/0")
    endpoint = await serve(servers, options)
    endpoint.servers.append(redis)  # Redis's CPU is the rate's cost
    return endpoint


async def _launch_jwt(servers: ServerSet, options: Options) -> Endpoint:
    """Our server checking ES256 bearer JWTs against a JWKS file; the token the load sends is
    written beside it (one token, as a planner reuses its token for thousands of calls)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (options.workdir / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": "bench", "alg": "ES256"}]})
    )
    claims = {"iss": "bench", "aud": "bench", "sub": "planner", "exp": 2**31 - 1}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bench"})
    (options.workdir / "token.txt").write_text(token)
    return await _SERVE_JWT(servers, options)


def _traced(mode: str) -> Launcher:
    """Our server with instrumentation ``mode`` (default, none, propagation, spans). With spans
    it exports over OTLP to a dummy collector process of its own, pinned to the load generator's
    core (a real collector runs elsewhere; its work is not the server's)."""
    if mode != "spans":
        return _bench_server("ours", "--tracing", mode)

    async def launch(servers: ServerSet, options: Options) -> Endpoint:
        collector = await servers.start(
            "otlp-collector", python_module("benchmarks.serve", "otlp-collector", "--cpu", str(CLIENT_CPU))
        )
        endpoint = f"http://{HOST}:{collector.info['port']}"
        args = ["ours", "--cpu", str(SERVER_CPU), "--tracing", "spans", "--otlp-endpoint", endpoint]
        server = await servers.start("ours", python_module("benchmarks.serve", *args))
        return Endpoint(HOST, [server], grpc_port=int(server.info["port"]))

    return launch


TRACED_METADATA = (*GRPC_METADATA, ("traceparent", BENCH_TRACEPARENT))


def _grpc_unary_traced(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return GrpcUnary(endpoint.grpc_target, request, metadata=TRACED_METADATA)


def _session_unary_traced(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return SessionUnary(endpoint.grpc_target, request, metadata=(("traceparent", BENCH_TRACEPARENT),))


def _fanout(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return SubscribeFanOut(endpoint.grpc_target, options.stream_events)


def _session_unary(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return SessionUnary(endpoint.grpc_target, request)


def _session_stream(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return SessionStream(endpoint.grpc_target, request, options.stream_events)


def _session_handshake(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return SessionHandshake(endpoint.grpc_target)


def _grpc_unary_apikey(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    return GrpcUnary(endpoint.grpc_target, request, metadata=(*GRPC_METADATA, ("x-api-key", BENCH_API_KEY)))


def _grpc_unary_jwt(endpoint: Endpoint, request: payload.Template, options: Options) -> Workload:
    token = (options.workdir / "token.txt").read_text()
    return GrpcUnary(
        endpoint.grpc_target, request, metadata=(*GRPC_METADATA, ("authorization", f"Bearer {token}"))
    )


CASES: dict[str, Case] = {
    case.name: case
    for case in [
        # -- baselines: the official SDK, and bare grpc.aio as the ceiling
        _case("sdk-grpc", "baseline", "a2a-sdk echo agent, DefaultRequestHandler + GrpcHandler, SendMessage",
              _SERVE_SDK_GRPC, _grpc_unary, _grpc_echo, "req/s"),
        _case("sdk-grpc-stream", "baseline", "a2a-sdk echo agent over gRPC, SendStreamingMessage, N events",
              _SERVE_SDK_GRPC, _grpc_streaming, _grpc_stream, "events/s"),
        _case("sdk-jsonrpc", "baseline", "a2a-sdk echo agent, Starlette JSON-RPC routes on uvicorn",
              _SERVE_SDK_JSONRPC, _http_jsonrpc, _jsonrpc_echo, "req/s"),
        _case("sdk-jsonrpc-stream", "baseline", "a2a-sdk JSON-RPC SendStreamingMessage (SSE), N events",
              _SERVE_SDK_JSONRPC, _sse_jsonrpc, _jsonrpc_stream, "events/s"),
        _case("sdk-rest", "baseline", "a2a-sdk echo agent, Starlette REST routes on uvicorn",
              _bench_server("sdk-rest"), _http_rest, _rest_echo, "req/s"),
        _case("grpc-bare", "baseline", "bare grpc.aio handler answering canned SendMessageResponse bytes",
              _bench_server("grpc-bare"), _grpc_unary, _grpc_echo, "req/s"),
        _case("grpc-bare-bidi", "baseline", "bare grpc.aio bidirectional stream echoing every message",
              _bench_server("grpc-bare-bidi"), _grpc_bidi, _grpc_echo, "msg/s"),
        # -- ours
        _case("grpc-unary", "ours", "our A2AServer, EchoAgent, memory store, SendMessage",
              _SERVE_OURS, _grpc_unary, _grpc_echo, "req/s", "sdk-grpc", "grpc-bare"),
        _case("grpc-unary-sqlite", "ours", "our A2AServer, EchoAgent, SQLite store file, SendMessage",
              _SERVE_SQLITE, _grpc_unary, _grpc_echo, "req/s", "sdk-grpc", "grpc-bare", "grpc-unary"),
        _case("grpc-unary-redis", "ours", "our A2AServer, EchoAgent, Redis store (own redis), SendMessage",
              _with_redis(), _grpc_unary, _grpc_echo, "req/s", "grpc-unary", "grpc-unary-sqlite",
              requires=_redis_missing),
        _case("grpc-unary-apikey", "ours", "grpc-unary, API keys checked per call (X-API-Key)",
              _SERVE_APIKEY, _grpc_unary_apikey, _grpc_echo, "req/s", "grpc-unary"),
        _case("grpc-unary-rates", "ours", "grpc-unary, rate_per_principal counted in memory",
              _SERVE_RATES, _grpc_unary, _grpc_echo, "req/s", "grpc-unary"),
        _case("grpc-unary-rates-redis", "ours", "grpc-unary, rate_per_principal counted in Redis (loopback)",
              _launch_rates_redis, _grpc_unary, _grpc_echo, "req/s", "grpc-unary", "grpc-unary-rates"),
        _case("grpc-unary-jwt", "ours", "grpc-unary with bearer JWTs (ES256, one token reused, JWKS file)",
              _launch_jwt, _grpc_unary_jwt, _grpc_echo, "req/s", "grpc-unary"),
        _case("session-unary", "ours", "our A2AServer, SendMessage calls of every worker over ONE session",
              _SERVE_OURS, _session_unary, _grpc_echo, "req/s", "sdk-grpc", "grpc-bare-bidi", "grpc-unary"),
        _case("session-stream", "ours", "streaming calls over ONE session, N artifact events each",
              _SERVE_OURS, _session_stream, _grpc_stream, "events/s", "sdk-grpc-stream", "grpc-stream"),
        _case("session-handshake", "ours", "open a session (Hello, Welcome) and close it, per operation",
              _SERVE_OURS, _session_handshake, _grpc_echo, "handshakes/s"),
        _case("grpc-stream", "ours", "our A2AServer, SendStreamingMessage, N artifact events",
              _SERVE_OURS, _grpc_streaming, _grpc_stream, "events/s", "sdk-grpc-stream"),
        _case("grpc-stream-sqlite", "ours", "our A2AServer, SQLite store (events durable), N artifact events",
              _SERVE_SQLITE, _grpc_streaming, _grpc_stream, "events/s", "sdk-grpc-stream", "grpc-stream"),
        _case("grpc-stream-redis", "ours", "our A2AServer, Redis store (events durable), N artifact events",
              _with_redis(), _grpc_streaming, _grpc_stream, "events/s", "grpc-stream", "grpc-stream-sqlite",
              requires=_redis_missing),
        # -- SubscribeToTask fan-out: N subscribers (the concurrency) on ONE task streaming events
        _case("subscribe-fanout", "ours", "N SubscribeToTask subscribers on ONE task, memory store",
              _SERVE_OURS, _fanout, _grpc_echo, "events/s"),
        _case("subscribe-fanout-sqlite", "ours", "N subscribers on ONE task, SQLite store (events durable)",
              _SERVE_SQLITE, _fanout, _grpc_echo, "events/s", "subscribe-fanout"),
        _case("subscribe-fanout-redis", "ours", "N subscribers on ONE task, Redis store (events durable)",
              _with_redis(), _fanout, _grpc_echo, "events/s", "subscribe-fanout", "subscribe-fanout-sqlite",
              requires=_redis_missing),
        # -- instrumentation: every call carries a traceparent; the server has none (untraced), only
        # trace context (propagate), trace context and spans exported over OTLP (spans), or the
        # library's defaults: metrics and trace context (observed)
        _case("grpc-unary-untraced", "tracing", "grpc-unary, no instrumentation (metrics, trace context off)",
              _traced("none"), _grpc_unary_traced, _grpc_echo, "req/s", "grpc-unary"),
        _case("grpc-unary-propagate", "tracing", "grpc-unary, W3C trace context only (read and continued)",
              _traced("propagation"), _grpc_unary_traced, _grpc_echo, "req/s", "grpc-unary-untraced"),
        _case("grpc-unary-spans", "tracing", "grpc-unary, trace context and spans exported over OTLP",
              _traced("spans"), _grpc_unary_traced, _grpc_echo, "req/s", "grpc-unary-untraced",
              "grpc-unary-propagate"),
        _case("grpc-unary-observed", "tracing", "grpc-unary, the defaults: metrics and trace context",
              _traced("default"), _grpc_unary_traced, _grpc_echo, "req/s", "grpc-unary-untraced",
              "grpc-unary-propagate"),
        _case("session-unary-untraced", "tracing", "session-unary, no instrumentation",
              _traced("none"), _session_unary_traced, _grpc_echo, "req/s", "session-unary"),
        _case("session-unary-propagate", "tracing", "session-unary, W3C trace context in every Call frame",
              _traced("propagation"), _session_unary_traced, _grpc_echo, "req/s", "session-unary-untraced"),
        _case("session-unary-spans", "tracing", "session-unary, trace context and spans exported over OTLP",
              _traced("spans"), _session_unary_traced, _grpc_echo, "req/s", "session-unary-untraced",
              "session-unary-propagate"),
        _case("session-unary-observed", "tracing", "session-unary, the defaults: metrics and trace context",
              _traced("default"), _session_unary_traced, _grpc_echo, "req/s", "session-unary-untraced",
              "session-unary-propagate"),
        _case("artifact-256mib", "ours", "our A2AServer streams one chunked artifact: MB/s, RSS growth",
              _SERVE_OURS, None, None, "MB/s"),
        _case("session-artifact-256mib", "ours", "the large artifact over ONE session: MB/s, RSS growth",
              _SERVE_OURS, None, None, "MB/s", shot=_session_artifact),
        _case("session-idle", "ours", "10,000 idle sessions held open (heartbeats flowing): server RSS",
              _SERVE_OURS, None, None, "sessions", shot=_idle_sessions),
        _case("session-resume", "ours", "a stream over ONE session cut 100 times: drop to first frame after",
              _SERVE_OURS, None, None, "ms", shot=_session_resume),
        # -- our JSON bindings (bridge/), skipped until that package exists
        _case("jsonrpc-inproc", "bridge", "a2a-grpc serve, in-process JSON-RPC binding, SendMessage",
              _launch_inproc, _http_jsonrpc, _jsonrpc_echo, "req/s", "sdk-jsonrpc"),
        _case("rest-inproc", "bridge", "a2a-grpc serve, in-process HTTP+JSON binding, message:send",
              _launch_inproc, _http_rest, _rest_echo, "req/s", "sdk-rest"),
        _case("jsonrpc-stream-inproc", "bridge", "in-process JSON-RPC SendStreamingMessage (SSE), N events",
              _launch_inproc, _sse_jsonrpc, _jsonrpc_stream, "events/s", "sdk-jsonrpc-stream"),
        _case("jsonrpc-bridge", "bridge", "a2a-grpc bridge process (JSON-RPC) before our gRPC server",
              _launch_proxy, _http_jsonrpc, _jsonrpc_echo, "req/s", "sdk-jsonrpc", "jsonrpc-inproc"),
        _case("rest-bridge", "bridge", "a2a-grpc bridge process (HTTP+JSON) before our gRPC server",
              _launch_proxy, _http_rest, _rest_echo, "req/s", "sdk-rest", "rest-inproc"),
    ]
}  # fmt: skip


def case_names() -> list[str]:
    return list(CASES)
