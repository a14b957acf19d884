"""One log line per call, on the ``a2a_grpc.access`` logger (INFO): an interceptor of the call seam.

``grpc SendMessage OK 1.4 ms peer=ipv4:127.0.0.1:53712``: the front that took the call, the
method, the gRPC status the call ended with (``OK``, the code of the A2A error, ``INTERNAL`` for
anything else, ``CANCELLED`` when the caller left), the time until the call (a stream: its last
event) ended, and the caller. Each record also carries these facts as ``extra`` (``binding``,
``method``, ``status``, ``duration_ms``, ``peer``, and ``call_id``), members of a JSON log line
(:mod:`a2a_grpc.observability.logs`). ``ServerSettings.log_requests`` puts it first in the gRPC servers'
chain. The bridge's HTTP requests are logged by :mod:`a2a_grpc.bridge.accesslog` on the same logger, with
HTTP facts, so one handler sees every call of a process whichever binding it came by.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from google.protobuf.message import Message

from a2a_grpc import errors
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = ["AccessLog", "status_name"]

log = logging.getLogger("a2a_grpc.access")


def status_name(exc: BaseException) -> str:
    """The gRPC status name a call that raised ``exc`` ends with."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    if isinstance(exc, errors.A2AError):
        return str(errors.wire_grpc_code(exc).name)
    return "INTERNAL"


class AccessLog(Interceptor):
    """Logs one line per call, when it ends (see the module doc)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def _line(self, method: Method, context: CallContext, status: str, start: float) -> None:
        elapsed = (time.perf_counter() - start) * 1000
        front = context.front or "-"
        self.logger.info(
            "%s %s %s %.1f ms peer=%s",
            front,
            method.name,
            status,
            elapsed,
            context.peer or "-",
            extra={
                "binding": front,
                "method": method.name,
                "status": status,
                "duration_ms": round(elapsed, 3),
                "peer": context.peer or None,
                "call_id": context.call_id,  # the context's own: also for a call refused before the seam
            },
        )

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        start = time.perf_counter()
        status = "OK"
        try:
            return await call_next(request, context)
        except BaseException as exc:
            status = status_name(exc)
            raise
        finally:
            self._line(method, context, status, start)

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        start = time.perf_counter()
        status = "OK"
        try:
            async for event in call_next(request, context):
                yield event
        except BaseException as exc:
            status = status_name(exc)
            raise
        finally:
            self._line(method, context, status, start)
