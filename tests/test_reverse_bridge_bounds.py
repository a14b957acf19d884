"""The reverse bridge bounds every read from a hostile JSON upstream (issue 14, item 4).

A raw asyncio HTTP server (:class:`Hostile`) answers the bridge as an attacker would: an SSE line
that never ends, one SSE event of endless lines, a gzip bomb (2 MiB inflating to 2 GiB of zeros)
on a unary answer, on a stream and as the agent card, a body that drips a byte every 100 ms,
an answer that never comes, a connection that is never accepted. Each case goes through the
gRPC front (:class:`GrpcFront`) as a gRPC client would, and shows:

* the typed error, naming the setting that stopped the read (``metadata["limit"]`` for sizes,
  the message for times), arriving within the bound;
* the upstream connection closed by the bridge (the server sees the hang-up);
* the bridge serving on: a normal call right after succeeds;
* the memory the case took (tracemalloc's peak, and the growth of the process's peak RSS),
  printed with the time taken (``pytest -s`` shows them).

Small bounds keep the cases fast; one case runs the defaults against the gzip bomb. Time and
memory assertions are generous: the broken bridge read 1 GiB, for 49 s, or forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest

from a2a_grpc import errors, types
from a2a_grpc._bodies import STEP, AnswerError, ContentDecoder, content_decoder
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import CARD_PATH, JsonRpcUpstream, RestUpstream, fetch_card, open_json_upstream
from a2a_grpc.bridge.settings import MiB, OutboundSettings
from a2a_grpc.bridge.upstream import Call
from a2a_grpc.client import A2AClient
from a2a_grpc.server import ServerSettings
from tests.json_peers import bind
from tests.webhook import until

C = grpc.StatusCode
BINDINGS = ["JSONRPC", "HTTP+JSON"]
SERVER = ServerSettings(host="127.0.0.1", port=0, grace_seconds=1.0)
CALLER_TIMEOUT = 30.0
"""The gRPC caller's deadline: far beyond every bound under test, so the bridge's bound acts first."""
LIMIT = 5.0
"""Upper bound of every wait for something to happen server-side."""
SMALL = OutboundSettings(
    max_response_bytes=1 * MiB,
    max_sse_line_bytes=1 * MiB,
    max_sse_event_bytes=1 * MiB,
    unary_timeout=1.0,
    stream_idle_timeout=1.0,
    connect_timeout=0.5,
)
CARD = types.AgentCard(name="hostile", description="answers as an attacker would", version="1")
V1 = {"a2a-version": "1.0"}


# ==== the hostile upstream ==========================================================================


@dataclass
class Request:
    verb: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def rpc(self) -> dict[str, Any] | None:
        data = orjson.loads(self.body) if self.body.startswith(b"{") else None
        return data if isinstance(data, dict) and "jsonrpc" in data else None

    @property
    def key(self) -> str:
        """What picks the answer: the task id the call names, or ``card`` for the agent card."""
        if self.path == CARD_PATH:
            return "card"
        if (rpc := self.rpc) is not None:
            return str(rpc["params"].get("id", ""))
        found = re.search(r"/tasks/([^/:?]+)", self.path)
        return found.group(1) if found else ""

    @property
    def streaming(self) -> bool:
        return self.headers.get("accept") == "text/event-stream"


Answer = Callable[[asyncio.StreamWriter, Request], Awaitable[None]]


class Hostile:
    """An HTTP/1.1 server answering each call as :attr:`answers` says for the task id it names (a
    normal completed task for any other id), and recording when the client hangs up on an answer."""

    def __init__(self, sock: Any = None) -> None:
        self.answers: dict[str, Answer] = {}
        self.hung_up: list[float] = []
        """When (``time.perf_counter``) the client closed a connection in the middle of an answer."""
        self.requests: list[Request] = []
        self._sock = sock or bind()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    async def __aenter__(self) -> Hostile:
        self._server = await asyncio.start_server(self._connection, sock=self._sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                self.requests.append(request)
                answer = self.answers.get(request.key)
                if answer is None:
                    await _normal(writer, request)
                    continue
                await self._hostile(answer, reader, writer, request)
                return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _hostile(
        self, answer: Answer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
    ) -> None:
        """Run ``answer`` until it ends or the client hangs up (its end of the connection closes)."""
        answering = asyncio.ensure_future(answer(writer, request))
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({answering, hangup}, return_when=asyncio.FIRST_COMPLETED)
            gone = hangup.done() or (answering.done() and isinstance(answering.exception(), ConnectionError))
            if gone:
                self.hung_up.append(time.perf_counter())
        finally:
            for task in (answering, hangup):
                task.cancel()
            await asyncio.gather(answering, hangup, return_exceptions=True)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    verb, path, _ = first.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(verb, path, headers, body)


def _head(content_type: str, status: str = "200 OK", **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _task(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "contextId": "c", "status": {"state": "TASK_STATE_COMPLETED"}}


def _json_answer(request: Request, result: Any) -> bytes:
    rpc = request.rpc
    return orjson.dumps(result if rpc is None else {"jsonrpc": "2.0", "id": rpc["id"], "result": result})


async def _normal(writer: asyncio.StreamWriter, request: Request) -> None:
    """A completed task: as a JSON answer, as a stream of one event, or the agent card."""
    if request.key == "card" or request.path.endswith(".json"):
        body, media = orjson.dumps({"name": "hostile", "supportedInterfaces": []}), "application/json"
    elif request.streaming:
        body, media = (
            b"data: " + _json_answer(request, {"task": _task(request.key)}) + b"\n\n",
            "text/event-stream",
        )
    else:
        body, media = _json_answer(request, _task(request.key)), "application/json"
    writer.write(_head(media, Content_Length=len(body)) + body)
    await writer.drain()


# -- the answers ---------------------------------------------------------------------------------

SSE = "text/event-stream"


async def endless_line(writer: asyncio.StreamWriter, request: Request) -> None:
    """An event stream whose first line never ends."""
    writer.write(_head(SSE, Connection="close") + b"data: ")
    chunk = b"x" * 65536
    while True:
        writer.write(chunk)
        await writer.drain()


async def endless_event(writer: asyncio.StreamWriter, request: Request) -> None:
    """An event stream whose first event never ends: 1 KiB data lines, never a blank line."""
    writer.write(_head(SSE, Connection="close"))
    lines = (b"data: " + b"x" * 1018 + b"\n") * 64
    while True:
        writer.write(lines)
        await writer.drain()


@cache
def bomb_parts(gib: int = 2) -> tuple[bytes, bytes, int, bytes]:
    """A gzip body inflating to ``gib`` GiB of zeros, as (head, block, count, tail): ``head`` +
    ``block`` * ``count`` + ``tail`` (~1 KiB per MiB; built from one compressed MiB, so cheap)."""
    zeros = bytes(MiB)
    z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    head = z.compress(zeros) + z.flush(zlib.Z_FULL_FLUSH)
    block = z.compress(zeros) + z.flush(zlib.Z_FULL_FLUSH)  # after a full flush: the same bytes each MiB
    crc = 0
    for _ in range(gib * 1024):
        crc = zlib.crc32(zeros, crc)
    tail = b"\x03\x00" + struct.pack("<II", crc, (gib << 30) & 0xFFFFFFFF)  # last block, CRC, size
    return head, block, gib * 1024 - 1, tail


def gzip_bomb(media: str, status: str = "200 OK", **headers: str) -> Answer:
    """A ``media`` answer with ``Content-Encoding: gzip`` of 2 MiB that inflates to 2 GiB of zeros."""
    bomb_parts()  # built now, not in the time of the case

    async def answer(writer: asyncio.StreamWriter, request: Request) -> None:
        head, block, count, tail = bomb_parts()
        size = len(head) + len(block) * count + len(tail)
        writer.write(_head(media, status, Content_Encoding="gzip", Content_Length=size, **headers) + head)
        for _ in range(count // 64):
            writer.write(block * 64)
            await writer.drain()
        writer.write(block * (count % 64) + tail)
        await writer.drain()
        await asyncio.Event().wait()  # the connection stays open: only the client may end it

    return answer


def drip(media: str, byte: bytes = b" ", every: float = 0.1) -> Answer:
    """A ``media`` answer that announces 1 MB and sends one byte every ``every`` seconds."""

    async def answer(writer: asyncio.StreamWriter, request: Request) -> None:
        length = {} if media == SSE else {"Content_Length": 1_000_000}
        writer.write(_head(media, **length))
        while True:
            writer.write(byte)
            await writer.drain()
            await asyncio.sleep(every)

    return answer


async def silent(writer: asyncio.StreamWriter, request: Request) -> None:
    """Reads the request, and never answers."""
    await asyncio.Event().wait()


def heartbeats_then_event(seconds: float, every: float = 0.05) -> Answer:
    """An event stream of ``: keep-alive`` comments for ``seconds``, then one event, then its end."""

    async def answer(writer: asyncio.StreamWriter, request: Request) -> None:
        writer.write(_head(SSE, Connection="close"))
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            writer.write(b": keep-alive\n\n")
            await writer.drain()
            await asyncio.sleep(every)
        writer.write(b"data: " + _json_answer(request, {"task": _task(request.key)}) + b"\n\n")
        await writer.drain()
        writer.close()

    return answer


# ==== the bridge in front of it, and what a case costs ==============================================


@dataclass
class Bridged:
    hostile: Hostile
    front: GrpcFront
    client: A2AClient
    figures: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def bridged(binding: str, settings: OutboundSettings | None = SMALL) -> AsyncIterator[Bridged]:
    """A hostile upstream over ``binding``, GrpcFront over it, our gRPC client of that."""
    async with Hostile() as hostile:
        kind = JsonRpcUpstream if binding == "JSONRPC" else RestUpstream
        upstream = kind(hostile.url, card=CARD, settings=settings)
        try:
            async with (
                GrpcFront(upstream, SERVER) as front,
                A2AClient(front.address, timeout=CALLER_TIMEOUT) as client,
            ):
                yield Bridged(hostile, front, client)
        finally:
            await upstream.aclose()


def _status_kib(field_name: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux: clear_refs 5), so that a case's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Cost:
    error: errors.A2AError
    started: float
    """``time.perf_counter()`` when the call was made."""
    seconds: float
    traced_peak: int
    """tracemalloc's peak over the case, in bytes (Python's allocations, zlib's included)."""
    rss_growth: int | None
    """How far the process's peak RSS rose above its RSS at the start, in bytes (None: unknown)."""

    def report(self, case: str) -> str:
        rss = "?" if self.rss_growth is None else f"{self.rss_growth / MiB:.1f} MiB"
        line = (
            f"{case}: {type(self.error).__name__} after {self.seconds:.2f} s, "
            f"tracemalloc peak {self.traced_peak / MiB:.1f} MiB, peak RSS growth {rss}"
        )
        print(line)
        return line


