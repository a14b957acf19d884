"""The v0.3 HTTP+JSON binding: the ``a2a.v1`` proto's routes (``/v1/message:send`` ...) over any upstream.

Routes are compiled from the v0.3 proto's ``google.api.http`` rules (:mod:`a2a_grpc.bridge.routes`;
``TaskSubscription`` also by POST, as SDK 1.x's v0.3 client sends it). Bodies and answers are the
ProtoJSON of the ``a2a.v1`` messages, translated to and from v1.0 by :mod:`a2a_grpc.v03.requests`
and :mod:`a2a_grpc.v03.convert`; the call is the one the v1.0 binding makes
(:mod:`a2a_grpc.bridge.v03front`). Streaming routes answer with SSE whose data are bare ProtoJSON
``StreamResponse`` objects. Errors take the v0.3 REST form (:func:`a2a_grpc.v03.errors.to_rest_error_v03`:
the v0.3 SDK's HTTP statuses, a body with ``message``, ``type`` and the v1.0 ``error``), a refused
route or body too.

Choices where the wire is loose (research section 2.1): ``CreateTaskPushNotificationConfig``
takes the whole request (``{"parent", "configId", "config"}``, what the Python SDKs send) or the
bare config (the rule's ``body: "config"``); a ``SendMessage`` without ``configuration`` is
non-blocking (``blocking`` is a plain bool on this wire, as both SDKs read it); the
push-config list answers ``{"configs": [...]}``; ``GET /v1/card`` answers the v0.3 card JSON
(a2a.json's shape, what v0.3 clients validate), not ``a2a.v1`` ProtoJSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from google.protobuf import empty_pb2, message_factory
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.accesslog import METHOD_KEY
from a2a_grpc.bridge.card import CardEndpoint
from a2a_grpc.bridge.exchange import (
    JSON,
    HttpFailure,
    HttpRequest,
    Receive,
    Send,
    challenge_headers,
    check_content_type,
    read_body,
    requested_version,
    respond,
    upstream_call,
)
from a2a_grpc.bridge.query import query_to_json
from a2a_grpc.bridge.rest import match_route
from a2a_grpc.bridge.routes import Route, Router, compile_routes
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.sse import encode_event, serve_stream
from a2a_grpc.bridge.upstream import Upstream
from a2a_grpc.bridge.v03front import check_v03_version, v03_call
from a2a_grpc.errors import FieldViolation
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shape import check_json
from a2a_grpc.service import METHODS
from a2a_grpc.v03 import V03_SERVICE
from a2a_grpc.v03 import convert as c
from a2a_grpc.v03 import requests as r
from a2a_grpc.v03.errors import to_rest_error_v03

__all__ = ["RestV03Binding", "send_rest_error_v03"]

_CONFIGS = "/pushNotificationConfigs"


@dataclass(frozen=True, slots=True)
class _Row:
    upstream: str
    """The v1.0 method called."""
    request: Callable[[Any], Message]
    """The ``a2a.v1`` request -> the v1.0 request."""
    answer: Callable[[Any], Message] | None
    """The v1.0 answer (or event) -> the ``a2a.v1`` message; None: the card (v0.3 card JSON)."""


_ROWS: Mapping[str, _Row] = {
    "SendMessage": _Row(
        "SendMessage", lambda q: r.to_v10_send_request(q, blocking_by_default=False), c.to_v03_send_response
    ),
    "SendStreamingMessage": _Row(
        "SendStreamingMessage",
        lambda q: r.to_v10_send_request(q, blocking_by_default=False),
        c.to_v03_stream_response,
    ),
    "GetTask": _Row("GetTask", r.to_v10_get_task_request, c.to_v03_task),
    "CancelTask": _Row("CancelTask", r.to_v10_cancel_task_request, c.to_v03_task),
    "TaskSubscription": _Row("SubscribeToTask", r.to_v10_subscribe_request, c.to_v03_stream_response),
    "CreateTaskPushNotificationConfig": _Row(
        "CreateTaskPushNotificationConfig", r.to_v10_create_push_config_request, r.to_v03_task_push_config
    ),
    "GetTaskPushNotificationConfig": _Row(
        "GetTaskPushNotificationConfig", r.to_v10_get_push_config_request, r.to_v03_task_push_config
    ),
    "ListTaskPushNotificationConfig": _Row(
        "ListTaskPushNotificationConfigs",
        r.to_v10_list_push_configs_request,
        r.to_v03_list_push_configs_response,
    ),
    "DeleteTaskPushNotificationConfig": _Row(
        "DeleteTaskPushNotificationConfig", r.to_v10_delete_push_config_request, lambda _: empty_pb2.Empty()
    ),
    "GetAgentCard": _Row("GetExtendedAgentCard", r.to_v10_get_agent_card_request, None),
}
"""Each v0.3 RPC: the v1.0 method and the two translations."""


async def send_rest_error_v03(
    send: Send, exc: BaseException, status: int | None = None, headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Answer with ``exc`` in the v0.3 REST form (``status`` overrides: a refused request)."""
    http, body = to_rest_error_v03(exc, status)
    await respond(send, http, transcoding.dumps(body), [*headers, *challenge_headers(exc)], JSON)


def _agent_fault(convert: Callable[[Any], Message], answer: Message) -> Message:
    try:
        return convert(answer)
    except errors.InvalidParamsError as exc:  # the agent's answer, not the caller's request
        raise errors.InvalidAgentResponseError(exc.message, field_violations=exc.field_violations) from None


