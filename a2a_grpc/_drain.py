"""The drain gate: the call seam's first link, which refuses every new call once a server drains.

A server that stops (``GrpcService.drain``, run on SIGTERM by ``a2a-grpc serve``) first reports
NOT_SERVING on grpc.health.v1, then closes this gate: every call that reaches the seam from then
on, whichever front took it (gRPC, the session binding, the live stream, the JSON bindings of the
same process), is refused with :class:`~a2a_grpc.errors.ServerDrainingError` (gRPC UNAVAILABLE with
a RetryInfo, HTTP 503 with Retry-After). Calls already past the gate run on. While open it costs a
call one attribute read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf.message import Message

from a2a_grpc import errors
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = ["DrainGate"]


class DrainGate(Interceptor):
    """Open until :meth:`close`; closed, it refuses every call (see the module doc)."""

    __slots__ = ("_retry_after",)

    def __init__(self) -> None:
        self._retry_after: float | None = None

    @property
    def closed(self) -> bool:
        return self._retry_after is not None

    def close(self, retry_after: float) -> None:
        """Refuse every call from now on, advising to try again in ``retry_after`` seconds."""
        self._retry_after = retry_after

    def refusal(self, what: str = "new calls") -> errors.ServerDrainingError:
        """The error a call gets once the gate is closed (a new one each time: an exception
        carries the traceback of where it was raised)."""
        return errors.ServerDrainingError(
            f"the server is draining: it takes no {what}; try again, another replica may answer",
            retry_after=self._retry_after,
        )

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        if self._retry_after is not None:
            raise self.refusal()
        return await call_next(request, context)

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        if self._retry_after is not None:
            return _refused(self.refusal())
        return call_next(request, context)


async def _refused(error: errors.A2AError) -> AsyncIterator[Message]:
    """A stream refused before its first event (every front answers that as a plain error)."""
    raise error
    yield  # pragma: no cover  # makes this an async generator