async def cost(call: Callable[[], Awaitable[object]]) -> Cost:
    """Run ``call``, which must fail with an A2AError; its time and memory."""
    resettable = _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        await call()
    except errors.A2AError as exc:
        error = exc
    else:
        pytest.fail("the hostile answer was accepted")
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak_rss = _status_kib("VmHWM")
    growth = max(0, peak_rss - rss_before) * 1024 if resettable and peak_rss and rss_before else None
    return Cost(error, started, seconds, peak, growth)


async def stream_of(client: A2AClient, task_id: str) -> list[types.StreamResponse]:
    return [event async for event in client.subscribe_to_task(task_id)]


async def serves_on(b: Bridged, spent: Cost) -> None:
    """The upstream saw the bridge hang up; a normal unary and stream call succeed right after."""
    await until(lambda: bool(b.hostile.hung_up), LIMIT)
    closed = b.hostile.hung_up[0] - spent.started
    print(f"  the upstream saw the connection closed {closed:.2f} s after the call")
    task = await b.client.get_task("ok")
    assert (task.id, task.status.state) == ("ok", types.TASK_STATE_COMPLETED)
    events = await stream_of(b.client, "ok-stream")
    assert [e.task.id for e in events] == ["ok-stream"]


def assert_over(err: errors.A2AError, limit: str, value: int) -> None:
    assert type(err) is errors.InvalidAgentResponseError, repr(err)
    assert err.grpc_code == C.INTERNAL
    assert err.metadata.get("limit") == limit, err.metadata
    assert err.metadata.get("limit_value") == str(value)
    assert f"({limit})" in err.message
    assert "upstream agent at http://127.0.0.1:" in err.message


