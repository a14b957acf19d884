"""A2A v0.3 (``a2a.v1``) <-> v1.0 (``lf.a2a.v1``) requests, push notification configs, resource names.

Same conventions as :mod:`a2a_grpc.v03.convert`: ``to_v10_*`` / ``to_v03_*``, hostile input refused
with :class:`a2a_grpc.errors.InvalidParamsError` naming the field. v0.3 names tasks and configs by
resource name (``tasks/{id}``, ``tasks/{id}/pushNotificationConfigs/{config id}``): a name that
does not parse, or an id v0.3 cannot put in a name (empty, or holding ``/``), is refused.

Losses (docs/versions.md): every ``tenant``; ``CancelTaskRequest.metadata``; ``history_length = 0``
(v1.0 "no history" is v0.3 "all": sent unset; the caller trims); ``authentication.schemes`` beyond
the first. A push config without id takes the task id, as both official SDKs do.
"""

from __future__ import annotations

import re

from a2a_grpc import errors, types
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.convert import _invalid, to_v03_message, to_v10_message

__all__ = [
    "parse_push_config_name",
    "parse_task_name",
    "push_config_name",
    "task_name",
    "to_v03_cancel_task_request",
    "to_v03_create_push_config_request",
    "to_v03_delete_push_config_request",
    "to_v03_get_agent_card_request",
    "to_v03_get_push_config_request",
    "to_v03_get_task_request",
    "to_v03_list_push_configs_request",
    "to_v03_list_push_configs_response",
    "to_v03_push_notification_config",
    "to_v03_send_configuration",
    "to_v03_send_request",
    "to_v03_subscribe_request",
    "to_v03_task_push_config",
    "to_v10_cancel_task_request",
    "to_v10_create_push_config_request",
    "to_v10_delete_push_config_request",
    "to_v10_get_agent_card_request",
    "to_v10_get_push_config_request",
    "to_v10_get_task_request",
    "to_v10_list_push_configs_request",
    "to_v10_list_push_configs_response",
    "to_v10_push_notification_config",
    "to_v10_send_configuration",
    "to_v10_send_request",
    "to_v10_subscribe_request",
    "to_v10_task_push_config",
]

_TASK_NAME = re.compile(r"tasks/([^/]+)")
_PUSH_NAME = re.compile(r"tasks/([^/]+)/pushNotificationConfigs/([^/]+)")


# --- resource names ------------------------------------------------------------------------------


def task_name(task_id: str, field: str = "id") -> str:
    """``tasks/{id}``; an id v0.3 cannot name (empty, or holding ``/``) is refused."""
    if not task_id or "/" in task_id:
        raise _invalid(field, "a v0.3 task name needs a non-empty id without '/'")
    return f"tasks/{task_id}"


def push_config_name(task_id: str, config_id: str, field: str = "id") -> str:
    """``tasks/{id}/pushNotificationConfigs/{config id}`` (no config id: the task id)."""
    config_id = config_id or task_id
    if "/" in config_id:
        raise _invalid(field, "a v0.3 push config name needs an id without '/'")
    return f"{task_name(task_id, 'task_id')}/pushNotificationConfigs/{config_id}"


def parse_task_name(name: str, field: str = "name") -> str:
    """The task id of ``tasks/{id}``."""
    match = _TASK_NAME.fullmatch(name)
    if match is None:
        raise _invalid(field, f"must be tasks/{{id}}, not {errors.echo(name)}")
    return match.group(1)


def parse_push_config_name(name: str, field: str = "name") -> tuple[str, str]:
    """The task id and config id of ``tasks/{id}/pushNotificationConfigs/{config id}``."""
    match = _PUSH_NAME.fullmatch(name)
    if match is None:
        raise _invalid(field, f"must be tasks/{{id}}/pushNotificationConfigs/{{id}}, not {errors.echo(name)}")
    return match.group(1), match.group(2)


# --- push notification configs -------------------------------------------------------------------


def to_v10_push_notification_config(
    config: v03.PushNotificationConfig, task_id: str = ""
) -> types.TaskPushNotificationConfig:
    """The v1.0 config of a v0.3 ``PushNotificationConfig`` of task ``task_id``; no id -> the task id.

    Keeps the first of ``authentication.schemes`` only (v1.0 has one ``scheme``)."""
    out = types.TaskPushNotificationConfig(
        id=config.id or task_id, task_id=task_id, url=config.url, token=config.token
    )
    if config.HasField("authentication"):
        auth = config.authentication
        out.authentication.scheme = auth.schemes[0] if auth.schemes else ""
        out.authentication.credentials = auth.credentials
    return out


