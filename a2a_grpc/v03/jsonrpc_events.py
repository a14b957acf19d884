"""The v0.3 JSON-RPC streamed results and ``message/send`` results <-> our v1.0 responses.

A v0.3 result is a bare object discriminated by ``kind``: ``"task"``, ``"message"`` (both the
``message/send`` result and stream events), ``"status-update"`` and ``"artifact-update"`` (stream
events). They become a v1.0 ``SendMessageResponse`` or ``StreamResponse`` and back; the objects
inside are those of :mod:`a2a_grpc.v03.jsonrpc_shapes`.

``final`` (required on a v0.3 status update) is not in v1.0: read and dropped, and written as
true for a terminal or interrupted state (:data:`FINAL_STATES`), since our streams end there
(v1.0 section 3.1.2; the official SDK says true for terminal states only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2a_grpc import errors, types
from a2a_grpc.v03._members import STRICT, Reader, at, free_json
from a2a_grpc.v03.convert import FINAL_STATES
from a2a_grpc.v03.jsonrpc_shapes import (
    artifact_from_v03,
    artifact_to_v03,
    message_from_v03,
    message_to_v03,
    status_from_v03,
    status_to_v03,
    task_from_v03,
    task_to_v03,
)

__all__ = [
    "FINAL_STATES",
    "send_result_from_v03",
    "send_result_to_v03",
    "stream_event_from_v03",
    "stream_event_to_v03",
]


def _status_update_from(o: Mapping[str, Any], path: str, read: Reader) -> types.TaskStatusUpdateEvent:
    event = types.TaskStatusUpdateEvent(
        task_id=read.string(o, "taskId", path, required=True),
        context_id=read.string(o, "contextId", path),
    )
    if o.get("status") is None:
        raise read.missing(at(path, "status"))
    event.status.CopyFrom(status_from_v03(o["status"], at(path, "status"), read))
    read.boolean(o, "final", path)  # checked, then dropped: v1.0 streams end by themselves
    read.struct(o, "metadata", path, event.metadata)
    return event


def _artifact_update_from(o: Mapping[str, Any], path: str, read: Reader) -> types.TaskArtifactUpdateEvent:
    event = types.TaskArtifactUpdateEvent(
        task_id=read.string(o, "taskId", path, required=True),
        context_id=read.string(o, "contextId", path),
        append=bool(read.boolean(o, "append", path)),
        last_chunk=bool(read.boolean(o, "lastChunk", path)),
    )
    if o.get("artifact") is None:
        raise read.missing(at(path, "artifact"))
    event.artifact.CopyFrom(artifact_from_v03(o["artifact"], at(path, "artifact"), read))
    read.struct(o, "metadata", path, event.metadata)
    return event


def _status_update_to(event: types.TaskStatusUpdateEvent, fault: type[errors.A2AError]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "status-update",
        "taskId": event.task_id,
        "contextId": event.context_id,
        "status": status_to_v03(event.status, "status", fault),
        "final": event.status.state in FINAL_STATES,
    }
    if event.HasField("metadata"):
        out["metadata"] = free_json(event.metadata)
    return out


def _artifact_update_to(event: types.TaskArtifactUpdateEvent, fault: type[errors.A2AError]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "artifact-update",
        "taskId": event.task_id,
        "contextId": event.context_id,
        "artifact": artifact_to_v03(event.artifact, "artifact", fault),
    }
    if event.append:
        out["append"] = True
    if event.last_chunk:
        out["lastChunk"] = True
    if event.HasField("metadata"):
        out["metadata"] = free_json(event.metadata)
    return out


def stream_event_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.StreamResponse:
    """A streamed v0.3 result (Task, Message, status or artifact update, by ``kind``) as a v1.0
    ``StreamResponse``."""
    o = read.obj(value, path)
    kind = read.string(o, "kind", path, required=True)
    event = types.StreamResponse()
    if kind == "task":
        event.task.CopyFrom(task_from_v03(o, path, read))
    elif kind == "message":
        event.message.CopyFrom(message_from_v03(o, path, read))
    elif kind == "status-update":
        event.status_update.CopyFrom(_status_update_from(o, path, read))
    elif kind == "artifact-update":
        event.artifact_update.CopyFrom(_artifact_update_from(o, path, read))
    else:
        allowed = "must be one of 'task', 'message', 'status-update', 'artifact-update'"
        raise read.refuse(at(path, "kind"), allowed, kind)
    return event


def stream_event_to_v03(
    event: types.StreamResponse, fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``StreamResponse`` as the v0.3 streamed result; a status update's ``final`` is
    true for a terminal or interrupted state (:data:`FINAL_STATES`)."""
    which = event.WhichOneof("payload")
    if which == "task":
        return task_to_v03(event.task, "", fault)
    if which == "message":
        return message_to_v03(event.message, "", fault)
    if which == "status_update":
        return _status_update_to(event.status_update, fault)
    if which == "artifact_update":
        return _artifact_update_to(event.artifact_update, fault)
    raise fault("the event is empty (no task, message, status or artifact update)")


def send_result_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.SendMessageResponse:
    """A ``message/send`` result (Task or Message, by ``kind``) as a v1.0 ``SendMessageResponse``."""
    o = read.obj(value, path)
    kind = read.string(o, "kind", path, required=True)
    result = types.SendMessageResponse()
    if kind == "task":
        result.task.CopyFrom(task_from_v03(o, path, read))
    elif kind == "message":
        result.message.CopyFrom(message_from_v03(o, path, read))
    else:
        raise read.refuse(at(path, "kind"), "must be one of 'task', 'message'", kind)
    return result


def send_result_to_v03(
    result: types.SendMessageResponse, fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``SendMessageResponse`` as the v0.3 ``message/send`` result."""
    which = result.WhichOneof("payload")
    if which == "task":
        return task_to_v03(result.task, "", fault)
    if which == "message":
        return message_to_v03(result.message, "", fault)
    raise fault("the answer is empty (no task, no message)")
