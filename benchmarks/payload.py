"""Requests encoded once, and the checks that tell a real answer from a fast failure.

Each request is encoded to bytes before the clock starts. A :class:`Template`
holds those bytes with a fixed-width slot for the message id, so every request
gets a fresh id (the SDK may refuse a repeated one) at the price of one bytes
concatenation. The ``check_*`` functions parse an answer fully; the load
generator runs them on the first answer of every worker and on a sample after
that, and does only cheap checks on the rest.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from a2a_grpc import types
from benchmarks.httpclient import http_request
from benchmarks.workload import TEXT

__all__ = [
    "BENCH_API_KEY",
    "BENCH_TRACEPARENT",
    "GRPC_METADATA",
    "Template",
    "check_json_task",
    "check_stream_events",
    "check_task_bytes",
    "grpc_send_request",
    "jsonrpc_send_request",
    "rest_send_request",
]

GRPC_METADATA = (("a2a-version", "1.0"),)
BENCH_API_KEY = "bench-api-key-0123456789abcdef"
"""The API key of the ``grpc-unary-apikey`` case (a benchmark secret, nothing else)."""
"""Our server refuses a call without the protocol version (read as 0.3); the SDK accepts it too."""
BENCH_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
"""The W3C trace context the tracing cases send with every call, as a traced caller does."""
HTTP_HEADERS = {"Content-Type": "application/json", "A2A-Version": "1.0"}
SSE_HEADERS = {**HTTP_HEADERS, "Accept": "text/event-stream"}

_ID_WIDTH = 16
_SLOT = b"bench-" + b"#" * _ID_WIDTH
_ids = itertools.count(1)


class Template:
    """Request bytes with a slot for a unique message id: :meth:`render` fills the next one."""

    __slots__ = ("_head", "_tail")

    def __init__(self, data: bytes) -> None:
        at = data.find(_SLOT)
        if at < 0 or data.find(_SLOT, at + 1) >= 0:
            raise ValueError("a request template needs exactly one message-id slot")
        self._head = data[: at + len(_SLOT) - _ID_WIDTH]
        self._tail = data[at + len(_SLOT) :]

    def render(self) -> bytes:
        return self._head + b"%016x" % next(_ids) + self._tail


def _message_id_slot() -> str:
    return _SLOT.decode()


def grpc_send_request(text: str = TEXT) -> Template:
    """A serialized SendMessageRequest: one user message with one text part."""
    request = types.SendMessageRequest()
    message = request.message
    message.message_id = _message_id_slot()
    message.role = types.ROLE_USER
    message.parts.add(text=text)
    return Template(request.SerializeToString())


def _message_json(text: str) -> dict[str, Any]:
    return {"messageId": _message_id_slot(), "role": "ROLE_USER", "parts": [{"text": text}]}


def jsonrpc_send_request(
    host: str, port: int, *, text: str = TEXT, path: str = "/", method: str = "SendMessage"
) -> Template:
    """A whole HTTP request carrying a JSON-RPC SendMessage (or SendStreamingMessage) call."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"message": _message_json(text)}}
    headers = SSE_HEADERS if method == "SendStreamingMessage" else HTTP_HEADERS
    encoded = json.dumps(body, separators=(",", ":")).encode()
    return Template(http_request("POST", host, port, path, encoded, headers))


def rest_send_request(
    host: str, port: int, *, text: str = TEXT, path: str = "/message:send", streaming: bool = False
) -> Template:
    """A whole HTTP request for the HTTP+JSON binding: ``POST /message:send`` (or ``:stream``)."""
    encoded = json.dumps({"message": _message_json(text)}, separators=(",", ":")).encode()
    return Template(
        http_request("POST", host, port, path, encoded, SSE_HEADERS if streaming else HTTP_HEADERS)
    )


# -- full checks ---------------------------------------------------------------------------------


def check_task_bytes(data: bytes, text: str = TEXT) -> str | None:
    """None if ``data`` is a SendMessageResponse holding the completed echo task, else what is wrong."""
    try:
        response = types.SendMessageResponse.FromString(data)
    except Exception as exc:
        return f"undecodable SendMessageResponse: {exc}"
    if not response.HasField("task"):
        return f"expected a task, got {response.WhichOneof('payload')}"
    task = response.task
    if task.status.state != types.TASK_STATE_COMPLETED:
        return f"task state {types.TaskState.Name(task.status.state)}, expected TASK_STATE_COMPLETED"
    if len(task.artifacts) != 1 or [p.text for p in task.artifacts[0].parts] != [text]:
        return f"expected one artifact holding the request text, got {len(task.artifacts)} artifact(s)"
    return None


def check_json_task(obj: Any, text: str = TEXT) -> str | None:
    """None if ``obj`` (a decoded SendMessageResponse in JSON) holds the completed echo task."""
    task = obj.get("task") if isinstance(obj, dict) else None
    if not isinstance(task, dict):
        return f"expected a task, got {str(obj)[:200]}"
    state = task.get("status", {}).get("state")
    if state != "TASK_STATE_COMPLETED":
        return f"task state {state!r}, expected 'TASK_STATE_COMPLETED'"
    artifacts = task.get("artifacts", [])
    if len(artifacts) != 1 or [p.get("text") for p in artifacts[0].get("parts", [])] != [text]:
        return f"expected one artifact holding the request text, got {len(artifacts)} artifact(s)"
    return None


def check_stream_events(events: list[types.StreamResponse], expected_artifacts: int) -> str | None:
    """None if a stream was: the task, ``expected_artifacts`` artifact updates, a completed status last."""
    kinds = [e.WhichOneof("payload") for e in events]
    if not kinds or kinds[0] != "task":
        return f"stream did not start with the task: {kinds[:3]}"
    got = kinds.count("artifact_update")
    if got != expected_artifacts:
        return f"expected {expected_artifacts} artifact updates, got {got}"
    last = events[-1]
    if kinds[-1] != "status_update" or last.status_update.status.state != types.TASK_STATE_COMPLETED:
        return f"stream did not end with a completed status: {kinds[-1]}"
    return None
