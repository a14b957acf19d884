"""Calls going out to agents that speak A2A v0.3 over its JSON bindings: the reverse bridge's
upstreams for a card whose JSON-RPC or HTTP+JSON interface is 0.x (research section 2).

:class:`JsonRpc03Upstream` and :class:`Rest03Upstream` take the same v1.0 requests as their v1.0
siblings in :mod:`a2a_grpc.bridge.outbound` (whose HTTP client, deadlines, size bounds, SSE reader
and tracing they reuse) and answer v1.0 messages, translating on the way:

* JSON-RPC: the v0.3 method names (``message/send`` ...), ``params`` and ``result`` through
  :func:`a2a_grpc.v03.jsonrpc_methods.method_table`, streams as SSE of JSON-RPC responses, errors
  through :func:`a2a_grpc.v03.errors.from_jsonrpc_error_v03`.
* HTTP+JSON: the ``/v1/...`` routes under the interface URL, bodies the ProtoJSON of the ``a2a.v1``
  messages (:mod:`a2a_grpc.v03.requests`, :mod:`a2a_grpc.v03.convert`), errors through
  :func:`a2a_grpc.v03.errors.from_rest_error_v03`. A push config is created with the whole
  ``CreateTaskPushNotificationConfigRequest`` as body (what both Python SDKs send and read); the
  config list is read as a JSON array (the v0.3 text) or ``{"configs": [...]}`` (SDK 1.x).
* Headers: ``A2A-Version: 0.3`` whatever the caller named, and ``A2A-Extensions`` mirrored as
  ``X-A2A-Extensions`` (v0.3's name).
* ListTasks has no v0.3 counterpart: :class:`UnsupportedOperationError` without a call. What the
  agent answers that does not translate is :class:`InvalidAgentResponseError` naming the member.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

import httpx
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream, _status_of
from a2a_grpc.bridge.upstream import Call
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.card import V03_VERSION, parse_card_json
from a2a_grpc.v03.convert import to_v10_send_response, to_v10_stream_response, to_v10_task
from a2a_grpc.v03.errors import from_jsonrpc_error_v03, from_rest_error_v03
from a2a_grpc.v03.grpc_client import keep_history_as_asked
from a2a_grpc.v03.jsonrpc_methods import V03Method, method_table
from a2a_grpc.v03.requests import (
    task_name,
    to_v03_create_push_config_request,
    to_v03_get_task_request,
    to_v03_send_request,
    to_v10_task_push_config,
)

__all__ = ["JsonRpc03Upstream", "Rest03Upstream", "v03_headers"]


def v03_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's forwarded headers as a v0.3 agent reads them: ``a2a-version`` 0.3, and the
    extensions under both ``a2a-extensions`` and ``x-a2a-extensions``."""
    out = {k: v for k, v in headers.items() if k not in ("a2a-version", "x-a2a-extensions")}
    out["a2a-version"] = V03_VERSION
    if "a2a-extensions" in out:
        out["x-a2a-extensions"] = out["a2a-extensions"]
    return out


def _v03_call(call: Call) -> Call:
    return dataclasses.replace(call, headers=v03_headers(call.headers))


def _no_list_tasks(method: str) -> NoReturn:
    raise errors.UnsupportedOperationError(
        f"{method}: A2A v0.3 has no such operation, and this agent speaks only v0.3"
    )


def _translated(
    upstream: JsonRpc03Upstream | Rest03Upstream,
    method: str,
    what: str,
    convert: Callable[[object], Message],
    value: object,
) -> Message:
    """``convert(value)`` of an answer; what does not translate is the agent's fault, named."""
    try:
        return convert(value)
    except (errors.InvalidAgentResponseError, errors.InvalidParamsError) as exc:
        raise upstream._invalid(
            method, f"sent {what} that has no v1.0 form: {exc.message}", exc.metadata or None
        ) from None


# --- JSON-RPC ------------------------------------------------------------------------------------


@cache
def _methods() -> dict[str, V03Method]:
    return {row.v10: row for row in method_table(decode_card=parse_card_json).values()}


class JsonRpc03Upstream(JsonRpcUpstream):
    """An A2A v0.3 agent over JSON-RPC 2.0: every call is a POST of a v0.3 method to :attr:`url`."""

    protocol_version = V03_VERSION
    rpc_error = staticmethod(from_jsonrpc_error_v03)
    http_error = staticmethod(from_rest_error_v03)

    def _envelope03(self, method: str, request: Message) -> tuple[int, V03Method, dict[str, Any]]:
        row = _methods().get(method)
        if row is None:
            _no_list_tasks(method)
        rpc_id = next(self._ids)
        envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id, "method": row.name}
        params = row.encode_params(request)
        if params is not None:
            envelope["params"] = params
        return rpc_id, row, envelope

    def _result(self, method: str, rpc_id: int, reply: object) -> object:
        if (
            isinstance(reply, Mapping)
            and "result" not in reply
            and reply.get("error") is None
            and type(reply.get("id")) is int
            and reply.get("id") == rpc_id
        ):
            return None  # the 0.3 SDK leaves a null result out (tasks/pushNotificationConfig/delete)
        return super()._result(method, rpc_id, reply)

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        rpc_id, row, envelope = self._envelope03(method, request)
        response, content = await self._send(method, _v03_call(call), "POST", self.url, envelope)
        if not response.is_success:
            self._refuse(method, response, content)
        result = self._result(method, rpc_id, self._json(method, content, "a response"))
        answer = _translated(self, method, "a result", row.decode_result, result)
        return keep_history_as_asked(request, answer)

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        rpc_id, row, envelope = self._envelope03(method, request)
        events = self._events(method, _v03_call(call), "POST", self.url, envelope)
        async with contextlib.aclosing(events):
            async for event in events:
                result = self._result(method, rpc_id, self._json(method, event.data, "an event"))
                if event.event == "error":
                    raise self._invalid(method, "sent an error event without a JSON-RPC error")
                yield _translated(self, method, "an event", row.decode_result, result)


