"""Peers for the bridge tests: one agent reached over gRPC directly and over JSON through the bridge.

The public API is small; everything else here is private:

* :func:`serve_stack` runs an agent the way ``a2a-grpc serve --http-port 0`` does, in this event loop:
  ``A2AServer`` on 127.0.0.1 port 0, and ``BridgeApp(LocalUpstream(server.handler, server.service))``
  on an ``HttpServer`` (127.0.0.1 port 0) whose URL the agent card names. It yields a :class:`Stack`.
* :func:`bridge_process` runs ``a2a-grpc bridge http-to-grpc`` as a separate process in front of a
  gRPC agent and yields its base URL; the process is stopped by PID when the block exits.
* :func:`open_binding` opens a :class:`Binding` to a stack: ``"grpc"`` (``A2AClient``, no bridge),
  ``"jsonrpc"`` (``POST /``) or ``"rest"`` (the HTTP+JSON routes), see :data:`BINDINGS`. All three
  take and return ``a2a_grpc.types`` messages and raise :class:`a2a_grpc.errors.A2AError`; after a
  refusal, :attr:`Binding.last_error` tells how it looked on the wire (:class:`WireError`).
* :func:`collect` reads a stream to its end, closing it whatever happens.
* :class:`LateAgent` fails a request only after a while, for errors that reach an SSE stream
  after its headers (serve it with ``BridgeSettings(first_event_wait=...)`` below
  :data:`LATE_SECONDS`).

The JSON clients here are deliberately independent of the bridge's own code (no ``a2a_grpc.bridge.routes``,
no ``a2a_grpc.bridge.outbound``): the REST routes are written out from the proto's ``google.api.http``
rules (spec section 11.3), and the SSE parser is our own, so a bug in the bridge cannot cancel out.
Only :mod:`a2a_grpc.bridge.transcoding` (ProtoJSON) and the error decoders of
:mod:`a2a_grpc.bridge.jsonrpc` and :mod:`a2a_grpc.bridge.rest` are shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import re
import ssl
import sys
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import grpc
import httpx
from google.protobuf import message_factory
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import LocalUpstream
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security import Authentication
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import Interceptor
from a2a_grpc.tasks import InMemoryTaskStore
from tests.conftest import stop_process

__all__ = [
    "BINDINGS",
    "LATE_SECONDS",
    "Binding",
    "LateAgent",
    "Stack",
    "WireError",
    "bridge_process",
    "collect",
    "open_binding",
    "serve_stack",
]

BINDINGS = ("grpc", "jsonrpc", "rest")
"""The three ways to reach a stack: gRPC direct, JSON-RPC via the bridge, HTTP+JSON via the bridge."""

TIMEOUT = 10.0
STOP_GRACE = 1.0
PROCESS_START = 20.0
"""Seconds a bridge process may take to print its banner (it imports grpc and waits for the upstream)."""

T = TypeVar("T")
_OUTPUT = {m.name: message_factory.GetMessageClass(m.output_type) for m in types.A2A_SERVICE.methods}


# --- agents and servers ------------------------------------------------------------------------------


LATE_SECONDS = 0.3


class LateAgent(ReferenceAgent):
    """The reference agent plus two skills that fail after :data:`LATE_SECONDS`, before any output.

    ``late crash`` raises a plain exception (InternalError on the wire, nothing of it leaks) and
    ``late refuse`` an InvalidParamsError naming the field ``message.parts``.
    """

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        if context.text.strip() == "late crash":
            await asyncio.sleep(LATE_SECONDS)
            raise RuntimeError("secret detail that must not reach the wire")
        if context.text.strip() == "late refuse":
            await asyncio.sleep(LATE_SECONDS)
            raise errors.InvalidParamsError(
                "refused late", field_violations=[errors.FieldViolation("message.parts", "refused late")]
            )
        await super().execute(context, updater)


@dataclass(frozen=True)
class Stack:
    """One running agent and where to reach it."""

    address: str
    """gRPC ``host:port`` of the agent."""
    url: str
    """Base URL of the bridge in front of it (``http://127.0.0.1:PORT``, no trailing slash)."""
    server: A2AServer


@contextlib.asynccontextmanager
async def serve_stack(
    agent: Agent | None = None,
    settings: BridgeSettings | None = None,
    interceptors: Iterable[Interceptor] = (),
    authentication: Authentication | None = None,
    **server_settings: Any,
) -> AsyncIterator[Stack]:
    """``a2a-grpc serve --grpc-port 0 --http-port 0 --store memory``, in this event loop; every call,
    gRPC or JSON, passes ``authentication`` (if any), then ``interceptors``. ``server_settings``:
    more ``ServerSettings`` (limits, session ...)."""
    server = A2AServer(
        agent or ReferenceAgent(),
        InMemoryTaskStore(),
        ServerSettings(
            host="127.0.0.1",
            port=0,
            interceptors=tuple(interceptors),
            authentication=authentication,
            **server_settings,
        ),
    )
    if authentication is not None:  # as AgentStack does: the schemes' headers reach the seam
        settings = settings or BridgeSettings()
        forwarded = (*settings.forward_headers, *authentication.headers)
        settings = dataclasses.replace(settings, forward_headers=forwarded)
    await server.start()
    try:
        assert server.handler is not None
        app = BridgeApp(LocalUpstream(server.handler, server.service), settings)
        http = HttpServer(app, "127.0.0.1", 0, grace=STOP_GRACE)
        http.bind()
        if app.public_url is None:  # as the CLI does: the card names the bound address
            app.public_url = http.url
        await http.start()
        try:
            yield Stack(server.address, http.url, server)
        finally:
            await http.stop()
    finally:
        await server.stop(STOP_GRACE)
        await server.store.close()


_BANNER = re.compile(r"bridging JSON-RPC and HTTP\+JSON at (http://\S+) ")


@contextlib.asynccontextmanager
async def bridge_process(upstream: str, *extra_args: str) -> AsyncIterator[str]:
    """``python -m a2a_grpc.cli bridge http-to-grpc`` in front of ``upstream``; yields its base URL.

    The banner line is awaited for at most :data:`PROCESS_START` seconds; the output is drained
    afterwards so the process never blocks on a full pipe. On exit the process gets SIGTERM by PID,
    then SIGKILL if it has not stopped within 10 seconds.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "a2a_grpc.cli",
        "bridge",
        "http-to-grpc",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        upstream,
        *extra_args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        url = None
        try:
            async with asyncio.timeout(PROCESS_START):
                while url is None:
                    line = (await proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise RuntimeError("the bridge process exited before serving:\n" + "".join(output))
                    output.append(line)
                    if (found := _BANNER.search(line)) is not None:
                        url = found.group(1)
        except TimeoutError:
            raise RuntimeError(
                f"the bridge process did not serve within {PROCESS_START:g} s:\n" + "".join(output)
            ) from None
        drain = asyncio.create_task(_drain(proc.stdout, output))
        yield url
    finally:
        await stop_process(proc)
        await asyncio.wait_for(drain or _drain(proc.stdout, output), 10)


async def _drain(stream: asyncio.StreamReader, output: list[str]) -> None:
    """Read ``stream`` to its end (the process exits), keeping the lines for error messages."""
    while line := await stream.readline():
        output.append(line.decode(errors="replace"))


# --- bindings -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireError:
    """How a refused call looked on the wire."""

    grpc_code: grpc.StatusCode | None = None
    """gRPC: the status code received. None on the JSON bindings."""
    http_status: int | None = None
    """JSON bindings: the HTTP status of the response (200 for an SSE ``event: error``)."""
    body: Any = None
    """JSON bindings: the decoded error body (the JSON-RPC response, or ``{"error": google.rpc.Status}``)."""
    content_type: str = ""
    in_stream: bool = False
    """The error came as an SSE ``event: error`` after the stream had started."""


class Binding:
    """The eleven A2A operations over one binding, on our proto messages.

    Streams are async generators: read them to the end with :func:`collect`, or close them
    (``contextlib.aclosing``) when leaving early.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self.last_error: WireError | None = None

    async def unary(self, method: str, request: Message) -> Message:
        raise NotImplementedError

    def stream(self, method: str, request: Message) -> AsyncGenerator[types.StreamResponse, None]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def send_message(self, request: types.SendMessageRequest) -> types.SendMessageResponse:
        return _as(types.SendMessageResponse, await self.unary("SendMessage", request))

    def send_streaming_message(
        self, request: types.SendMessageRequest
    ) -> AsyncGenerator[types.StreamResponse, None]:
        return self.stream("SendStreamingMessage", request)

    async def get_task(self, request: types.GetTaskRequest) -> types.Task:
        return _as(types.Task, await self.unary("GetTask", request))

    async def list_tasks(self, request: types.ListTasksRequest) -> types.ListTasksResponse:
        return _as(types.ListTasksResponse, await self.unary("ListTasks", request))

    async def cancel_task(self, request: types.CancelTaskRequest) -> types.Task:
        return _as(types.Task, await self.unary("CancelTask", request))

    def subscribe_to_task(
        self, request: types.SubscribeToTaskRequest
    ) -> AsyncGenerator[types.StreamResponse, None]:
        return self.stream("SubscribeToTask", request)

    async def create_task_push_notification_config(
        self, request: types.TaskPushNotificationConfig
    ) -> types.TaskPushNotificationConfig:
        return _as(
            types.TaskPushNotificationConfig, await self.unary("CreateTaskPushNotificationConfig", request)
        )

    async def get_task_push_notification_config(
        self, request: types.GetTaskPushNotificationConfigRequest
    ) -> types.TaskPushNotificationConfig:
        return _as(
            types.TaskPushNotificationConfig, await self.unary("GetTaskPushNotificationConfig", request)
        )

    async def list_task_push_notification_configs(
        self, request: types.ListTaskPushNotificationConfigsRequest
    ) -> types.ListTaskPushNotificationConfigsResponse:
        response = await self.unary("ListTaskPushNotificationConfigs", request)
        return _as(types.ListTaskPushNotificationConfigsResponse, response)

    async def delete_task_push_notification_config(
        self, request: types.DeleteTaskPushNotificationConfigRequest
    ) -> None:
        await self.unary("DeleteTaskPushNotificationConfig", request)

    async def get_extended_agent_card(
        self, request: types.GetExtendedAgentCardRequest | None = None
    ) -> types.AgentCard:
        response = await self.unary("GetExtendedAgentCard", request or types.GetExtendedAgentCardRequest())
        return _as(types.AgentCard, response)


def _as(cls: type[T], message: Message) -> T:
    assert isinstance(message, cls), f"expected {cls.__name__}, got {type(message).__name__}"
    return message


class GrpcBinding(Binding):
    """``a2a_grpc.client.A2AClient`` straight to the agent's gRPC port."""

    kind = "grpc"

    def __init__(
        self,
        address: str,
        *,
        version: str,
        extensions: Iterable[str],
        timeout: float,
        headers: Mapping[str, str] = {},
    ) -> None:
        super().__init__()
        self.timeout = timeout
        metadata = tuple((k.lower(), v) for k, v in headers.items())
        self.client = A2AClient(
            address, timeout=timeout, version=version, extensions=extensions, metadata=metadata
        )

    async def aclose(self) -> None:
        await self.client.close()

    def _refused(self, exc: errors.A2AError) -> None:
        self.last_error = WireError(grpc_code=exc.grpc_code)

    async def unary(self, method: str, request: Message) -> Message:
        try:
            return await self._call(method, request)
        except errors.A2AError as exc:
            self._refused(exc)
            raise

    async def _call(self, method: str, r: Any) -> Message:
        c = self.client
        match method:
            case "SendMessage":
                return await c.send_message(r)
            case "GetTask":
                history = r.history_length if r.HasField("history_length") else None
                return await c.get_task(r.id, history_length=history, tenant=r.tenant)
            case "ListTasks":
                return await c.list_tasks(r)
            case "CancelTask":
                assert not r.HasField("metadata"), "A2AClient.cancel_task sends no metadata"
                return await c.cancel_task(r.id, tenant=r.tenant)
            case "CreateTaskPushNotificationConfig":
                return await c.create_task_push_notification_config(r)
            case "GetTaskPushNotificationConfig":
                return await c.get_task_push_notification_config(r.task_id, r.id, tenant=r.tenant)
            case "ListTaskPushNotificationConfigs":
                return await c.list_task_push_notification_configs(
                    r.task_id, page_size=r.page_size, page_token=r.page_token, tenant=r.tenant
                )
            case "DeleteTaskPushNotificationConfig":
                await c.delete_task_push_notification_config(r.task_id, r.id, tenant=r.tenant)
                return _OUTPUT[method]()
            case "GetExtendedAgentCard":
                return await c.get_extended_agent_card(tenant=r.tenant)
        raise ValueError(f"{method} is not a unary A2A method")

    async def stream(self, method: str, request: Any) -> AsyncGenerator[types.StreamResponse, None]:
        if method == "SendStreamingMessage":
            events = self.client.send_streaming_message(request, timeout=self.timeout)
        elif method == "SubscribeToTask":
            events = self.client.subscribe_to_task(request.id, tenant=request.tenant, timeout=self.timeout)
        else:
            raise ValueError(f"{method} is not a streaming A2A method")
        try:
            async with contextlib.aclosing(events) as stream:  # type: ignore[type-var]
                async for event in stream:
                    yield event
        except errors.A2AError as exc:
            self._refused(exc)
            raise


@functools.cache
def _tls() -> ssl.SSLContext:
    """One default TLS context for every client: httpx builds a new one per client otherwise (~60 ms)."""
    return ssl.create_default_context()


class _HttpBinding(Binding):
    """What the two JSON bindings share: one httpx client with the service parameters as headers."""

    def __init__(
        self,
        url: str,
        *,
        version: str | None,
        extensions: Iterable[str],
        timeout: float,
        headers: Mapping[str, str] = {},
    ) -> None:
        super().__init__()
        headers = {**({} if version is None else {"A2A-Version": version}), **headers}
        if ext := ",".join(extensions):
            headers["A2A-Extensions"] = ext
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, verify=_tls())

    async def aclose(self) -> None:
        await self.http.aclose()

    def _refused(self, response: httpx.Response, body: Any, *, in_stream: bool = False) -> None:
        content_type = response.headers.get("content-type", "")
        self.last_error = WireError(
            http_status=response.status_code, body=body, content_type=content_type, in_stream=in_stream
        )


