"""Where a bridge sends the calls it receives: one interface, several transports.

An :class:`Upstream` takes an A2A request message (by RPC name, as the service descriptor names
it) plus a :class:`Call` (the service parameters and headers allowed through, and a deadline),
and returns the response message or an async iterator of stream events. Failures are always
:class:`a2a_grpc.errors.A2AError`; an unreachable upstream is :class:`UnavailableError`.

* :class:`LocalUpstream`: the request handler of this process (``a2a-grpc serve --http-port``),
  through the call seam it shares with the gRPC server (:mod:`a2a_grpc.service`: the same
  interceptors): no network hop, no serialization.
* :class:`GrpcUpstream`: an A2A agent over gRPC (``a2a-grpc bridge http-to-grpc``).
* :mod:`a2a_grpc.bridge.outbound`: an agent over JSON-RPC or HTTP+JSON (the reverse bridge).

Fronts (:mod:`a2a_grpc.bridge.app` for HTTP, :mod:`a2a_grpc.bridge.grpcfront` for gRPC) serve any
of them, so each direction of the bridge is one front over one upstream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import grpc.aio
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._handler import RequestHandler
from a2a_grpc.client import ClientSettings, channel_calls
from a2a_grpc.discovery import CARD_SERVICE, GET_AGENT_CARD, GetAgentCardRequest, GetAgentCardResponse
from a2a_grpc.observability import trace
from a2a_grpc.observability.context import TraceHeaders
from a2a_grpc.observability.metrics import upstream_timer
from a2a_grpc.resilience import retry_service_config
from a2a_grpc.security.identity import ClientCertificate
from a2a_grpc.security.tls import ClientTls
from a2a_grpc.service import SUPPORTED_VERSIONS, CallContext, Service, deadline_after
from a2a_grpc.status import from_rpc_error

__all__ = [
    "CARD_PATH",
    "FORWARDED_HEADERS",
    "Call",
    "GrpcUpstream",
    "LocalUpstream",
    "Upstream",
    "check_header",
    "forwardable",
    "metadata_size",
    "parse_timeout",
]

CARD_PATH = "/.well-known/agent-card.json"
"""Where an agent publishes its public card, under its origin (spec section 8.2)."""

FORWARDED_HEADERS: tuple[str, ...] = ("authorization", "traceparent", "tracestate")
"""Headers a bridge passes on, besides every ``a2a-*`` one; everything else stays behind."""


def forwardable(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a (lower-case) header or metadata key crosses the bridge."""
    return name.startswith("a2a-") or name in FORWARDED_HEADERS or name in extra


_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _shown(char: str) -> str:
    # Header text is read as Latin-1, so below 256 a character is the byte that was sent.
    return f"byte 0x{ord(char):02X}" if ord(char) < 256 else f"character U+{ord(char):04X}"


def check_header(name: str, value: str) -> None:
    """Refuse a header that is to cross the bridge but cannot: :class:`InvalidRequestError` naming it.

    What crosses must fit gRPC metadata on every hop: a key of lower-case letters, digits and
    ``-_.``; a value of printable ASCII (0x20-0x7E), or, for a ``-bin`` key, base64 of the bytes
    (as gRPC over HTTP/2 writes binary metadata).
    """
    meta = {"header": name}
    if not _METADATA_KEY.fullmatch(name):
        raise errors.InvalidRequestError(
            f"header name {errors.echo(name)} cannot be passed on to the agent: "
            "use letters, digits and '-', '_' or '.' only",
            metadata=meta,
        )
    if name.endswith("-bin"):
        if _unbase64(value) is None:
            raise errors.InvalidRequestError(
                f"header {name} must be base64 (a -bin header carries bytes), not {errors.echo(value)}",
                metadata=meta,
            )
    elif not _PRINTABLE.fullmatch(value):
        at, char = next((i, c) for i, c in enumerate(value) if not " " <= c <= "~")
        raise errors.InvalidRequestError(
            f"header {name} holds {_shown(char)} at position {at}: only printable ASCII (0x20-0x7E) "
            "can be passed on to the agent (send binary values base64-encoded in an a2a-...-bin header)",
            metadata=meta,
        )


def metadata_size(headers: Mapping[str, str]) -> int:
    """The size gRPC counts for ``headers`` as metadata: name, value and 32 bytes per entry (HPACK)."""
    return sum(len(name) + len(value) + 32 for name, value in headers.items())


def _unbase64(value: str) -> bytes | None:
    """The bytes of padded or unpadded standard base64 (gRPC accepts both); None if it is not."""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_timeout(text: str) -> float:
    """Seconds from a ``Grpc-Timeout`` header: ``<digits><unit>`` (H, M, S, m, u, n) or plain seconds."""
    value = text.strip()
    try:
        seconds = float(value[:-1]) * _UNITS[value[-1]] if value and value[-1] in _UNITS else float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise errors.InvalidRequestError(
            f"invalid Grpc-Timeout {errors.echo(text)}: use a positive number with a unit, e.g. 5S or 250m",
            metadata={"header": "grpc-timeout"},
        )
    return seconds


