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
* Failures are :class:`a2a_grpc.errors.A2AError`: the agent's own errors decoded from either
  binding's error form, :class:`UnavailableError` naming the agent's URL when it cannot be reached,
  :class:`DeadlineExceededError` when ``Call.timeout`` passes (it bounds the whole call, stream
  included), :class:`InvalidAgentResponseError` saying what is wrong with an answer we cannot use.
  The agent's URL in them, and in log lines (ours and httpx's), is shown without its userinfo
  (``user:password@``): credentials in the URL are sent as Basic authentication, as httpx would,
  but are never part of a URL that is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.jsonrpc import from_jsonrpc_error
from a2a_grpc.bridge.rest import from_rest_error
from a2a_grpc.bridge.routes import Router, compile_routes
from a2a_grpc.bridge.sse import SseDecoder, SseEvent
from a2a_grpc.bridge.upstream import CARD_PATH, Call, Upstream, check_header
from a2a_grpc.client import ClientSettings, with_tenant
from a2a_grpc.security.redact import redact_userinfo, scrub_urls, split_userinfo
from a2a_grpc.service import METHODS, version_supported

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


def _deadline(call: Call) -> float | None:
    return None if call.timeout is None else asyncio.get_running_loop().time() + call.timeout


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

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        tenant: str = "",
        card: types.AgentCard | None = None,
        card_url: str | None = None,
    ) -> None:
        self.url, credentials = split_userinfo(url)
        """The interface URL, as the agent card gives it, without userinfo (``user:password@``):
        those credentials go as Basic authentication, and the URL is shown in errors and logs."""
        self._auth = _basic(credentials)
        self.tenant = tenant
        """Sent with every request that names no tenant of its own (the interface's ``tenant``)."""
        self.card_url = card_url or _origin(url) + CARD_PATH
        self._card = card
        self._own_client = client is None
        # No per-read timeout of our own: a call's deadline is the only bound (see Call.timeout).
        self._client = client or httpx.AsyncClient(timeout=None)

    async def card(self) -> types.AgentCard:
        """The card this upstream was opened from, else the one published at :attr:`card_url`."""
        if self._card is None:
            self._card = await fetch_card(self.card_url, client=self._client)
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

    def _request(self, verb: str, url: str, body: object, call: Call, accept: str) -> httpx.Request:
        for name, value in call.headers.items():
            check_header(name, value)  # what httpx cannot write is the caller's error, named
        headers = {_header_name(k): v for k, v in call.headers.items()}
        headers["Accept"] = accept
        if body is not None:
            headers["Content-Type"] = self.media
        timeout = (
            httpx.Timeout(max(call.timeout, 0.0)) if call.timeout is not None else httpx.USE_CLIENT_DEFAULT
        )
        content = None if body is None else transcoding.dumps(body)
        return self._client.build_request(verb, url, content=content, headers=headers, timeout=timeout)

    @contextlib.contextmanager
    def _guard(self, method: str, call: Call) -> Iterator[None]:
        """HTTP failures as A2A errors; the agent's own A2A errors pass untouched."""
        try:
            yield
        except (TimeoutError, httpx.TimeoutException):
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

    async def _send(self, method: str, call: Call, verb: str, url: str, body: object) -> httpx.Response:
        request = self._request(verb, url, body, call, self.answers)
        with self._guard(method, call):
            async with asyncio.timeout_at(_deadline(call)):
                return await self._client.send(request, auth=self._auth)

    async def _events(
        self, method: str, call: Call, verb: str, url: str, body: object
    ) -> AsyncGenerator[SseEvent, None]:
        """The events of a streaming call; the HTTP response is closed whenever this generator is."""
        deadline = _deadline(call)
        request = self._request(verb, url, body, call, _SSE)
        with self._guard(method, call):
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True, auth=self._auth)
        try:
            if not (response.is_success and _media_type(response) == _SSE):
                with self._guard(method, call):
                    async with asyncio.timeout_at(deadline):
                        await response.aread()
                self._refuse(method, response)
            decoder = SseDecoder()
            chunks = response.aiter_bytes()
            while True:
                with self._guard(method, call):
                    try:
                        async with asyncio.timeout_at(deadline):
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                for event in decoder.feed(chunk):
                    if event.data:  # an empty data line carries nothing to decode
                        yield event
        finally:
            await response.aclose()

    # -- answers ---------------------------------------------------------------------------------

    def _invalid(self, method: str, problem: str) -> errors.InvalidAgentResponseError:
        return errors.InvalidAgentResponseError(f"{method}: upstream agent at {self.url} {problem}")

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

    def _body(self, response: httpx.Response) -> object:
        """The JSON of an error response, or its text if it is not JSON (a proxy's page)."""
        try:
            return transcoding.loads(response.content)
        except errors.ParseError:
            return response.text

    def _refuse(self, method: str, response: httpx.Response) -> NoReturn:
        """Raise the error a response that is not the expected one stands for."""
        raise NotImplementedError


# --- JSON-RPC ------------------------------------------------------------------------------------