def to_v03_push_notification_config(config: types.TaskPushNotificationConfig) -> v03.PushNotificationConfig:
    """Without ``task_id`` and ``tenant`` (v0.3 names the task beside the config)."""
    out = v03.PushNotificationConfig(id=config.id or config.task_id, url=config.url, token=config.token)
    if config.HasField("authentication"):
        auth = config.authentication
        out.authentication.schemes.extend([auth.scheme] if auth.scheme else [])
        out.authentication.credentials = auth.credentials
    return out


def to_v10_task_push_config(
    config: v03.TaskPushNotificationConfig, field: str = "name"
) -> types.TaskPushNotificationConfig:
    """``name`` is ``tasks/{id}/pushNotificationConfigs/{config id}`` or ``tasks/{id}``; the config's
    own ``id`` wins over the name's, and with neither the id is the task id."""
    if _TASK_NAME.fullmatch(config.name):
        task_id, name_id = parse_task_name(config.name, field), ""
    else:
        task_id, name_id = parse_push_config_name(config.name, field)
    inner = v03.PushNotificationConfig()
    inner.CopyFrom(config.push_notification_config)
    inner.id = inner.id or name_id
    return to_v10_push_notification_config(inner, task_id)


def to_v03_task_push_config(config: types.TaskPushNotificationConfig) -> v03.TaskPushNotificationConfig:
    out = v03.TaskPushNotificationConfig(name=push_config_name(config.task_id, config.id, "id"))
    out.push_notification_config.CopyFrom(to_v03_push_notification_config(config))
    return out


def to_v10_create_push_config_request(
    request: v03.CreateTaskPushNotificationConfigRequest,
) -> types.TaskPushNotificationConfig:
    """The task comes from ``parent``; the id from ``config_id``, else the config's, else its name's,
    else the task id."""
    task_id = parse_task_name(request.parent, "parent")
    inner = v03.PushNotificationConfig()
    inner.CopyFrom(request.config.push_notification_config)
    name_id = ""
    if request.config.name and not _TASK_NAME.fullmatch(request.config.name):
        name_id = parse_push_config_name(request.config.name, "config.name")[1]
    inner.id = request.config_id or inner.id or name_id
    return to_v10_push_notification_config(inner, task_id)


def to_v03_create_push_config_request(
    config: types.TaskPushNotificationConfig,
) -> v03.CreateTaskPushNotificationConfigRequest:
    out = v03.CreateTaskPushNotificationConfigRequest(
        parent=task_name(config.task_id, "task_id"), config_id=config.id or config.task_id
    )
    out.config.CopyFrom(to_v03_task_push_config(config))
    return out


def to_v10_get_push_config_request(
    request: v03.GetTaskPushNotificationConfigRequest,
) -> types.GetTaskPushNotificationConfigRequest:
    task_id, config_id = parse_push_config_name(request.name)
    return types.GetTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)


def to_v03_get_push_config_request(
    request: types.GetTaskPushNotificationConfigRequest,
) -> v03.GetTaskPushNotificationConfigRequest:
    return v03.GetTaskPushNotificationConfigRequest(name=push_config_name(request.task_id, request.id))


def to_v10_delete_push_config_request(
    request: v03.DeleteTaskPushNotificationConfigRequest,
) -> types.DeleteTaskPushNotificationConfigRequest:
    task_id, config_id = parse_push_config_name(request.name)
    return types.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=config_id)


def to_v03_delete_push_config_request(
    request: types.DeleteTaskPushNotificationConfigRequest,
) -> v03.DeleteTaskPushNotificationConfigRequest:
    return v03.DeleteTaskPushNotificationConfigRequest(name=push_config_name(request.task_id, request.id))


def to_v10_list_push_configs_request(
    request: v03.ListTaskPushNotificationConfigRequest,
) -> types.ListTaskPushNotificationConfigsRequest:
    return types.ListTaskPushNotificationConfigsRequest(
        task_id=parse_task_name(request.parent, "parent"),
        page_size=request.page_size,
        page_token=request.page_token,
    )


def to_v03_list_push_configs_request(
    request: types.ListTaskPushNotificationConfigsRequest,
) -> v03.ListTaskPushNotificationConfigRequest:
    return v03.ListTaskPushNotificationConfigRequest(
        parent=task_name(request.task_id, "task_id"),
        page_size=request.page_size,
        page_token=request.page_token,
    )


def to_v10_list_push_configs_response(
    response: v03.ListTaskPushNotificationConfigResponse,
) -> types.ListTaskPushNotificationConfigsResponse:
    out = types.ListTaskPushNotificationConfigsResponse(next_page_token=response.next_page_token)
    out.configs.extend(
        to_v10_task_push_config(c, f"configs[{i}].name") for i, c in enumerate(response.configs)
    )
    return out


