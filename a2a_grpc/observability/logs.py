"""Log lines for people (text) or for log pipelines (JSON), with the ids of the call they belong to.

:func:`configure_logging` sets up the root logger of a process (the command line calls it once).
Each record gets the ids of :mod:`a2a_grpc.observability.context` that are set where it was
written: ``agent``, ``session_id``, ``task_id``, ``call_id`` and ``trace_id``; the text format
appends them as ``key=value``, the JSON format makes them members of the object.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from a2a_grpc.observability import context
from a2a_grpc.observability.settings import LOG_FORMATS

__all__ = ["DEBUG_LOGGER", "ContextFilter", "JsonFormatter", "TextFormatter", "configure_logging"]

DEBUG_LOGGER = "a2a_grpc.debug"
"""Where full handshakes and request payloads are logged (at DEBUG), credentials redacted."""

_FIELDS = ("agent", "session_id", "task_id", "call_id", "trace_id")


class ContextFilter(logging.Filter):
    """Puts the ids of the current call on each record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.agent = context.AGENT.get()
        record.session_id = context.SESSION_ID.get()
        record.task_id = context.TASK_ID.get()
        record.call_id = context.CALL_ID.get()
        record.trace_id = context.trace_id()
        return True


def _ids(record: logging.LogRecord) -> dict[str, str]:
    return {name: value for name in _FIELDS if (value := getattr(record, name, None))}


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
    ids that are known, and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "warning", log_format: str = "text", *, debug: bool = False, stream: TextIO | None = None
) -> None:
    """Send the process's log records at ``level`` and above to ``stream`` (stderr) in ``log_format``
    (``text`` or ``json``), replacing the root logger's handlers. With ``debug`` the
    :data:`DEBUG_LOGGER` logs at DEBUG whatever ``level`` says."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger(DEBUG_LOGGER).setLevel(logging.DEBUG if debug else logging.NOTSET)
