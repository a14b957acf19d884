"""The one error table of a2a-grpc: every A2A error and its facts on each wire.

Each row of :data:`ERROR_TABLE` is an :class:`ErrorSpec` holding, for one error type, the exception
class and its wire facts: JSON-RPC code, gRPC status code, ``google.rpc.ErrorInfo`` reason, HTTP
status and RFC 9457 problem ``type`` URI. The nine A2A-specific rows follow the "Error Code Mappings"
table of A2A v1.0.1 (section 5.4); the five standard JSON-RPC rows follow section 9.5. Every lookup
(by class, name, reason, JSON-RPC code, problem type, or bare gRPC code) is derived from the rows.

Each wire's codec sits with its binding and reads this table: the gRPC status
(:mod:`a2a_grpc.status`, used by servers and clients), JSON-RPC error objects
(:mod:`a2a_grpc.bridge.jsonrpc`) and HTTP+JSON ``google.rpc.Status`` bodies and problem details
(:mod:`a2a_grpc.bridge.rest`). Every one of them sends an exception that is not an :class:`A2AError` as an
internal error with no content (:func:`to_a2a_error` logs it), as grpclib does.

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

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import grpc

__all__ = [
    "CHALLENGE_KEY",
    "DOMAIN",
    "DOMAINS",
    "ERROR_TABLE",
    "INTERNAL_MESSAGE",
    "LIMIT_KEY",
    "OUR_DOMAIN",
    "OUR_ERRORS",
    "RETRY_AFTER_KEY",
    "TRANSPORT_ERRORS",
    "A2AError",
    "CapabilityMismatchError",
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
    "LimitExceededError",
    "LiveStreamActiveError",
    "MethodNotFoundError",
    "ParseError",
    "PermissionDeniedError",
    "PushNotificationNotSupportedError",
    "RateLimitedError",
    "ServerDrainingError",
    "SessionExpiredError",
    "SessionNotResumableError",
    "SessionPositionNotRetainedError",
    "SessionTokenError",
    "SessionUnknownError",
    "TaskNotCancelableError",
    "TaskNotFoundError",
    "TransportError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsupportedOperationError",
    "VersionNotSupportedError",
    "echo",
    "spec_for_grpc_code",
    "spec_for_jsonrpc_code",
    "spec_for_name",
    "spec_for_problem_type",
    "spec_for_reason",
    "spec_for_type",
    "to_a2a_error",
    "wire_grpc_code",
]

_log = logging.getLogger(__name__)

DOMAIN = "a2a-protocol.org"
"""``ErrorInfo.domain`` of every A2A error (spec section 10.6)."""
OUR_DOMAIN = "a2a-grpc"
"""``ErrorInfo.domain`` of the errors that are a2a-grpc's own, not the specification's."""
DOMAINS = frozenset({DOMAIN, OUR_DOMAIN})
"""The ErrorInfo domains whose reasons name a row of the tables here."""
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

    @property
    def retry_after(self) -> int | None:
        """Whole seconds to wait before trying again, if the server said (``RETRY_AFTER_KEY``: a
        :class:`RateLimitedError`, a :class:`ServerDrainingError`)."""
        text = self.metadata.get(RETRY_AFTER_KEY, "")
        return int(text) if text.isdigit() else None

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


CHALLENGE_KEY = "www_authenticate"
"""The ErrorInfo metadata key of an :class:`UnauthenticatedError`'s challenge: the
``WWW-Authenticate`` value HTTP fronts send with its 401 (RFC 9110 11.6.1), kept in the error
itself so that it crosses every binding and the bridge in both directions."""


class UnauthenticatedError(A2AError):
    """a2a-grpc's own error (the specification names the category, section 3.3.2, not an error
    type): the call carries no credentials, or credentials that no configured scheme accepts.
    gRPC UNAUTHENTICATED, HTTP 401 with ``WWW-Authenticate`` (``metadata["www_authenticate"]``)."""

    def __init__(
        self,
        message: str | None = None,
        *,
        challenge: str = "",
        metadata: Mapping[str, object] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        facts = dict(metadata or {})
        if challenge:
            facts[CHALLENGE_KEY] = challenge
        super().__init__(message, metadata=facts, field_violations=field_violations, grpc_code=grpc_code)

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value naming the schemes this agent accepts ("" if unknown)."""
        return self.metadata.get(CHALLENGE_KEY, "")


class CapabilityMismatchError(A2AError):
    """a2a-grpc's own error: a session's handshake asked for what the server does not offer.
    ``metadata`` names exactly what is missing: ``missing_skills`` (``id`` or ``id@version``,
    comma-separated). gRPC FAILED_PRECONDITION, HTTP 400."""


class SessionNotResumableError(A2AError):
    """a2a-grpc's own errors: a session cannot be resumed (see the subclasses). The client then
    reads its calls' tasks with GetTask and SubscribeToTask instead; the tasks are not affected."""


class SessionUnknownError(SessionNotResumableError):
    """The session to resume was never opened here. gRPC NOT_FOUND, HTTP 404."""