def to_v03_list_push_configs_response(
    response: types.ListTaskPushNotificationConfigsResponse,
) -> v03.ListTaskPushNotificationConfigResponse:
    out = v03.ListTaskPushNotificationConfigResponse(next_page_token=response.next_page_token)
    out.configs.extend(to_v03_task_push_config(c) for c in response.configs)
    return out


# --- requests ------------------------------------------------------------------------------------


def to_v10_send_configuration(config: v03.SendMessageConfiguration) -> types.SendMessageConfiguration:
    out = types.SendMessageConfiguration(
        accepted_output_modes=config.accepted_output_modes, return_immediately=not config.blocking
    )
    if config.HasField("push_notification"):
        out.task_push_notification_config.CopyFrom(to_v10_push_notification_config(config.push_notification))
    if config.history_length:  # 0 means "all" in v0.3: unset
        out.history_length = config.history_length
    return out


def to_v03_send_configuration(config: types.SendMessageConfiguration) -> v03.SendMessageConfiguration:
    """``history_length = 0`` ("no history") cannot be said in v0.3 (0 is "all"): sent unset."""
    out = v03.SendMessageConfiguration(
        accepted_output_modes=config.accepted_output_modes, blocking=not config.return_immediately
    )
    if config.HasField("task_push_notification_config"):
        out.push_notification.CopyFrom(to_v03_push_notification_config(config.task_push_notification_config))
    if config.HasField("history_length") and config.history_length > 0:
        out.history_length = config.history_length
    return out


def to_v10_send_request(
    request: v03.SendMessageRequest, *, blocking_by_default: bool
) -> types.SendMessageRequest:
    """``blocking_by_default`` is what a request without ``configuration`` means: on the v0.3 gRPC
    wire ``blocking`` is a plain bool, so the SDKs read no configuration as non-blocking (pass
    False); v0.3 JSON-RPC reads it as blocking (pass True)."""
    if not request.HasField("request"):
        raise _invalid("request", "is required (the message to send)")
    out = types.SendMessageRequest(message=to_v10_message(request.request, "request"))
    if request.HasField("configuration"):
        out.configuration.CopyFrom(to_v10_send_configuration(request.configuration))
    elif not blocking_by_default:
        out.configuration.return_immediately = True
    if request.HasField("metadata"):
        out.metadata.CopyFrom(request.metadata)
    return out


def to_v03_send_request(request: types.SendMessageRequest) -> v03.SendMessageRequest:
    """Always carries a configuration, so ``blocking`` is said on a wire that reads none as False."""
    out = v03.SendMessageRequest(request=to_v03_message(request.message))
    out.configuration.CopyFrom(to_v03_send_configuration(request.configuration))
    if request.HasField("metadata"):
        out.metadata.CopyFrom(request.metadata)
    return out


def to_v10_get_task_request(request: v03.GetTaskRequest) -> types.GetTaskRequest:
    out = types.GetTaskRequest(id=parse_task_name(request.name))
    if request.history_length:  # 0 means "all" in v0.3: unset
        out.history_length = request.history_length
    return out


def to_v03_get_task_request(request: types.GetTaskRequest) -> v03.GetTaskRequest:
    """``history_length = 0`` ("no history") is sent unset ("all"): the caller trims."""
    out = v03.GetTaskRequest(name=task_name(request.id))
    if request.HasField("history_length") and request.history_length > 0:
        out.history_length = request.history_length
    return out


def to_v10_cancel_task_request(request: v03.CancelTaskRequest) -> types.CancelTaskRequest:
    return types.CancelTaskRequest(id=parse_task_name(request.name))


def to_v03_cancel_task_request(request: types.CancelTaskRequest) -> v03.CancelTaskRequest:
    """Loses ``metadata`` (the v0.3 proto request has only the name)."""
    return v03.CancelTaskRequest(name=task_name(request.id))


def to_v10_subscribe_request(request: v03.TaskSubscriptionRequest) -> types.SubscribeToTaskRequest:
    return types.SubscribeToTaskRequest(id=parse_task_name(request.name))


def to_v03_subscribe_request(request: types.SubscribeToTaskRequest) -> v03.TaskSubscriptionRequest:
    return v03.TaskSubscriptionRequest(name=task_name(request.id))


def to_v10_get_agent_card_request(request: v03.GetAgentCardRequest) -> types.GetExtendedAgentCardRequest:
    del request  # no parameters
    return types.GetExtendedAgentCardRequest()


def to_v03_get_agent_card_request(request: types.GetExtendedAgentCardRequest) -> v03.GetAgentCardRequest:
    del request  # tenant: lost
    return v03.GetAgentCardRequest()
