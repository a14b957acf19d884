"""What the code running right now is doing, for logs and outgoing calls: context variables.

Set by the fronts and the task core, read by the log formatter (``a2a_grpc.observability.logs``)
and by every client that makes a call on the agent's behalf (which continues the trace):

* :data:`CALL_ID`: the call being served (``CallContext.call_id``);
* :data:`AGENT`: the name of the agent serving it;
* :data:`SESSION_ID`: the session it came over (the session binding), if any;
* :data:`TASK_ID`: the task it runs or reads, once known;
* :data:`TRACE`: the W3C trace context an outgoing call made now continues (``traceparent``,
  ``tracestate``): the caller's, or with spans on, the current span's.

asyncio copies context variables into each task it creates, so an agent's execution, started
from a call, sees that call's values.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple

__all__ = ["AGENT", "CALL_ID", "SESSION_ID", "TASK_ID", "TRACE", "TraceHeaders", "trace_id"]


class TraceHeaders(NamedTuple):
    """A W3C trace context as it travels: the ``traceparent`` and ``tracestate`` header values."""

    traceparent: str
    tracestate: str | None = None


CALL_ID: ContextVar[str | None] = ContextVar("a2a_call_id", default=None)
AGENT: ContextVar[str | None] = ContextVar("a2a_agent", default=None)
SESSION_ID: ContextVar[str | None] = ContextVar("a2a_session_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("a2a_task_id", default=None)
TRACE: ContextVar[TraceHeaders | None] = ContextVar("a2a_trace", default=None)


def trace_id() -> str | None:
    """The trace id (32 hex digits) of :data:`TRACE`, if any."""
    trace = TRACE.get()
    if trace is None:
        return None
    parts = trace.traceparent.split("-")
    return parts[1] if len(parts) >= 4 else None