class JsonRpcBinding(_HttpBinding):
    """JSON-RPC 2.0 at ``POST /`` of the bridge (spec section 9), SSE for streams."""

    kind = "jsonrpc"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._ids = itertools.count(1)

    def _envelope(self, method: str, request: Message) -> tuple[int, bytes]:
        rpc_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": transcoding.encode(request)}
        return rpc_id, transcoding.dumps(body)

    def _result(self, response: httpx.Response, payload: Any, rpc_id: int, cls: type[Message]) -> Message:
        assert isinstance(payload, dict), payload
        assert payload.get("jsonrpc") == "2.0", payload
        assert payload.get("id") == rpc_id, f"response id {payload.get('id')!r} for request id {rpc_id}"
        if "error" in payload:
            assert "result" not in payload, payload
            self._refused(response, payload)
            raise from_jsonrpc_error(payload["error"])
        return transcoding.decode(payload["result"], cls)

    async def unary(self, method: str, request: Message) -> Message:
        rpc_id, body = self._envelope(method, request)
        response = await self.http.post("/", content=body, headers={"content-type": "application/json"})
        assert response.headers.get("content-type") == "application/json", response.headers  # spec 9.1
        return self._result(response, transcoding.loads(response.content), rpc_id, _OUTPUT[method])

    async def stream(self, method: str, request: Message) -> AsyncGenerator[types.StreamResponse, None]:
        rpc_id, body = self._envelope(method, request)
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        async with self.http.stream("POST", "/", content=body, headers=headers) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # Refused before the first event: one plain JSON-RPC response.
                self._result(
                    response, transcoding.loads(await response.aread()), rpc_id, types.StreamResponse
                )
                raise AssertionError("a non-SSE answer to a streaming method must be an error")
            async for name, data in _sse(response):
                payload = transcoding.loads(data)
                if name == "error":
                    assert "error" in payload, payload
                    self._refused(response, payload, in_stream=True)
                    raise from_jsonrpc_error(payload["error"])
                event = self._result(response, payload, rpc_id, types.StreamResponse)
                yield _as(types.StreamResponse, event)


