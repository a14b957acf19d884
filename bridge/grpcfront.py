"""A gRPC ``lf.a2a.v1.A2AService`` in front of any :class:`bridge.upstream.Upstream`.

With :func:`bridge.jsonclient.open_json_upstream` as the upstream this is the gRPC → HTTP bridge:
gRPC clients reach an agent that only speaks JSON-RPC or HTTP+JSON.

    upstream = await open_json_upstream("http://agent.example:8080")
    async with GrpcFront(upstream, ServerSettings(port=50051)) as front:
        await front.wait()

Every RPC of the service descriptor is forwarded by name with the request message as is. The
service parameters among the call's metadata (:func:`bridge.upstream.forwardable`) travel with
it, and the call's remaining time becomes the upstream deadline. Errors leave through
:func:`a2a_grpc.errors.abort`, so an upstream's A2A error reaches the client with the spec's gRPC
code and its ErrorInfo. A client that leaves a stream closes the upstream stream at once. The
front also serves ``grpc.health.v1`` and server reflection; it does not close the upstream.
"""

from __future__ import annotations

import base64
import contextlib
import logging

import grpc
import grpc.aio
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.server import (
    GrpcService,
    ServerSettings,
    StreamFn,
    UnaryFn,
    a2a_service_handler,
    check_decoded,
    grpc_interface,
)
from bridge.upstream import Call, Upstream, check_header, forwardable

__all__ = ["GrpcFront", "front_handler", "upstream_call"]

log = logging.getLogger("bridge.grpcfront")
SERVICE = types.A2A_SERVICE.full_name


def upstream_call(context: grpc.aio.ServicerContext) -> Call:
    """The forwardable metadata (lower-case keys, text values) and remaining time of a call.

    A ``-bin`` value (bytes) travels as unpadded base64, as gRPC over HTTP/2 writes it. A value
    that an HTTP header cannot carry is :class:`InvalidRequestError` (INVALID_ARGUMENT) naming it.
    """
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        name = key.lower()
        if not forwardable(name):
            continue
        text = base64.b64encode(value).decode().rstrip("=") if isinstance(value, bytes) else value
        check_header(name, text)
        # gRPC allows a key more than once; HTTP joins repeated fields with commas.
        headers[name] = f"{headers[name]},{text}" if name in headers else text
    return Call(headers, context.time_remaining())


def _unary(upstream: Upstream, method: MethodDescriptor) -> UnaryFn:
    name = method.name

    async def forward(request: Message, context: grpc.aio.ServicerContext) -> Message:
        try:
            check_decoded(request)
            return await upstream.unary(name, request, upstream_call(context))
        except Exception as exc:
            await errors.abort(context, exc)

    return forward


def _streaming(upstream: Upstream, method: MethodDescriptor) -> StreamFn:
    name = method.name

    async def forward(request: Message, context: grpc.aio.ServicerContext) -> None:
        try:
            check_decoded(request)
            # aclosing: when the client leaves (this task is cancelled), the upstream stream closes now.
            async with contextlib.aclosing(upstream.stream(name, request, upstream_call(context))) as events:
                async for event in events:
                    await context.write(event)
        except Exception as exc:
            await errors.abort(context, exc)

    return forward


def front_handler(upstream: Upstream, *, log_requests: bool = False) -> grpc.GenericRpcHandler:
    """``lf.a2a.v1.A2AService``, every method forwarded to ``upstream``, from the service descriptor."""
    return a2a_service_handler(
        lambda method: _unary(upstream, method),
        lambda method: _streaming(upstream, method),
        log_requests=log_requests,
    )


class GrpcFront(GrpcService):
    """A gRPC server (A2AService, health, reflection) whose every A2A call goes to ``upstream``."""

    def __init__(self, upstream: Upstream, settings: ServerSettings | None = None) -> None:
        super().__init__(settings)
        self.upstream = upstream

    def _a2a_handler(self) -> grpc.GenericRpcHandler:
        return front_handler(self.upstream, log_requests=self.settings.log_requests)

    async def public_card(self) -> types.AgentCard:
        """The upstream's public card, with this front's GRPC interface first."""
        card = types.AgentCard()
        card.CopyFrom(await self.upstream.card())
        ours = grpc_interface(self.advertised_address)
        others = [
            i for i in card.supported_interfaces if (i.protocol_binding.upper(), i.url) != ("GRPC", ours.url)
        ]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend([ours, *others])
        return card

    async def start(self) -> int:
        port = await super().start()
        log.info("serving %s on %s for %s", SERVICE, self.address, type(self.upstream).__name__)
        return port
