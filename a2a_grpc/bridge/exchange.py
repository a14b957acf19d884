"""One HTTP exchange of the bridge's front: the request as read, and a whole response written.

What both JSON bindings (:mod:`a2a_grpc.bridge.jsonrpc`, :mod:`a2a_grpc.bridge.rest`) and the card
endpoint share:
the request's headers, verb and path (:class:`HttpRequest`), its body read within the size limit,
its Content-Type checked, the headers that may cross to the upstream (:func:`upstream_call`), and
a response sent in one piece (:func:`respond`). A request refused here, before any binding reads
it, is an :class:`HttpFailure`: an A2A error with an HTTP status of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote

from a2a_grpc import errors
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import Call, check_header, forwardable, metadata_size, parse_timeout
from a2a_grpc.security.identity import ClientCertificate

__all__ = [
    "A2A_JSON",
    "CLIENT_CERTIFICATE",
    "JSON",
    "JSON_TYPES",
    "PROBLEM_JSON",
    "ClientGone",
    "HttpFailure",
    "HttpRequest",
    "Receive",
    "Scope",
    "Send",
    "check_content_type",
    "query_version",
    "raw_headers",
    "read_body",
    "requested_version",
    "respond",
    "serve_lifespan",
    "upstream_call",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

JSON = "application/json"
"""JSON-RPC requests and answers (spec 9.1), the agent card (a plain JSON document, section 8)."""
A2A_JSON = "application/a2a+json"
"""HTTP+JSON answers, success and ``google.rpc.Status`` alike (spec 11.1, 14.1)."""
PROBLEM_JSON = "application/problem+json"
JSON_TYPES = (JSON, A2A_JSON)
"""Request bodies are read in either type, with or without parameters (``; charset=utf-8``)."""
CLIENT_CERTIFICATE = "a2a_grpc.client_certificate"
"""The ASGI scope extension holding the TLS connection's verified client certificate (a
:class:`ClientCertificate`), put there by :class:`a2a_grpc.bridge.httpserver.HttpServer`."""


class HttpFailure(Exception):
    """An A2A error that must go out with an HTTP status of its own (405, 413, 415, 431)."""

    def __init__(self, status: int, error: errors.A2AError, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error
        self.headers = tuple(headers)


class ClientGone(Exception):
    """The client disconnected before its request was read: nobody to answer."""


class HttpRequest:
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

    @property
    def peer(self) -> str:
        """``host:port`` of the client, "" if the server does not say."""
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else ""

    @property
    def client_certificate(self) -> ClientCertificate | None:
        """The certificate the client presented on a TLS connection, as the listener verified it
        (:data:`CLIENT_CERTIFICATE`); None without one."""
        extensions = self.scope.get("extensions")
        return extensions.get(CLIENT_CERTIFICATE) if extensions else None


def query_version(request: HttpRequest) -> str | None:
    """The ``A2A-Version`` query parameter (spec 3.6.1; the name read case-insensitively, as
    service parameter names are), or None."""
    if b"=" not in request.query:
        return None
    for name, value in parse_qsl(request.query.decode("latin-1"), keep_blank_values=True):
        if name.lower() == "a2a-version":
            return value
    return None


def requested_version(request: HttpRequest) -> str | None:
    """The A2A version a request names: its ``A2A-Version`` header, else the query parameter."""
    header = request.headers.get("a2a-version")
    return header if header is not None else query_version(request)


def upstream_call(request: HttpRequest, settings: BridgeSettings) -> Call:
    """The headers to pass upstream, checked here so that every upstream refuses them alike, and
    the deadline ``Grpc-Timeout`` asks for."""
    extra = settings.forward_headers
    headers = {k: v for k, v in request.headers.items() if forwardable(k, extra)}
    limit = settings.max_forwarded_header_bytes
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
    if "a2a-version" not in headers and (version := query_version(request)) is not None:
        headers["a2a-version"] = version  # spec 3.6.1: a client MAY send it as a query parameter
    for name, value in headers.items():
        check_header(name, value)
    timeout = request.headers.get("grpc-timeout")
    return Call(
        headers,
        parse_timeout(timeout) if timeout is not None else None,
        request.peer,
        client_certificate=request.client_certificate,
    )


def challenge_headers(exc: BaseException) -> list[tuple[str, str]]:
    """The HTTP headers an error carries: ``WWW-Authenticate`` for a refusal of credentials (RFC
    9110 11.6.1: a 401 carries one), naming the schemes the agent accepts; ``Retry-After`` for an
    error that advises when to try again (RFC 9110 10.2.3: a rate limit's 429, a draining server's
    503); nothing for any other error."""
    if not isinstance(exc, errors.A2AError):
        return []
    if isinstance(exc, errors.UnauthenticatedError) and exc.challenge:
        return [("www-authenticate", exc.challenge)]
    if exc.retry_after is not None:
        return [("retry-after", str(exc.retry_after))]
    return []


def check_content_type(request: HttpRequest, has_body: bool, preferred: str) -> None:
    """:class:`HttpFailure` 415 unless a request with a body says it is JSON (either type)."""
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


async def read_body(request: HttpRequest, receive: Receive, limit: int) -> bytes:
    """The whole body; :class:`HttpFailure` 413 as soon as it passes ``limit`` bytes (or says it
    will), :class:`ClientGone` if the client leaves first."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> HttpFailure:
    return HttpFailure(
        413,
        errors.LimitExceededError(
            f"request body exceeds the limit of {limit} bytes (max_body_bytes)",
            limit="max_body_bytes",
            value=limit,
            metadata={"limit_bytes": limit},
        ),
    )


def raw_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
    media: str = JSON,
    length: int | None = None,
) -> None:
    """One whole response; ``length`` is the Content-Length of a HEAD answer's absent body."""
    raw = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *raw_headers(headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI lifespan scope: nothing to start or stop, so each step is acknowledged."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
