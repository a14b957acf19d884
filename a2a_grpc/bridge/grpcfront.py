"""A gRPC ``lf.a2a.v1.A2AService`` in front of any :class:`a2a_grpc.bridge.upstream.Upstream`.

With :func:`a2a_grpc.bridge.outbound.open_json_upstream` as the upstream this is the gRPC → HTTP bridge:
gRPC clients reach an agent that only speaks JSON-RPC or HTTP+JSON.

    upstream = await open_json_upstream("http://agent.example:8080")
    async with GrpcFront(upstream, ServerSettings(port=50051)) as front:
        await front.wait()

Every call passes the call seam (:mod:`a2a_grpc.service`), so the interceptors of
``ServerSettings.interceptors`` see it, then goes to the upstream by name with the request message
as is (:func:`forwarding_service`). The service parameters among the call's metadata
(:func:`a2a_grpc.bridge.upstream.forwardable`) travel with it, and the call's deadline becomes the upstream
deadline. Errors leave through :func:`a2a_grpc.status.abort`, so an upstream's A2A error reaches
the client with the spec's gRPC code and its ErrorInfo. A client that leaves a stream closes the
upstream stream at once. The front also serves ``grpc.health.v1`` and server reflection; it does
not close the upstream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._validation import check_identifiers
from a2a_grpc.bridge.upstream import Call, Upstream, check_header, forwardable
from a2a_grpc.security.credentials import credential_headers
from a2a_grpc.server import GrpcService, ServerSettings
from a2a_grpc.service import METHODS, CallContext, Interceptor, Method, Service, StreamCall, UnaryCall

if TYPE_CHECKING:
    from a2a_grpc.bridge.ops import OpsServer

__all__ = ["GrpcFront", "forwarding_service", "upstream_call"]

log = logging.getLogger("a2a_grpc.bridge.grpcfront")
SERVICE = types.A2A_SERVICE.full_name


def upstream_call(context: CallContext, extra: Iterable[str] = ()) -> Call:
    """The forwardable headers (lower-case keys, text values; ``extra`` names more) and remaining
    time of a call.

    A ``-bin`` value travels as unpadded base64, as gRPC over HTTP/2 writes it. A value that an
    HTTP header cannot carry is :class:`InvalidRequestError` (INVALID_ARGUMENT) naming it.
    """
    headers = {name: value for name, value in context.headers.items() if forwardable(name, extra)}
    for name, value in headers.items():
        check_header(name, value)
    return Call(headers, context.time_remaining(), context.peer)


def _forward_unary(upstream: Upstream, method: Method, extra: set[str]) -> UnaryCall:
    name = method.name

    async def forward(request: Message, context: CallContext) -> Message:
        check_identifiers(request)  # before they reach the upstream's URL paths or a log line
        return await upstream.unary(name, request, upstream_call(context, extra))

    return forward


def _forward_stream(upstream: Upstream, method: Method, extra: set[str]) -> StreamCall:
    name = method.name

    def forward(request: Message, context: CallContext) -> AsyncIterator[Message]:
        check_identifiers(request)
        return upstream.stream(name, request, upstream_call(context, extra))

    return forward


def forwarding_service(
    upstream: Upstream, interceptors: Iterable[Interceptor] = (), forward_headers: set[str] | None = None
) -> Service:
    """Every A2A method forwarded to ``upstream``, behind ``interceptors``; ``forward_headers``
    (read at each call, so it may be filled later) names headers to pass on besides the usual."""
    extra = forward_headers if forward_headers is not None else set()
    endpoints: dict[str, UnaryCall | StreamCall] = {
        name: _forward_stream(upstream, method, extra)
        if method.streaming
        else _forward_unary(upstream, method, extra)
        for name, method in METHODS.items()
    }
    return Service(endpoints, interceptors)


class GrpcFront(GrpcService):
    """A gRPC server (A2AService, health, reflection) whose every A2A call goes to ``upstream``."""

    def __init__(self, upstream: Upstream, settings: ServerSettings | None = None) -> None:
        super().__init__(settings)
        self.upstream = upstream
        self.forward_headers: set[str] = set()
        """Headers passed on besides the usual ones: those carrying the credentials the upstream's
        card asks for (an API key's header), filled in at start."""
        self.service = forwarding_service(upstream, self.seam_chain(), self.forward_headers)
        self.ops: OpsServer | None = None
        """The metrics port (``settings.observability.metrics_port``), once started."""

    def _service(self) -> Service:
        return self.service

    async def public_card(self) -> types.AgentCard:
        """The upstream's public card, with this front's GRPC interfaces first: A2A 1.0, then 0.3
        (the same address) when ``serve_v03`` is on."""
        card = types.AgentCard()
        card.CopyFrom(await self.upstream.card())
        ours = self.grpc_interfaces()
        others = [
            i
            for i in card.supported_interfaces
            if (i.protocol_binding.upper(), i.url) != ("GRPC", ours[0].url)
        ]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend([*ours, *others])
        return card

    async def start(self) -> int:
        if self.settings.authentication is not None:
            await self.settings.authentication.start()
        try:
            self.forward_headers.update(credential_headers(await self.upstream.card()))
        except errors.A2AError as exc:  # no card now: the usual headers only (authorization among them)
            log.warning(
                "the upstream's card could not be read (%s): its API key header, if any, is not passed on",
                exc.message,
            )
        port = await super().start()
        if self.settings.observability.metrics_port is not None:  # a metrics port of its own
            # here: uvicorn only when it is asked for
            from a2a_grpc.bridge.debug import debug_routes
            from a2a_grpc.bridge.ops import ops_server

            self.ops = ops_server(self.settings.observability, debug_routes(self))
            assert self.ops is not None
            await self.ops.start()
        log.info("serving %s on %s for %s", SERVICE, self.address, type(self.upstream).__name__)
        return port

    async def stop(self, grace: float | None = None) -> None:
        ops, self.ops = self.ops, None
        if ops is not None:
            await ops.stop()
        await super().stop(grace)
        if self.settings.authentication is not None:
            await self.settings.authentication.aclose()
