"""The HTTP front of the bridge: JSON-RPC and HTTP+JSON over any upstream, as one ASGI app.

Served at the bridge's root URL:

* ``POST /``: JSON-RPC 2.0 (spec section 9), ``application/json`` both ways (9.1). Method names
  are the RPC names of the service descriptor; ``params`` and ``result`` are ProtoJSON; errors
  carry the section 5.4 code and the ``@type``d ErrorInfo / BadRequest details in ``data``.
  JSON-RPC errors travel with HTTP 200 (the request reached the JSON-RPC layer); only a refused
  body or header (413, 415, 431) has another status.
* the HTTP+JSON routes (section 11) compiled from the proto's ``google.api.http`` rules, tenant
  bindings included (:mod:`bridge.routes`). Answers are ``application/a2a+json`` (11.1), errors
  included: ``google.rpc.Status`` bodies (``{"error": {"code", "status", "message", "details"}}``),
  or RFC 9457 problem details (``application/problem+json``) to a client that asks for them.
  Request bodies are read as ``application/a2a+json`` or ``application/json``;
* ``GET /.well-known/agent-card.json``: the upstream card (a plain JSON document,
  ``application/json``) with this bridge's JSONRPC and HTTP+JSON interfaces added beside the
  upstream's own, with ``ETag``, ``Last-Modified`` (when the served content last changed) and
  ``Cache-Control`` (spec 8.6); ``If-None-Match``, or without it ``If-Modified-Since``, gets a 304;
* ``GET /healthz``: 200 while the app serves.

Streaming methods answer with Server-Sent Events: the bridge waits for the upstream's first event
(at most :attr:`BridgeSettings.first_event_wait` seconds) so that a refused request is a real
HTTP or JSON-RPC error; then the headers go out, each event is flushed as it comes, idle streams
get a ``: keep-alive`` comment every :attr:`BridgeSettings.heartbeat_seconds`, an error after
the first event is a final ``event: error``, and a client that goes away cancels the upstream call.

Headers cross to the upstream through an allowlist (``authorization``, ``a2a-*``,
``traceparent``, ``tracestate``); ``Grpc-Timeout`` (``5S``, ``250m``, or plain seconds) becomes
the upstream deadline. What crosses must fit gRPC metadata whatever the upstream: printable ASCII
(an ``a2a-…-bin`` header: base64), else 400 naming the header; at most
:attr:`BridgeSettings.max_forwarded_header_bytes` in all, else 431.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from google.protobuf import message_factory
from google.protobuf.message import Message

from a2a_grpc import errors, types
from bridge import codec
from bridge.accesslog import METHOD_KEY, access_logged
from bridge.routes import Route, Router, compile_routes, query_to_json
from bridge.upstream import (
    CARD_PATH,
    METHODS,
    Call,
    Upstream,
    check_header,
    forwardable,
    metadata_size,
    parse_timeout,
)

__all__ = ["BridgeApp", "BridgeSettings", "HttpFailure", "bridge_interfaces"]

log = logging.getLogger("bridge.app")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MiB = 1024 * 1024
JSON = "application/json"
"""JSON-RPC requests and answers (spec 9.1), the agent card (a plain JSON document, section 8)."""
A2A_JSON = "application/a2a+json"
"""HTTP+JSON answers, success and ``google.rpc.Status`` alike (spec 11.1, 14.1)."""
PROBLEM_JSON = "application/problem+json"
JSON_TYPES = (JSON, A2A_JSON)
"""Request bodies are read in either type, with or without parameters (``; charset=utf-8``)."""
_REQUEST_CLASSES = {name: message_factory.GetMessageClass(m.input_type) for name, m in METHODS.items()}


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """How the HTTP front behaves. The defaults suit one machine."""

    max_body_bytes: int = 16 * MiB
    """Larger request bodies are refused with 413 before they are read in full."""
    heartbeat_seconds: float = 15.0
    """An SSE stream idle this long gets a comment line, so proxies and clients keep it open."""
    first_event_wait: float = 1.0
    """How long a stream waits for its first event before sending headers (see the module doc)."""
    card_max_age: int = 300
    """``Cache-Control: max-age`` of the agent card, in seconds."""
    public_url: str | None = None
    """The base URL this bridge is reached at, for the card; default: the address it listens on."""
    forward_headers: tuple[str, ...] = ()
    """Headers to pass upstream besides the standard allowlist (lower-case names)."""
    max_jsonrpc_id_chars: int = 256
    """Longest JSON-RPC string ``id`` read; every answer repeats it, so a longer one is refused."""
    log_requests: bool = False
    """Log one line per request (verb, path, status, A2A method, duration, peer) to ``a2a_grpc.access``."""
    max_forwarded_header_bytes: int = 7 * 1024
    """The headers passed upstream may take this much, counted as gRPC counts metadata (name, value
    and 32 bytes each); more is refused with 431. gRPC servers refuse calls whose metadata passes
    8 KiB (their default soft limit, which includes gRPC's own headers) at random, and all above
    16 KiB: better one clear refusal here than a flaky one there."""

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, not {self.max_body_bytes}")
        if self.max_forwarded_header_bytes <= 0:
            raise ValueError(
                f"max_forwarded_header_bytes must be positive, not {self.max_forwarded_header_bytes}"
            )
        if self.heartbeat_seconds <= 0 or self.first_event_wait < 0:
            raise ValueError("heartbeat_seconds must be positive and first_event_wait not negative")


class HttpFailure(Exception):
    """An A2A error that must go out with an HTTP status of its own (405, 413, 415, 431)."""

    def __init__(self, status: int, error: errors.A2AError, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = tuple(headers)


class _ClientGone(Exception):
    """The client disconnected before its request was read: nobody to answer."""


class _Request:
    """What one HTTP request brought: headers (lower-case), verb, path, query."""

    __slots__ = ("headers", "path", "query", "scope", "verb")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.verb: str = scope["method"]
        # Route on the path as sent: uvicorn's "path" is already percent-decoded, and routes decode
        # each variable once themselves (an id may hold an encoded "/" or ":").
        raw = scope.get("raw_path")
        self.path: str = raw.decode("latin-1") if raw else quote(scope["path"], safe="/:@!$&'()*+,;=")
        self.query: bytes = scope.get("query_string", b"")
        self.headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]},{value}" if name in self.headers else value

    def wants_problem(self) -> bool:
        return PROBLEM_JSON in self.headers.get("accept", "")


def _event(data: bytes, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + data + b"\n\n"


class BridgeApp:
    """ASGI app serving the JSON-RPC and HTTP+JSON bindings of one upstream agent."""

    def __init__(self, upstream: Upstream, settings: BridgeSettings | None = None) -> None:
        self.upstream = upstream
        self.settings = settings or BridgeSettings()
        self.router = Router(compile_routes())  # refuses to start on a method without an HTTP rule
        self.public_url: str | None = self.settings.public_url
        self.clock: Callable[[], float] = time.time
        """Wall-clock seconds, for the card's ``Last-Modified`` (replaceable in tests)."""
        self._card_tag = ""
        self._card_changed = 0

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.settings.log_requests and scope["type"] == "http":
            await access_logged(self._serve, scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        request = _Request(scope)
        path = request.path
        try:
            if path == "/":
                if request.verb != "POST":
                    raise HttpFailure(
                        405,
                        errors.MethodNotFoundError(
                            f"{errors.echo(request.verb)} / is not served: JSON-RPC takes POST"
                        ),
                        [("allow", "POST")],
                    )
                await self._jsonrpc(request, receive, send)
            elif path == CARD_PATH:
                await self._card(request, send)
            elif path == "/healthz" and request.verb in ("GET", "HEAD"):
                await _respond(send, 200, b'{"status":"SERVING"}')
            else:
                await self._rest(request, receive, send)
        except HttpFailure as failure:  # refused before reaching a binding: Status body
            await self._rest_error(request, send, failure.error, failure.status, failure.headers)
        except _ClientGone:
            return
        except Exception:  # a bug of ours: logged with its traceback, answered as "internal error"
            log.exception("unhandled error serving %s %s", request.verb, request.path)
            with contextlib.suppress(Exception):  # fails if the response had already started
                await self._rest_error(request, send, errors.InternalError(errors.INTERNAL_MESSAGE))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- request pieces ----------------------------------------------------------------------------

    def _call(self, request: _Request) -> Call:
        """The headers to pass upstream, checked here so that every upstream refuses them alike."""
        extra = self.settings.forward_headers
        headers = {k: v for k, v in request.headers.items() if forwardable(k, extra)}
        limit = self.settings.max_forwarded_header_bytes
        if (size := metadata_size(headers)) > limit:
            largest = max(headers, key=lambda name: len(headers[name]))
            raise HttpFailure(
                431,
                errors.InvalidRequestError(
                    f"header {largest} ({len(headers[largest])} bytes) is too large to pass on: the "
                    f"headers sent to the agent may take {limit} bytes (name, value and 32 for each), "
                    f"these take {size}",
                    metadata={"header": largest, "limit_bytes": limit},
                ),
            )
        for name, value in headers.items():
            check_header(name, value)
        timeout = request.headers.get("grpc-timeout")
        return Call(headers, parse_timeout(timeout) if timeout is not None else None)

    def _check_content_type(self, request: _Request, has_body: bool, preferred: str) -> None:
        content_type = request.headers.get("content-type")
        if content_type is None and not has_body:
            return
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            shown = errors.echo(content_type) if content_type else "none"
            also = "" if preferred == JSON else f" (or {JSON})"
            raise HttpFailure(
                415,
                errors.InvalidRequestError(
                    f"unsupported Content-Type {shown}: send {preferred}{also}",
                    metadata={"content_type": content_type or ""},
                ),
            )

    async def _body(self, request: _Request, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _too_large(limit: int) -> HttpFailure:
        return HttpFailure(
            413,
            errors.InvalidRequestError(
                f"request body exceeds the limit of {limit} bytes", metadata={"limit_bytes": limit}
            ),
        )

    # -- JSON-RPC ----------------------------------------------------------------------------------

    async def _jsonrpc(self, request: _Request, receive: Receive, send: Send) -> None:
        rpc_id: Any = None
        try:
            self._check_content_type(request, has_body=True, preferred=JSON)
            body = await self._body(request, receive)
            envelope = codec.loads(body)
            if not isinstance(envelope, dict):
                kind = "a batch (an array)" if isinstance(envelope, list) else codec.json_kind(envelope)
                raise errors.InvalidRequestError(f"a JSON-RPC request must be an object, not {kind}")
            rpc_id = envelope.get("id")
            if "id" not in envelope:
                raise errors.InvalidRequestError("request has no id: A2A methods always answer")
            if not isinstance(rpc_id, str | int) or isinstance(rpc_id, bool):
                rpc_id = None
                raise errors.InvalidRequestError("id must be a string or an integer")
            if isinstance(rpc_id, str) and len(rpc_id) > (most := self.settings.max_jsonrpc_id_chars):
                # Every answer (each SSE event too) repeats the id: a huge one is refused, not echoed.
                rpc_id, length = None, len(rpc_id)
                raise errors.InvalidRequestError(f"id is {length} characters long: at most {most} are read")
            if envelope.get("jsonrpc") != "2.0":
                raise errors.InvalidRequestError('jsonrpc must be "2.0"')
            name = envelope.get("method")
            if not isinstance(name, str):
                raise errors.InvalidRequestError("method must be a string")
            method = METHODS.get(name)
            if method is not None:
                request.scope[METHOD_KEY] = name  # for the access log
            if method is None:
                raise errors.MethodNotFoundError(
                    f"method {errors.echo(name)} not found", metadata={"method": name}
                )
            params = envelope.get("params", {})
            message = codec.decode(params, _REQUEST_CLASSES[name], where="")
            call = self._call(request)
        except HttpFailure as failure:
            body = codec.dumps(
                {"jsonrpc": "2.0", "id": rpc_id, "error": errors.to_jsonrpc_error(failure.error)}
            )
            await _respond(send, failure.status, body, failure.headers)
            return
        except errors.A2AError as exc:
            await self._jsonrpc_error(send, rpc_id, exc)
            return
        if method.server_streaming:

            def encode(event: Message) -> bytes:
                return _event(codec.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": codec.encode(event)}))

            def encode_error(exc: BaseException) -> bytes:
                payload = {"jsonrpc": "2.0", "id": rpc_id, "error": errors.to_jsonrpc_error(exc)}
                return _event(codec.dumps(payload), "error")

            async def refuse(exc: BaseException) -> None:
                await self._jsonrpc_error(send, rpc_id, exc)

            await self._stream(name, message, call, receive, send, encode, encode_error, refuse)
            return
        try:
            result = await self._unary(name, message, call)
        except Exception as exc:
            await self._jsonrpc_error(send, rpc_id, exc)
            return
        await _respond(send, 200, codec.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}))

    async def _jsonrpc_error(self, send: Send, rpc_id: Any, exc: BaseException) -> None:
        await _respond(
            send, 200, codec.dumps({"jsonrpc": "2.0", "id": rpc_id, "error": errors.to_jsonrpc_error(exc)})
        )

    # -- HTTP+JSON ---------------------------------------------------------------------------------

    def _rest_request(self, route: Route, bound: Mapping[str, str], members: dict[str, Any]) -> Message:
        fields = route.method.input_type.fields_by_name
        for name, value in bound.items():
            json_name = fields[name].json_name
            given = members.get(json_name, members.get(name))
            if given not in (None, value):
                shown = f"{errors.echo(value)} in the path but {errors.echo(given)} in the request"
                raise errors.InvalidParamsError(
                    f"{json_name} is {shown}",
                    field_violations=[errors.FieldViolation(json_name, "differs from the path")],
                )
            members.pop(name, None)
            members[json_name] = value
        return codec.decode(members, _REQUEST_CLASSES[route.method.name])

    async def _rest(self, request: _Request, receive: Receive, send: Send) -> None:
        route, found = self.router.match(request.verb, request.path)
        if route is None:
            assert isinstance(found, list)
            if found:
                error = errors.MethodNotFoundError(
                    f"{errors.echo(request.verb)} is not allowed on {errors.echo(request.path)}; "
                    f"allowed: {', '.join(found)}"
                )
                raise HttpFailure(405, error, [("allow", ", ".join(found))])
            error = errors.MethodNotFoundError(
                f"no route for {errors.echo(request.verb)} {errors.echo(request.path)}"
            )
            raise HttpFailure(404, error)
        assert isinstance(found, dict)
        name = route.method.name
        request.scope[METHOD_KEY] = name  # for the access log
        try:
            if route.body == "*":
                body = await self._body(request, receive)
                self._check_content_type(request, has_body=bool(body.strip()), preferred=A2A_JSON)
                query = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
                if given := query_to_json(route.method, query):  # unknown parameters are ignored (5.7)
                    name = next(iter(given))
                    raise errors.InvalidParamsError(
                        f"{request.verb} {route.template} reads its parameters from the body: "
                        f"send {name} there, not in the query",
                        field_violations=[errors.FieldViolation(name, "belongs in the body")],
                    )
                members = codec.loads(body) if body.strip() else {}
                if not isinstance(members, dict):
                    raise errors.InvalidParamsError("the request body must be a JSON object")
            else:
                query = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
                members = query_to_json(route.method, query)
            message = self._rest_request(route, found, members)
            call = self._call(request)
        except errors.A2AError as exc:
            await self._rest_error(request, send, exc)
            return
        if route.streaming:

            def encode(event: Message) -> bytes:
                return _event(codec.to_json(event))

            def encode_error(exc: BaseException) -> bytes:
                return _event(codec.dumps(errors.to_rest_error(exc)[1]), "error")

            async def refuse(exc: BaseException) -> None:
                await self._rest_error(request, send, exc)

            await self._stream(name, message, call, receive, send, encode, encode_error, refuse)
            return
        try:
            result = await self._unary(name, message, call)
        except Exception as exc:
            await self._rest_error(request, send, exc)
            return
        await _respond(send, 200, codec.dumps(result), media=A2A_JSON)

    async def _rest_error(
        self,
        request: _Request,
        send: Send,
        exc: BaseException,
        status: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        if request.wants_problem():
            http, body = errors.to_problem_details(exc, status)
            media = PROBLEM_JSON
        else:
            http, body = errors.to_rest_error(exc, status)
            media = A2A_JSON
        await _respond(send, http, codec.dumps(body), headers, media)

    # -- calls -------------------------------------------------------------------------------------

    async def _unary(self, name: str, message: Message, call: Call) -> dict[str, Any]:
        response = await self.upstream.unary(name, message, call)
        if isinstance(response, types.AgentCard):
            response = self._with_interfaces(response)
        return codec.encode(response)

    async def _stream(
        self,
        name: str,
        message: Message,
        call: Call,
        receive: Receive,
        send: Send,
        encode: Callable[[Message], bytes],
        encode_error: Callable[[BaseException], bytes],
        refuse: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        events = self.upstream.stream(name, message, call)
        gone = asyncio.ensure_future(_disconnected(receive))
        upcoming = asyncio.ensure_future(_next(events))
        started = False
        wait = self.settings.first_event_wait
        try:
            while True:
                done, _ = await asyncio.wait({upcoming, gone}, timeout=wait, return_when="FIRST_COMPLETED")
                if gone in done:  # the client left: the finally clause cancels the upstream call
                    return
                wait = self.settings.heartbeat_seconds
                if not done:
                    if not started:
                        started = await _sse_start(send)
                    await _chunk(send, b": keep-alive\n\n")
                    continue
                try:
                    event = upcoming.result()
                except Exception as exc:
                    if not started:  # refused before any event: a real HTTP / JSON-RPC error
                        await refuse(exc)
                    else:
                        await _chunk(send, encode_error(exc), more=False)
                    return
                if not started:
                    started = await _sse_start(send)
                if event is None:
                    await _chunk(send, b"", more=False)
                    return
                await _chunk(send, encode(event))
                upcoming = asyncio.ensure_future(_next(events))
        finally:
            gone.cancel()
            if not upcoming.done():
                upcoming.cancel()
                await asyncio.wait({upcoming})
            await events.aclose()

    # -- the card ----------------------------------------------------------------------------------

    def _with_interfaces(self, card: types.AgentCard) -> types.AgentCard:
        if not self.public_url:
            return card
        out = types.AgentCard()
        out.CopyFrom(card)
        version = card.supported_interfaces[0].protocol_version if card.supported_interfaces else ""
        have = {(i.protocol_binding, i.url) for i in out.supported_interfaces}
        for interface in bridge_interfaces(self.public_url, version or "1.0"):
            if (interface.protocol_binding, interface.url) not in have:
                out.supported_interfaces.append(interface)
        return out

    async def _card(self, request: _Request, send: Send) -> None:
        if request.verb not in ("GET", "HEAD"):
            raise HttpFailure(
                405,
                errors.MethodNotFoundError(f"{errors.echo(request.verb)} {CARD_PATH}: use GET"),
                [("allow", "GET, HEAD")],
            )
        try:
            card = self._with_interfaces(await self.upstream.card())
        except Exception as exc:
            await self._rest_error(request, send, exc)
            return
        body = codec.dumps_sorted(codec.encode(card))  # sorted: the same card, the same ETag, everywhere
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if etag != self._card_tag:  # the content changed (or is served for the first time): now
            self._card_tag, self._card_changed = etag, int(self.clock())
        headers = [
            ("etag", etag),
            ("last-modified", email.utils.formatdate(self._card_changed, usegmt=True)),
            ("cache-control", f"public, max-age={self.settings.card_max_age}"),
        ]
        if _not_modified(request.headers, etag, self._card_changed):
            await send({"type": "http.response.start", "status": 304, "headers": _raw(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, 200, b"" if request.verb == "HEAD" else body, headers, length=len(body))


def _not_modified(headers: Mapping[str, str], etag: str, changed: int) -> bool:
    """Whether a GET or HEAD of the card may be answered 304 (RFC 9110 section 13.2.2)."""
    wanted = headers.get("if-none-match")
    if wanted is not None:  # when present it decides alone: If-Modified-Since is not looked at
        return wanted.strip() == "*" or etag in (tag.strip().removeprefix("W/") for tag in wanted.split(","))
    since = headers.get("if-modified-since")
    if since is None or since.count(",") > 1:  # absent, or sent twice (we join repeats with commas)
        return False
    try:
        date = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):  # not an HTTP-date (or two of them): ignored, RFC 9110 13.1.3
        return False
    if date.tzinfo is None:  # "-0000": the date is in UTC all the same
        date = date.replace(tzinfo=datetime.UTC)
    # HTTP-dates have one-second resolution; _card_changed is kept in whole seconds to match.
    return changed <= date.timestamp()


def bridge_interfaces(base_url: str, version: str = "1.0") -> list[types.AgentInterface]:
    """The card entries of a bridge at ``base_url``: JSON-RPC at its root, HTTP+JSON at its base."""
    base = base_url.rstrip("/")
    return [
        types.AgentInterface(url=base + "/", protocol_binding="JSONRPC", protocol_version=version),
        types.AgentInterface(url=base, protocol_binding="HTTP+JSON", protocol_version=version),
    ]


def _raw(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
    media: str = JSON,
    length: int | None = None,
) -> None:
    raw = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *_raw(headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _next(events: AsyncGenerator[Message, None]) -> Message | None:
    """The next event of a stream, None at its end."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _sse_start(send: Send) -> bool:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    return True


async def _chunk(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
