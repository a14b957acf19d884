"""The v0.3 JSON-RPC objects (the ``a2a.json`` schema of A2A v0.3) <-> our v1.0 messages, directly.

v0.3 JSON discriminates objects with ``kind`` (``"message"``, ``"task"``, ``"status-update"``,
``"artifact-update"``; parts ``"text"``, ``"file"``, ``"data"``), spells states in lower case with
hyphens (``input-required``), roles ``"user"``/``"agent"``, files as ``file: {bytes | uri,
mimeType, name}`` and timestamps as ISO-8601 strings. It is read here straight into ``lf.a2a.v1``
messages (not through the v0.3 proto, which lacks ``referenceTaskIds`` and the ``metadata`` of
the task-id params).

``*_from_v03`` read parsed JSON with a :class:`~a2a_grpc.v03._members.Reader`: a request's
(``STRICT``, the default: InvalidParamsError naming the member) or an agent's answer (``ANSWERS``:
InvalidAgentResponseError; unknown state and role strings become the zero value). ``*_to_v03``
write JSON that the v0.3 schema accepts; what v0.3 cannot say raises ``fault``.

What does not cross (docs/versions.md): a part's ``mediaType``/``filename`` on text and data
parts (``final`` of status updates: :mod:`a2a_grpc.v03.jsonrpc_events`); a non-object data
value travels as ``{"value": x}`` with part metadata ``data_part_compat: true`` and is
unwrapped on the way back (as the official SDK does); role UNSPECIFIED is written ``"agent"``;
several authentication schemes keep only the first; the ``tenant`` of push configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2a_grpc import errors, types
from a2a_grpc.v03._members import STRICT, Reader, at, b64, free_json, index, timestamp_json
from a2a_grpc.v03.convert import COMPAT_KEY

__all__ = [
    "ROLES",
    "STATES",
    "artifact_from_v03",
    "artifact_to_v03",
    "message_from_v03",
    "message_to_v03",
    "part_from_v03",
    "part_to_v03",
    "push_config_from_v03",
    "push_config_to_v03",
    "status_from_v03",
    "status_to_v03",
    "task_from_v03",
    "task_to_v03",
]

_S = types.TaskState
STATES: Mapping[str, int] = {
    "submitted": _S.TASK_STATE_SUBMITTED,
    "working": _S.TASK_STATE_WORKING,
    "input-required": _S.TASK_STATE_INPUT_REQUIRED,
    "completed": _S.TASK_STATE_COMPLETED,
    "canceled": _S.TASK_STATE_CANCELED,
    "failed": _S.TASK_STATE_FAILED,
    "rejected": _S.TASK_STATE_REJECTED,
    "auth-required": _S.TASK_STATE_AUTH_REQUIRED,
    "unknown": _S.TASK_STATE_UNSPECIFIED,
}
"""v0.3 state strings -> v1.0 ``TaskState``."""
_STATE_NAMES = {number: name for name, number in STATES.items()}

ROLES: Mapping[str, int] = {"user": types.Role.ROLE_USER, "agent": types.Role.ROLE_AGENT}
"""v0.3 role strings -> v1.0 ``Role``."""

_PART_KINDS = ("text", "file", "data")


# -- parts --------------------------------------------------------------------------------------


def part_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.Part:
    """A v0.3 TextPart / FilePart / DataPart as a v1.0 ``Part``.

    A part without ``kind`` is read by the member it holds (``text``, ``file`` or ``data``), as
    the official SDK's models accept it.
    """
    o = read.obj(value, path)
    kind = o.get("kind")
    if kind is None:
        kind = next((k for k in _PART_KINDS if k in o), None)
        if kind is None:
            raise read.missing(at(path, "kind"))
    if kind not in _PART_KINDS:
        raise read.refuse(at(path, "kind"), "must be one of 'text', 'file', 'data'", kind)
    part = types.Part()
    read.struct(o, "metadata", path, part.metadata)
    if kind == "text":
        part.text = read.string(o, "text", path, required=True)
    elif kind == "file":
        where = at(path, "file")
        if o.get("file") is None:
            raise read.missing(where)
        file = read.obj(o["file"], where)
        has_bytes, has_uri = file.get("bytes") is not None, file.get("uri") is not None
        if has_bytes == has_uri:
            raise read.refuse(where, "must hold exactly one of bytes and uri", show=False)
        if has_bytes:
            part.raw = read.bytes(file, "bytes", where)
        else:
            part.url = read.string(file, "uri", where, required=True)
        part.media_type = read.string(file, "mimeType", where)
        part.filename = read.string(file, "name", where)
    else:
        if o.get("data") is None:
            raise read.missing(at(path, "data"))
        data = read.obj(o["data"], at(path, "data"))
        compat = part.metadata.fields.get(COMPAT_KEY)
        if compat is not None and compat.bool_value and set(data) == {"value"}:
            del part.metadata.fields[COMPAT_KEY]  # the wrapped non-object value, unwrapped
            if not part.metadata.fields:
                part.ClearField("metadata")
            read.free(data["value"], at(at(path, "data"), "value"), part.data)
        else:
            read.free(data, at(path, "data"), part.data)
    return part


def part_to_v03(
    part: types.Part, path: str = "", fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``Part`` as v0.3 JSON (``mediaType``/``filename`` of text and data parts are lost)."""
    which = part.WhichOneof("content")
    metadata = free_json(part.metadata) if part.HasField("metadata") else None
    out: dict[str, Any]
    if which == "text":
        out = {"kind": "text", "text": part.text}
    elif which in ("raw", "url"):
        file: dict[str, Any] = {"bytes": b64(part.raw)} if which == "raw" else {"uri": part.url}
        if part.media_type:
            file["mimeType"] = part.media_type
        if part.filename:
            file["name"] = part.filename
        out = {"kind": "file", "file": file}
    elif which == "data":
        data = free_json(part.data)
        if not isinstance(data, dict):  # v0.3 data is an object: wrap, and mark it to unwrap
            data = {"value": data}
            metadata = {**(metadata or {}), COMPAT_KEY: True}
        out = {"kind": "data", "data": data}
    else:
        where = path or "part"
        raise fault(f"{where} has no content (text, raw, url or data)")
    if metadata is not None:
        out["metadata"] = metadata
    return out


