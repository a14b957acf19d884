"""Peers for the HTTP-front tests (test_bridge_http, test_routes, test_transcoding).

* :func:`http_bridge` serves a :class:`a2a_grpc.bridge.app.BridgeApp` over any upstream on an
  :class:`a2a_grpc.bridge.httpserver.HttpServer` (127.0.0.1, port 0) and yields a :class:`HttpBridge` with an
  ``httpx`` client of it; :func:`reference_bridge` does the same over the reference agent behind a
  real :class:`a2a_grpc.server.A2AServer` (``LocalUpstream(server.handler)``).
* :class:`ScriptedUpstream` is a fake :class:`a2a_grpc.bridge.upstream.Upstream` for transport-level facts
  (a stream that fails after its first event, waits on a gate, or records that it was closed).
* :class:`RecordingAgent` is the reference agent plus a record of every :class:`RequestContext`.
* :class:`SseReader` reads Server-Sent Events off an ``httpx`` response, one bounded wait per item;
  :class:`RawConnection` speaks HTTP/1.1 over a bare socket (chunked bodies, hanging up mid-stream).
* :func:`probe_file` builds a small proto file with ``google.api.http`` rules in a private pool, for
  the routing and codec edge cases the A2A proto does not have (repeated query fields, int64, …).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from google.api import annotations_pb2, field_behavior_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc.agent import RequestContext, TaskUpdater
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import Call, LocalUpstream, Upstream
from a2a_grpc.reference_agent import ReferenceAgent, reference_card
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore

WAIT = 5.0
"""The longest any single step of a test waits (an event, a line, a state)."""
VERSION = {"a2a-version": "1.0"}


# -- bridges ----------------------------------------------------------------------------------------


@dataclass
class HttpBridge:
    app: BridgeApp
    http: HttpServer
    client: httpx.AsyncClient
    server: A2AServer | None = None
    agent: RecordingAgent | None = None

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def port(self) -> int:
        return self.http.port


@contextlib.asynccontextmanager
async def http_bridge(
    upstream: Upstream, settings: BridgeSettings | None = None
) -> AsyncIterator[HttpBridge]:
    app = BridgeApp(upstream, settings)
    http = HttpServer(app, "127.0.0.1", 0, grace=1.0)
    http.bind()
    app.public_url = http.url
    await http.start()
    try:
        async with httpx.AsyncClient(base_url=http.url, headers=VERSION, timeout=WAIT) as client:
            yield HttpBridge(app, http, client)
    finally:
        await http.stop()


@contextlib.asynccontextmanager
async def reference_bridge(**settings: Any) -> AsyncIterator[HttpBridge]:
    """The reference agent (recording its calls) on gRPC, and the bridge in front of its handler."""
    agent = RecordingAgent()
    store = InMemoryTaskStore()
    server = A2AServer(agent, store, ServerSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        assert server.handler is not None
        async with http_bridge(LocalUpstream(server.handler), BridgeSettings(**settings)) as bridge:
            bridge.server, bridge.agent = server, agent
            yield bridge
    finally:
        await server.stop(grace=0.2)  # `slow` tasks a test left running are cancelled
        await store.close()


class RecordingAgent(ReferenceAgent):
    """The reference agent; :attr:`seen` holds the context of every message it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[RequestContext] = []

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.seen.append(context)
        await super().execute(context, updater)


# -- a fake upstream --------------------------------------------------------------------------------


HOLD = object()
"""A :class:`ScriptedUpstream` step that never ends (until the stream is closed)."""