# ==== sizes =========================================================================================


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_sse_line_that_never_ends_is_cut_at_max_sse_line_bytes(binding: str) -> None:
    async with bridged(binding) as b:
        b.hostile.answers["line"] = endless_line
        spent = await cost(lambda: stream_of(b.client, "line"))
        spent.report(f"endless SSE line ({binding}, max_sse_line_bytes 1 MiB)")
        assert_over(spent.error, "max_sse_line_bytes", MiB)
        assert spent.traced_peak < 16 * MiB  # a line of 1 MiB, held once or twice
        assert spent.seconds < 10
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_an_sse_event_of_endless_lines_is_cut_at_max_sse_event_bytes(binding: str) -> None:
    async with bridged(binding) as b:
        b.hostile.answers["event"] = endless_event
        spent = await cost(lambda: stream_of(b.client, "event"))
        spent.report(f"endless SSE event ({binding}, max_sse_event_bytes 1 MiB)")
        assert_over(spent.error, "max_sse_event_bytes", MiB)
        assert spent.traced_peak < 16 * MiB
        assert spent.seconds < 10
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_gzip_bomb_answer_is_cut_at_max_response_bytes(binding: str) -> None:
    async with bridged(binding) as b:
        b.hostile.answers["bomb"] = gzip_bomb("application/json")
        spent = await cost(lambda: b.client.get_task("bomb"))
        spent.report(f"gzip bomb, unary ({binding}, max_response_bytes 1 MiB)")
        assert_over(spent.error, "max_response_bytes", MiB)
        assert "larger than 1048576 bytes" in spent.error.message
        assert spent.traced_peak < 16 * MiB
        assert spent.seconds < 10
        await serves_on(b, spent)


