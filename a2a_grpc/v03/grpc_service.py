"""The v0.3 gRPC service, ``a2a.v1.A2AService``, served over the v1.0 call seam.

A v0.3 client (the official SDK 0.3, SDK 1.x's compat transport) calls ``/a2a.v1.A2AService/*``;
the v1.0 service is ``/lf.a2a.v1.A2AService/*``, so both live on one port. Each v0.3 RPC is a thin
front: it decodes the v0.3 request, refuses a caller that names an A2A version of major 1 or more
(VersionNotSupportedError: a v1.0 client belongs on ``lf.a2a.v1``), converts the request to v1.0
(:mod:`a2a_grpc.v03.requests`; a SendMessage without configuration is non-blocking, as on the
SDKs' v0.3 gRPC wire), and calls the SAME chain of the same :class:`~a2a_grpc.service.Service` the
v1.0 front calls: metrics, logs, trace, drain gate, authentication, quotas, interceptors and the
handler's ownership rules apply unchanged. Its :class:`~a2a_grpc.service.CallContext` says version
"1.0" (what the core handles) and ``wire_version`` "0.3" (what the caller spoke). Answers and
stream events are converted back (``to_v03_*``), errors go out in the v0.3 gRPC form
(:func:`a2a_grpc.v03.errors.to_grpc_status_v03`: the v1.0 code, details ``"<ErrorTypeName>: msg"``
and our ErrorInfo).

Metrics and access-log lines name the v1.0 method the call became (``TaskSubscription`` counts as
``SubscribeToTask``, ``GetAgentCard`` as ``GetExtendedAgentCard`` or the card service's
``GetAgentCard``), so their label sets stay closed; the binding is ``grpc``.

``GetAgentCard`` answers the v0.3 form of the card the server serves: the extended card for a
caller the server authenticates (as v1.0's GetExtendedAgentCard), else the public card.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.discovery import GetAgentCardRequest, GetAgentCardResponse
from a2a_grpc.service import SUPPORTED_VERSIONS, CallContext, Method, Service, method_table, parse_extensions
from a2a_grpc.status import abort
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.card import V03_VERSION, is_v03_version, to_v03_agent_card
from a2a_grpc.v03.convert import to_v03_send_response, to_v03_stream_response, to_v03_task
from a2a_grpc.v03.errors import to_grpc_status_v03
from a2a_grpc.v03.requests import (
    to_v03_list_push_configs_response,
    to_v03_task_push_config,
    to_v10_cancel_task_request,
    to_v10_create_push_config_request,
    to_v10_delete_push_config_request,
    to_v10_get_push_config_request,
    to_v10_get_task_request,
    to_v10_list_push_configs_request,
    to_v10_send_request,
    to_v10_subscribe_request,
)

__all__ = ["V03_METHODS", "V03_ROUTES", "V03GrpcFront", "V03Route", "v03_call_context"]

V03_METHODS: Mapping[str, Method] = method_table(v03.A2A_SERVICE)
"""The ten RPCs of ``a2a.v1.A2AService`` (v0.3) by name."""

ContextOf = Callable[[grpc.aio.ServicerContext, Message], CallContext]
"""What builds a call's context from the gRPC call and its request (the server's ``call_context``)."""
Decoder = Callable[[type[Message]], Callable[[bytes], Any]]
"""The server's deserializer for a request class (bounded, counting, never raising)."""


@dataclasses.dataclass(frozen=True, slots=True)
class V03Route:
    """One v0.3 RPC: the v1.0 method it calls, and the conversions on the way in and out."""

    core: str
    """The v1.0 method (:data:`a2a_grpc.service.METHODS`) it calls."""
    up: Callable[[Any], Message]
    """v0.3 request -> v1.0 request."""
    down: Callable[[Any], Message]
    """v1.0 answer (or event) -> v0.3 answer (or event)."""


def _empty(answer: Message) -> Message:
    del answer  # google.protobuf.Empty both ways
    return V03_METHODS["DeleteTaskPushNotificationConfig"].response()


def _send(request: v03.SendMessageRequest) -> types.SendMessageRequest:
    # The v0.3 gRPC wire's blocking is a plain bool: no configuration reads as non-blocking.
    return to_v10_send_request(request, blocking_by_default=False)


def _stream(request: v03.SendMessageRequest) -> types.SendMessageRequest:
    # A stream returns at once whatever "blocking" says: nothing to set.
    return to_v10_send_request(request, blocking_by_default=True)


V03_ROUTES: Mapping[str, V03Route] = {
    "SendMessage": V03Route("SendMessage", _send, to_v03_send_response),
    "SendStreamingMessage": V03Route("SendStreamingMessage", _stream, to_v03_stream_response),
    "GetTask": V03Route("GetTask", to_v10_get_task_request, to_v03_task),
    "CancelTask": V03Route("CancelTask", to_v10_cancel_task_request, to_v03_task),
    "TaskSubscription": V03Route("SubscribeToTask", to_v10_subscribe_request, to_v03_stream_response),
    "CreateTaskPushNotificationConfig": V03Route(
        "CreateTaskPushNotificationConfig", to_v10_create_push_config_request, to_v03_task_push_config
    ),
    "GetTaskPushNotificationConfig": V03Route(
        "GetTaskPushNotificationConfig", to_v10_get_push_config_request, to_v03_task_push_config
    ),
    "ListTaskPushNotificationConfig": V03Route(
        "ListTaskPushNotificationConfigs", to_v10_list_push_configs_request, to_v03_list_push_configs_response
    ),
    "DeleteTaskPushNotificationConfig": V03Route(
        "DeleteTaskPushNotificationConfig", to_v10_delete_push_config_request, _empty
    ),
}
"""Every v0.3 RPC but ``GetAgentCard`` (see :meth:`V03GrpcFront.get_agent_card`)."""