@dataclass
class ScriptedUpstream:
    """Streams play :attr:`script`: a Message is yielded, a number is slept, an ``asyncio.Event`` is
    waited for, an exception is raised, :data:`HOLD` waits forever. Unary calls answer :attr:`reply`
    (or raise it). Every call is recorded; :attr:`closed` is set when a stream's generator ends."""

    script: Sequence[object] = ()
    reply: Message | BaseException = field(default_factory=types.Task)
    calls: list[tuple[str, Message, Call]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    ended_by: str = ""
    """How the last stream ended: "done", "error", "closed" (aclose) or "cancelled"."""

    def play(self, *script: object) -> ScriptedUpstream:
        """Start over with a new script (for an upstream shared by several tests)."""
        self.script, self.closed, self.ended_by = script, asyncio.Event(), ""
        self.calls.clear()
        return self

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        self.calls.append((method, request, call))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        self.calls.append((method, request, call))
        self.ended_by = ""
        try:
            for step in self.script:
                if isinstance(step, BaseException):
                    self.ended_by = "error"
                    raise step
                if isinstance(step, int | float):
                    await asyncio.sleep(step)
                elif isinstance(step, asyncio.Event):
                    await step.wait()
                elif step is HOLD:
                    await asyncio.Event().wait()
                else:
                    assert isinstance(step, Message)
                    yield step
            self.ended_by = "done"
        except GeneratorExit:
            self.ended_by = "closed"
            raise
        except asyncio.CancelledError:
            self.ended_by = "cancelled"
            raise
        finally:
            self.closed.set()

    async def card(self) -> types.AgentCard:
        card = reference_card()
        card.supported_interfaces.add(url="127.0.0.1:1", protocol_binding="GRPC", protocol_version="1.0")
        return card

    async def aclose(self) -> None:
        return None


def status_event(state: int = types.TASK_STATE_WORKING, task_id: str = "t-1") -> types.StreamResponse:
    event = types.StreamResponse()
    event.status_update.task_id, event.status_update.context_id = task_id, "c-1"
    event.status_update.status.state = state  # type: ignore[assignment]
    return event


# -- requests ---------------------------------------------------------------------------------------


_ids = itertools.count(1)


def message(text: str, **fields: Any) -> dict[str, Any]:
    """A user message as ProtoJSON."""
    return {"messageId": f"m-{next(_ids)}", "role": "ROLE_USER", "parts": [{"text": text}], **fields}


def send_body(text: str, **fields: Any) -> dict[str, Any]:
    """A SendMessageRequest as ProtoJSON."""
    return {"message": message(text), **fields}


def rpc(method: str, params: Any = None, rpc_id: Any = 1) -> dict[str, Any]:
    envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id, "method": method}
    if params is not None:
        envelope["params"] = params
    return envelope


# -- Server-Sent Events ------------------------------------------------------------------------------


@dataclass
class SseItem:
    kind: str
    """"event" or "comment"."""
    data: str = ""
    event: str | None = None


class SseReader:
    """The items of an SSE response in arrival order; every read waits at most ``timeout`` seconds."""

    def __init__(self, response: httpx.Response, timeout: float = WAIT) -> None:
        self._lines = response.aiter_lines()
        self.timeout = timeout

    async def next(self) -> SseItem | None:
        """The next event or comment; None when the stream ends."""
        name: str | None = None
        data: list[str] = []
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), self.timeout)
            except StopAsyncIteration:
                return SseItem("event", "\n".join(data), name) if data else None
            if line.startswith(":"):
                return SseItem("comment", line[1:].strip())
            if not line:
                if data or name:
                    return SseItem("event", "\n".join(data), name)
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)

    async def next_event(self) -> SseItem | None:
        """The next event, skipping comments."""
        while (item := await self.next()) is not None and item.kind == "comment":
            pass
        return item

    async def rest(self) -> list[SseItem]:
        """Every remaining event (comments skipped), to the end of the stream."""
        items: list[SseItem] = []
        while (item := await self.next_event()) is not None:
            items.append(item)
        return items

    async def aclose(self) -> None:
        await self._lines.aclose()  # type: ignore[attr-defined]


# -- raw HTTP/1.1 -----------------------------------------------------------------------------------


