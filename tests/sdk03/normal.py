"""What client.py prints, normalized: the same shapes whatever the binding, so that a test can
compare the three bindings, and the 0.3 SDK's server with ours.

Runs INSIDE build/sdk03-venv, imported by client.py.

* task: ``{"kind": "task", "id", "contextId", "state", "statusText", "artifacts": [{"artifactId",
  "name", "texts": [...]}], "history": N}`` (state as the v0.3 JSON string: "completed", ...)
* status-update: ``{"kind": "status-update", "taskId", "contextId", "state", "final", "text"}``
* artifact-update: ``{"kind": "artifact-update", "taskId", "artifactId", "name", "texts",
  "append", "lastChunk"}``
* message: ``{"kind": "message", "role", "texts", "taskId", "contextId"}``
* push config: ``{"taskId", "id", "url", "token"}``; a list: ``{"configs": [...]}`` sorted by id,
  whether the wire gave an array (JSON-RPC) or ``{"configs": [...]}`` (REST, gRPC)
* error: ``{"class", "code", "httpStatus", "grpcStatus", "name", "message"}``: ``code`` is the
  JSON-RPC code, ``name`` the error type a gRPC details string starts with ("TaskNotFoundError");
  what the wire did not say is null.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from a2a.client.errors import A2AClientError, A2AClientHTTPError, A2AClientJSONRPCError
from a2a.types import (
    AgentCard,
    Artifact,
    Message,
    Part,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushNotificationConfig,
    TaskStatusUpdateEvent,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage

ClientErrors = A2AClientError
_NAME_PREFIX = re.compile(r"^([A-Za-z]+Error):")
_CONFIG_NAME = re.compile(r"^tasks/([^/]+)/pushNotificationConfigs/([^/]+)$")


class RawError(Exception):
    """An error answer to a raw call (JSON-RPC error object, or an HTTP status)."""

    def __init__(self, code: int | None, status: int | None, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def texts(parts: list[Part] | None) -> list[str]:
    return [p.root.text for p in parts or [] if getattr(p.root, "kind", "") == "text"]


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def artifact(a: Artifact) -> dict[str, Any]:
    return {"artifactId": a.artifact_id, "name": a.name, "texts": texts(a.parts)}


def task(t: Task) -> dict[str, Any]:
    status_message = t.status.message
    return {
        "kind": "task",
        "id": t.id,
        "contextId": t.context_id,
        "state": _state(t.status.state),
        "statusText": (" ".join(texts(status_message.parts)) if status_message else "") or None,
        "artifacts": [artifact(a) for a in t.artifacts or []],
        "history": len(t.history or []),
    }


def message(m: Message) -> dict[str, Any]:
    return {
        "kind": "message",
        "role": _state(m.role),
        "texts": texts(m.parts),
        "taskId": m.task_id,
        "contextId": m.context_id,
    }


def event(e: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> dict[str, Any]:
    if isinstance(e, TaskStatusUpdateEvent):
        status_message = e.status.message
        return {
            "kind": "status-update",
            "taskId": e.task_id,
            "contextId": e.context_id,
            "state": _state(e.status.state),
            "final": bool(e.final),
            "text": (" ".join(texts(status_message.parts)) if status_message else "") or None,
        }
    return {
        "kind": "artifact-update",
        "taskId": e.task_id,
        "artifactId": e.artifact.artifact_id,
        "name": e.artifact.name,
        "texts": texts(e.artifact.parts),
        "append": bool(e.append),
        "lastChunk": bool(e.last_chunk),
    }


def push_config(c: TaskPushNotificationConfig) -> dict[str, Any]:
    p = c.push_notification_config
    return {"taskId": c.task_id, "id": p.id, "url": p.url, "token": p.token}


def _config_from_json(item: dict[str, Any]) -> dict[str, Any]:
    # JSON-RPC: {"taskId", "pushNotificationConfig"}; REST/gRPC ProtoJSON: {"name", ...}.
    inner = item.get("pushNotificationConfig") or {}
    task_id = item.get("taskId")
    found = _CONFIG_NAME.match(item.get("name", ""))
    if found:
        task_id = found.group(1)
    return {"taskId": task_id, "id": inner.get("id"), "url": inner.get("url"), "token": inner.get("token")}


def config_list(answer: Any) -> dict[str, Any]:
    if isinstance(answer, ProtoMessage):
        answer = MessageToDict(answer)
    items = answer.get("configs", []) if isinstance(answer, dict) else answer or []
    configs = [_config_from_json(item) for item in items]
    return {"configs": sorted(configs, key=lambda c: str(c["id"]))}


def card(c: AgentCard) -> dict[str, Any]:
    return {
        "name": c.name,
        "protocolVersion": c.protocol_version,
        "url": c.url,
        "preferredTransport": c.preferred_transport,
        "interfaces": [{"transport": i.transport, "url": i.url} for i in c.additional_interfaces or []],
        "streaming": bool(c.capabilities.streaming),
        "pushNotifications": bool(c.capabilities.push_notifications),
    }


def any_result(got: Any) -> Any:
    if isinstance(got, Task):
        return task(got)
    if isinstance(got, Message):
        return message(got)
    if isinstance(got, list):
        return [any_result(g) for g in got]
    if isinstance(got, tuple) and got and isinstance(got[0], Task):
        return event(got[1]) if got[1] is not None else task(got[0])
    return repr(got)


def error(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {
        "class": type(exc).__name__,
        "code": None,
        "httpStatus": None,
        "grpcStatus": None,
        "name": None,
        "message": str(exc),
    }
    if isinstance(exc, A2AClientJSONRPCError):
        out["code"], out["message"] = exc.error.code, exc.error.message
    elif isinstance(exc, A2AClientHTTPError):
        out["httpStatus"], out["message"] = exc.status_code, exc.message
    elif isinstance(exc, grpc.aio.AioRpcError):
        details = exc.details() or ""
        out["grpcStatus"], out["message"] = exc.code().name, details
        found = _NAME_PREFIX.match(details)
        out["name"] = found.group(1) if found else None
    elif isinstance(exc, RawError):
        out["code"], out["httpStatus"] = exc.code, exc.status
    return out
