"""Our A2A errors in their v0.3 wire forms, per binding, and back (research section 2.4).

Every form is derived from the one table (:data:`a2a_grpc.errors.ERROR_TABLE` and our own rows)
and from the gRPC codec (:func:`a2a_grpc.status.status_of`); what is v0.3's own is only the
JSON-RPC codes v0.3 defines and the HTTP statuses of the v0.3 SDK's REST server.

* JSON-RPC (:func:`to_jsonrpc_error_v03`): the v0.3 codes (-32700, -32600..-32603,
  -32001..-32007). An error v0.3 has no code for (ExtensionSupportRequired -32008,
  VersionNotSupported -32009, and every one of ours: rate limits, authentication, limits...) goes
  out as -32603 InternalError with its message kept, as the official SDK 1.x does; ``data`` holds
  the same ``@type``d ErrorInfo / BadRequest details as on v1.0, so our own clients still decode
  the precise error.
* gRPC (:func:`to_grpc_status_v03`): the v1.0 status code (which SDK 1.x's v0.3 service uses too),
  the details string ``"<ErrorTypeName>: <message>"`` that v0.3 clients parse, and our ErrorInfo
  in the status trailer.
* HTTP+JSON (:func:`to_rest_error_v03`): the HTTP status the v0.3 SDK's REST server sends (422
  invalid params, 409 not cancelable, 501 unsupported and push not supported, 415 content type,
  502 invalid agent response, 404 extended card not configured; otherwise our table's), and a
  body every client generation reads: ``{"message", "type": "<ErrorTypeName>", "error": {the v1.0
  google.rpc.Status body}}``.

The decoders (client side) read any of these, and the official SDKs' forms: the error type's
name first (a ``"<Name>: "`` message prefix, a REST ``type``), then ErrorInfo, then the code
(JSON-RPC code, gRPC status, HTTP status). v0.3's ``AuthenticatedExtendedCardNotConfiguredError``
is our ExtendedAgentCardNotConfiguredError.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from a2a_grpc import errors, status
from a2a_grpc.errors import (
    DOMAINS,
    ERROR_TABLE,
    OUR_ERRORS,
    TRANSPORT_ERRORS,
    A2AError,
    ErrorSpec,
    FieldViolation,
)

__all__ = [
    "V03_JSONRPC_CODES",
    "from_grpc_error_v03",
    "from_jsonrpc_error_v03",
    "from_rest_error_v03",
    "grpc_status_proto_v03",
    "jsonrpc_code_v03",
    "rest_status_v03",
    "spec_for_name_v03",
    "to_grpc_status_v03",
    "to_jsonrpc_error_v03",
    "to_rest_error_v03",
]

_log = logging.getLogger(__name__)

V03_JSONRPC_CODES = frozenset({-32700, -32600, -32601, -32602, -32603, *range(-32007, -32000)})
"""The JSON-RPC error codes A2A v0.3 defines (specification v0.3 section 8)."""

_BY_NAME: dict[str, ErrorSpec] = {row.name: row for row in ERROR_TABLE + OUR_ERRORS + TRANSPORT_ERRORS}
_BY_NAME["AuthenticatedExtendedCardNotConfiguredError"] = errors.ExtendedAgentCardNotConfiguredError.spec

_V03_HTTP = {
    "InvalidParamsError": 422,
    "TaskNotCancelableError": 409,
    "PushNotificationNotSupportedError": 501,
    "UnsupportedOperationError": 501,
    "ContentTypeNotSupportedError": 415,
    "InvalidAgentResponseError": 502,
    "ExtendedAgentCardNotConfiguredError": 404,
}
"""Where the v0.3 SDK's REST server answers another HTTP status than our table (v1.0)."""