@pytest.mark.asyncio
async def test_a_gzip_bomb_stream_is_cut_at_max_sse_line_bytes() -> None:
    async with bridged("JSONRPC") as b:
        b.hostile.answers["bomb"] = gzip_bomb(SSE)
        spent = await cost(lambda: stream_of(b.client, "bomb"))
        spent.report("gzip bomb, stream (JSONRPC, max_sse_line_bytes 1 MiB)")
        assert_over(spent.error, "max_sse_line_bytes", MiB)
        assert spent.traced_peak < 16 * MiB
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_the_defaults_stop_a_gzip_bomb(binding: str) -> None:
    """Unconfigured, the bridge holds little more than max_response_bytes (16 MiB) of the 2 GiB.
    Before it was bounded, this answer took 2.1 GiB."""
    defaults = OutboundSettings()
    async with bridged(binding, settings=None) as b:
        b.hostile.answers["bomb"] = gzip_bomb("application/json")
        spent = await cost(lambda: b.client.get_task("bomb"))
        spent.report(f"gzip bomb, unary ({binding}, defaults: max_response_bytes 16 MiB)")
        assert_over(spent.error, "max_response_bytes", defaults.max_response_bytes)
        assert spent.traced_peak < 128 * MiB  # 16 MiB kept, and its copies; not 2 GiB
        if spent.rss_growth is not None:
            assert spent.rss_growth < 256 * MiB
        assert spent.seconds < 20
        await serves_on(b, spent)