def v03_call_context(context: CallContext) -> CallContext:
    """The core's context of a call that arrived on the v0.3 service: version "1.0", wire version
    "0.3", and the legacy ``x-a2a-extensions`` header (v0.3 clients send it) joined to the
    extensions. A caller that names a version other than 0.x is refused: VersionNotSupportedError."""
    sent = context.version
    if sent and not is_v03_version(sent):
        raise errors.VersionNotSupportedError(
            f"A2A version {errors.echo(sent)} is not served on the v0.3 service a2a.v1.A2AService; "
            f"A2A {SUPPORTED_VERSIONS[-1]} is served on lf.a2a.v1.A2AService at the same address",
            metadata={"supported_versions": V03_VERSION},
        )
    legacy = parse_extensions(context.headers.get("x-a2a-extensions"))
    return dataclasses.replace(
        context,
        version=SUPPORTED_VERSIONS[-1],
        wire_version=V03_VERSION,
        extensions=context.extensions | legacy,
    )


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    await abort(context, exc, to_status=to_grpc_status_v03)


class V03GrpcFront:
    """The v0.3 service in front of ``service`` (the seam the v1.0 front calls). ``cards`` is the
    card service's seam (``a2a_grpc.server.card_service``: the public card); ``extended``: whether
    the server authenticates callers, so that an extended card may be asked of the seam."""

    def __init__(
        self, service: Service, cards: Service, context_of: ContextOf, *, extended: bool = False
    ) -> None:
        self.service = service
        self.cards = cards
        self.context_of = context_of
        self.extended = extended

    def _context(self, context: grpc.aio.ServicerContext, request: Message) -> CallContext:
        return v03_call_context(self.context_of(context, request))

    async def get_agent_card(self, call: CallContext) -> v03.AgentCard:
        """The served card in its v0.3 form: the extended one when the server authenticates callers,
        its card declares one and this caller passes; else the public card."""
        answer = await self.cards.unary("GetAgentCard")(GetAgentCardRequest(), call)
        assert isinstance(answer, GetAgentCardResponse)
        public = answer.card
        if self.extended and public.capabilities.extended_agent_card:
            extended = self.service.unary("GetExtendedAgentCard")
            with contextlib.suppress(errors.UnauthenticatedError):  # not authenticated: the public card
                card = await extended(types.GetExtendedAgentCardRequest(), call)
                assert isinstance(card, types.AgentCard)
                return to_v03_agent_card(card)
        return to_v03_agent_card(public)

    def _unary(self, name: str, check: Callable[[object], None]) -> Callable[..., Awaitable[Message]]:
        route = V03_ROUTES.get(name)

        async def rpc(request: Any, context: grpc.aio.ServicerContext) -> Message:
            try:
                check(request)
                call = self._context(context, request)
                if route is None:  # GetAgentCard
                    return await self.get_agent_card(call)
                return route.down(await self.service.unary(route.core)(route.up(request), call))
            except Exception as exc:
                await _abort(context, exc)

        return rpc

    def _stream(self, name: str, check: Callable[[object], None]) -> Callable[..., Awaitable[None]]:
        route = V03_ROUTES[name]
        down = route.down

        async def rpc(request: Any, context: grpc.aio.ServicerContext) -> None:
            try:
                check(request)
                call = self._context(context, request)
                # aclosing: a client that leaves closes the event stream (every link of the chain) at once.
                async with contextlib.aclosing(
                    self.service.stream(route.core)(route.up(request), call)
                ) as events:
                    async for event in events:
                        await context.write(down(event))
            except Exception as exc:
                await _abort(context, exc)

        return rpc

    def handler(
        self,
        decoder: Decoder,
        check: Callable[[object], None],
        serializer: Callable[[Callable[[Any], bytes]], Callable[[Any], bytes]] = lambda s: s,
    ) -> grpc.GenericRpcHandler:
        """``a2a.v1.A2AService``: ``decoder(cls)`` deserializes a request class (bytes that do not
        decode reach ``check``, which raises their error); ``serializer`` wraps each answer's
        serializer (byte counting)."""
        handlers: dict[str, grpc.RpcMethodHandler] = {}
        for name, method in V03_METHODS.items():
            deserialize = decoder(method.request)
            serialize = serializer(method.response.SerializeToString)
            if method.streaming:
                handlers[name] = grpc.unary_stream_rpc_method_handler(
                    self._stream(name, check), request_deserializer=deserialize, response_serializer=serialize
                )
            else:
                handlers[name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(name, check), request_deserializer=deserialize, response_serializer=serialize
                )
        return grpc.method_handlers_generic_handler(v03.A2A_SERVICE.full_name, handlers)
