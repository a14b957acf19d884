"""The one error table of a2a-grpc: every A2A error and how it looks on each wire.

Each row of :data:`ERROR_TABLE` is an :class:`ErrorSpec` holding, for one error type, the exception
class and its wire facts: JSON-RPC code, gRPC status code, ``google.rpc.ErrorInfo`` reason, HTTP
status and RFC 9457 problem ``type`` URI. The nine A2A-specific rows follow the "Error Code Mappings"
table of A2A v1.0.1 (section 5.4); the five standard JSON-RPC rows follow section 9.5. Every lookup
(by class, reason, JSON-RPC code, or bare gRPC code) is derived from the rows, and exceptions become
a status in exactly one place (:func:`to_rpc_status`), as grpclib does it.

On gRPC an error is ``google.rpc.Status`` (section 10.6) carried in the ``grpc-status-details-bin``
trailer: an ``ErrorInfo(reason, domain="a2a-protocol.org", metadata)`` and, for validation failures,
a ``BadRequest`` with field violations. On JSON-RPC, ``error.data`` is the list of the same details in
ProtoJSON ``Any`` form (``{"@type": "type.googleapis.com/google.rpc.ErrorInfo", ...}``); on HTTP+JSON
the ``details`` of a ``google.rpc.Status`` body (section 11.6).

We emit exactly the v1.0.1 table, which the official SDK (a2a-sdk 1.3) emits too. What we still
decode besides it:

* The codes of the v1.0.0 text: gRPC UNIMPLEMENTED for PushNotificationNotSupported,
  UnsupportedOperation and VersionNotSupported; HTTP 409 for TaskNotCancelable, 415 for
  ContentTypeNotSupported and 502 for InvalidAgentResponse. Decoding picks the class from
  ErrorInfo.reason, never from the code, so a peer that still sends them decodes to the same class;
  the received gRPC code is kept on ``.grpc_code``.
* Standard errors have no reason or gRPC code in the spec. We use the SDK's reasons (INVALID_PARAMS,
  INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR) so its client recognises them; parse errors use
  JSON_PARSE (the spec's naming rule applied to ``JSONParseError``; the SDK defines none). Method not
  found is UNIMPLEMENTED, which is what gRPC itself answers for an unknown method (SDK: NOT_FOUND).
* JSON-RPC ``data``: v1.0.1 makes it a list of typed details. We emit the list and accept a list,
  ``{"details": [...]}`` or a flat object (read as metadata), as older peers send them.
* a2a-sdk's v0.3 gRPC server sends no details, only ``"TaskNotFoundError: message"``; that prefix is
  recognised when no ErrorInfo is present.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, NoReturn

import grpc
import grpc.aio
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed
from grpc_status import rpc_status

__all__ = [
    "BAD_REQUEST_TYPE",
    "DOMAIN",
    "ERROR_INFO_TYPE",
    "ERROR_TABLE",
    "INTERNAL_MESSAGE",
    "OUR_DOMAIN",
    "OUR_ERRORS",
    "STATUS_DETAILS_KEY",
    "TRANSPORT_ERRORS",
    "A2AError",
    "ContentTypeNotSupportedError",
    "DeadlineExceededError",
    "ErrorSpec",
    "EventsNotRetainedError",
    "ExtendedAgentCardNotConfiguredError",
    "ExtensionSupportRequiredError",
    "FieldViolation",
    "InternalError",
    "InvalidAgentResponseError",
    "InvalidParamsError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "ParseError",
    "PushNotificationNotSupportedError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TransportError",
    "UnavailableError",
    "UnsupportedOperationError",
    "VersionNotSupportedError",
    "abort",
    "echo",
    "from_jsonrpc_error",
    "from_rest_error",
    "from_rpc_error",
    "http_status_for",
    "spec_for_grpc_code",
    "spec_for_jsonrpc_code",
    "spec_for_reason",
    "spec_for_type",
    "to_jsonrpc_error",
    "to_problem_details",
    "to_rest_error",
    "to_rpc_status",
]

_log = logging.getLogger(__name__)

DOMAIN = "a2a-protocol.org"
"""``ErrorInfo.domain`` of every A2A error (spec section 10.6)."""
OUR_DOMAIN = "a2a-grpc"
"""``ErrorInfo.domain`` of the errors that are a2a-grpc's own, not the specification's."""
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_MESSAGE = "internal error"
"""The only text sent for an exception that is not an :class:`A2AError`."""
MAX_MESSAGE_BYTES = 1024
"""Longest error message sent, in UTF-8 bytes; longer ones are cut (see :class:`A2AError`)."""
MAX_DETAIL_BYTES = 256
"""Longest ErrorInfo metadata value or field-violation text sent, in UTF-8 bytes."""
ECHO_CHARS = 64
"""How much of a caller's value an error message quotes back (:func:`echo`)."""