_BY_V03_HTTP: dict[int, type[A2AError]] = {
    400: errors.InvalidRequestError,
    401: errors.UnauthenticatedError,
    403: errors.PermissionDeniedError,
    404: errors.TaskNotFoundError,
    409: errors.TaskNotCancelableError,
    413: errors.LimitExceededError,
    415: errors.ContentTypeNotSupportedError,
    422: errors.InvalidParamsError,
    429: errors.RateLimitedError,
    500: errors.InternalError,
    501: errors.UnsupportedOperationError,
    502: errors.InvalidAgentResponseError,
    503: errors.UnavailableError,
    504: errors.DeadlineExceededError,
}
"""The error a bare v0.3 REST status stands for (a v0.3 SDK server's body is only ``{"message"}``):
ambiguous statuses read as the most likely (501: UnsupportedOperation, 400: InvalidRequest)."""
_GRPC_BY_NAME = {code.name: code for code in grpc.StatusCode}


def spec_for_name_v03(name: str) -> ErrorSpec | None:
    """The row of an error type name as v0.3 peers send it (ours, the spec's, SDK 0.3's)."""
    return _BY_NAME.get(name)


def _detail_json(err: A2AError) -> list[dict[str, Any]]:
    """The error's ErrorInfo / BadRequest / RetryInfo as ProtoJSON ``Any`` objects."""
    details = json_format.MessageToDict(status.status_of(err)).get("details", [])
    return [dict(d) for d in details]


def _read_details(raw: object) -> tuple[ErrorSpec | None, dict[str, str], list[FieldViolation]]:
    """The row an ErrorInfo of ours names, its metadata, and the field violations, from ProtoJSON
    details (a list, ``{"details": [...]}`` or one ``@type``d object). A detail that does not parse
    is skipped: it must not hide the error itself."""
    if isinstance(raw, Mapping) and isinstance(raw.get("details"), list):
        raw = raw["details"]
    if isinstance(raw, Mapping) and "@type" in raw:
        raw = [raw]
    row: ErrorSpec | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for item in raw if isinstance(raw, list) else ():
        packed = any_pb2.Any()
        try:
            json_format.ParseDict(item, packed)
        except (json_format.ParseError, TypeError, ValueError, RecursionError):
            _log.debug("skipping an undecodable error detail")
            continue
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if row is None and packed.Unpack(info) and info.domain in DOMAINS:
            row, metadata = errors.spec_for_reason(info.reason), dict(info.metadata)
        elif packed.Unpack(bad):
            violations += [FieldViolation(v.field, v.description) for v in bad.field_violations]
    return row, metadata, violations


def _prefixed(message: str) -> tuple[ErrorSpec, str] | None:
    name, sep, rest = message.partition(": ")
    row = _BY_NAME.get(name) if sep else None
    return (row, rest) if row is not None else None


# -- JSON-RPC -----------------------------------------------------------------------------------


def jsonrpc_code_v03(exc: BaseException) -> int:
    """The v0.3 JSON-RPC code of ``exc``: the table's if v0.3 has it, else -32603."""
    code = errors.to_a2a_error(exc).spec.jsonrpc_code
    return code if code in V03_JSONRPC_CODES else errors.InternalError.spec.jsonrpc_code


def to_jsonrpc_error_v03(exc: BaseException) -> dict[str, Any]:
    """The v0.3 JSON-RPC error object for ``exc``: ``code``, ``message``, and ``data`` (the details)."""
    err = errors.to_a2a_error(exc)
    obj: dict[str, Any] = {"code": jsonrpc_code_v03(err), "message": err.message}
    if details := _detail_json(err):
        obj["data"] = details
    return obj


def from_jsonrpc_error_v03(obj: Mapping[str, Any]) -> A2AError:
    """The :class:`A2AError` of a v0.3 JSON-RPC error object (or a response holding ``error``)."""
    if isinstance(obj.get("error"), Mapping):
        obj = obj["error"]
    message = obj.get("message")
    text = message if isinstance(message, str) else None
    data = obj.get("data")
    reason_row, metadata, violations = _read_details(data)
    if reason_row is None and isinstance(data, Mapping) and "@type" not in data and "details" not in data:
        metadata = {str(k): v if isinstance(v, str) else str(v) for k, v in data.items()}
    code = obj.get("code")
    code_row = errors.spec_for_jsonrpc_code(code) if isinstance(code, int) else None
    row = reason_row or code_row or errors.InternalError.spec
    if text is not None and (prefixed := _prefixed(text)) is not None:
        row, text = prefixed
    return row.exc_type(text, metadata=metadata, field_violations=violations)