class SessionExpiredError(SessionNotResumableError):
    """The session to resume ended: nobody resumed it within its grace period. gRPC NOT_FOUND,
    HTTP 410."""


class SessionTokenError(SessionNotResumableError):
    """The resume token (or the principal presenting it) is not the session's. gRPC
    PERMISSION_DENIED, HTTP 403."""


class SessionPositionNotRetainedError(SessionNotResumableError):
    """The client says it received fewer (or more) frames than the server still retains or ever
    sent: what it missed is gone. gRPC OUT_OF_RANGE, HTTP 416."""


class LiveStreamActiveError(A2AError):
    """a2a-grpc's own error: a live stream sent a message to a task that another live stream
    holds (one live stream per task). gRPC FAILED_PRECONDITION, HTTP 409. A stream that only
    reattaches to the task takes over instead."""


class PermissionDeniedError(A2AError):
    """a2a-grpc's own error: the caller is authenticated but may not do this (a request for a
    tenant its credential does not grant; a delegation token used beyond its task or skill).
    gRPC PERMISSION_DENIED, HTTP 403. Another principal's task is simply not found (no existence
    leak, spec 3.3.2); a delegation token gets this error for every task it did not create,
    existing or not, which leaks nothing either."""


LIMIT_KEY = "limit"
"""The ErrorInfo metadata key naming the limit a :class:`LimitExceededError` or
:class:`RateLimitedError` is about: the setting's name (``max_parts``, ``requests_per_second``),
so a caller (or its operator) knows which bound to respect or raise."""
RETRY_AFTER_KEY = "retry_after_seconds"
"""The ErrorInfo metadata key of the advice of a :class:`RateLimitedError` or a
:class:`ServerDrainingError`: whole seconds to wait before trying again. HTTP fronts send it as
``Retry-After``; gRPC as a ``google.rpc.RetryInfo`` too."""


def _with_retry_after(metadata: Mapping[str, object] | None, retry_after: float | None) -> dict[str, object]:
    """``metadata`` with the retry hint: whole seconds, rounded up, at least 1."""
    facts = dict(metadata or {})
    if retry_after is not None:
        facts[RETRY_AFTER_KEY] = max(1, math.ceil(retry_after))
    return facts