def _send_view(members: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a v0.3 SendMessageRequest where the limits look for them in a v1.0 one
    (``message.content`` holds the parts)."""
    view: dict[str, Any] = {}
    message = members.get("message", members.get("request"))
    if type(message) is dict:
        inner = {"parts": message.get("content")} if "content" in message else {}
        if "metadata" in message:
            inner["metadata"] = message["metadata"]
        view["message"] = inner
    if "metadata" in members:
        view["metadata"] = members["metadata"]
    return view


class RestV03Binding:
    """Serves the v0.3 HTTP+JSON routes over ``upstream``."""

    def __init__(self, upstream: Upstream, settings: BridgeSettings, card: CardEndpoint) -> None:
        self.upstream = upstream
        self.settings = settings
        self.card = card
        self.limits = settings.limits or Limits()
        self.router = Router(compile_routes(V03_SERVICE))
        missing = {route.method.name for route in self.router.routes} - set(_ROWS)
        assert not missing, f"v0.3 RPCs without a translation: {missing}"

    def _route(self, request: HttpRequest) -> tuple[Route, dict[str, str]]:
        # A v1.0 client that forgot its version lands here: the 404 says what to send.
        return match_route(
            self.router, request, kind="v0.3 ", hint=" (send A2A-Version: 1.0 for the v1.0 routes)"
        )

    async def _members(
        self, route: Route, request: HttpRequest, receive: Receive
    ) -> tuple[dict[str, Any], bool]:
        """The request's JSON members (the body's, or the query's) and whether the body is large."""
        if not route.body:
            query = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
            return query_to_json(route.method, query), False
        body = await read_body(request, receive, self.settings.max_body_bytes)
        check_content_type(request, has_body=bool(body.strip()), preferred=JSON)
        members = await transcoding.parse_body(body, self.settings.offload_bytes) if body.strip() else {}
        if not isinstance(members, dict):
            raise errors.InvalidParamsError("the request body must be a JSON object")
        if route.body != "*" and not {"parent", "config", "configId", "config_id"} & members.keys():
            members = {route.body: members}  # the bare config, as the rule's body says
        upstream = METHODS[_ROWS[route.method.name].upstream].request
        view = _send_view(members) if upstream is types.SendMessageRequest else members
        large = len(body) > self.settings.offload_bytes
        if large:
            await asyncio.to_thread(check_json, members, view, upstream, self.limits)
        else:
            check_json(members, view, upstream, self.limits)
        return members, large

    async def _message(
        self, route: Route, bound: Mapping[str, str], members: dict[str, Any], large: bool
    ) -> Message:
        fields = route.method.input_type.fields_by_name
        for name, value in bound.items():
            json_name = fields[name].json_name
            given = members.get(json_name, members.get(name))
            if name == "parent" and value.endswith(_CONFIGS):  # tasks/{id}/pushNotificationConfigs
                value = value.removesuffix(_CONFIGS)
                if isinstance(given, str):
                    given = given.removesuffix(_CONFIGS)
            if given not in (None, value):
                shown = f"{errors.echo(value)} in the path but {errors.echo(given)} in the request"
                raise errors.InvalidParamsError(
                    f"{json_name} is {shown}",
                    field_violations=[FieldViolation(json_name, "differs from the path")],
                )
            members.pop(name, None)
            members[json_name] = value
        cls = message_factory.GetMessageClass(route.method.input_type)
        return await transcoding.decode_body(members, cls, in_thread=large)

    async def serve(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        """Answer a v0.3 HTTP+JSON request, errors included, in the v0.3 form."""
        try:
            route, bound = self._route(request)
            row = _ROWS[route.method.name]
            request.scope[METHOD_KEY] = route.method.name  # for the access log
            check_v03_version(requested_version(request))
            members, large = await self._members(route, request, receive)
            legacy = await self._message(route, bound, members, large)
            message = row.request(legacy)
            call = v03_call(request, upstream_call(request, self.settings))
        except HttpFailure as failure:
            await send_rest_error_v03(send, failure.error, failure.status, failure.headers)
            return
        except errors.A2AError as exc:
            await send_rest_error_v03(send, exc)
            return
        convert = row.answer
        if route.streaming:
            assert convert is not None

            def encode(event: Message) -> bytes:
                legacy = _agent_fault(convert, event)
                answer = transcoding.encode(legacy, fault=errors.InvalidAgentResponseError)
                return encode_event(transcoding.dumps(answer))

            def encode_error(exc: BaseException) -> bytes:
                return encode_event(transcoding.dumps(to_rest_error_v03(exc)[1]), "error")

            async def refuse(exc: BaseException) -> None:
                await send_rest_error_v03(send, exc)

            events = self.upstream.stream(row.upstream, message, call)
            await serve_stream(
                events, receive, send, self.settings, encode=encode, encode_error=encode_error, refuse=refuse
            )
            return
        try:
            result = await self.upstream.unary(row.upstream, message, call)
            if convert is None:
                assert isinstance(result, types.AgentCard)
                answer: Any = self.card.v03_json(result)
            else:
                answer = await transcoding.encode_answer(
                    _agent_fault(convert, result),
                    self.settings.offload_bytes,
                    fault=errors.InvalidAgentResponseError,
                )
        except Exception as exc:
            await send_rest_error_v03(send, exc)
            return
        await respond(send, 200, transcoding.dumps(answer), media=JSON)