_REST_ROUTES: Mapping[str, tuple[str, str]] = {
    "SendMessage": ("POST", "/message:send"),
    "SendStreamingMessage": ("POST", "/message:stream"),
    "GetTask": ("GET", "/tasks/{id}"),
    "ListTasks": ("GET", "/tasks"),
    "CancelTask": ("POST", "/tasks/{id}:cancel"),
    "SubscribeToTask": ("GET", "/tasks/{id}:subscribe"),
    "CreateTaskPushNotificationConfig": ("POST", "/tasks/{task_id}/pushNotificationConfigs"),
    "GetTaskPushNotificationConfig": ("GET", "/tasks/{task_id}/pushNotificationConfigs/{id}"),
    "ListTaskPushNotificationConfigs": ("GET", "/tasks/{task_id}/pushNotificationConfigs"),
    "DeleteTaskPushNotificationConfig": ("DELETE", "/tasks/{task_id}/pushNotificationConfigs/{id}"),
    "GetExtendedAgentCard": ("GET", "/extendedAgentCard"),
}
"""The HTTP+JSON route of each method, written out from the proto's rules (spec 11.3).

POST routes carry the rest of the request as the body; the others carry it as query parameters.
A tenant goes first in the path (``/{tenant}/tasks/...``), as the additional bindings say.
"""
_VARIABLE = re.compile(r"\{(\w+)\}")