class LimitExceededError(A2AError):
    """a2a-grpc's own error: the request is larger, deeper or more numerous than a configured limit
    allows (bytes, parts, nesting, history, push configs, stored bytes...). Sending it again will
    fail again. ``metadata["limit"]`` names the setting and ``metadata["limit_value"]`` its value.
    gRPC RESOURCE_EXHAUSTED, HTTP 413."""

    def __init__(
        self,
        message: str | None = None,
        *,
        limit: str = "",
        value: object = None,
        metadata: Mapping[str, object] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        facts = dict(metadata or {})
        if limit:
            facts[LIMIT_KEY] = limit
        if value is not None:
            facts["limit_value"] = value
        super().__init__(message, metadata=facts, field_violations=field_violations, grpc_code=grpc_code)

    @property
    def limit(self) -> str:
        """The name of the limit passed ("" if the peer did not say)."""
        return self.metadata.get(LIMIT_KEY, "")


class RateLimitedError(LimitExceededError):
    """a2a-grpc's own error: the caller asks too often, or holds too much at once (running tasks,
    open streams, sessions), for its share; the same request may succeed later.
    ``metadata["limit"]`` names the limit, ``metadata["retry_after_seconds"]`` when to try again.
    gRPC RESOURCE_EXHAUSTED with a ``google.rpc.RetryInfo``, HTTP 429 with ``Retry-After``."""

    def __init__(
        self,
        message: str | None = None,
        *,
        limit: str = "",
        value: object = None,
        retry_after: float | None = None,
        metadata: Mapping[str, object] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        facts = _with_retry_after(metadata, retry_after)
        super().__init__(
            message,
            limit=limit,
            value=value,
            metadata=facts,
            field_violations=field_violations,
            grpc_code=grpc_code,
        )


class TransportError(A2AError):
    """A gRPC failure that is no A2A error (not in the spec's table, no ErrorInfo on the wire).

    ``grpc_code`` holds the received code, e.g. UNAUTHENTICATED or RESOURCE_EXHAUSTED.
    """


class UnavailableError(TransportError):
    """Transport error, not an A2A error type: the server could not be reached (UNAVAILABLE)."""


class ServerDrainingError(UnavailableError):
    """a2a-grpc's own error: the server is draining (it stops soon) and takes no new call; calls
    already running go on within its grace period. Try again after ``retry_after`` seconds: behind
    a load balancer another replica answers, else this server once it has restarted. An
    :class:`UnavailableError` (whoever retries those retries this), the one that carries an
    ErrorInfo: gRPC UNAVAILABLE with a ``google.rpc.RetryInfo``, HTTP 503 with ``Retry-After``."""

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        metadata: Mapping[str, object] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        facts = _with_retry_after(metadata, retry_after)
        super().__init__(message, metadata=facts, field_violations=field_violations, grpc_code=grpc_code)


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
    # Authentication and authorization: section 3.3.2 names the categories and their gRPC and
    # HTTP codes, and leaves JSON-RPC a custom code: ours follow on from -32090.
    ErrorSpec(
        "UnauthenticatedError",
        UnauthenticatedError,
        -32091,
        _C.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        401,
        "Authentication required",
        grpc_fallback=True,
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "CapabilityMismatchError",
        CapabilityMismatchError,
        -32093,
        _C.FAILED_PRECONDITION,
        "CAPABILITY_MISMATCH",
        400,
        "The peer does not offer what the session requires",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "SessionUnknownError",
        SessionUnknownError,
        -32094,
        _C.NOT_FOUND,
        "SESSION_UNKNOWN",
        404,
        "No such session",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "SessionExpiredError",
        SessionExpiredError,
        -32095,
        _C.NOT_FOUND,
        "SESSION_EXPIRED",
        410,
        "The session expired",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "SessionTokenError",
        SessionTokenError,
        -32096,
        _C.PERMISSION_DENIED,
        "SESSION_TOKEN_INVALID",
        403,
        "Not the session's resume token",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "SessionPositionNotRetainedError",
        SessionPositionNotRetainedError,
        -32097,
        _C.OUT_OF_RANGE,
        "SESSION_POSITION_NOT_RETAINED",
        416,
        "The session no longer retains that position",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "LiveStreamActiveError",
        LiveStreamActiveError,
        -32098,
        _C.FAILED_PRECONDITION,
        "LIVE_STREAM_ACTIVE",
        409,
        "Another live stream holds the task",
        domain=OUR_DOMAIN,
    ),
    # RESOURCE_EXHAUSTED is gRPC's code for both (and what grpc itself sends for a message over its
    # size limit, which stays a TransportError: no ErrorInfo). JSON-RPC codes from the far end of
    # the server-defined range, clear of ours above.
    ErrorSpec(
        "LimitExceededError",
        LimitExceededError,
        -32099,
        _C.RESOURCE_EXHAUSTED,
        "LIMIT_EXCEEDED",
        413,
        "The request exceeds a limit",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "RateLimitedError",
        RateLimitedError,
        -32089,
        _C.RESOURCE_EXHAUSTED,
        "RATE_LIMITED",
        429,
        "Too many requests",
        domain=OUR_DOMAIN,
    ),
    ErrorSpec(
        "PermissionDeniedError",
        PermissionDeniedError,
        -32092,
        _C.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        403,
        "Permission denied",
        grpc_fallback=True,
        domain=OUR_DOMAIN,
    ),
    # UNAVAILABLE: gRPC's code for "try again later", with RetryInfo saying when; -32088 follows
    # on from -32089 towards the A2A range.
    ErrorSpec(
        "ServerDrainingError",
        ServerDrainingError,
        -32088,
        _C.UNAVAILABLE,
        "SERVER_DRAINING",
        503,
        "The server is draining: try again later",
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
_BY_GRPC = {row.grpc_code: row for row in ERROR_TABLE + TRANSPORT_ERRORS + OUR_ERRORS if row.grpc_fallback}
_BY_PROBLEM_TYPE = {row.problem_type: row for row in ERROR_TABLE if row.problem_type}


def spec_for_type(exc_type: type[BaseException]) -> ErrorSpec | None:
    """The row of an exception class (set from the table; subclasses inherit their parent's row)."""
    return exc_type.spec if issubclass(exc_type, A2AError) else None


def spec_for_name(name: str) -> ErrorSpec | None:
    """The row of the spec's error name (``TaskNotFoundError``)."""
    return _BY_NAME.get(name)


def spec_for_problem_type(uri: str) -> ErrorSpec | None:
    """The row whose RFC 9457 problem ``type`` URI is ``uri``."""
    return _BY_PROBLEM_TYPE.get(uri)


def spec_for_reason(reason: str) -> ErrorSpec | None:
    """The row whose ErrorInfo reason (or an accepted alias) is ``reason``."""
    return _BY_REASON.get(reason)


def spec_for_jsonrpc_code(code: int) -> ErrorSpec | None:
    """The row whose JSON-RPC error code is ``code``."""
    return _BY_JSONRPC.get(code)


def spec_for_grpc_code(code: grpc.StatusCode) -> ErrorSpec | None:
    """The row assumed for a bare gRPC code, when no ErrorInfo says more."""
    return _BY_GRPC.get(code)


def to_a2a_error(exc: BaseException) -> A2AError:
    """The error that goes on the wire for ``exc``: ``exc`` itself if it is an A2AError, otherwise a
    contentless InternalError (the exception and its traceback go to this module's logger)."""
    if isinstance(exc, A2AError):
        return exc
    _log.error("unhandled %s reported as INTERNAL", type(exc).__name__, exc_info=exc)
    return InternalError(INTERNAL_MESSAGE)


def wire_grpc_code(err: A2AError) -> grpc.StatusCode:
    """The gRPC code ``err`` goes out with: the table's, even if it was decoded from a peer that used
    another; a transport error keeps the code it arrived with."""
    return err.grpc_code if isinstance(err, TransportError) else err.spec.grpc_code
