"""Log lines for people (text) or for log pipelines (JSON), with the ids of the call they belong to.

:func:`configure_logging` sets up the root logger of a process (the command line calls it once).
Each record gets the ids of :mod:`a2a_grpc.observability.context` that are set where it was
written: ``agent``, ``session_id``, ``task_id``, ``call_id`` and ``trace_id`` (and in a worker of
``a2a-grpc serve --workers``, ``worker``: its index); the text format
appends them as ``key=value``, the JSON format makes them members of the object, with every
``extra=`` a record was logged with (the access log's ``binding``, ``method``, ``status``,
``duration_ms``, ``peer``).

:class:`CallIds`, the first link of a server's call seam, sets ``call_id`` and ``agent`` for the
call; the session binding sets ``session_id`` for everything done for a session, the task core
``task_id`` once a call's task is known (each front runs a call in a task of its own, and asyncio
copies the ids into the tasks a call starts, the agent's execution among them).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO

from google.protobuf.message import Message

from a2a_grpc.observability.context import AGENT, CALL_ID, SESSION_ID, TASK_ID, trace_id
from a2a_grpc.observability.settings import LOG_FORMATS
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = [
    "DEBUG_LOGGER",
    "CallIds",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "open_debug_logger",
]

DEBUG_LOGGER = "a2a_grpc.debug"
"""Where full handshakes and request payloads are logged (at DEBUG), credentials redacted."""

_FIELDS = ("worker", "agent", "session_id", "task_id", "call_id", "trace_id")


# What every LogRecord has: anything else on a record came from ``extra=`` (JSON members).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SKIPPED = _STANDARD | set(_FIELDS) | {"color_message"}  # uvicorn's copy of the message, with ANSI codes


class ContextFilter(logging.Filter):
    """Puts the ids of the current call on each record (None where unknown); an id the record
    already has (``extra={"call_id": ...}``, as the access log gives it) is kept. ``worker``: the
    index of this process among the workers of ``a2a-grpc serve --workers``, on every record."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = None if worker is None else str(worker)  # a string: worker 0 is shown too

    def filter(self, record: logging.LogRecord) -> bool:
        given = record.__dict__
        if "worker" not in given:
            record.worker = self.worker
        if "agent" not in given:
            record.agent = AGENT.get()
        if "session_id" not in given:
            record.session_id = SESSION_ID.get()
        if "task_id" not in given:
            record.task_id = TASK_ID.get()
        if "call_id" not in given:
            record.call_id = CALL_ID.get()
        if "trace_id" not in given:
            record.trace_id = trace_id()
        return True


def _ids(record: logging.LogRecord) -> dict[str, str]:
    return {name: value for name in _FIELDS if (value := getattr(record, name, None))}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _SKIPPED and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-11-30 06:00:00,123 INFO a2a_grpc.server: message call_id=... trace_id=...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = _ids(record)
        return f"{line} {' '.join(f'{k}={v}' for k, v in ids.items())}" if ids else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, the
    ids that are known, the record's ``extra=`` members, and ``exception`` (the formatted
    traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "warning",
    log_format: str = "text",
    *,
    debug: bool = False,
    stream: TextIO | None = None,
    worker: int | None = None,
) -> None:
    """Send the process's log records at ``level`` and above to ``stream`` (stderr) in ``log_format``
    (``text`` or ``json``), replacing the root logger's handlers. With ``debug`` the
    :data:`DEBUG_LOGGER` logs at DEBUG whatever ``level`` says. ``worker``: this process is that
    worker of ``a2a-grpc serve --workers``; every record says so (``worker=N``)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter(worker))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger(DEBUG_LOGGER).setLevel(logging.DEBUG if debug else logging.NOTSET)


def open_debug_logger() -> None:
    """Let the :data:`DEBUG_LOGGER` log at DEBUG (a server with ``observability.debug`` calls it),
    unless the process gave it a level of its own."""
    debug = logging.getLogger(DEBUG_LOGGER)
    if debug.level == logging.NOTSET:
        debug.setLevel(logging.DEBUG)


class CallIds(Interceptor):
    """Sets :data:`~a2a_grpc.observability.context.CALL_ID` and
    :data:`~a2a_grpc.observability.context.AGENT` (``agent``, the card's name) for each call: the
    first link of a server's seam (``GrpcService.seam_chain``), so every front's calls carry them.

    Set, not reset: each front runs a call in an asyncio task of its own (a gRPC handler, a
    session's call task, the HTTP server's request task), which ends with the call, so the ids are
    still there for the access log written after the call returns. The streaming link is a plain
    function, not a generator: no hop per event."""

    def __init__(self, agent: str | None = None) -> None:
        self.agent = agent or None

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        CALL_ID.set(context.call_id)
        AGENT.set(self.agent)
        return await call_next(request, context)

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        CALL_ID.set(context.call_id)
        AGENT.set(self.agent)
        return call_next(request, context)