@dataclass(frozen=True, slots=True)
class Call:
    """What travels with a request besides its message."""

    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-case names; only :func:`forwardable` ones, values as :func:`check_header` allows
    (a ``-bin`` one in base64)."""
    timeout: float | None = None
    """Seconds the caller is willing to wait (the upstream deadline); None: no deadline."""
    peer: str = ""
    """Who sent the call (the HTTP client's ``host:port``), for the in-process call's context."""
    client_certificate: ClientCertificate | None = None
    """The certificate the caller presented to a mutual-TLS front, for the in-process call's
    context; never sent on: the next hop sees this process's own identity."""
    wire_version: str = ""
    """The A2A version the caller spoke when the front translated its request (``"0.3"``), for
    the in-process call's :attr:`CallContext.wire_version`; a remote upstream is not told."""

    def metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The headers as gRPC metadata: a ``-bin`` value as its bytes; :class:`InvalidRequestError`
        for one that gRPC cannot carry (rather than a failure inside grpc)."""
        out: list[tuple[str, str | bytes]] = []
        for name, value in self.headers.items():
            check_header(name, value)
            out.append((name, _unbase64(value) or b"") if name.endswith("-bin") else (name, value))
        return tuple(out)


class Upstream(Protocol):
    """An A2A agent a bridge forwards to."""

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        """Send a unary RPC; the response message, or an :class:`A2AError`."""
        ...

    def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        """A server-streaming RPC as an async generator; closing it early cancels the call."""
        ...

    async def card(self) -> types.AgentCard:
        """The agent's public card, as the upstream publishes it."""
        ...

    async def aclose(self) -> None: ...


class LocalUpstream:
    """The request handler in this process: no network hop, no serialization.

    Calls go through ``service``, the call seam of the handler (give the gRPC server's,
    ``A2AServer.service``, so that both fronts share its interceptors); default: the handler's
    operations with no interceptors.
    """

    def __init__(self, handler: RequestHandler, service: Service | None = None) -> None:
        self.handler = handler
        self.service = service or Service.serving(handler)

    def _context(self, request: Message, call: Call) -> CallContext:
        context = CallContext.from_headers(
            dict(call.headers),
            tenant=getattr(request, "tenant", ""),
            deadline=deadline_after(call.timeout),
            peer=call.peer,
            front="http",
            client_certificate=call.client_certificate,
        )
        if call.wire_version:
            context = dataclasses.replace(context, wire_version=call.wire_version)
        return context

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        serve = self.service.unary(method)
        context = self._context(request, call)
        try:
            async with asyncio.timeout_at(context.deadline):
                return await serve(request, context)
        except TimeoutError:
            raise errors.DeadlineExceededError(
                f"{method} did not finish within {call.timeout:g} s",
                grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
            ) from None

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        serve = self.service.stream(method)
        context = self._context(request, call)
        async with contextlib.aclosing(serve(request, context)) as events:
            iterator: AsyncIterator[Message] = events.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(context.deadline):
                        event = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise errors.DeadlineExceededError(
                        f"{method} stream did not finish within {call.timeout:g} s",
                        grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                    ) from None
                yield event

    async def card(self) -> types.AgentCard:
        return self.handler.card

    async def aclose(self) -> None:
        return None


def _unavailable(target: str, exc: errors.A2AError) -> errors.A2AError:
    if isinstance(exc, errors.ServerDrainingError):  # as it is: its retry advice becomes Retry-After
        return exc
    if isinstance(exc, errors.UnavailableError):
        return errors.UnavailableError(
            f"upstream agent at {target} is unavailable: {exc.message}", grpc_code=grpc.StatusCode.UNAVAILABLE
        )
    return exc


_SERVICES = {
    **{method.name: types.A2A_SERVICE.full_name for method in types.A2A_SERVICE.methods},
    "GetAgentCard": CARD_SERVICE.full_name,
}
"""Each operation's gRPC service, for the channel's retry policy."""


def _parent(call: Call) -> TraceHeaders | None:
    """The trace an upstream call continues: the one being served in this process, else the one
    the bridge received (its headers), if valid."""
    current = trace.outgoing()
    if current is not None:
        return current
    traceparent = trace.parse_traceparent(call.headers.get(trace.TRACEPARENT))
    if traceparent is None:
        return None
    return TraceHeaders(traceparent, trace.parse_tracestate(call.headers.get(trace.TRACESTATE)))


def _sending(call: Call, sent: TraceHeaders | None) -> Call:
    """``call`` with ``sent`` as its trace context (the bridge's span replaces what it received)."""
    return dataclasses.replace(call, headers=trace.with_trace(call.headers, sent))


class GrpcUpstream:
    """An A2A agent served over gRPC at ``target`` (``host:port``).

    ``settings`` are the client side's (channel limits, keepalive, how long to wait for the card);
    ``options`` are more grpc channel options, after those; ``tls`` calls the agent over TLS
    (:class:`a2a_grpc.security.tls.ClientTls`: its CA, a client certificate for mutual TLS).
    """

    def __init__(
        self,
        target: str,
        *,
        card: types.AgentCard | None = None,
        settings: ClientSettings | None = None,
        options: Iterable[tuple[str, Any]] = (),
        channel: grpc.aio.Channel | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        self.target = target
        self.settings = settings or ClientSettings()
        # No loop of ours drives this channel: gRPC's own retry policy repeats the reads on
        # UNAVAILABLE (never a message, a cancel or a delete), with the settings' attempts and
        # backoff, within each call's deadline.
        config = retry_service_config(self.settings.resilience, _SERVICES)
        options = [*(() if config is None else [("grpc.service_config", config)]), *options]
        self._card = card
        self.card_source = "given" if card is not None else ""
        """Where :meth:`card` found the card: given, GetAgentCard or GetExtendedAgentCard."""
        if channel is not None:
            self._channel = channel
        elif tls is not None:
            self._channel = tls.secure_channel(target, [*self.settings.grpc_options(), *options])
        else:
            self._channel = grpc.aio.insecure_channel(
                target, options=[*self.settings.grpc_options(), *options]
            )
        self._calls = channel_calls(self._channel)
        self._get_card = self._channel.unary_unary(
            GET_AGENT_CARD,
            request_serializer=GetAgentCardRequest.SerializeToString,
            response_deserializer=GetAgentCardResponse.FromString,
        )

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        if trace.recorder() is not None:  # spans on: the call is a span of ours, sent as the parent
            return await trace.traced_unary(
                trace.span_name(method),
                _parent(call),
                lambda sent: self._unary(method, request, _sending(call, sent)),
                self.target,
            )
        return await self._unary(method, request, call)

    async def _unary(self, method: str, request: Message, call: Call) -> Message:
        start = time.perf_counter()
        try:
            response: Message = await self._calls[method](
                request, metadata=call.metadata(), timeout=call.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.target, from_rpc_error(exc)) from None
        finally:
            upstream_timer("grpc", method).observe(time.perf_counter() - start)
        return response

    def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        if trace.recorder() is not None:
            return trace.traced_stream(
                trace.span_name(method),
                _parent(call),
                lambda sent: self._stream(method, request, _sending(call, sent)),
                self.target,
            )
        return self._stream(method, request, call)

    async def _stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        start: float | None = time.perf_counter()
        rpc = self._calls[method](request, metadata=call.metadata(), timeout=call.timeout)
        try:
            async for event in rpc:
                if start is not None:  # the upstream's latency: until its first event
                    upstream_timer("grpc", method).observe(time.perf_counter() - start)
                    start = None
                yield event
        except grpc.aio.AioRpcError as exc:
            raise _unavailable(self.target, from_rpc_error(exc)) from None
        finally:
            rpc.cancel()  # no-op once the stream has ended; stops the upstream call if we leave early

    async def card(self) -> types.AgentCard:
        """The card given at construction, else the upstream's public card: a2a-grpc's
        ``AgentCardService.GetAgentCard``, or, from an agent without that service (another
        implementation), its GetExtendedAgentCard answer. :attr:`card_source` says which."""
        if self._card is None:
            wait = self.settings.connect_timeout
            try:
                response = await self._get_card(GetAgentCardRequest(), timeout=wait)
                self._card, self.card_source = response.card, "GetAgentCard"
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise _unavailable(self.target, from_rpc_error(exc)) from None
                card = await self.unary(
                    "GetExtendedAgentCard",
                    types.GetExtendedAgentCardRequest(),
                    Call({"a2a-version": SUPPORTED_VERSIONS[-1]}, wait),
                )
                assert isinstance(card, types.AgentCard)
                self._card, self.card_source = card, "GetExtendedAgentCard"
        return self._card

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the channel connects; :class:`UnavailableError` after ``timeout`` seconds
        (default: the settings' ``connect_timeout``)."""
        wait = self.settings.connect_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(self._channel.channel_ready(), wait)
        except TimeoutError:
            raise errors.UnavailableError(
                f"upstream agent at {self.target} is unavailable: no connection within {wait:g} s",
                grpc_code=grpc.StatusCode.UNAVAILABLE,
            ) from None

    async def aclose(self) -> None:
        await self._channel.close()