# --- HTTP+JSON -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    verb: str
    path: str
    body: object
    read: Callable[[object], Message]
    """The answer's JSON (None when the body is empty) -> the v1.0 answer."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _as(cls: type[Message], convert: Callable[[Any], Message]) -> Callable[[object], Message]:
    return lambda data: convert(transcoding.decode(data, cls, lenient=True))


def _push_configs(data: object) -> Message:
    items = data.get("configs", []) if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise errors.InvalidAgentResponseError("the config list must be an array or {configs: [...]}")
    out = types.ListTaskPushNotificationConfigsResponse()
    for i, item in enumerate(items):
        config = transcoding.decode(item, v03.TaskPushNotificationConfig, where=f"[{i}]", lenient=True)
        out.configs.append(to_v10_task_push_config(config, f"[{i}].name"))
    return out


def _empty(data: object) -> Message:
    if data not in (None, {}):
        raise errors.InvalidAgentResponseError("a deleted config's answer must be empty")
    return empty_pb2.Empty()


def _card(data: object) -> Message:
    return parse_card_json(data)


def _rest_route(method: str, request: Any) -> _Route:
    """Where a v1.0 request goes on the v0.3 REST routes, with what body, and how its answer reads."""
    if method in ("SendMessage", "SendStreamingMessage"):
        body = transcoding.encode(to_v03_send_request(request))
        if method == "SendMessage":
            return _Route(
                "POST", "/v1/message:send", body, _as(v03.SendMessageResponse, to_v10_send_response)
            )
        return _Route("POST", "/v1/message:stream", body, _as(v03.StreamResponse, to_v10_stream_response))
    if method == "ListTasks":
        _no_list_tasks(method)
    if method == "GetExtendedAgentCard":
        return _Route("GET", "/v1/card", None, _card)
    field = "task_id" if hasattr(request, "task_id") else "id"
    task_id = getattr(request, field)
    task_name(task_id, field)  # refused here if v0.3 cannot name it
    task = f"/v1/tasks/{_segment(task_id)}"
    read_task = _as(v03.Task, to_v10_task)
    if method == "GetTask":
        length = to_v03_get_task_request(request).history_length
        query = f"?{urlencode({'historyLength': length})}" if length else ""
        return _Route("GET", task + query, None, read_task)
    if method == "CancelTask":
        return _Route("POST", f"{task}:cancel", {"name": f"tasks/{task_id}"}, read_task)
    if method == "SubscribeToTask":
        return _Route("GET", f"{task}:subscribe", None, _as(v03.StreamResponse, to_v10_stream_response))
    configs = f"{task}/pushNotificationConfigs"
    read_config = _as(v03.TaskPushNotificationConfig, to_v10_task_push_config)
    if method == "CreateTaskPushNotificationConfig":
        body = transcoding.encode(to_v03_create_push_config_request(request))
        return _Route("POST", configs, body, read_config)
    if method == "ListTaskPushNotificationConfigs":
        return _Route("GET", configs, None, _push_configs)
    config_id = request.id or task_id  # v0.3: a config without id is the task's
    task_name(config_id, "id")
    one = f"{configs}/{_segment(config_id)}"
    if method == "GetTaskPushNotificationConfig":
        return _Route("GET", one, None, read_config)
    if method == "DeleteTaskPushNotificationConfig":
        return _Route("DELETE", one, None, _empty)
    raise errors.MethodNotFoundError(f"{errors.echo(method)} is not an A2A operation")


class Rest03Upstream(RestUpstream):
    """An A2A v0.3 agent over HTTP+JSON: the ``/v1/...`` routes under :attr:`url`, ProtoJSON of ``a2a.v1``.

    Bodies go out as ``application/json`` (what v0.3 servers read)."""

    protocol_version = V03_VERSION
    media = "application/json"
    answers = "application/json"

    def _url(self, route: _Route) -> str:
        return self.url.rstrip("/") + route.path

    async def unary(self, method: str, request: Message, call: Call) -> Message:
        route = _rest_route(method, request)
        response, content = await self._send(
            method, _v03_call(call), route.verb, self._url(route), route.body
        )
        if not response.is_success:
            self._refuse(method, response, content)
        data = self._json(method, content, "a response") if content else None
        return keep_history_as_asked(request, _translated(self, method, "a response", route.read, data))

    async def stream(self, method: str, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        route = _rest_route(method, request)
        events = self._events(method, _v03_call(call), route.verb, self._url(route), route.body)
        async with contextlib.aclosing(events):
            async for event in events:
                data = self._json(method, event.data, "an event")
                if event.event == "error":
                    raise self._named(from_rest_error_v03(_status_of(data), data))
                yield _translated(self, method, "an event", route.read, data)

    def _refuse(self, method: str, response: httpx.Response, content: bytes) -> NoReturn:
        if response.status_code == 405:  # the route exists, not for this verb: the 0.3 SDK has no DELETE
            raise errors.UnsupportedOperationError(
                f"{method}: upstream agent at {self.url} does not serve it (HTTP 405)"
            )
        if not response.is_success:
            raise self._named(from_rest_error_v03(response.status_code, self._body(content)))
        raise self._invalid(method, "answered a stream that is not text/event-stream")
