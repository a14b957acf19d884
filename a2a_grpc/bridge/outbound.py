"""Calls going out to agents that speak the A2A JSON bindings: JSON-RPC (spec section 9) and
HTTP+JSON (section 11).

:class:`JsonRpcUpstream` and :class:`RestUpstream` implement :class:`a2a_grpc.bridge.upstream.Upstream`
over ``httpx``, so :class:`a2a_grpc.bridge.grpcfront.GrpcFront` can serve gRPC in front of any agent that
only speaks JSON. :func:`open_json_upstream` reads the agent's card and picks the interface.

* Requests and responses are ProtoJSON through :mod:`a2a_grpc.bridge.transcoding`, the classes from the
  method table (:data:`a2a_grpc.service.METHODS`); REST verbs, paths and query strings come from
  the proto's HTTP rules (:mod:`a2a_grpc.bridge.routes`); errors are read by each binding's codec
  (:func:`a2a_grpc.bridge.jsonrpc.from_jsonrpc_error`, :func:`a2a_grpc.bridge.rest.from_rest_error`).
* ``Call.headers`` (already filtered to service parameters) become HTTP headers, ``a2a-*`` ones
  spelled as the spec does (``A2A-Version``). No version is invented when the caller sent none:
  the agent then reads the call as 0.3, exactly as it would without the bridge.
* Streams are Server-Sent Events, read by :class:`SseDecoder`. Closing a stream early closes the
  HTTP response, so the agent sees the client leave.
* Every read is bounded by :class:`a2a_grpc.bridge.settings.OutboundSettings`: an answer's size
  after decompression (:mod:`a2a_grpc._bodies` inflates it piece by piece), an SSE line and
  event, the time of a unary call, a stream's silence, connecting. Whatever the agent sends, the
  bridge holds little more than those bounds and waits no longer than them.
* Failures are :class:`a2a_grpc.errors.A2AError`: the agent's own errors decoded from either
  binding's error form, :class:`UnavailableError` naming the agent's URL when it cannot be reached
  (or a stream goes silent for ``stream_idle_timeout``), :class:`DeadlineExceededError` when
  ``Call.timeout`` or ``unary_timeout`` passes (the caller's timeout bounds the whole call, stream
  included), :class:`InvalidAgentResponseError` saying what is wrong with an answer we cannot use
  (an answer over a size bound names the setting in ``metadata["limit"]``).
  The agent's URL in them, and in log lines (ours and httpx's), is shown without its userinfo
  (``user:password@``): credentials in the URL are sent as Basic authentication, as httpx would,
  but are never part of a URL that is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._bodies import ACCEPT_ENCODING, AnswerError, decoded, read_body
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error
from a2a_grpc.bridge.routes import Router, compile_routes
from a2a_grpc.bridge.settings import OutboundSettings
from a2a_grpc.bridge.sse import SseDecoder, SseEvent
from a2a_grpc.bridge.upstream import CARD_PATH, Call, Upstream, check_header
from a2a_grpc.client import ClientSettings, with_tenant
from a2a_grpc.observability import trace
from a2a_grpc.observability.context import TraceHeaders
from a2a_grpc.observability.metrics import upstream_timer
from a2a_grpc.security.redact import redact_userinfo, scrub_urls, split_userinfo
from a2a_grpc.service import METHODS, version_supported
from a2a_grpc.v03.card import is_v03_version, parse_card_json

__all__ = [
    "CARD_PATH",
    "CARD_TIMEOUT",
    "JSON_BINDINGS",
    "JsonRpcUpstream",
    "RestUpstream",
    "card_url_for",
    "choose_interface",
    "fetch_card",
    "open_json_upstream",
]

log = logging.getLogger("a2a_grpc.bridge.outbound")

CARD_TIMEOUT = ClientSettings().connect_timeout
"""Seconds :func:`open_json_upstream` waits for the agent card (the client side's ``connect_timeout``)."""
JSON_BINDINGS: tuple[str, ...] = ("JSONRPC", "HTTP+JSON")
"""The ``protocolBinding`` names this module speaks."""

_JSON = "application/json"
_A2A_JSON = "application/a2a+json"
_SSE = "text/event-stream"


# --- what both bindings share --------------------------------------------------------------------


def _now() -> float:
    return asyncio.get_running_loop().time()


def _deadline(call: Call) -> float | None:
    return None if call.timeout is None else _now() + call.timeout


def _sooner(caller: float | None, ours: float) -> tuple[float, bool]:
    """The earlier of the caller's deadline and one of our bounds, and whether ours it is."""
    return (ours, True) if caller is None or ours < caller else (caller, False)


def _header_name(name: str) -> str:
    # HTTP names are case-insensitive; A2A's own parameters are sent the way the spec spells them.
    return "A2A-" + "-".join(p.capitalize() for p in name[4:].split("-")) if name.startswith("a2a-") else name


def _media_type(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()


_HTTP_FAILURES: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectError, "no connection could be made"),
    (httpx.RemoteProtocolError, "its answer broke the HTTP protocol"),
    (httpx.ProxyError, "the proxy refused the connection"),
    (httpx.UnsupportedProtocol, "its URL is not http or https"),
    (httpx.NetworkError, "the connection broke"),
    (httpx.DecodingError, "its answer's content encoding cannot be decoded"),
    (httpx.TooManyRedirects, "it redirects too many times"),
)
"""What an httpx failure means, in our words (its own text speaks of sockets and libraries); first match."""