@pytest.mark.asyncio
async def test_a_gzip_bomb_agent_card_is_refused() -> None:
    async with Hostile() as hostile:
        hostile.answers["card"] = gzip_bomb("application/json")
        spent = await cost(lambda: open_json_upstream(hostile.url, settings=SMALL))
        spent.report("gzip bomb, agent card (max_response_bytes 1 MiB)")
        err = spent.error
        assert type(err) is errors.InvalidAgentResponseError, repr(err)
        assert err.metadata == {"limit": "max_response_bytes", "limit_value": str(MiB)}
        assert f"the agent card at {hostile.url}{CARD_PATH} is not valid" in err.message
        assert "(max_response_bytes)" in err.message
        assert spent.traced_peak < 16 * MiB
        await until(lambda: bool(hostile.hung_up), LIMIT)


@pytest.mark.asyncio
async def test_the_body_of_a_redirect_to_the_card_is_never_read() -> None:
    """httpx reads a redirect's body whole, inflated, before following it: not for the card."""
    async with Hostile() as hostile, httpx.AsyncClient() as http:
        hostile.answers["card"] = gzip_bomb("text/html", "302 Found", Location="/moved/agent-card.json")
        tracemalloc.start()
        try:
            card = await fetch_card(hostile.url + CARD_PATH, client=http, max_bytes=MiB)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        print(f"gzip bomb in a redirect to the card: tracemalloc peak {peak / MiB:.1f} MiB")
        assert card.name == "hostile"
        assert [r.path for r in hostile.requests] == [CARD_PATH, "/moved/agent-card.json"]
        assert peak < 16 * MiB
        await until(lambda: bool(hostile.hung_up), LIMIT)


@pytest.mark.asyncio
async def test_endless_response_headers_are_refused() -> None:
    async def endless_header(writer: asyncio.StreamWriter, request: Request) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        while True:
            writer.write(b"x" * 65536)
            await writer.drain()

    async with bridged("JSONRPC") as b:
        b.hostile.answers["head"] = endless_header
        spent = await cost(lambda: b.client.get_task("head"))
        spent.report("endless response header (httpcore's 100 KiB)")
        assert type(spent.error) is errors.UnavailableError, repr(spent.error)
        assert "its answer broke the HTTP protocol" in spent.error.message
        assert spent.traced_peak < 16 * MiB
        await serves_on(b, spent)


@pytest.mark.asyncio
async def test_a_declared_length_over_the_bound_is_refused_unread() -> None:
    async def announced(writer: asyncio.StreamWriter, request: Request) -> None:
        writer.write(_head("application/json", Content_Length=2 * MiB))
        await writer.drain()
        await asyncio.Event().wait()

    async with bridged("HTTP+JSON") as b:
        b.hostile.answers["big"] = announced
        spent = await cost(lambda: b.client.get_task("big"))
        assert_over(spent.error, "max_response_bytes", MiB)
        await serves_on(b, spent)


# ==== times =========================================================================================


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_dripping_answer_is_cut_at_unary_timeout(binding: str) -> None:
    async with bridged(binding) as b:
        b.hostile.answers["drip"] = drip("application/json")
        spent = await cost(lambda: b.client.get_task("drip"))
        spent.report(f"drip, unary ({binding}, unary_timeout 1 s)")
        err = spent.error
        assert type(err) is errors.DeadlineExceededError, repr(err)
        assert err.grpc_code == C.DEADLINE_EXCEEDED
        assert "did not answer within 1 s (unary_timeout)" in err.message
        assert 0.9 < spent.seconds < 5
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_dripping_stream_is_cut_at_stream_idle_timeout(binding: str) -> None:
    """A byte every 100 ms, never a whole line: the stream is silent as far as events go."""
    async with bridged(binding) as b:
        b.hostile.answers["drip"] = drip(SSE, b"x")
        spent = await cost(lambda: stream_of(b.client, "drip"))
        spent.report(f"drip, stream ({binding}, stream_idle_timeout 1 s)")
        err = spent.error
        assert type(err) is errors.UnavailableError, repr(err)
        assert err.grpc_code == C.UNAVAILABLE
        assert "stream sent nothing for 1 s (stream_idle_timeout)" in err.message
        assert 0.9 < spent.seconds < 5
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_an_upstream_that_never_answers(streaming: bool) -> None:
    async with bridged("JSONRPC") as b:
        b.hostile.answers["mute"] = silent
        call = (lambda: stream_of(b.client, "mute")) if streaming else (lambda: b.client.get_task("mute"))
        spent = await cost(call)
        spent.report(f"no answer, {'stream' if streaming else 'unary'} (1 s bounds)")
        if streaming:
            assert type(spent.error) is errors.UnavailableError, repr(spent.error)
            assert "(stream_idle_timeout)" in spent.error.message
        else:
            assert type(spent.error) is errors.DeadlineExceededError, repr(spent.error)
            assert "(unary_timeout)" in spent.error.message
        assert 0.9 < spent.seconds < 5
        await serves_on(b, spent)