def _rest_request(
    method: str, request: Message
) -> tuple[str, str, tuple[tuple[str, str], ...], dict[str, Any] | None]:
    """``(verb, path, query, body)`` of ``request`` on its HTTP+JSON route."""
    verb, template = _REST_ROUTES[method]
    members = transcoding.encode(request)
    fields = request.DESCRIPTOR.fields_by_name

    def bind(match: re.Match[str]) -> str:
        name = match.group(1)
        members.pop(fields[name].json_name, None)
        return quote(getattr(request, name), safe="")

    path = _VARIABLE.sub(bind, template)
    tenant = members.pop("tenant", "")
    if tenant:
        path = f"/{quote(tenant, safe='')}{path}"
    if verb == "POST":
        return verb, path, (), members
    query: list[tuple[str, str]] = []
    for key, value in members.items():
        for item in value if isinstance(value, list) else [value]:
            assert not isinstance(item, dict), f"{key} cannot be a query parameter"
            query.append((key, ("true" if item else "false") if isinstance(item, bool) else str(item)))
    return verb, path, tuple(query), None


class RestBinding(_HttpBinding):
    """The HTTP+JSON routes of the bridge (spec section 11), SSE for streams."""

    kind = "rest"

    def _build(self, method: str, request: Message, **headers: str) -> httpx.Request:
        verb, path, query, body = _rest_request(method, request)
        if body is not None:
            headers["content-type"] = "application/a2a+json"
        content = transcoding.dumps(body) if body is not None else None
        return self.http.build_request(verb, path, params=query, content=content, headers=headers)

    def _error(self, response: httpx.Response, body: Any, *, in_stream: bool = False) -> errors.A2AError:
        assert isinstance(body, dict), body
        assert isinstance(body.get("error"), dict), body
        self._refused(response, body, in_stream=in_stream)
        status = body["error"].get("code") if in_stream else response.status_code
        return from_rest_error(status if isinstance(status, int) else 500, body)

    async def unary(self, method: str, request: Message) -> Message:
        response = await self.http.send(self._build(method, request))
        assert response.headers.get("content-type") == "application/a2a+json", response.headers  # spec 11.1
        body = transcoding.loads(response.content)
        if response.status_code != 200:
            raise self._error(response, body)
        return transcoding.decode(body, _OUTPUT[method])

    async def stream(self, method: str, request: Message) -> AsyncGenerator[types.StreamResponse, None]:
        response = await self.http.send(self._build(method, request, accept="text/event-stream"), stream=True)
        try:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise self._error(response, transcoding.loads(await response.aread()))
            assert response.status_code == 200, response.status_code
            async for name, data in _sse(response):
                if name == "error":
                    raise self._error(response, transcoding.loads(data), in_stream=True)
                yield transcoding.from_json(data, types.StreamResponse)
        finally:
            await response.aclose()


