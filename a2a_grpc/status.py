"""A2A errors as gRPC statuses and back: the gRPC binding's error codec (spec section 10.6).

An error goes out as its row's gRPC code (:mod:`a2a_grpc.errors`), its message, and a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer holding an
``ErrorInfo(reason, domain="a2a-protocol.org", metadata)`` and, for validation failures, a
``BadRequest``. Servers end calls with :func:`abort`; clients read failures with
:func:`from_rpc_error`. An exception that is not an A2A error goes out as INTERNAL "internal
error"; its traceback stays in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import grpc
import grpc.aio
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed
from grpc_status import rpc_status

from a2a_grpc.errors import (
    DOMAINS,
    RETRY_AFTER_KEY,
    A2AError,
    ErrorSpec,
    FieldViolation,
    TransportError,
    spec_for_grpc_code,
    spec_for_name,
    spec_for_reason,
    to_a2a_error,
    wire_grpc_code,
)

__all__ = ["STATUS_DETAILS_KEY", "abort", "from_rpc_error", "from_status", "status_of", "to_rpc_status"]

_log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailer that carries the ``google.rpc.Status``."""
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def _status_proto(err: A2AError) -> status_pb2.Status:
    status = status_pb2.Status(code=wire_grpc_code(err).value[0], message=err.message)
    if err.spec.reason:
        info = error_details_pb2.ErrorInfo(
            reason=err.spec.reason, domain=err.spec.domain, metadata=err.metadata
        )
        status.details.add().Pack(info)
    retry_after = err.metadata.get(RETRY_AFTER_KEY, "")
    if retry_after.isdigit():  # gRPC's own retry advice, beside ErrorInfo's copy of it
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = int(retry_after)
        status.details.add().Pack(info)
    if err.field_violations:
        bad = error_details_pb2.BadRequest()
        for v in err.field_violations:
            bad.field_violations.add(field=v.field, description=v.description)
        status.details.add().Pack(bad)
    return status


def status_of(exc: BaseException) -> status_pb2.Status:
    """``exc`` as a ``google.rpc.Status`` message (code, message, ErrorInfo, BadRequest): what the
    details trailer carries, and what the session binding's CallEnd carries."""
    return _status_proto(to_a2a_error(exc))


def to_rpc_status(exc: BaseException) -> grpc.Status:
    """The gRPC status for ``exc``: code, message, and the rich status in the details trailer.

    Any exception that is not an :class:`A2AError` becomes INTERNAL "internal error"; its
    traceback goes to the ``a2a_grpc.errors`` logger, never onto the wire.
    """
    return rpc_status.to_status(_status_proto(to_a2a_error(exc)))


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


async def abort(
    context: grpc.aio.ServicerContext,
    exc: BaseException,
    to_status: Callable[[BaseException], grpc.Status] | None = None,
) -> NoReturn:
    """End the RPC with the status of ``exc`` (see :func:`to_rpc_status`; ``to_status``: another
    form, the v0.3 service's).

    Trailing metadata the handler already set is kept. Cancellation and other non-``Exception``
    throwables, and gRPC's own abort signal, are re-raised untouched.
    """
    if not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
        raise exc
    status = (to_status or to_rpc_status)(exc)
    kept = tuple((k, v) for k, v in (context.trailing_metadata() or ()) if k != STATUS_DETAILS_KEY)
    merged = _Status(status.code, status.details, kept + tuple(status.trailing_metadata))
    await context.abort_with_status(merged)
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _call(err: grpc.RpcError, method: str) -> Any:
    fn = getattr(err, method, None)
    return fn() if callable(fn) else None


def _parse_details(status: status_pb2.Status) -> tuple[str | None, dict[str, str], list[FieldViolation]]:
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for detail in status.details:
        if detail.TypeName() == "google.rpc.ErrorInfo" and reason is None:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain in DOMAINS:
                reason, metadata = info.reason, dict(info.metadata)
        elif detail.TypeName() == "google.rpc.BadRequest":
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return reason, metadata, violations


def _from_prefix(message: str) -> tuple[ErrorSpec, str] | None:
    """a2a-sdk v0.3 servers send no details, only ``"<ErrorName>: <message>"``."""
    name, sep, rest = message.partition(": ")
    row = spec_for_name(name) if sep else None
    return (row, rest) if row is not None else None


def from_rpc_error(err: grpc.RpcError) -> A2AError:
    """The :class:`A2AError` a failed call carries (sync ``RpcError`` or ``grpc.aio.AioRpcError``).

    The class comes from ``ErrorInfo.reason`` (domain a2a-protocol.org); without one, from a
    ``"<ErrorName>: "`` message prefix, then from the gRPC code. Metadata and field violations are
    restored and the received code is kept on ``.grpc_code``.
    """
    code = _call(err, "code")
    message = _call(err, "details")
    message = message if isinstance(message, str) else str(err)
    status: status_pb2.Status | None = None
    for key, value in _call(err, "trailing_metadata") or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except Exception:  # a malformed trailer must not hide the error itself
                _log.warning("ignoring undecodable %s trailer", STATUS_DETAILS_KEY)
            break
    if not isinstance(code, grpc.StatusCode):
        unknown = grpc.StatusCode.UNKNOWN
        code = _CODE_BY_NUMBER.get(status.code, unknown) if status is not None else unknown
    return _decode(code, message, status)


def from_status(status: status_pb2.Status) -> A2AError:
    """The :class:`A2AError` a ``google.rpc.Status`` message carries (see :func:`from_rpc_error`)."""
    return _decode(_CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN), status.message, status)


def _decode(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> A2AError:
    reason, metadata, violations = _parse_details(status) if status is not None else (None, {}, [])
    if status is not None and status.message:
        message = status.message
    row = spec_for_reason(reason) if reason else None
    if row is None and (prefixed := _from_prefix(message)) is not None:
        row, message = prefixed
    row = row or spec_for_grpc_code(code) or TransportError.spec
    return row.exc_type(message, metadata=metadata, field_violations=violations, grpc_code=code)