def _cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, in the middle, marked with an ellipsis.

    The middle, not the end: a message built around a huge caller value ("task '<100 kB>' not
    found") says what is wrong at its end, which must survive.
    """
    data = text.encode()
    if len(data) <= limit:
        return text
    tail = limit // 4
    head = limit - tail - 3  # the ellipsis is 3 bytes
    return data[:head].decode(errors="ignore") + "\u2026" + data[len(data) - tail :].decode(errors="ignore")


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """A caller-supplied value quoted for an error message (``repr``), cut to ``limit`` characters.

    Ids and names come from the caller and may be huge; an error that quoted them whole could
    exceed the transport's metadata limit, or bury the one sentence that matters.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + f"\u2026 ({len(text)} characters)"
    return repr(text)


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field (``google.rpc.BadRequest.FieldViolation``)."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One row of the error table: an error type and its wire facts."""

    name: str  # the spec's name, e.g. "TaskNotFoundError"
    exc_type: type[A2AError]
    jsonrpc_code: int
    grpc_code: grpc.StatusCode
    reason: str  # ErrorInfo.reason; "" for transport errors, which carry no ErrorInfo
    http_status: int
    default_message: str
    grpc_fallback: bool = False  # the row chosen for a bare gRPC code (no ErrorInfo)
    aliases: tuple[str, ...] = ()  # other reasons accepted when decoding
    domain: str = DOMAIN  # ErrorInfo.domain: the specification's, or OUR_DOMAIN for our own errors

    @property
    def problem_type(self) -> str:
        """The RFC 9457 ``type`` URI (spec 5.4, 11.6) of A2A-specific errors; "" for the others."""
        if self.domain != DOMAIN or not -32099 <= self.jsonrpc_code <= -32001:
            return ""
        return "https://a2a-protocol.org/errors/" + self.reason.lower().replace("_", "-")


class A2AError(Exception):
    """Base of every error a2a-grpc puts on, or takes off, the wire.

    ``message`` is sent as is, so it must be meant for the client. ``metadata`` becomes
    ``ErrorInfo.metadata``, ``field_violations`` a ``BadRequest``. ``grpc_code`` is the code the
    error arrived with (or the row's code); a bare ``A2AError`` is reported as an internal error.
    """

    spec: ClassVar[ErrorSpec]

    def __init__(
        self,
        message: str | None = None,
        *,
        metadata: Mapping[str, object] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        # Everything here may quote caller input: each piece is bounded, so that an error always
        # fits the transport (a gRPC status travels in headers, 8 KiB by default).
        text = self.spec.default_message if message is None else message
        self.message: str = _cut(text, MAX_MESSAGE_BYTES)
        self.metadata: dict[str, str] = {
            _cut(str(k), MAX_DETAIL_BYTES): _cut(str(v), MAX_DETAIL_BYTES)
            for k, v in (metadata or {}).items()
        }
        self.field_violations: tuple[FieldViolation, ...] = tuple(
            FieldViolation(_cut(v.field, MAX_DETAIL_BYTES), _cut(v.description, MAX_DETAIL_BYTES))
            for v in field_violations
        )
        self.grpc_code: grpc.StatusCode = self.spec.grpc_code if grpc_code is None else grpc_code
        super().__init__(self.message)

    def __repr__(self) -> str:
        extra = f", metadata={self.metadata!r}" if self.metadata else ""
        if self.field_violations:
            extra += f", field_violations={self.field_violations!r}"
        return f"{type(self).__name__}({self.message!r}{extra})"


class TaskNotFoundError(A2AError):
    """The task ID does not exist or is not accessible."""


class TaskNotCancelableError(A2AError):
    """The task is not in a cancelable state."""


class PushNotificationNotSupportedError(A2AError):
    """The agent does not support push notifications."""


class UnsupportedOperationError(A2AError):
    """The operation, or an aspect of it, is not supported by this agent."""


class ContentTypeNotSupportedError(A2AError):
    """A media type in the request is not supported."""


class InvalidAgentResponseError(A2AError):
    """An agent returned a response that does not conform to the specification."""


class ExtendedAgentCardNotConfiguredError(A2AError):
    """The agent has no extended agent card configured."""


class ExtensionSupportRequiredError(A2AError):
    """A required extension was not declared by the client."""


class VersionNotSupportedError(A2AError):
    """The requested A2A protocol version is not supported."""


class ParseError(A2AError):
    """The payload is not valid JSON (the spec's ``JSONParseError``)."""


class InvalidRequestError(A2AError):
    """The request is not a valid request object."""


class MethodNotFoundError(A2AError):
    """The method does not exist or is not available."""


class InvalidParamsError(A2AError):
    """The parameters are invalid; ``field_violations`` says which and why."""


class InternalError(A2AError):
    """An internal error on the server."""


class EventsNotRetainedError(A2AError):
    """a2a-grpc's own error, not A2A's: the events a reader asks for are no longer kept.

    A subscriber that fell behind the task's retained window of events, or a reader asking
    for a position older than it, gets this instead of a silent gap. ``metadata`` names the
    task, the position asked for and the oldest position still retained. The task itself is
    not affected: read it with GetTask and subscribe again.
    """


class TransportError(A2AError):
    """A gRPC failure that is no A2A error (not in the spec's table, no ErrorInfo on the wire).

    ``grpc_code`` holds the received code, e.g. UNAUTHENTICATED or RESOURCE_EXHAUSTED.
    """


class UnavailableError(TransportError):
    """Transport error, not an A2A error type: the server could not be reached (UNAVAILABLE)."""


class DeadlineExceededError(TransportError):
    """Transport error, not an A2A error type: the call's deadline passed (DEADLINE_EXCEEDED)."""


_C = grpc.StatusCode
ERROR_TABLE: tuple[ErrorSpec, ...] = (
    # A2A-specific errors: spec section 5.4 (v1.0.1).
    ErrorSpec(
        "TaskNotFoundError",
        TaskNotFoundError,
        -32001,
        _C.NOT_FOUND,
        "TASK_NOT_FOUND",
        404,
        "Task not found",
        grpc_fallback=True,
    ),
    ErrorSpec(
        "TaskNotCancelableError",
        TaskNotCancelableError,
        -32002,
        _C.FAILED_PRECONDITION,
        "TASK_NOT_CANCELABLE",
        400,
        "Task cannot be canceled",
    ),
    ErrorSpec(
        "PushNotificationNotSupportedError",
        PushNotificationNotSupportedError,
        -32003,
        _C.FAILED_PRECONDITION,
        "PUSH_NOTIFICATION_NOT_SUPPORTED",
        400,
        "Push notifications not supported",
    ),
    ErrorSpec(
        "UnsupportedOperationError",
        UnsupportedOperationError,
        -32004,
        _C.FAILED_PRECONDITION,
        "UNSUPPORTED_OPERATION",
        400,
        "This operation is not supported",
    ),
    ErrorSpec(
        "ContentTypeNotSupportedError",
        ContentTypeNotSupportedError,
        -32005,
        _C.INVALID_ARGUMENT,
        "CONTENT_TYPE_NOT_SUPPORTED",
        400,
        "Content type not supported",
    ),
    ErrorSpec(
        "InvalidAgentResponseError",
        InvalidAgentResponseError,
        -32006,
        _C.INTERNAL,
        "INVALID_AGENT_RESPONSE",
        500,
        "Invalid agent response",
    ),
    ErrorSpec(
        "ExtendedAgentCardNotConfiguredError",
        ExtendedAgentCardNotConfiguredError,
        -32007,
        _C.FAILED_PRECONDITION,
        "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
        400,
        "Extended agent card is not configured",
    ),
    ErrorSpec(
        "ExtensionSupportRequiredError",
        ExtensionSupportRequiredError,
        -32008,
        _C.FAILED_PRECONDITION,
        "EXTENSION_SUPPORT_REQUIRED",
        400,
        "Extension support required",
    ),
    ErrorSpec(
        "VersionNotSupportedError",
        VersionNotSupportedError,
        -32009,
        _C.FAILED_PRECONDITION,
        "VERSION_NOT_SUPPORTED",
        400,
        "Protocol version not supported",
    ),
    # Standard JSON-RPC errors: spec section 9.5 (codes, messages); gRPC/HTTP from section 3.3.2.
    ErrorSpec(
        "JSONParseError",
        ParseError,
        -32700,
        _C.INVALID_ARGUMENT,
        "JSON_PARSE",
        400,
        "Invalid JSON payload",
        aliases=("PARSE_ERROR", "JSON_PARSE_ERROR"),
    ),
    ErrorSpec(
        "InvalidRequestError",
        InvalidRequestError,
        -32600,
        _C.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        400,
        "Request payload validation error",
    ),
    ErrorSpec(
        "MethodNotFoundError",
        MethodNotFoundError,
        -32601,
        _C.UNIMPLEMENTED,
        "METHOD_NOT_FOUND",
        404,
        "Method not found",
        grpc_fallback=True,
    ),
    ErrorSpec(
        "InvalidParamsError",
        InvalidParamsError,
        -32602,
        _C.INVALID_ARGUMENT,
        "INVALID_PARAMS",
        400,
        "Invalid parameters",
        grpc_fallback=True,
    ),
    ErrorSpec(
        "InternalError",
        InternalError,
        -32603,
        _C.INTERNAL,
        "INTERNAL_ERROR",
        500,
        "Internal error",
        grpc_fallback=True,
        aliases=("INTERNAL",),
    ),
)
"""Every error type of the A2A spec; the single source of every mapping."""

TRANSPORT_ERRORS: tuple[ErrorSpec, ...] = (
    ErrorSpec(
        "UnavailableError",
        UnavailableError,
        -32603,
        _C.UNAVAILABLE,
        "",
        503,
        "Service unavailable",
        grpc_fallback=True,
    ),
    ErrorSpec(
        "DeadlineExceededError",
        DeadlineExceededError,
        -32603,
        _C.DEADLINE_EXCEEDED,
        "",
        504,
        "Deadline exceeded",
        grpc_fallback=True,
    ),
    ErrorSpec("TransportError", TransportError, -32603, _C.UNKNOWN, "", 502, "Transport error"),
)
"""gRPC failures that are not A2A errors. Not in the spec; never looked up by reason or JSON-RPC code."""

OUR_ERRORS: tuple[ErrorSpec, ...] = (
    # ABORTED: the reader should start again from the task as it stands (google.rpc.Code's advice);
    # -32090: a server-defined JSON-RPC code clear of the ones A2A assigns from -32001 up.
    ErrorSpec(
        "EventsNotRetainedError",
        EventsNotRetainedError,
        -32090,
        _C.ABORTED,
        "EVENTS_NOT_RETAINED",
        409,
        "The requested events are no longer retained",
        domain=OUR_DOMAIN,
    ),
)
"""a2a-grpc's own errors: an ErrorInfo of domain OUR_DOMAIN, decoded by reason like A2A's."""

for _row in ERROR_TABLE + TRANSPORT_ERRORS + OUR_ERRORS:
    _row.exc_type.spec = _row
del _row
A2AError.spec = InternalError.spec  # a bare A2AError (or a direct subclass) is an internal error

_BY_NAME = {row.name: row for row in ERROR_TABLE}
_BY_REASON = {reason: row for row in ERROR_TABLE + OUR_ERRORS for reason in (row.reason, *row.aliases)}
_BY_JSONRPC = {row.jsonrpc_code: row for row in ERROR_TABLE + OUR_ERRORS}
_DOMAINS = frozenset({DOMAIN, OUR_DOMAIN})
_BY_GRPC = {row.grpc_code: row for row in ERROR_TABLE + TRANSPORT_ERRORS if row.grpc_fallback}
# HTTP status of a TransportError by its received code (google.rpc.Code's documented mapping).
_HTTP_BY_GRPC = {
    _C.CANCELLED: 499,
    _C.INVALID_ARGUMENT: 400,
    _C.NOT_FOUND: 404,
    _C.ALREADY_EXISTS: 409,
    _C.PERMISSION_DENIED: 403,
    _C.UNAUTHENTICATED: 401,
    _C.RESOURCE_EXHAUSTED: 429,
    _C.FAILED_PRECONDITION: 400,
    _C.ABORTED: 409,
    _C.OUT_OF_RANGE: 400,
    _C.UNIMPLEMENTED: 501,
    _C.UNAVAILABLE: 503,
    _C.DEADLINE_EXCEEDED: 504,
}
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def spec_for_type(exc_type: type[BaseException]) -> ErrorSpec | None:
    """The row of an exception class (set from the table; subclasses inherit their parent's row)."""
    return exc_type.spec if issubclass(exc_type, A2AError) else None


def spec_for_reason(reason: str) -> ErrorSpec | None:
    """The row whose ErrorInfo reason (or an accepted alias) is ``reason``."""
    return _BY_REASON.get(reason)


def spec_for_jsonrpc_code(code: int) -> ErrorSpec | None:
    """The row whose JSON-RPC error code is ``code``."""
    return _BY_JSONRPC.get(code)


def spec_for_grpc_code(code: grpc.StatusCode) -> ErrorSpec | None:
    """The row assumed for a bare gRPC code, when no ErrorInfo says more."""
    return _BY_GRPC.get(code)


def _coerce(exc: BaseException) -> A2AError:
    """``exc`` itself if it is an A2AError; otherwise a logged, contentless InternalError."""
    if isinstance(exc, A2AError):
        return exc
    _log.error("unhandled %s reported as INTERNAL", type(exc).__name__, exc_info=exc)
    return InternalError(INTERNAL_MESSAGE)


def _wire_grpc_code(err: A2AError) -> grpc.StatusCode:
    # A2A errors always go out with the spec's code, even if decoded from a peer that used another.
    return err.grpc_code if isinstance(err, TransportError) else err.spec.grpc_code


def _status_proto(err: A2AError) -> status_pb2.Status:
    status = status_pb2.Status(code=_wire_grpc_code(err).value[0], message=err.message)
    if err.spec.reason:
        info = error_details_pb2.ErrorInfo(
            reason=err.spec.reason, domain=err.spec.domain, metadata=err.metadata
        )
        status.details.add().Pack(info)
    if err.field_violations:
        bad = error_details_pb2.BadRequest()
        for v in err.field_violations:
            bad.field_violations.add(field=v.field, description=v.description)
        status.details.add().Pack(bad)
    return status


def to_rpc_status(exc: BaseException) -> grpc.Status:
    """The gRPC status for ``exc``: code, message, and the rich status in the details trailer.

    Any exception that is not an :class:`A2AError` becomes INTERNAL "internal error"; its
    traceback goes to the ``a2a_grpc.errors`` logger, never onto the wire.
    """
    return rpc_status.to_status(_status_proto(_coerce(exc)))


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    """End the RPC with the status of ``exc`` (see :func:`to_rpc_status`).

    Trailing metadata the handler already set is kept. Cancellation and other non-``Exception``
    throwables, and gRPC's own abort signal, are re-raised untouched.
    """
    if not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
        raise exc
    status = to_rpc_status(exc)
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
            if detail.Unpack(info) and info.domain in _DOMAINS:
                reason, metadata = info.reason, dict(info.metadata)
        elif detail.TypeName() == "google.rpc.BadRequest":
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return reason, metadata, violations


def _from_prefix(message: str) -> tuple[ErrorSpec, str] | None:
    """a2a-sdk v0.3 servers send no details, only ``"<ErrorName>: <message>"``."""
    name, sep, rest = message.partition(": ")
    row = _BY_NAME.get(name) if sep else None
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
        code = _CODE_BY_NUMBER.get(status.code, _C.UNKNOWN) if status is not None else _C.UNKNOWN
    reason, metadata, violations = _parse_details(status) if status is not None else (None, {}, [])
    if status is not None and status.message:
        message = status.message
    row = spec_for_reason(reason) if reason else None
    if row is None and (prefixed := _from_prefix(message)) is not None:
        row, message = prefixed
    row = row or spec_for_grpc_code(code) or TransportError.spec
    return row.exc_type(message, metadata=metadata, field_violations=violations, grpc_code=code)


def _typed_detail_list(err: A2AError) -> list[dict[str, Any]]:
    """The error's details as ProtoJSON ``Any`` objects: an ErrorInfo, then a BadRequest if any."""
    data: list[dict[str, Any]] = []
    if err.spec.reason:
        data.append(
            {
                "@type": ERROR_INFO_TYPE,
                "reason": err.spec.reason,
                "domain": err.spec.domain,
                "metadata": dict(err.metadata),
            }
        )
    if err.field_violations:
        violations = [{"field": v.field, "description": v.description} for v in err.field_violations]
        data.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations})
    return data