async def _sse(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """``(event name, data)`` of each Server-Sent Event; comments (keep-alives) are skipped."""
    name, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
    assert not data, "the stream ended inside an event"


@contextlib.asynccontextmanager
async def open_binding(
    kind: str,
    stack: Stack,
    *,
    version: str | None = "1.0",
    extensions: Iterable[str] = (),
    timeout: float = TIMEOUT,
    headers: Mapping[str, str] = {},
) -> AsyncIterator[Binding]:
    """A :class:`Binding` of ``kind`` (one of :data:`BINDINGS`) to ``stack``.

    ``version`` is the ``A2A-Version`` service parameter ("" sends it empty; None, JSON only, omits
    it), ``extensions`` the ``A2A-Extensions`` one. ``timeout`` bounds every call and every read.
    ``headers`` go with every call (credentials).
    """
    binding: Binding
    if kind == "grpc":
        assert version is not None, "A2AClient always sends a2a-version"
        binding = GrpcBinding(
            stack.address, version=version, extensions=extensions, timeout=timeout, headers=headers
        )
    elif kind == "jsonrpc":
        binding = JsonRpcBinding(
            stack.url, version=version, extensions=extensions, timeout=timeout, headers=headers
        )
    elif kind == "rest":
        binding = RestBinding(
            stack.url, version=version, extensions=extensions, timeout=timeout, headers=headers
        )
    else:
        raise ValueError(f"unknown binding {kind!r}; one of {BINDINGS}")
    try:
        yield binding
    finally:
        await binding.aclose()


async def collect(stream: AsyncIterable[T]) -> list[T]:
    """Every item of ``stream``; the stream is closed however the loop ends."""
    async with contextlib.aclosing(stream) as items:  # type: ignore[type-var]
        return [item async for item in items]
