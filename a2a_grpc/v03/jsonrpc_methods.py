"""The v0.3 JSON-RPC methods: their ``params`` and ``result`` <-> our v1.0 requests and responses.

:func:`method_table` maps each v0.3 method name (``message/send`` ...) to a :class:`V03Method`:
the v1.0 method it becomes (:data:`a2a_grpc.service.METHODS`), and the four translations a front
and a client need: ``decode_params`` (v0.3 params -> v1.0 request, server side),
``encode_result`` (v1.0 response -> v0.3 result, server side; for a streaming method, one event),
``encode_params`` (v1.0 request -> v0.3 params, client side) and ``decode_result`` (v0.3 result
-> v1.0 response, client side). The card is not produced here: ``agent/getAuthenticatedExtendedCard``
calls the ``encode_card`` / ``decode_card`` hooks given to :func:`method_table`.

A front checks the parsed JSON against its limits first (``security.shape.check_json`` with the v1.0
``SendMessageRequest``: v0.3 ``message.parts[i].data``/``metadata`` have the same member names).

Decisions (docs/versions.md): ``historyLength`` 0 from v0.3 is unset (v0.3 says "all"), and a v1.0
``history_length`` of 0 cannot be said to a v0.3 agent (it is left out: the caller trims);
``blocking`` absent is blocking; a push config without id takes the task id (on ``set``; in a
``message/send`` configuration, when the message names its task); ``tasks/pushNotificationConfig/get``
without a config id asks for the config whose id is the task id. Lost: the ``metadata`` of
``tasks/get``/``tasks/resubscribe``/push-config params (v1.0 has no place for it), ``tenant``,
the paging of the push-config list (v0.3 answers an array: a front answers every config, or
says ``next_page_token`` was dropped), and the paging asked of a v0.3 agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import empty_pb2
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.v03._members import ANSWERS, STRICT, Reader, at, free_json, index
from a2a_grpc.v03.jsonrpc_events import (
    send_result_from_v03,
    send_result_to_v03,
    stream_event_from_v03,
    stream_event_to_v03,
)
from a2a_grpc.v03.jsonrpc_shapes import (
    message_from_v03,
    message_to_v03,
    push_config_from_v03,
    push_config_to_v03,
    task_from_v03,
    task_to_v03,
)

__all__ = [
    "CardDecoder",
    "CardEncoder",
    "V03Method",
    "method_table",
    "send_params_from_v03",
    "send_params_to_v03",
    "task_push_config_from_v03",
    "task_push_config_to_v03",
]

CardEncoder = Callable[[types.AgentCard], Any]
"""v1.0 card -> the v0.3 card JSON (``a2a_grpc.v03.card``)."""
CardDecoder = Callable[[Any], types.AgentCard]
"""v0.3 card JSON -> v1.0 card."""

_ASK = errors.InvalidParamsError  # what our own request cannot say in v0.3


def _params(params: object, read: Reader = STRICT) -> Mapping[str, Any]:
    return read.obj(params, "")


def _history(o: Mapping[str, Any], path: str, read: Reader) -> int | None:
    length = read.int32(o, "historyLength", path)
    return length or None  # 0 is "all" in v0.3: unset in v1.0


# -- message/send, message/stream ---------------------------------------------------------------


def send_params_from_v03(params: object, read: Reader = STRICT) -> types.SendMessageRequest:
    """MessageSendParams as a v1.0 ``SendMessageRequest``."""
    o = _params(params, read)
    if o.get("message") is None:
        raise read.missing("message")
    request = types.SendMessageRequest(message=message_from_v03(o["message"], "message", read))
    if o.get("configuration") is not None:
        c = read.obj(o["configuration"], "configuration")
        config = request.configuration
        config.accepted_output_modes.extend(read.strings(c, "acceptedOutputModes", "configuration"))
        config.return_immediately = read.boolean(c, "blocking", "configuration") is False
        if (length := _history(c, "configuration", read)) is not None:
            config.history_length = length
        if c.get("pushNotificationConfig") is not None:
            where = at("configuration", "pushNotificationConfig")
            push = push_config_from_v03(
                c["pushNotificationConfig"], where, read, task_id=request.message.task_id
            )
            config.task_push_notification_config.CopyFrom(push)
    read.struct(o, "metadata", "", request.metadata)
    return request


def send_params_to_v03(request: types.SendMessageRequest) -> dict[str, Any]:
    """A v1.0 ``SendMessageRequest`` as MessageSendParams (a client calling a v0.3 agent)."""
    if request.message.role == types.Role.ROLE_UNSPECIFIED:
        raise _ASK(
            "message.role is required",
            field_violations=[errors.FieldViolation("message.role", "is required")],
        )
    out: dict[str, Any] = {"message": message_to_v03(request.message, "message", _ASK)}
    if request.HasField("configuration"):
        c = request.configuration
        config: dict[str, Any] = {"blocking": not c.return_immediately}
        if c.accepted_output_modes:
            config["acceptedOutputModes"] = list(c.accepted_output_modes)
        if c.HasField("history_length") and c.history_length > 0:
            config["historyLength"] = c.history_length
        if c.HasField("task_push_notification_config"):
            config["pushNotificationConfig"] = push_config_to_v03(c.task_push_notification_config)
        out["configuration"] = config
    if request.HasField("metadata"):
        out["metadata"] = free_json(request.metadata)
    return out


# -- tasks/* ------------------------------------------------------------------------------------


def _task_id(o: Mapping[str, Any], read: Reader) -> str:
    return read.string(o, "id", "", required=True)


def _get_task_from(params: object) -> types.GetTaskRequest:
    o = _params(params)
    request = types.GetTaskRequest(id=_task_id(o, STRICT))
    if (length := _history(o, "", STRICT)) is not None:
        request.history_length = length
    _check_metadata(o)
    return request


def _get_task_to(request: types.GetTaskRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"id": request.id}
    if request.HasField("history_length") and request.history_length > 0:
        out["historyLength"] = request.history_length
    return out


def _check_metadata(o: Mapping[str, Any]) -> None:
    """Checks the ``metadata`` of params v1.0 has no place for (it must still be an object)."""
    if o.get("metadata") is not None:
        STRICT.free(o["metadata"], "metadata", types.Struct())


def _cancel_from(params: object) -> types.CancelTaskRequest:
    o = _params(params)
    request = types.CancelTaskRequest(id=_task_id(o, STRICT))
    STRICT.struct(o, "metadata", "", request.metadata)
    return request


def _cancel_to(request: types.CancelTaskRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"id": request.id}
    if request.HasField("metadata"):
        out["metadata"] = free_json(request.metadata)
    return out


def _subscribe_from(params: object) -> types.SubscribeToTaskRequest:
    o = _params(params)
    request = types.SubscribeToTaskRequest(id=_task_id(o, STRICT))
    _check_metadata(o)
    return request


# -- tasks/pushNotificationConfig/* -------------------------------------------------------------


def task_push_config_from_v03(
    value: object, path: str = "", read: Reader = STRICT
) -> types.TaskPushNotificationConfig:
    """A v0.3 TaskPushNotificationConfig (``taskId``, ``pushNotificationConfig``) as the v1.0 one."""
    o = read.obj(value, path)
    task_id = read.string(o, "taskId", path, required=True)
    if o.get("pushNotificationConfig") is None:
        raise read.missing(at(path, "pushNotificationConfig"))
    return push_config_from_v03(
        o["pushNotificationConfig"], at(path, "pushNotificationConfig"), read, task_id=task_id
    )


def task_push_config_to_v03(config: types.TaskPushNotificationConfig) -> dict[str, Any]:
    """A v1.0 ``TaskPushNotificationConfig`` as the v0.3 one (its tenant is lost)."""
    return {"taskId": config.task_id, "pushNotificationConfig": push_config_to_v03(config)}


def _push_get_from(params: object) -> types.GetTaskPushNotificationConfigRequest:
    o = _params(params)
    task_id = _task_id(o, STRICT)
    config_id = STRICT.string(o, "pushNotificationConfigId", "") or task_id
    _check_metadata(o)
    return types.GetTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)


def _push_delete_from(params: object) -> types.DeleteTaskPushNotificationConfigRequest:
    o = _params(params)
    task_id = _task_id(o, STRICT)
    config_id = STRICT.string(o, "pushNotificationConfigId", "", required=True)
    _check_metadata(o)
    return types.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)


def _push_one_to(request: Any) -> dict[str, Any]:
    return {"id": request.task_id, "pushNotificationConfigId": request.id}


def _push_list_from(params: object) -> types.ListTaskPushNotificationConfigsRequest:
    o = _params(params)
    request = types.ListTaskPushNotificationConfigsRequest(task_id=_task_id(o, STRICT))
    _check_metadata(o)
    return request


def _push_list_result_to(response: types.ListTaskPushNotificationConfigsResponse) -> list[dict[str, Any]]:
    return [task_push_config_to_v03(c) for c in response.configs]


def _push_list_result_from(value: object) -> types.ListTaskPushNotificationConfigsResponse:
    if not isinstance(value, list):
        raise ANSWERS.refuse("result", "must be an array", value)
    response = types.ListTaskPushNotificationConfigsResponse()
    for i, item in enumerate(value):
        response.configs.append(task_push_config_from_v03(item, index("result", i), ANSWERS))
    return response


def _empty_result_from(value: object) -> empty_pb2.Empty:
    if value is not None:
        raise ANSWERS.refuse("result", "must be null", value)
    return empty_pb2.Empty()


# -- agent/getAuthenticatedExtendedCard ---------------------------------------------------------


def _card_params_from(params: object) -> types.GetExtendedAgentCardRequest:
    if params is not None:  # the method takes no params: an object's members are ignored
        _params(params)
    return types.GetExtendedAgentCardRequest()


def _no_card_hook(_: object) -> Any:
    raise errors.InternalError("no v0.3 card translation is configured")


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class V03Method:
    """One v0.3 JSON-RPC method and its v1.0 counterpart."""

    name: str
    """The v0.3 method name: ``message/send``."""
    v10: str
    """The v1.0 method name (a key of ``a2a_grpc.service.METHODS``): ``SendMessage``."""
    streaming: bool
    """Answers with a stream (SSE); ``encode_result``/``decode_result`` then handle one event."""
    decode_params: Callable[[object], Message]
    """v0.3 ``params`` -> v1.0 request (InvalidParamsError naming the member)."""
    encode_result: Callable[[Any], Any]
    """v1.0 response (or one stream event) -> v0.3 ``result`` JSON."""
    encode_params: Callable[[Any], Any]
    """v1.0 request -> v0.3 ``params`` JSON (``None``: the method takes none)."""
    decode_result: Callable[[object], Message]
    """v0.3 ``result`` JSON -> v1.0 response (InvalidAgentResponseError naming the member)."""


def _fixed(value: Any) -> Callable[[Any], Any]:
    return lambda _: value


def method_table(
    *, encode_card: CardEncoder = _no_card_hook, decode_card: CardDecoder = _no_card_hook
) -> Mapping[str, V03Method]:
    """Every v0.3 JSON-RPC method by name. ``encode_card``/``decode_card`` translate the card of
    ``agent/getAuthenticatedExtendedCard`` (without them it answers InternalError)."""
    send_result = _answer(send_result_from_v03)
    stream_result = _answer(stream_event_from_v03)
    task_result = _answer(task_from_v03)
    push_result = _answer(task_push_config_from_v03)
    rows = (
        V03Method(
            "message/send",
            "SendMessage",
            False,
            send_params_from_v03,
            send_result_to_v03,
            send_params_to_v03,
            send_result,
        ),
        V03Method(
            "message/stream",
            "SendStreamingMessage",
            True,
            send_params_from_v03,
            stream_event_to_v03,
            send_params_to_v03,
            stream_result,
        ),
        V03Method("tasks/get", "GetTask", False, _get_task_from, task_to_v03, _get_task_to, task_result),
        V03Method("tasks/cancel", "CancelTask", False, _cancel_from, task_to_v03, _cancel_to, task_result),
        V03Method(
            "tasks/resubscribe",
            "SubscribeToTask",
            True,
            _subscribe_from,
            stream_event_to_v03,
            lambda r: {"id": r.id},
            stream_result,
        ),
        V03Method(
            "tasks/pushNotificationConfig/set",
            "CreateTaskPushNotificationConfig",
            False,
            task_push_config_from_v03,
            task_push_config_to_v03,
            task_push_config_to_v03,
            push_result,
        ),
        V03Method(
            "tasks/pushNotificationConfig/get",
            "GetTaskPushNotificationConfig",
            False,
            _push_get_from,
            task_push_config_to_v03,
            _push_one_to,
            push_result,
        ),
        V03Method(
            "tasks/pushNotificationConfig/list",
            "ListTaskPushNotificationConfigs",
            False,
            _push_list_from,
            _push_list_result_to,
            lambda r: {"id": r.task_id},
            _push_list_result_from,
        ),
        V03Method(
            "tasks/pushNotificationConfig/delete",
            "DeleteTaskPushNotificationConfig",
            False,
            _push_delete_from,
            _fixed(None),
            _push_one_to,
            _empty_result_from,
        ),
        V03Method(
            "agent/getAuthenticatedExtendedCard",
            "GetExtendedAgentCard",
            False,
            _card_params_from,
            encode_card,
            _fixed(None),
            decode_card,
        ),
    )
    return {row.name: row for row in rows}


def _answer(convert: Callable[..., Message]) -> Callable[[object], Message]:
    """``convert`` reading a v0.3 agent's ``result`` (InvalidAgentResponseError, lenient enums)."""
    return lambda value: convert(value, "result", ANSWERS)
