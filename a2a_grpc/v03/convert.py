"""A2A v0.3 (``a2a.v1``) <-> v1.0 (``lf.a2a.v1``) protos: parts, messages, tasks, events, answers.

Naming, in this module, :mod:`a2a_grpc.v03.requests` (requests, push configs, resource names) and
:mod:`a2a_grpc.v03.card` (the agent card): ``to_v10_<thing>(v03) -> lf.a2a.v1`` and
``to_v03_<thing>(v10) -> a2a.v1``. A server front calls ``to_v10_*`` on requests and ``to_v03_*``
on answers; a client talking to a v0.3 agent does the reverse. Everything is re-exported by
:mod:`a2a_grpc.v03`.

What both versions have maps losslessly; docs/versions.md lists the losses, and each is tested.
Here: v1.0 -> v0.3 loses ``Message.reference_task_ids`` and the ``media_type``/``filename`` of a
text or data part; v0.3 -> v1.0 loses ``TaskStatusUpdateEvent.final``, synthesized on the way back
(:data:`FINAL_STATES`: terminal or interrupted, since our streams end there).

Quirks of the deployed SDKs we match: ``file_with_bytes`` carries the UTF-8 bytes of the base64
text (decoded strictly, the raw bytes taken as they are when that fails); a non-object data value
travels as ``{"value": x}`` with part metadata ``data_part_compat: true``, unwrapped on the way back.

Input may be hostile: what cannot be converted raises :class:`a2a_grpc.errors.InvalidParamsError`
naming the field (v0.3 proto names on the way in, v1.0 names on the way out), never anything else.
"""

from __future__ import annotations

import base64
import binascii

from a2a_grpc import errors, types
from a2a_grpc.errors import FieldViolation
from a2a_grpc.v03 import types as v03

__all__ = [
    "COMPAT_KEY",
    "FINAL_STATES",
    "to_v03_artifact",
    "to_v03_artifact_update",
    "to_v03_message",
    "to_v03_part",
    "to_v03_send_response",
    "to_v03_status",
    "to_v03_status_update",
    "to_v03_stream_response",
    "to_v03_task",
    "to_v10_artifact",
    "to_v10_artifact_update",
    "to_v10_message",
    "to_v10_part",
    "to_v10_send_response",
    "to_v10_status",
    "to_v10_status_update",
    "to_v10_stream_response",
    "to_v10_task",
]

COMPAT_KEY = "data_part_compat"
"""Part metadata key marking a v0.3 data part that wraps a non-object v1.0 value as ``{"value": x}``."""

FINAL_STATES: frozenset[int] = frozenset(
    {
        types.TASK_STATE_COMPLETED,
        types.TASK_STATE_FAILED,
        types.TASK_STATE_CANCELED,
        types.TASK_STATE_REJECTED,
        types.TASK_STATE_INPUT_REQUIRED,
        types.TASK_STATE_AUTH_REQUIRED,
    }
)
"""States whose v0.3 status update says ``final: true``: terminal, and interrupted (our streams end there)."""

# The two enums have the same numbers (v0.3 spells 5 TASK_STATE_CANCELLED); only known ones pass.
_STATES = frozenset(types.TaskState.values())
_ROLES = frozenset(types.Role.values())


def _invalid(field: str, description: str) -> errors.InvalidParamsError:
    return errors.InvalidParamsError(
        f"invalid {field}: {description}", field_violations=[FieldViolation(field, description)]
    )


# --- parts and messages --------------------------------------------------------------------------


def _bytes_up(data: bytes) -> bytes:
    # The Python SDKs send the base64 text's bytes; others may send the raw bytes.
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return data


def to_v10_part(part: v03.Part, field: str = "part") -> types.Part:
    out = types.Part()
    if part.HasField("metadata"):
        out.metadata.CopyFrom(part.metadata)
    kind = part.WhichOneof("part")
    if kind == "text":
        out.text = part.text
    elif kind == "file":
        file = part.file
        which = file.WhichOneof("file")
        if which == "file_with_bytes":
            out.raw = _bytes_up(file.file_with_bytes)
        elif which == "file_with_uri":
            out.url = file.file_with_uri
        else:
            raise _invalid(f"{field}.file", "needs file_with_uri or file_with_bytes")
        out.media_type, out.filename = file.mime_type, file.name
    elif kind == "data":
        _data_up(part, out, field)
    else:
        raise _invalid(field, "a part needs text, file or data")
    return out


def _data_up(part: v03.Part, out: types.Part, field: str) -> None:
    compat = part.metadata.fields.get(COMPAT_KEY) if part.HasField("metadata") else None
    if compat is None or compat.WhichOneof("kind") != "bool_value" or not compat.bool_value:
        out.data.struct_value.CopyFrom(part.data.data)
        return
    wrapped = part.data.data.fields.get("value")
    if wrapped is None:
        raise _invalid(f"{field}.data.data", f'a part marked {COMPAT_KEY} needs a "value" member')
    out.data.CopyFrom(wrapped)
    del out.metadata.fields[COMPAT_KEY]
    if not out.metadata.fields:
        out.ClearField("metadata")