def _parts_from(o: Mapping[str, Any], path: str, read: Reader, target: Any) -> None:
    where = at(path, "parts")
    for i, item in enumerate(read.array(o, "parts", path, required=True)):
        target.append(part_from_v03(item, index(where, i), read))


# -- messages, artifacts, statuses, tasks -------------------------------------------------------


def message_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.Message:
    """A v0.3 Message as a v1.0 ``Message``."""
    o = read.obj(value, path)
    read.kind(o, path, "message")
    message = types.Message(
        message_id=read.string(o, "messageId", path, required=True),
        context_id=read.string(o, "contextId", path),
        task_id=read.string(o, "taskId", path),
        role=read.choice(o, "role", path, ROLES, types.Role.ROLE_UNSPECIFIED),  # type: ignore[arg-type]
        reference_task_ids=read.strings(o, "referenceTaskIds", path),
        extensions=read.strings(o, "extensions", path),
    )
    _parts_from(o, path, read, message.parts)
    read.struct(o, "metadata", path, message.metadata)
    return message


def message_to_v03(
    message: types.Message, path: str = "", fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``Message`` as v0.3 JSON; role UNSPECIFIED is written ``"agent"`` (as the SDK does)."""
    out: dict[str, Any] = {
        "kind": "message",
        "messageId": message.message_id,
        "role": "user" if message.role == types.Role.ROLE_USER else "agent",
        "parts": [part_to_v03(p, index(at(path, "parts"), i), fault) for i, p in enumerate(message.parts)],
    }
    if message.context_id:
        out["contextId"] = message.context_id
    if message.task_id:
        out["taskId"] = message.task_id
    if message.reference_task_ids:
        out["referenceTaskIds"] = list(message.reference_task_ids)
    if message.extensions:
        out["extensions"] = list(message.extensions)
    if message.HasField("metadata"):
        out["metadata"] = free_json(message.metadata)
    return out


def artifact_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.Artifact:
    """A v0.3 Artifact as a v1.0 ``Artifact``."""
    o = read.obj(value, path)
    artifact = types.Artifact(
        artifact_id=read.string(o, "artifactId", path, required=True),
        name=read.string(o, "name", path),
        description=read.string(o, "description", path),
        extensions=read.strings(o, "extensions", path),
    )
    _parts_from(o, path, read, artifact.parts)
    read.struct(o, "metadata", path, artifact.metadata)
    return artifact


def artifact_to_v03(
    artifact: types.Artifact, path: str = "", fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``Artifact`` as v0.3 JSON."""
    where = at(path, "parts")
    out: dict[str, Any] = {
        "artifactId": artifact.artifact_id,
        "parts": [part_to_v03(p, index(where, i), fault) for i, p in enumerate(artifact.parts)],
    }
    if artifact.name:
        out["name"] = artifact.name
    if artifact.description:
        out["description"] = artifact.description
    if artifact.extensions:
        out["extensions"] = list(artifact.extensions)
    if artifact.HasField("metadata"):
        out["metadata"] = free_json(artifact.metadata)
    return out


def status_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.TaskStatus:
    """A v0.3 TaskStatus as a v1.0 ``TaskStatus`` (``"unknown"`` is UNSPECIFIED)."""
    o = read.obj(value, path)
    status = types.TaskStatus(state=read.choice(o, "state", path, STATES, _S.TASK_STATE_UNSPECIFIED))  # type: ignore[arg-type]
    if o.get("message") is not None:
        status.message.CopyFrom(message_from_v03(o["message"], at(path, "message"), read))
    read.timestamp(o, "timestamp", path, status.timestamp)
    return status


def status_to_v03(
    status: types.TaskStatus, path: str = "", fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``TaskStatus`` as v0.3 JSON (a state this version does not know is ``"unknown"``)."""
    out: dict[str, Any] = {"state": _STATE_NAMES.get(status.state, "unknown")}
    if status.HasField("message"):
        out["message"] = message_to_v03(status.message, at(path, "message"), fault)
    if status.HasField("timestamp"):
        out["timestamp"] = timestamp_json(status.timestamp)
    return out


def task_from_v03(value: object, path: str = "", read: Reader = STRICT) -> types.Task:
    """A v0.3 Task as a v1.0 ``Task``."""
    o = read.obj(value, path)
    read.kind(o, path, "task")
    task = types.Task(
        id=read.string(o, "id", path, required=True), context_id=read.string(o, "contextId", path)
    )
    if o.get("status") is None:
        raise read.missing(at(path, "status"))
    task.status.CopyFrom(status_from_v03(o["status"], at(path, "status"), read))
    for i, item in enumerate(read.array(o, "artifacts", path)):
        task.artifacts.append(artifact_from_v03(item, index(at(path, "artifacts"), i), read))
    for i, item in enumerate(read.array(o, "history", path)):
        task.history.append(message_from_v03(item, index(at(path, "history"), i), read))
    read.struct(o, "metadata", path, task.metadata)
    return task


def task_to_v03(
    task: types.Task, path: str = "", fault: type[errors.A2AError] = errors.InvalidAgentResponseError
) -> dict[str, Any]:
    """A v1.0 ``Task`` as v0.3 JSON."""
    out: dict[str, Any] = {
        "kind": "task",
        "id": task.id,
        "contextId": task.context_id,
        "status": status_to_v03(task.status, at(path, "status"), fault),
    }
    if task.artifacts:
        where = at(path, "artifacts")
        out["artifacts"] = [artifact_to_v03(a, index(where, i), fault) for i, a in enumerate(task.artifacts)]
    if task.history:
        where = at(path, "history")
        out["history"] = [message_to_v03(m, index(where, i), fault) for i, m in enumerate(task.history)]
    if task.HasField("metadata"):
        out["metadata"] = free_json(task.metadata)
    return out


# -- push notification configs ------------------------------------------------------------------


def push_config_from_v03(
    value: object, path: str = "", read: Reader = STRICT, *, task_id: str = ""
) -> types.TaskPushNotificationConfig:
    """A v0.3 PushNotificationConfig (``url``, ``id``, ``token``, ``authentication``) as a v1.0
    ``TaskPushNotificationConfig`` of ``task_id``. A config without ``id`` takes the task id (as both
    official SDKs do); of several authentication ``schemes`` only the first is kept."""
    o = read.obj(value, path)
    config = types.TaskPushNotificationConfig(
        task_id=task_id,
        id=read.string(o, "id", path) or task_id,
        url=read.string(o, "url", path, required=True),
        token=read.string(o, "token", path),
    )
    if o.get("authentication") is not None:
        where = at(path, "authentication")
        auth = read.obj(o["authentication"], where)
        schemes = read.strings(auth, "schemes", where)
        if "schemes" not in auth:
            raise read.missing(at(where, "schemes"))
        config.authentication.scheme = schemes[0] if schemes else ""
        config.authentication.credentials = read.string(auth, "credentials", where)
    return config


def push_config_to_v03(config: types.TaskPushNotificationConfig) -> dict[str, Any]:
    """A v1.0 ``TaskPushNotificationConfig`` as a v0.3 PushNotificationConfig (its task id and tenant
    are not part of it: see ``jsonrpc_methods.task_push_config_to_v03``)."""
    out: dict[str, Any] = {"url": config.url}
    if config.id:
        out["id"] = config.id
    if config.token:
        out["token"] = config.token
    if config.HasField("authentication"):
        auth = config.authentication
        out["authentication"] = {"schemes": [auth.scheme] if auth.scheme else []}
        if auth.credentials:
            out["authentication"]["credentials"] = auth.credentials
    return out