def _why(exc: httpx.HTTPError) -> str:
    return next((text for kind, text in _HTTP_FAILURES if isinstance(exc, kind)), "the HTTP exchange failed")


def _basic(credentials: tuple[str, str] | None) -> httpx.BasicAuth | httpx._client.UseClientDefault:
    # As httpx does with a URL's userinfo, without the URL (and so its log lines) carrying it.
    return httpx.USE_CLIENT_DEFAULT if credentials is None else httpx.BasicAuth(*credentials)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _JsonUpstream:
    """The HTTP client, headers, deadlines, error mapping and SSE reading of both bindings."""

    transport = ""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        tenant: str = "",
        card: types.AgentCard | None = None,
        card_url: str | None = None,
        settings: OutboundSettings | None = None,
    ) -> None:
        self.settings = settings or OutboundSettings()
        """The bounds of every read from the agent."""
        self.url, credentials = split_userinfo(url)
        """The interface URL, as the agent card gives it, without userinfo (``user:password@``):
        those credentials go as Basic authentication, and the URL is shown in errors and logs."""
        self._auth = _basic(credentials)
        self.tenant = tenant
        """Sent with every request that names no tenant of its own (the interface's ``tenant``)."""
        self.card_url = card_url or _origin(url) + CARD_PATH
        self._card = card
        self._own_client = client is None
        # No per-read timeout in httpx: each call sets its own bounds (see OutboundSettings).
        self._client = client or httpx.AsyncClient(timeout=None)

    async def card(self) -> types.AgentCard:
        """The card this upstream was opened from, else the one published at :attr:`card_url`."""
        if self._card is None:
            self._card = await fetch_card(
                self.card_url, client=self._client, max_bytes=self.settings.max_response_bytes
            )
        return self._card

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # -- requests --------------------------------------------------------------------------------

    def _tenanted(self, request: Message) -> Message:
        return with_tenant(request, self.tenant)

    media: str = _JSON
    """The Content-Type of request bodies on this binding."""
    answers: str = _JSON
    """The ``Accept`` of a call answered by one JSON document."""

    def _request(
        self, verb: str, url: str, body: object, call: Call, accept: str, sent: TraceHeaders | None = None
    ) -> httpx.Request:
        for name, value in call.headers.items():
            check_header(name, value)  # what httpx cannot write is the caller's error, named
        # The trace this process continues (its span's, with spans on) replaces the one received.
        forwarded = call.headers if sent is None else trace.with_trace(call.headers, sent)
        headers = {_header_name(k): v for k, v in forwarded.items()}
        headers["Accept"] = accept
        headers["Accept-Encoding"] = ACCEPT_ENCODING  # what _bodies.ContentDecoder reads, bounded
        if body is not None:
            headers["Content-Type"] = self.media
        # httpx bounds connecting only; every other wait is bounded around the call, as a whole.
        timeout = httpx.Timeout(None, connect=self.settings.connect_timeout)
        content = None if body is None else transcoding.dumps(body)
        return self._client.build_request(verb, url, content=content, headers=headers, timeout=timeout)

    @contextlib.contextmanager
    def _guard(self, method: str, call: Call, bound: str = "") -> Iterator[None]:
        """HTTP failures and answers over a bound as A2A errors; the agent's own A2A errors pass
        untouched. ``bound`` names the setting whose time runs out first (else the caller's)."""
        settings = self.settings
        try:
            yield
        except AnswerError as exc:
            raise self._invalid(method, exc.problem, exc.metadata()) from None
        except httpx.ConnectTimeout:
            seconds = settings.connect_timeout
            raise errors.UnavailableError(
                f"upstream agent at {self.url} is unavailable: no connection within {seconds:g} s "
                "(connect_timeout)",
                metadata={"limit": "connect_timeout", "limit_value": seconds},
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            if bound == "stream_idle_timeout":
                seconds = settings.stream_idle_timeout
                raise errors.UnavailableError(
                    f"upstream agent at {self.url} is unavailable: its {method} stream sent nothing "
                    f"for {seconds:g} s (stream_idle_timeout)",
                    metadata={"limit": bound, "limit_value": seconds},
                ) from None
            if bound == "unary_timeout":
                seconds = settings.unary_timeout
                raise errors.DeadlineExceededError(
                    f"{method}: upstream agent at {self.url} did not answer within {seconds:g} s "
                    "(unary_timeout)",
                    metadata={"limit": bound, "limit_value": seconds},
                ) from None
            within = "" if call.timeout is None else f" within {max(call.timeout, 0.0):g} s"
            raise errors.DeadlineExceededError(
                f"{method}: upstream agent at {self.url} did not answer{within}"
            ) from None
        except httpx.TransportError as exc:  # refused, DNS, reset, protocol errors
            log.info("%s to %s failed: %s", method, self.url, scrub_urls(repr(exc)))
            raise errors.UnavailableError(
                f"upstream agent at {self.url} is unavailable: {_why(exc)}"
            ) from None
        except httpx.HTTPError as exc:  # undecodable content encoding, redirect loops
            log.info("%s to %s failed: %s", method, self.url, scrub_urls(repr(exc)))
            raise self._invalid(method, _why(exc)) from None

    async def _send(
        self, method: str, call: Call, verb: str, url: str, body: object
    ) -> tuple[httpx.Response, bytes]:
        """The response to a unary call and its body, read whole within ``unary_timeout`` (or the
        caller's deadline, if sooner) and ``max_response_bytes``; the response is closed."""
        return await trace.traced_unary(
            trace.span_name(method),
            trace.outgoing(),
            lambda sent: self._exchange(method, call, verb, url, body, sent),
            self.url,
        )

    async def _exchange(
        self, method: str, call: Call, verb: str, url: str, body: object, sent: TraceHeaders | None
    ) -> tuple[httpx.Response, bytes]:
        request = self._request(verb, url, body, call, self.answers, sent)
        deadline, ours = _sooner(_deadline(call), _now() + self.settings.unary_timeout)
        start = time.perf_counter()
        try:
            with self._guard(method, call, "unary_timeout" if ours else ""):
                async with asyncio.timeout_at(deadline):
                    response = await self._client.send(
                        request, stream=True, auth=self._auth, follow_redirects=False
                    )
                    try:
                        return response, await read_body(response, self.settings.max_response_bytes)
                    finally:
                        await response.aclose()  # at once, if the read stopped short: the agent sees us go
        finally:
            upstream_timer(self.transport, method).observe(time.perf_counter() - start)

    def _events(
        self, method: str, call: Call, verb: str, url: str, body: object
    ) -> AsyncGenerator[SseEvent, None]:
        return trace.traced_stream(
            trace.span_name(method),
            trace.outgoing(),
            lambda sent: self._stream_events(method, call, verb, url, body, sent),
            self.url,
        )

    async def _stream_events(
        self, method: str, call: Call, verb: str, url: str, body: object, sent: TraceHeaders | None
    ) -> AsyncGenerator[SseEvent, None]:
        """The events of a streaming call; the HTTP response is closed whenever this generator is.

        The caller's deadline bounds the whole stream; ``stream_idle_timeout`` the time spent
        waiting for the agent without a line completing (the time our consumer takes between
        events does not count).
        """
        settings = self.settings
        caller = _deadline(call)
        request = self._request(verb, url, body, call, _SSE, sent)
        until, ours = _sooner(caller, _now() + settings.stream_idle_timeout)
        start = time.perf_counter()
        try:
            with self._guard(method, call, "stream_idle_timeout" if ours else ""):
                async with asyncio.timeout_at(until):
                    response = await self._client.send(
                        request, stream=True, auth=self._auth, follow_redirects=False
                    )
        finally:  # the upstream's latency of a stream: until its response headers
            upstream_timer(self.transport, method).observe(time.perf_counter() - start)
        try:
            if not (response.is_success and _media_type(response) == _SSE):
                until, ours = _sooner(caller, _now() + settings.unary_timeout)
                with self._guard(method, call, "unary_timeout" if ours else ""):
                    async with asyncio.timeout_at(until):
                        content = await read_body(response, settings.max_response_bytes)
                self._refuse(method, response, content)
            decoder = SseDecoder(
                max_sse_line_bytes=settings.max_sse_line_bytes,
                max_sse_event_bytes=settings.max_sse_event_bytes,
            )
            quiet = 0.0  # seconds waited since the last line completed
            async with contextlib.aclosing(decoded(response)) as chunks:
                while True:
                    started = _now()
                    until, ours = _sooner(caller, started + settings.stream_idle_timeout - quiet)
                    with self._guard(method, call, "stream_idle_timeout" if ours else ""):
                        try:
                            async with asyncio.timeout_at(until):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            return
                        lines = decoder.lines
                        events = decoder.feed(chunk)
                    quiet = 0.0 if decoder.lines > lines else quiet + _now() - started
                    for event in events:
                        if event.data:  # an empty data line carries nothing to decode
                            yield event
        finally:
            await response.aclose()

    # -- answers ---------------------------------------------------------------------------------

    def _invalid(
        self, method: str, problem: str, metadata: Mapping[str, object] | None = None
    ) -> errors.InvalidAgentResponseError:
        return errors.InvalidAgentResponseError(
            f"{method}: upstream agent at {self.url} {problem}", metadata=metadata
        )

    def _named(self, err: errors.A2AError) -> errors.A2AError:
        """An error status of the agent's HTTP server, with the agent's URL if it says unavailable."""
        if isinstance(err, errors.UnavailableError):
            return errors.UnavailableError(f"upstream agent at {self.url} is unavailable: {err.message}")
        return err

    def _json(self, method: str, text: bytes | str, what: str) -> Any:
        try:
            return transcoding.loads(text)
        except errors.ParseError as exc:
            raise self._invalid(method, f"sent {what} that is not JSON ({exc.message})") from None

    def _decode(self, method: str, data: object, cls: type[Message], what: str) -> Message:
        if data is None and not cls.DESCRIPTOR.fields:  # google.protobuf.Empty may come as null
            return cls()
        try:
            return transcoding.decode(data, cls, lenient=True)
        except errors.InvalidParamsError as exc:
            raise self._invalid(
                method, f"sent {what} that is not a {cls.DESCRIPTOR.name}: {exc.message}"
            ) from None

    def _body(self, content: bytes) -> object:
        """The JSON of an error response, or its text if it is not JSON (a proxy's page)."""
        try:
            return transcoding.loads(content)
        except errors.ParseError:
            return content.decode("utf-8", "replace")

    def _refuse(self, method: str, response: httpx.Response, content: bytes) -> NoReturn:
        """Raise the error a response that is not the expected one stands for."""
        raise NotImplementedError


# --- JSON-RPC ------------------------------------------------------------------------------------


class JsonRpcUpstream(_JsonUpstream):
    """An A2A agent over JSON-RPC 2.0 (spec section 9): every call is a POST to :attr:`url`."""

    binding = "JSONRPC"
    transport = "jsonrpc"
    """The ``transport`` label of ``a2a_bridge_upstream_duration_seconds``."""
    rpc_error = staticmethod(from_jsonrpc_error)
    """Reads a JSON-RPC error object (the v0.3 upstream reads v0.3's)."""
    http_error = staticmethod(from_rest_error)
    """Reads an HTTP error status and body."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        tenant: str = "",
        card: types.AgentCard | None = None,
        card_url: str | None = None,
        settings: OutboundSettings | None = None,
    ) -> None:
        super().__init__(url, client=client, tenant=tenant, card=card, card_url=card_url, settings=settings)
        self._ids = itertools.count(1)

    def _envelope(self, method: str, request: Message) -> tuple[int, dict[str, Any]]:
        rpc_id = next(self._ids)
        params = transcoding.encode(self._tenanted(request))
        return rpc_id, {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        rpc_id, envelope = self._envelope(method, request)
        response, content = await self._send(method, call, "POST", self.url, envelope)
        if not response.is_success:
            self._refuse(method, response, content)
        result = self._result(method, rpc_id, self._json(method, content, "a response"))
        return self._decode(method, result, METHODS[method].response, "a result")

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        rpc_id, envelope = self._envelope(method, request)
        async with contextlib.aclosing(self._events(method, call, "POST", self.url, envelope)) as events:
            async for event in events:
                result = self._result(method, rpc_id, self._json(method, event.data, "an event"))
                if event.event == "error":
                    raise self._invalid(method, "sent an error event without a JSON-RPC error")
                yield self._decode(method, result, METHODS[method].response, "an event")

    def _result(self, method: str, rpc_id: int, reply: object) -> object:
        """The ``result`` of a JSON-RPC response to request ``rpc_id``; its ``error`` is raised."""
        if not isinstance(reply, Mapping):
            raise self._invalid(method, "sent a JSON-RPC response that is not an object")
        got = reply.get("id")
        error = reply.get("error")
        if error is not None:
            if not isinstance(error, Mapping):
                raise self._invalid(method, "sent a JSON-RPC error that is not an object")
            if got is None or got == rpc_id:  # null: the agent could not read the request's id
                raise self.rpc_error(error)
        if type(got) is not int or got != rpc_id:
            raise self._invalid(
                method, f"answered JSON-RPC id {transcoding.quote(got)} to request id {rpc_id}"
            )
        if "result" not in reply:
            raise self._invalid(method, "sent a JSON-RPC response with neither result nor error")
        return reply["result"]

    def _refuse(self, method: str, response: httpx.Response, content: bytes) -> NoReturn:
        body = self._body(content)
        if isinstance(body, Mapping) and "jsonrpc" in body and isinstance(body.get("error"), Mapping):
            raise self.rpc_error(body["error"])
        if not response.is_success:
            raise self._named(self.http_error(response.status_code, body))
        raise self._invalid(method, f"answered {_media_type(response) or 'no media type'}, not {_SSE}")


# --- HTTP+JSON -----------------------------------------------------------------------------------


@cache
def _router() -> Router:
    return Router(compile_routes())


class RestUpstream(_JsonUpstream):
    """An A2A agent over HTTP+JSON (spec section 11): routes under :attr:`url`, from the proto.

    Bodies go out as ``application/a2a+json`` (11.1); answers are read in either JSON type.
    """

    binding = "HTTP+JSON"
    transport = "rest"
    media = _A2A_JSON
    answers = f"{_A2A_JSON}, {_JSON}"

    def _target(self, method: str, request: Message) -> tuple[str, str, object]:
        request = self._tenanted(request)
        target = _router().target(method, request, transcoding.encode(request))
        url = self.url.rstrip("/") + target.path + (f"?{target.query}" if target.query else "")
        return target.route.verb, url, target.body

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        verb, url, body = self._target(method, request)
        response, content = await self._send(method, call, verb, url, body)
        if not response.is_success:
            self._refuse(method, response, content)
        data = self._json(method, content, "a response") if content else None
        return self._decode(method, data, METHODS[method].response, "a response")

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        verb, url, body = self._target(method, request)
        async with contextlib.aclosing(self._events(method, call, verb, url, body)) as events:
            async for event in events:
                data = self._json(method, event.data, "an event")
                if event.event == "error":
                    raise self._named(from_rest_error(_status_of(data), data))
                yield self._decode(method, data, METHODS[method].response, "an event")

    def _refuse(self, method: str, response: httpx.Response, content: bytes) -> NoReturn:
        if not response.is_success:
            raise self._named(from_rest_error(response.status_code, self._body(content)))
        raise self._invalid(method, f"answered {_media_type(response) or 'no media type'}, not {_SSE}")


def _status_of(body: object) -> int:
    """The HTTP status an error event's body names (an SSE event has no status line of its own)."""
    status = body.get("error") if isinstance(body, Mapping) else None
    code = status.get("code") if isinstance(status, Mapping) else None
    return code if type(code) is int else errors.InternalError.spec.http_status


# --- the agent card ------------------------------------------------------------------------------


def card_url_for(url: str) -> str:
    """The card's URL: ``url`` itself if it names a ``.json`` file, else :data:`CARD_PATH` under it."""
    return url if urlsplit(url).path.endswith(".json") else url.rstrip("/") + CARD_PATH


async def fetch_card(
    url: str,
    *,
    client: httpx.AsyncClient,
    timeout: float | None = CARD_TIMEOUT,
    max_bytes: int = OutboundSettings().max_response_bytes,
) -> types.AgentCard:
    """The agent card published at ``url`` (the card's own URL, not the agent's base URL).

    ``timeout`` bounds the whole fetch, the body included; a body over ``max_bytes`` (counted
    inflated, the read stopping there) is refused. :class:`UnavailableError` if it cannot be
    fetched, :class:`InvalidAgentResponseError` if what comes back is no agent card, or too large
    (``metadata["limit"]`` is ``max_response_bytes``). Members our proto does not define are ignored.
    A v0.3 card (``url`` and no ``supportedInterfaces``) is read by
    :func:`a2a_grpc.v03.card.parse_card_json`: its interfaces carry its ``protocolVersion`` (0.3).
    """
    shown, credentials = split_userinfo(url)
    headers = {"Accept": _JSON, "Accept-Encoding": ACCEPT_ENCODING}
    content = b""
    try:
        async with asyncio.timeout(timeout):
            response = await _follow(client, client.build_request("GET", shown, headers=headers), credentials)
            try:
                if response.is_success:
                    content = await read_body(response, max_bytes)
            finally:
                await response.aclose()
    except AnswerError as exc:
        raise errors.InvalidAgentResponseError(
            f"the agent card at {shown} is not valid: the agent {exc.problem}", metadata=exc.metadata()
        ) from None
    except (TimeoutError, httpx.TimeoutException):
        within = "" if timeout is None else f" within {timeout:g} s"
        raise errors.UnavailableError(
            f"upstream agent at {shown} is unavailable: no agent card{within}"
        ) from None
    except httpx.HTTPError as exc:
        log.info("fetching the agent card at %s failed: %s", shown, scrub_urls(repr(exc)))
        raise errors.UnavailableError(f"upstream agent at {shown} is unavailable: {_why(exc)}") from None
    if not response.is_success:
        raise errors.UnavailableError(
            f"upstream agent at {shown} is unavailable: its agent card answered HTTP {response.status_code}"
        )
    try:
        data = transcoding.loads(content)
        if isinstance(data, Mapping) and "supportedInterfaces" not in data and "url" in data:
            return parse_card_json(data)  # a v0.3 card: its interfaces say protocol_version 0.x
        return transcoding.decode(data, types.AgentCard, lenient=True)
    except errors.A2AError as exc:
        raise errors.InvalidAgentResponseError(
            f"the agent card at {shown} is not valid: {exc.message}"
        ) from None


async def _follow(
    client: httpx.AsyncClient, request: httpx.Request, credentials: tuple[str, str] | None
) -> httpx.Response:
    """The response at the end of ``request``'s redirects (``client.max_redirects`` at most), as a
    stream. httpx would read every redirect's body whole, inflated; here none is read."""
    auth: httpx.Auth | httpx._client.UseClientDefault | None = _basic(credentials)
    for _ in range(client.max_redirects + 1):
        response = await client.send(request, auth=auth, follow_redirects=False, stream=True)
        if response.next_request is None:
            return response
        await response.aclose()
        # as httpx does: credentials go with the first request only (a redirect keeps an
        # Authorization header to the same origin, and drops it to another)
        request, auth = response.next_request, None
    raise httpx.TooManyRedirects("too many redirects", request=request)


def choose_interface(card: types.AgentCard, prefer: Sequence[str] = JSON_BINDINGS) -> types.AgentInterface:
    """The first interface of ``card`` (card order, spec 8.3.2) with a binding in ``prefer`` and A2A
    1.0 (an interface naming no version counts as 1.0); else the first with A2A 0.x (v0.3: spoken by
    :mod:`a2a_grpc.bridge.outbound03`). A 1.0 interface is always preferred (spec 3.6.3).

    :class:`UnavailableError` listing what the card offers if there is none.
    """
    wanted = {p.upper() for p in prefer}
    if not wanted or not wanted <= set(JSON_BINDINGS):
        raise ValueError(f"prefer must name bindings among {', '.join(JSON_BINDINGS)}, not {list(prefer)}")
    usable = [i for i in card.supported_interfaces if i.protocol_binding.upper() in wanted]
    for interface in usable:
        version = interface.protocol_version
        if not version or version_supported(version):
            return interface
    for interface in usable:
        if is_v03_version(interface.protocol_version):
            return interface
    offered = ", ".join(
        f"{i.protocol_binding or '?'} {i.protocol_version or '(no version)'} at {redact_userinfo(i.url)}"
        for i in card.supported_interfaces
    )
    raise errors.UnavailableError(
        f"agent {errors.echo(card.name)} has no {' or '.join(prefer)} interface for A2A 1.0 or 0.x; "
        f"its card offers {offered or 'no interfaces'}"
    )


async def open_json_upstream(
    url: str,
    *,
    prefer: Sequence[str] = JSON_BINDINGS,
    client: httpx.AsyncClient | None = None,
    timeout: float | None = CARD_TIMEOUT,
    settings: OutboundSettings | None = None,
) -> Upstream:
    """The agent at ``url`` as an :class:`Upstream`, over the JSON binding its card lists first.

    ``url`` is the agent's base URL (its card is read from :data:`CARD_PATH` under it) or the
    card's own URL (ending in ``.json``). Of the card's interfaces, the first (in card order) whose
    binding is in ``prefer`` and whose version is 1.0 is used, with its ``tenant``; with none, the
    first of version 0.x, spoken in A2A v0.3 (:mod:`a2a_grpc.bridge.outbound03`). The upstream
    owns a client it creates; a ``client`` given is left open by ``aclose``. ``settings`` bound
    every read from the agent, the card's included (default: :class:`OutboundSettings`'s).
    """
    settings = settings or OutboundSettings()
    card_url = card_url_for(url)
    http = client or httpx.AsyncClient(timeout=None)
    try:
        card = await fetch_card(card_url, client=http, timeout=timeout, max_bytes=settings.max_response_bytes)
        interface = choose_interface(card, prefer)
    except BaseException:
        if client is None:
            await http.aclose()
        raise
    kinds: tuple[type[JsonRpcUpstream], type[RestUpstream]] = (JsonRpcUpstream, RestUpstream)
    if interface.protocol_version and is_v03_version(interface.protocol_version):
        from a2a_grpc.bridge.outbound03 import JsonRpc03Upstream, Rest03Upstream

        kinds = (JsonRpc03Upstream, Rest03Upstream)
    json_rpc = interface.protocol_binding.upper() == JsonRpcUpstream.binding
    kind: type[JsonRpcUpstream] | type[RestUpstream] = kinds[0] if json_rpc else kinds[1]
    upstream = kind(
        urljoin(card_url, interface.url),
        client=http,
        tenant=interface.tenant,
        card=card,
        card_url=card_url,
        settings=settings,
    )
    upstream._own_client = client is None
    return upstream