def to_jsonrpc_error(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error object for ``exc``: ``code``, ``message`` and typed-details ``data``."""
    err = _coerce(exc)
    data = _typed_detail_list(err)
    obj: dict[str, Any] = {"code": err.spec.jsonrpc_code, "message": err.message}
    if data:
        obj["data"] = data
    return obj


def _str_map(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def _typed_details(data: object) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("details"), list):
        data = data["details"]
    if isinstance(data, Mapping) and "@type" in data:
        data = [data]
    return [d for d in data if isinstance(d, Mapping)] if isinstance(data, list) else []


def _read_details(
    details: list[Mapping[str, Any]],
) -> tuple[str | None, dict[str, str], list[FieldViolation]]:
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for d in details:
        kind = d.get("@type")
        kind = kind if isinstance(kind, str) else ""
        if kind.endswith("/google.rpc.ErrorInfo") and reason is None and d.get("domain", DOMAIN) in _DOMAINS:
            reason, metadata = str(d.get("reason", "")), _str_map(d.get("metadata"))
        elif kind.endswith("/google.rpc.BadRequest") and isinstance(d.get("fieldViolations"), list):
            violations += [
                FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
                for v in d["fieldViolations"]
                if isinstance(v, Mapping)
            ]
    return reason, metadata, violations


def from_jsonrpc_error(obj: Mapping[str, Any]) -> A2AError:
    """The :class:`A2AError` for a JSON-RPC error object (or a whole response holding ``error``)."""
    if isinstance(obj.get("error"), Mapping):
        obj = obj["error"]
    data = obj.get("data")
    details = _typed_details(data)
    reason, metadata, violations = _read_details(details)
    if not details:
        metadata = _str_map(data)  # a flat ``data`` object is read as metadata
    code = obj.get("code")
    row = (
        (spec_for_reason(reason) if reason else None)
        or (spec_for_jsonrpc_code(code) if isinstance(code, int) else None)
        or InternalError.spec
    )
    message = obj.get("message")
    return row.exc_type(
        message if isinstance(message, str) else None, metadata=metadata, field_violations=violations
    )


def http_status_for(exc: BaseException) -> int:
    """The HTTP status for ``exc`` (spec section 5.4); 500 for anything that is not an A2AError."""
    if not isinstance(exc, A2AError):
        return InternalError.spec.http_status
    if exc.spec is TransportError.spec:
        return _HTTP_BY_GRPC.get(exc.grpc_code, exc.spec.http_status)
    return exc.spec.http_status


_CODE_OF_REFUSAL = {
    404: _C.NOT_FOUND,
    405: _C.UNIMPLEMENTED,
    413: _C.RESOURCE_EXHAUSTED,
    415: _C.INVALID_ARGUMENT,
    431: _C.RESOURCE_EXHAUSTED,
}
"""The google.rpc.Code of the HTTP statuses a server sets itself when it refuses a request."""


def to_rest_error(exc: BaseException, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and ``google.rpc.Status`` body (HTTP+JSON binding) for ``exc``.

    The body is the JSON mapping of ``google.rpc.Status`` as HTTP APIs carry it:
    ``{"error": {"code": <HTTP status>, "status": "<gRPC code name>", "message", "details"}}``,
    the details being the same ``@type``d ErrorInfo / BadRequest objects as on the other bindings.
    ``http_status`` overrides the table's status, for a request refused before any operation ran
    (unknown route 404, wrong verb 405, body too large 413, wrong media type 415, headers too
    large 431).
    """
    err = _coerce(exc)
    code = _wire_grpc_code(err)
    if http_status is None:
        http = http_status_for(err)
    else:
        http, code = http_status, _CODE_OF_REFUSAL.get(http_status, code)
    body: dict[str, Any] = {"code": http, "status": code.name, "message": err.message}
    details = _typed_detail_list(err)
    if details:
        body["details"] = details
    return http, {"error": body}


def to_problem_details(exc: BaseException, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and RFC 9457 problem object for ``exc`` (``application/problem+json``).

    ``type`` is the spec's URI for A2A-specific errors and ``about:blank`` otherwise; ErrorInfo
    metadata become extension members, field violations a ``fieldViolations`` member.
    ``http_status`` overrides the table's status, as for :func:`to_rest_error`.
    """
    err = _coerce(exc)
    http = http_status_for(err) if http_status is None else http_status
    problem: dict[str, Any] = {
        "type": err.spec.problem_type or "about:blank",
        "title": err.spec.default_message,
        "status": http,
        "detail": err.message,
    }
    if err.spec.reason:
        problem["reason"] = err.spec.reason
    for key, value in err.metadata.items():
        problem.setdefault(key, value)
    if err.field_violations:
        problem["fieldViolations"] = [
            {"field": v.field, "description": v.description} for v in err.field_violations
        ]
    return http, problem


_BY_PROBLEM_TYPE = {row.problem_type: row for row in ERROR_TABLE if row.problem_type}
_GRPC_BY_NAME = {code.name: code for code in grpc.StatusCode}
_GRPC_BY_HTTP = {
    400: _C.INVALID_ARGUMENT,
    401: _C.UNAUTHENTICATED,
    403: _C.PERMISSION_DENIED,
    404: _C.NOT_FOUND,
    409: _C.ABORTED,
    429: _C.RESOURCE_EXHAUSTED,
    499: _C.CANCELLED,
    501: _C.UNIMPLEMENTED,
    503: _C.UNAVAILABLE,
    504: _C.DEADLINE_EXCEEDED,
}


def from_rest_error(http_status: int, body: object) -> A2AError:
    """The :class:`A2AError` an HTTP+JSON error response carries.

    Reads the ``{"error": google.rpc.Status}`` form (the class from ErrorInfo.reason, else from
    the ``status`` code name) and the RFC 9457 problem form (the class from ``type``). Anything
    else, such as a proxy's HTML page, becomes a :class:`TransportError` that keeps the HTTP
    status (its gRPC code follows google.rpc.Code's HTTP mapping).
    """
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    message: object = None
    code: grpc.StatusCode | None = None
    row: ErrorSpec | None = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        status = body["error"]
        reason, metadata, violations = _read_details(_typed_details(status.get("details")))
        message = status.get("message")
        name = status.get("status")
        code = _GRPC_BY_NAME.get(name) if isinstance(name, str) else None
    elif isinstance(body, Mapping) and isinstance(body.get("type"), str):
        row = _BY_PROBLEM_TYPE.get(body["type"])
        message = body.get("detail")
        metadata = {
            str(k): v
            for k, v in body.items()
            if isinstance(v, str) and k not in ("type", "title", "detail", "reason")
        }
        raw = body.get("fieldViolations")
        if isinstance(raw, list):
            violations = [
                FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
                for v in raw
                if isinstance(v, Mapping)
            ]
    if code is None:
        code = _GRPC_BY_HTTP.get(http_status, _C.INTERNAL if http_status >= 500 else _C.UNKNOWN)
    row = row or (spec_for_reason(reason) if reason else None)
    if row is None and code in (_C.UNAVAILABLE, _C.DEADLINE_EXCEEDED):
        row = spec_for_grpc_code(code)
    row = row or TransportError.spec
    if not isinstance(message, str):
        message = f"HTTP {http_status} with no A2A error body"
    return row.exc_type(message, metadata=metadata, field_violations=violations, grpc_code=code)