def to_v03_part(part: types.Part, field: str = "part") -> v03.Part:
    """Loses ``media_type`` and ``filename`` of a text or data part (v0.3 has them on files only)."""
    out = v03.Part()
    if part.HasField("metadata"):
        out.metadata.CopyFrom(part.metadata)
    kind = part.WhichOneof("content")
    if kind == "text":
        out.text = part.text
    elif kind in ("raw", "url"):
        if kind == "raw":
            out.file.file_with_bytes = base64.b64encode(part.raw)
        else:
            out.file.file_with_uri = part.url
        out.file.mime_type, out.file.name = part.media_type, part.filename
    elif kind == "data":
        value_kind = part.data.WhichOneof("kind")
        if value_kind is None:
            raise _invalid(f"{field}.data", "holds no value")
        if value_kind == "struct_value":
            out.data.data.CopyFrom(part.data.struct_value)
        else:
            out.data.data.fields["value"].CopyFrom(part.data)
            out.metadata.fields[COMPAT_KEY].bool_value = True
    else:
        raise _invalid(field, "a part needs text, raw, url or data")
    return out


def _role(value: int, field: str) -> int:
    if value not in _ROLES:
        raise _invalid(field, f"{value} is not a Role value")
    return value


def to_v10_message(message: v03.Message, field: str = "message") -> types.Message:
    out = types.Message(
        message_id=message.message_id,
        context_id=message.context_id,
        task_id=message.task_id,
        role=_role(message.role, f"{field}.role"),  # type: ignore[arg-type]
        extensions=message.extensions,
    )
    out.parts.extend(to_v10_part(p, f"{field}.content[{i}]") for i, p in enumerate(message.content))
    if message.HasField("metadata"):
        out.metadata.CopyFrom(message.metadata)
    return out


def to_v03_message(message: types.Message, field: str = "message") -> v03.Message:
    """Loses ``reference_task_ids`` (the v0.3 proto has no such field)."""
    out = v03.Message(
        message_id=message.message_id,
        context_id=message.context_id,
        task_id=message.task_id,
        role=_role(message.role, f"{field}.role"),  # type: ignore[arg-type]
        extensions=message.extensions,
    )
    out.content.extend(to_v03_part(p, f"{field}.parts[{i}]") for i, p in enumerate(message.parts))
    if message.HasField("metadata"):
        out.metadata.CopyFrom(message.metadata)
    return out


# --- tasks, artifacts, events --------------------------------------------------------------------


def _state(value: int, field: str) -> int:
    if value not in _STATES:
        raise _invalid(field, f"{value} is not a TaskState value")
    return value


def to_v10_status(status: v03.TaskStatus, field: str = "status") -> types.TaskStatus:
    out = types.TaskStatus(state=_state(status.state, f"{field}.state"))  # type: ignore[arg-type]
    if status.HasField("update"):
        out.message.CopyFrom(to_v10_message(status.update, f"{field}.update"))
    if status.HasField("timestamp"):
        out.timestamp.CopyFrom(status.timestamp)
    return out


def to_v03_status(status: types.TaskStatus, field: str = "status") -> v03.TaskStatus:
    out = v03.TaskStatus(state=_state(status.state, f"{field}.state"))  # type: ignore[arg-type]
    if status.HasField("message"):
        out.update.CopyFrom(to_v03_message(status.message, f"{field}.message"))
    if status.HasField("timestamp"):
        out.timestamp.CopyFrom(status.timestamp)
    return out


def to_v10_artifact(artifact: v03.Artifact, field: str = "artifact") -> types.Artifact:
    out = types.Artifact(
        artifact_id=artifact.artifact_id,
        name=artifact.name,
        description=artifact.description,
        extensions=artifact.extensions,
    )
    out.parts.extend(to_v10_part(p, f"{field}.parts[{i}]") for i, p in enumerate(artifact.parts))
    if artifact.HasField("metadata"):
        out.metadata.CopyFrom(artifact.metadata)
    return out


def to_v03_artifact(artifact: types.Artifact, field: str = "artifact") -> v03.Artifact:
    out = v03.Artifact(
        artifact_id=artifact.artifact_id,
        name=artifact.name,
        description=artifact.description,
        extensions=artifact.extensions,
    )
    out.parts.extend(to_v03_part(p, f"{field}.parts[{i}]") for i, p in enumerate(artifact.parts))
    if artifact.HasField("metadata"):
        out.metadata.CopyFrom(artifact.metadata)
    return out


def to_v10_task(task: v03.Task, field: str = "task") -> types.Task:
    out = types.Task(id=task.id, context_id=task.context_id)
    if task.HasField("status"):
        out.status.CopyFrom(to_v10_status(task.status, f"{field}.status"))
    out.artifacts.extend(to_v10_artifact(a, f"{field}.artifacts[{i}]") for i, a in enumerate(task.artifacts))
    out.history.extend(to_v10_message(m, f"{field}.history[{i}]") for i, m in enumerate(task.history))
    if task.HasField("metadata"):
        out.metadata.CopyFrom(task.metadata)
    return out