class RawConnection:
    """One HTTP/1.1 connection over a bare socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, marker: bytes, timeout: float = WAIT) -> bytes:
        """Read until ``marker`` has arrived; everything received so far."""
        async with asyncio.timeout(timeout):
            while marker not in self.received:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError(f"connection closed before {marker!r}: {self.received!r}")
                self.received += chunk
        return self.received

    async def read_all(self, timeout: float = WAIT) -> bytes:
        """Read until the server closes the connection."""
        async with asyncio.timeout(timeout):
            while chunk := await self.reader.read(65536):
                self.received += chunk
        return self.received

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def http_request(
    verb: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = (), *, chunk: int = 0
) -> bytes:
    """The bytes of one request; ``chunk`` > 0 sends the body chunked, without Content-Length."""
    head = [f"{verb} {path} HTTP/1.1", "Host: 127.0.0.1", "A2A-Version: 1.0", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers]
    if chunk:
        head.append("Transfer-Encoding: chunked")
        pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def free_port() -> int:
    """A port nobody listens on right now (bound, read back and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a synthetic proto --------------------------------------------------------------------------------

_F = descriptor_pb2.FieldDescriptorProto


def _add_with_deps(pool: descriptor_pool.DescriptorPool, file: FileDescriptor) -> None:
    for dep in file.dependencies:
        _add_with_deps(pool, dep)
    try:
        pool.FindFileByName(file.name)
    except KeyError:
        pool.AddSerializedFile(file.serialized_pb)


def _field(
    name: str, number: int, kind: int, *, label: int = _F.LABEL_OPTIONAL, type_name: str = "", **extra: Any
) -> _F:
    f = _F(name=name, number=number, type=kind, label=label, **extra)  # type: ignore[arg-type]
    if type_name:
        f.type_name = type_name
    return f


def _rule(verb: str, template: str, body: str = "", *more: http_pb2.HttpRule) -> http_pb2.HttpRule:
    rule = http_pb2.HttpRule(body=body)
    setattr(rule, verb, template)
    rule.additional_bindings.extend(more)
    return rule


def probe_file() -> FileDescriptor:
    """``probe/v1/probe.proto`` in a private pool; built once per call (cheap).

    ``Probe`` has one field of every kind the query and codec tests need; the services are:
    ``ProbeService`` (well-formed rules), ``NoRuleService`` (``Unruled`` has no rule) and one
    service per kind of rule the router refuses (``Bad*Service``).
    """
    pool = descriptor_pool.DescriptorPool()
    for dep in (annotations_pb2, field_behavior_pb2, empty_pb2, timestamp_pb2, struct_pb2):
        _add_with_deps(pool, dep.DESCRIPTOR)
    f = descriptor_pb2.FileDescriptorProto(name="probe/v1/probe.proto", package="probe.v1", syntax="proto3")
    f.dependency.extend(
        [
            "google/api/annotations.proto",
            "google/api/field_behavior.proto",
            "google/protobuf/empty.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/struct.proto",
        ]
    )
    color = f.enum_type.add(name="Color")
    for number, name in enumerate(("COLOR_UNSPECIFIED", "COLOR_DEEP_RED", "COLOR_BLUE")):
        color.value.add(name=name, number=number)
    inner = f.message_type.add(name="Inner")
    inner.field.append(_field("name", 1, _F.TYPE_STRING))
    probe = f.message_type.add(name="Probe")
    rep = _F.LABEL_REPEATED
    probe.field.extend(
        [
            _field("id", 1, _F.TYPE_STRING),
            _field("tenant", 2, _F.TYPE_STRING),
            _field("tags", 3, _F.TYPE_STRING, label=rep),
            _field("colors", 4, _F.TYPE_ENUM, label=rep, type_name=".probe.v1.Color"),
            _field("flag", 5, _F.TYPE_BOOL),
            _field("small", 6, _F.TYPE_INT32),
            _field("big_count", 7, _F.TYPE_INT64),
            _field("huge", 8, _F.TYPE_UINT64),
            _field("blob", 9, _F.TYPE_BYTES),
            _field("color", 10, _F.TYPE_ENUM, type_name=".probe.v1.Color"),
            _field("inner", 11, _F.TYPE_MESSAGE, type_name=".probe.v1.Inner"),
            _field("after", 12, _F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
            _field("inners", 13, _F.TYPE_MESSAGE, label=rep, type_name=".probe.v1.Inner"),
            _field("score", 14, _F.TYPE_DOUBLE),
            _field("extra", 15, _F.TYPE_MESSAGE, type_name=".google.protobuf.Struct"),
        ]
    )
    required = _field("must_count", 16, _F.TYPE_INT64)
    required.options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    probe.field.append(required)

    def service(name: str, *methods: tuple[str, http_pb2.HttpRule | None]) -> None:
        svc = f.service.add(name=name)
        for method_name, rule in methods:
            m = svc.method.add(
                name=method_name, input_type=".probe.v1.Probe", output_type=".google.protobuf.Empty"
            )
            if rule is not None:
                m.options.Extensions[annotations_pb2.http].CopyFrom(rule)

    service(
        "ProbeService",
        ("GetProbe", _rule("get", "/probes/{id=*}", "", _rule("get", "/{tenant}/probes/{id=*}"))),
        ("ListProbes", _rule("get", "/probes", "", _rule("get", "/{tenant}/probes"))),
        ("PokeProbe", _rule("post", "/probes/{id}:poke", "*")),
        ("DropProbe", _rule("delete", "/probes/{id}")),
    )
    service("NoRuleService", ("Ruled", _rule("get", "/ruled")), ("Unruled", None))
    service("BadTemplateService", ("Deep", _rule("get", "/probes/{id=things/**}")))
    service("BadVariableService", ("ByNumber", _rule("get", "/probes/{small}")))
    service("BadBodyService", ("Partial", _rule("post", "/probes", "inners")))
    custom = http_pb2.HttpRule()
    custom.custom.kind, custom.custom.path = "SEARCH", "/probes"
    service("BadPatternService", ("Search", custom))
    return pool.AddSerializedFile(f.SerializeToString())