@pytest.mark.asyncio
@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_the_callers_deadline_wins_when_it_is_sooner(streaming: bool) -> None:
    """A stream of keep-alive lines is alive (never idle): only the caller's deadline ends it."""
    slow = OutboundSettings(unary_timeout=60.0, stream_idle_timeout=60.0)
    async with bridged("JSONRPC", settings=slow) as b:
        b.hostile.answers["drip"] = drip(SSE, b":\n") if streaming else drip("application/json")

        async def call() -> object:
            if streaming:
                return [e async for e in b.client.subscribe_to_task("drip", timeout=1.0)]
            return await b.client.get_task("drip", timeout=1.0)

        spent = await cost(call)
        assert type(spent.error) is errors.DeadlineExceededError, repr(spent.error)
        assert "timeout" not in spent.error.message  # the caller's deadline, not one of ours
        assert spent.seconds < 5
        await serves_on(b, spent)


@pytest.mark.asyncio
async def test_keep_alive_comments_keep_a_quiet_stream_open() -> None:
    """Idle means no line: a stream that sends heartbeats outlives stream_idle_timeout."""
    async with bridged("HTTP+JSON") as b:
        b.hostile.answers["quiet"] = heartbeats_then_event(seconds=1.5 * SMALL.stream_idle_timeout)
        events = await stream_of(b.client, "quiet")
        assert [e.task.id for e in events] == ["quiet"]


@pytest.mark.asyncio
async def test_no_connection_within_connect_timeout_is_unavailable() -> None:
    """A listener whose accept queue is full drops the bridge's SYN: the connection never opens."""
    sock = bind()
    sock.listen(0)
    filler = await asyncio.open_connection(*sock.getsockname())  # takes the one place in the queue
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    upstream = JsonRpcUpstream(url, card=CARD, settings=SMALL)
    try:
        async with (
            GrpcFront(upstream, SERVER) as front,
            A2AClient(front.address, timeout=CALLER_TIMEOUT) as client,
        ):
            spent = await cost(lambda: client.get_task("x"))
            spent.report("no connection (connect_timeout 0.5 s)")
            err = spent.error
            assert type(err) is errors.UnavailableError, repr(err)
            assert err.message.endswith(
                f"upstream agent at {url} is unavailable: no connection within 0.5 s (connect_timeout)"
            )
            assert 0.4 < spent.seconds < 5
            filler[1].close()
            await filler[1].wait_closed()
            async with Hostile(sock) as hostile:  # the agent starts accepting: the bridge serves on
                task = await client.get_task("ok")
                assert task.id == "ok"
                assert hostile.requests
    finally:
        await upstream.aclose()
        sock.close()


# ==== what the bridge reads: encodings, pieces, settings =============================================


def _encoded(request_id: str, encoding: str) -> bytes:
    payload = orjson.dumps(_task(request_id))
    if encoding == "gzip":
        return gzip.compress(payload)
    if encoding == "deflate":  # the zlib-wrapped form
        return zlib.compress(payload)
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # deflate as some servers send it
    return raw.compress(payload) + raw.flush()