def to_v03_task(task: types.Task, field: str = "task") -> v03.Task:
    out = v03.Task(id=task.id, context_id=task.context_id)
    if task.HasField("status"):
        out.status.CopyFrom(to_v03_status(task.status, f"{field}.status"))
    out.artifacts.extend(to_v03_artifact(a, f"{field}.artifacts[{i}]") for i, a in enumerate(task.artifacts))
    out.history.extend(to_v03_message(m, f"{field}.history[{i}]") for i, m in enumerate(task.history))
    if task.HasField("metadata"):
        out.metadata.CopyFrom(task.metadata)
    return out


def to_v10_status_update(
    event: v03.TaskStatusUpdateEvent, field: str = "status_update"
) -> types.TaskStatusUpdateEvent:
    """Drops ``final``: in v1.0 the state says it (v0.3 ``final`` is synthesized on the way back)."""
    out = types.TaskStatusUpdateEvent(task_id=event.task_id, context_id=event.context_id)
    out.status.CopyFrom(to_v10_status(event.status, f"{field}.status"))
    if event.HasField("metadata"):
        out.metadata.CopyFrom(event.metadata)
    return out


def to_v03_status_update(
    event: types.TaskStatusUpdateEvent, field: str = "status_update"
) -> v03.TaskStatusUpdateEvent:
    """``final`` is true for a terminal or interrupted state (see :data:`FINAL_STATES`)."""
    out = v03.TaskStatusUpdateEvent(
        task_id=event.task_id, context_id=event.context_id, final=event.status.state in FINAL_STATES
    )
    out.status.CopyFrom(to_v03_status(event.status, f"{field}.status"))
    if event.HasField("metadata"):
        out.metadata.CopyFrom(event.metadata)
    return out


def to_v10_artifact_update(
    event: v03.TaskArtifactUpdateEvent, field: str = "artifact_update"
) -> types.TaskArtifactUpdateEvent:
    out = types.TaskArtifactUpdateEvent(
        task_id=event.task_id, context_id=event.context_id, append=event.append, last_chunk=event.last_chunk
    )
    out.artifact.CopyFrom(to_v10_artifact(event.artifact, f"{field}.artifact"))
    if event.HasField("metadata"):
        out.metadata.CopyFrom(event.metadata)
    return out


def to_v03_artifact_update(
    event: types.TaskArtifactUpdateEvent, field: str = "artifact_update"
) -> v03.TaskArtifactUpdateEvent:
    out = v03.TaskArtifactUpdateEvent(
        task_id=event.task_id, context_id=event.context_id, append=event.append, last_chunk=event.last_chunk
    )
    out.artifact.CopyFrom(to_v03_artifact(event.artifact, f"{field}.artifact"))
    if event.HasField("metadata"):
        out.metadata.CopyFrom(event.metadata)
    return out


def to_v10_send_response(response: v03.SendMessageResponse) -> types.SendMessageResponse:
    kind = response.WhichOneof("payload")
    if kind == "task":
        return types.SendMessageResponse(task=to_v10_task(response.task))
    if kind == "msg":
        return types.SendMessageResponse(message=to_v10_message(response.msg, "msg"))
    raise _invalid("payload", "a SendMessageResponse needs a task or a message")


def to_v03_send_response(response: types.SendMessageResponse) -> v03.SendMessageResponse:
    kind = response.WhichOneof("payload")
    if kind == "task":
        return v03.SendMessageResponse(task=to_v03_task(response.task))
    if kind == "message":
        return v03.SendMessageResponse(msg=to_v03_message(response.message))
    raise _invalid("payload", "a SendMessageResponse needs a task or a message")


def to_v10_stream_response(response: v03.StreamResponse) -> types.StreamResponse:
    kind = response.WhichOneof("payload")
    if kind == "task":
        return types.StreamResponse(task=to_v10_task(response.task))
    if kind == "msg":
        return types.StreamResponse(message=to_v10_message(response.msg, "msg"))
    if kind == "status_update":
        return types.StreamResponse(status_update=to_v10_status_update(response.status_update))
    if kind == "artifact_update":
        return types.StreamResponse(artifact_update=to_v10_artifact_update(response.artifact_update))
    raise _invalid("payload", "a StreamResponse needs a task, a message or an update")


def to_v03_stream_response(response: types.StreamResponse) -> v03.StreamResponse:
    kind = response.WhichOneof("payload")
    if kind == "task":
        return v03.StreamResponse(task=to_v03_task(response.task))
    if kind == "message":
        return v03.StreamResponse(msg=to_v03_message(response.message))
    if kind == "status_update":
        return v03.StreamResponse(status_update=to_v03_status_update(response.status_update))
    if kind == "artifact_update":
        return v03.StreamResponse(artifact_update=to_v03_artifact_update(response.artifact_update))
    raise _invalid("payload", "a StreamResponse needs a task, a message or an update")