class JsonRpcUpstream(_JsonUpstream):
    """An A2A agent over JSON-RPC 2.0 (spec section 9): every call is a POST to :attr:`url`."""

    binding = "JSONRPC"

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        tenant: str = "",
        card: types.AgentCard | None = None,
        card_url: str | None = None,
    ) -> None:
        super().__init__(url, client=client, tenant=tenant, card=card, card_url=card_url)
        self._ids = itertools.count(1)

    def _envelope(self, method: str, request: Message) -> tuple[int, dict[str, Any]]:
        rpc_id = next(self._ids)
        params = transcoding.encode(self._tenanted(request))
        return rpc_id, {"jsonrpc": "2.0", "id": rpc_id, "method": method, "params": params}

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        rpc_id, envelope = self._envelope(method, request)
        response = await self._send(method, call, "POST", self.url, envelope)
        if not response.is_success:
            self._refuse(method, response)
        result = self._result(method, rpc_id, self._json(method, response.content, "a response"))
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
                raise from_jsonrpc_error(error)
        if type(got) is not int or got != rpc_id:
            raise self._invalid(
                method, f"answered JSON-RPC id {transcoding.quote(got)} to request id {rpc_id}"
            )
        if "result" not in reply:
            raise self._invalid(method, "sent a JSON-RPC response with neither result nor error")
        return reply["result"]

    def _refuse(self, method: str, response: httpx.Response) -> NoReturn:
        body = self._body(response)
        if isinstance(body, Mapping) and "jsonrpc" in body and isinstance(body.get("error"), Mapping):
            raise from_jsonrpc_error(body["error"])
        if not response.is_success:
            raise self._named(from_rest_error(response.status_code, body))
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
    media = _A2A_JSON
    answers = f"{_A2A_JSON}, {_JSON}"

    def _target(self, method: str, request: Message) -> tuple[str, str, object]:
        request = self._tenanted(request)
        target = _router().target(method, request, transcoding.encode(request))
        url = self.url.rstrip("/") + target.path + (f"?{target.query}" if target.query else "")
        return target.route.verb, url, target.body

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        verb, url, body = self._target(method, request)
        response = await self._send(method, call, verb, url, body)
        if not response.is_success:
            self._refuse(method, response)
        data = self._json(method, response.content, "a response") if response.content else None
        return self._decode(method, data, METHODS[method].response, "a response")

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        verb, url, body = self._target(method, request)
        async with contextlib.aclosing(self._events(method, call, verb, url, body)) as events:
            async for event in events:
                data = self._json(method, event.data, "an event")
                if event.event == "error":
                    raise self._named(from_rest_error(_status_of(data), data))
                yield self._decode(method, data, METHODS[method].response, "an event")

    def _refuse(self, method: str, response: httpx.Response) -> NoReturn:
        if not response.is_success:
            raise self._named(from_rest_error(response.status_code, self._body(response)))
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
    url: str, *, client: httpx.AsyncClient, timeout: float | None = CARD_TIMEOUT
) -> types.AgentCard:
    """The agent card published at ``url`` (the card's own URL, not the agent's base URL).

    :class:`UnavailableError` if it cannot be fetched, :class:`InvalidAgentResponseError` if what
    comes back is no agent card. Members our proto does not define are ignored.
    """
    shown, credentials = split_userinfo(url)
    try:
        async with asyncio.timeout(timeout):
            response = await client.get(
                shown, headers={"Accept": _JSON}, follow_redirects=True, auth=_basic(credentials)
            )
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
        data = transcoding.loads(response.content)
        return transcoding.decode(data, types.AgentCard, lenient=True)
    except errors.A2AError as exc:
        raise errors.InvalidAgentResponseError(
            f"the agent card at {shown} is not valid: {exc.message}"
        ) from None


def choose_interface(card: types.AgentCard, prefer: Sequence[str] = JSON_BINDINGS) -> types.AgentInterface:
    """The first interface of ``card`` (card order, spec 8.3.2) with a binding in ``prefer`` and A2A 1.0.

    :class:`UnavailableError` listing what the card offers if there is none.
    """
    wanted = {p.upper() for p in prefer}
    if not wanted or not wanted <= set(JSON_BINDINGS):
        raise ValueError(f"prefer must name bindings among {', '.join(JSON_BINDINGS)}, not {list(prefer)}")
    for interface in card.supported_interfaces:
        version = interface.protocol_version
        if interface.protocol_binding.upper() in wanted and (not version or version_supported(version)):
            return interface
    offered = ", ".join(
        f"{i.protocol_binding or '?'} {i.protocol_version or '(no version)'} at {redact_userinfo(i.url)}"
        for i in card.supported_interfaces
    )
    raise errors.UnavailableError(
        f"agent {errors.echo(card.name)} has no {' or '.join(prefer)} interface for A2A 1.0; "
        f"its card offers {offered or 'no interfaces'}"
    )


async def open_json_upstream(
    url: str,
    *,
    prefer: Sequence[str] = JSON_BINDINGS,
    client: httpx.AsyncClient | None = None,
    timeout: float | None = CARD_TIMEOUT,
) -> Upstream:
    """The agent at ``url`` as an :class:`Upstream`, over the JSON binding its card lists first.

    ``url`` is the agent's base URL (its card is read from :data:`CARD_PATH` under it) or the
    card's own URL (ending in ``.json``). Of the card's interfaces, the first (in card order) whose
    binding is in ``prefer`` and whose version is 1.0 is used, with its ``tenant``. The upstream
    owns a client it creates; a ``client`` given is left open by ``aclose``.
    """
    card_url = card_url_for(url)
    http = client or httpx.AsyncClient(timeout=None)
    try:
        card = await fetch_card(card_url, client=http, timeout=timeout)
        interface = choose_interface(card, prefer)
    except BaseException:
        if client is None:
            await http.aclose()
        raise
    kind = JsonRpcUpstream if interface.protocol_binding.upper() == JsonRpcUpstream.binding else RestUpstream
    upstream = kind(
        urljoin(card_url, interface.url), client=http, tenant=interface.tenant, card=card, card_url=card_url
    )
    upstream._own_client = client is None
    return upstream