@pytest.mark.asyncio
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_compressed_answers_are_read(encoding: str) -> None:
    async def answer(writer: asyncio.StreamWriter, request: Request) -> None:
        data = _encoded(request.key, encoding)
        header = "deflate" if encoding == "raw-deflate" else encoding
        writer.write(_head("application/json", Content_Encoding=header, Content_Length=len(data)) + data)
        await writer.drain()

    async with Hostile() as hostile:
        hostile.answers["zipped"] = answer
        upstream = RestUpstream(hostile.url, card=CARD, settings=SMALL)
        try:
            task = await upstream.unary("GetTask", types.GetTaskRequest(id="zipped"), Call(V1, LIMIT))
        finally:
            await upstream.aclose()
        assert task == types.Task(
            id="zipped", context_id="c", status=types.TaskStatus(state=types.TASK_STATE_COMPLETED)
        )
        assert hostile.requests[-1].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("encoding", "problem"),
    [
        ("br", "answered in content encoding 'br', not gzip, deflate as asked"),
        ("gzip, gzip", "answered in 2 content encodings layered (gzip, gzip)"),
        ("gzip", "sent a body that is not valid gzip"),
    ],
    ids=["not-asked", "layered", "corrupt"],
)
async def test_encodings_we_cannot_read_safely_are_refused(encoding: str, problem: str) -> None:
    async def answer(writer: asyncio.StreamWriter, request: Request) -> None:
        data = b"\x1f\x8bnot gzip at all"
        writer.write(_head("application/json", Content_Encoding=encoding, Content_Length=len(data)) + data)
        await writer.drain()
        await asyncio.Event().wait()

    async with bridged("JSONRPC") as b:
        b.hostile.answers["odd"] = answer
        spent = await cost(lambda: b.client.get_task("odd"))
        assert type(spent.error) is errors.InvalidAgentResponseError, repr(spent.error)
        assert problem in spent.error.message
        await serves_on(b, spent)


def test_inflating_hands_out_at_most_one_step_at_a_time() -> None:
    head, block, _, _ = bomb_parts(1)
    decoder = ContentDecoder("gzip")
    sizes = [len(piece) for piece in decoder.feed(head + block * 8)]
    assert max(sizes) <= STEP
    assert sum(sizes) == 9 * MiB


def test_gzip_members_one_after_another_are_one_body() -> None:
    body = gzip.compress(b"first ") + gzip.compress(b"second")
    decoder = ContentDecoder("gzip")
    assert b"".join(p for i in range(len(body)) for p in decoder.feed(body[i : i + 1])) == b"first second"


def test_data_after_a_deflate_stream_is_refused() -> None:
    decoder = ContentDecoder("deflate")
    with pytest.raises(zlib.error):
        list(decoder.feed(zlib.compress(b"x") + b"trailing"))


def test_identity_needs_no_decoder() -> None:
    assert content_decoder([]) is None
    assert content_decoder(["identity"]) is None
    with pytest.raises(AnswerError, match="'zstd'"):
        content_decoder(["zstd"])


@pytest.mark.parametrize(
    "bad",
    [
        {"max_response_bytes": 0},
        {"max_sse_line_bytes": -1},
        {"max_sse_event_bytes": 1.5},
        {"unary_timeout": 0},
        {"stream_idle_timeout": float("nan")},
        {"connect_timeout": float("inf")},
        {"unary_timeout": True},
    ],
)
def test_settings_are_validated(bad: dict[str, Any]) -> None:
    (name,) = bad
    with pytest.raises(ValueError, match=f"^{name} must be a positive number"):
        OutboundSettings(**bad)


@pytest.mark.asyncio
async def test_fetch_card_bounds_an_answer_without_a_bomb_too() -> None:
    async with Hostile() as hostile, httpx.AsyncClient() as http:
        hostile.answers["card"] = endless_line  # an endless body, whatever its type says
        with pytest.raises(errors.InvalidAgentResponseError) as info:
            await fetch_card(hostile.url + CARD_PATH, client=http, max_bytes=MiB)
        assert info.value.metadata["limit"] == "max_response_bytes"
