"""A2A v0.3, the wire most agents deployed in 2025 speak: its protos and their translation to v1.0.

* :mod:`a2a_grpc.v03.types`: the v0.3 proto classes (package ``a2a.v1``, our private pool);
* :mod:`a2a_grpc.v03.convert`: parts, messages, tasks, events and answers, both ways;
* :mod:`a2a_grpc.v03.requests`: requests, push notification configs and resource names, both ways;
* :mod:`a2a_grpc.v03.card`: the agent card both ways, the merged card JSON, card parsing;
* :mod:`a2a_grpc.v03.jsonrpc_shapes`, :mod:`~a2a_grpc.v03.jsonrpc_events` and
  :mod:`~a2a_grpc.v03.jsonrpc_methods`: the v0.3 JSON-RPC shapes (``kind``, lower-case states,
  ``referenceTaskIds`` ...) read into and written from ``lf.a2a.v1`` directly, and the method table;
* :mod:`a2a_grpc.v03.errors`: our errors in their v0.3 forms on each binding, and back.

Every function is named ``to_v10_<thing>`` (v0.3 in, ``lf.a2a.v1`` out) or ``to_v03_<thing>``
(``lf.a2a.v1`` in, v0.3 out) and refuses what it cannot convert with
:class:`a2a_grpc.errors.InvalidParamsError` naming the field. The losses are listed in
docs/versions.md.
"""

from a2a_grpc.v03 import types
from a2a_grpc.v03.card import (
    V03_VERSION,
    is_v03_version,
    merged_card_json,
    parse_card_json,
    to_v03_agent_card,
    to_v10_agent_card,
    v03_card_json,
)
from a2a_grpc.v03.convert import (
    COMPAT_KEY,
    FINAL_STATES,
    to_v03_artifact,
    to_v03_artifact_update,
    to_v03_message,
    to_v03_part,
    to_v03_send_response,
    to_v03_status,
    to_v03_status_update,
    to_v03_stream_response,
    to_v03_task,
    to_v10_artifact,
    to_v10_artifact_update,
    to_v10_message,
    to_v10_part,
    to_v10_send_response,
    to_v10_status,
    to_v10_status_update,
    to_v10_stream_response,
    to_v10_task,
)
from a2a_grpc.v03.requests import (
    parse_push_config_name,
    parse_task_name,
    push_config_name,
    task_name,
    to_v03_cancel_task_request,
    to_v03_create_push_config_request,
    to_v03_delete_push_config_request,
    to_v03_get_agent_card_request,
    to_v03_get_push_config_request,
    to_v03_get_task_request,
    to_v03_list_push_configs_request,
    to_v03_list_push_configs_response,
    to_v03_push_notification_config,
    to_v03_send_configuration,
    to_v03_send_request,
    to_v03_subscribe_request,
    to_v03_task_push_config,
    to_v10_cancel_task_request,
    to_v10_create_push_config_request,
    to_v10_delete_push_config_request,
    to_v10_get_agent_card_request,
    to_v10_get_push_config_request,
    to_v10_get_task_request,
    to_v10_list_push_configs_request,
    to_v10_list_push_configs_response,
    to_v10_push_notification_config,
    to_v10_send_configuration,
    to_v10_send_request,
    to_v10_subscribe_request,
    to_v10_task_push_config,
)

V03_SERVICE = types.A2A_SERVICE
"""The ``a2a.v1.A2AService`` descriptor (v0.3): its RPCs, streaming flags and HTTP rules."""

__all__ = [
    "COMPAT_KEY",
    "FINAL_STATES",
    "V03_SERVICE",
    "V03_VERSION",
    "is_v03_version",
    "merged_card_json",
    "parse_card_json",
    "parse_push_config_name",
    "parse_task_name",
    "push_config_name",
    "task_name",
    "to_v03_agent_card",
    "to_v03_artifact",
    "to_v03_artifact_update",
    "to_v03_cancel_task_request",
    "to_v03_create_push_config_request",
    "to_v03_delete_push_config_request",
    "to_v03_get_agent_card_request",
    "to_v03_get_push_config_request",
    "to_v03_get_task_request",
    "to_v03_list_push_configs_request",
    "to_v03_list_push_configs_response",
    "to_v03_message",
    "to_v03_part",
    "to_v03_push_notification_config",
    "to_v03_send_configuration",
    "to_v03_send_request",
    "to_v03_send_response",
    "to_v03_status",
    "to_v03_status_update",
    "to_v03_stream_response",
    "to_v03_subscribe_request",
    "to_v03_task",
    "to_v03_task_push_config",
    "to_v10_agent_card",
    "to_v10_artifact",
    "to_v10_artifact_update",
    "to_v10_cancel_task_request",
    "to_v10_create_push_config_request",
    "to_v10_delete_push_config_request",
    "to_v10_get_agent_card_request",
    "to_v10_get_push_config_request",
    "to_v10_get_task_request",
    "to_v10_list_push_configs_request",
    "to_v10_list_push_configs_response",
    "to_v10_message",
    "to_v10_part",
    "to_v10_push_notification_config",
    "to_v10_send_configuration",
    "to_v10_send_request",
    "to_v10_send_response",
    "to_v10_status",
    "to_v10_status_update",
    "to_v10_stream_response",
    "to_v10_subscribe_request",
    "to_v10_task",
    "to_v10_task_push_config",
    "types",
    "v03_card_json",
]