# -- gRPC ---------------------------------------------------------------------------------------


def grpc_status_proto_v03(exc: BaseException) -> status_pb2.Status:
    """``exc`` as the ``google.rpc.Status`` of the v0.3 service: our code and details, the message
    ``"<ErrorTypeName>: <message>"``."""
    err = errors.to_a2a_error(exc)
    proto = status.status_of(err)
    proto.message = f"{err.spec.name}: {err.message}"
    return proto


def to_grpc_status_v03(exc: BaseException) -> grpc.Status:
    """The gRPC status a v0.3 server ends a call with (see :func:`grpc_status_proto_v03`)."""
    return rpc_status.to_status(grpc_status_proto_v03(exc))


def from_grpc_error_v03(err: grpc.RpcError) -> A2AError:
    """The :class:`A2AError` a failed v0.3 gRPC call carries: the ``"<Name>: "`` prefix of its
    details first, then our ErrorInfo, then the status code."""
    decoded = status.from_rpc_error(err)
    prefixed = _prefixed(decoded.message)
    if prefixed is None:
        return decoded
    row, text = prefixed
    return row.exc_type(
        text,
        metadata=decoded.metadata,
        field_violations=decoded.field_violations,
        grpc_code=decoded.grpc_code,
    )


# -- HTTP+JSON ----------------------------------------------------------------------------------


def rest_status_v03(exc: BaseException) -> int:
    """The HTTP status of ``exc`` on the v0.3 REST routes."""
    err = errors.to_a2a_error(exc)
    return _V03_HTTP.get(err.spec.name, err.spec.http_status)


def to_rest_error_v03(exc: BaseException, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of ``exc`` on the v0.3 REST routes: ``message`` and ``type`` (read
    by v0.3 clients) and ``error``, the v1.0 ``google.rpc.Status`` body (read by v1.0 clients).
    ``http_status`` overrides the status (a request refused before any operation ran)."""
    err = errors.to_a2a_error(exc)
    http = rest_status_v03(err) if http_status is None else http_status
    body: dict[str, Any] = {"code": http, "status": errors.wire_grpc_code(err).name, "message": err.message}
    if details := _detail_json(err):
        body["details"] = details
    return http, {"message": err.message, "type": err.spec.name, "error": body}


def from_rest_error_v03(http_status: int, body: object) -> A2AError:
    """The :class:`A2AError` of a v0.3 REST error answer: the ``type`` name first (ours, SDK 1.x's,
    or a v1.0 problem ``type`` URI), then the ErrorInfo of an ``error`` object, then its gRPC
    ``status`` name, then the HTTP status (a v0.3 SDK server sends only ``{"message"}``; a 404
    without it is an unknown route: MethodNotFoundError)."""
    o: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    inner: Mapping[str, Any] = o["error"] if isinstance(o.get("error"), Mapping) else {}
    message = o.get("message", inner.get("message", o.get("detail")))
    text = message if isinstance(message, str) else f"HTTP {http_status} with no A2A error body"
    kind = o.get("type")
    row = (spec_for_name_v03(kind) or errors.spec_for_problem_type(kind)) if isinstance(kind, str) else None
    reason_row, metadata, violations = _read_details(inner.get("details"))
    name = inner.get("status")
    code = _GRPC_BY_NAME.get(name) if isinstance(name, str) else None
    row = row or reason_row or (errors.spec_for_grpc_code(code) if code is not None else None)
    if row is None:
        if http_status == 404 and not isinstance(o.get("message"), str):
            row = errors.MethodNotFoundError.spec
        else:
            cls = _BY_V03_HTTP.get(http_status)
            row = cls.spec if cls is not None else errors.TransportError.spec
    if code is None:
        code = row.grpc_code if row is not errors.TransportError.spec else _unknown(http_status)
    return row.exc_type(text, metadata=metadata, field_violations=violations, grpc_code=code)


def _unknown(http_status: int) -> grpc.StatusCode:
    return grpc.StatusCode.INTERNAL if http_status >= 500 else grpc.StatusCode.UNKNOWN
