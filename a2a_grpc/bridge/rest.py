"""The HTTP+JSON binding (spec section 11): the proto's REST routes, and its error bodies.

Routes are compiled from the ``google.api.http`` rules (:mod:`a2a_grpc.bridge.routes`), tenant bindings
included. Answers are ``application/a2a+json`` (11.1), errors included: ``google.rpc.Status``
bodies (``{"error": {"code", "status", "message", "details"}}``, :func:`to_rest_error`), or RFC
9457 problem details (``application/problem+json``, :func:`to_problem_details`) to a client that
asks for them; :func:`from_rest_error` reads either back, for the reverse bridge. Request bodies
are read as ``application/a2a+json`` or ``application/json``; the other routes read the query
string. Streaming routes answer with Server-Sent Events of ``StreamResponse`` (:mod:`a2a_grpc.bridge.sse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import grpc
from google.protobuf.message import Message

from a2a_grpc import errors
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.accesslog import METHOD_KEY
from a2a_grpc.bridge.card import CardEndpoint
from a2a_grpc.bridge.errordetails import detail_list, read_details, typed_details
from a2a_grpc.bridge.exchange import (
    A2A_JSON,
    PROBLEM_JSON,
    HttpFailure,
    HttpRequest,
    Receive,
    Send,
    challenge_headers,
    check_content_type,
    read_body,
    respond,
    upstream_call,
)
from a2a_grpc.bridge.query import query_to_json
from a2a_grpc.bridge.routes import Route, Router, compile_routes
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.sse import encode_event, serve_stream
from a2a_grpc.bridge.upstream import Upstream
from a2a_grpc.errors import A2AError, ErrorSpec, FieldViolation
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shape import check_json
from a2a_grpc.service import METHODS

__all__ = [
    "RestBinding",
    "from_rest_error",
    "http_status_for",
    "send_rest_error",
    "to_problem_details",
    "to_rest_error",
]

_C = grpc.StatusCode

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
_CODE_OF_REFUSAL = {
    404: _C.NOT_FOUND,
    405: _C.UNIMPLEMENTED,
    413: _C.RESOURCE_EXHAUSTED,
    415: _C.INVALID_ARGUMENT,
    431: _C.RESOURCE_EXHAUSTED,
}
"""The google.rpc.Code of the HTTP statuses a server sets itself when it refuses a request."""
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


# -- errors -------------------------------------------------------------------------------------


def http_status_for(exc: BaseException) -> int:
    """The HTTP status for ``exc`` (spec section 5.4); 500 for anything that is not an A2AError."""
    if not isinstance(exc, A2AError):
        return errors.InternalError.spec.http_status
    if exc.spec is errors.TransportError.spec:
        return _HTTP_BY_GRPC.get(exc.grpc_code, exc.spec.http_status)
    return exc.spec.http_status


def to_rest_error(exc: BaseException, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and ``google.rpc.Status`` body (HTTP+JSON binding) for ``exc``.

    The body is the JSON mapping of ``google.rpc.Status`` as HTTP APIs carry it:
    ``{"error": {"code": <HTTP status>, "status": "<gRPC code name>", "message", "details"}}``,
    the details being the same ``@type``d ErrorInfo / BadRequest objects as on the other bindings.
    ``http_status`` overrides the table's status, for a request refused before any operation ran
    (unknown route 404, wrong verb 405, body too large 413, wrong media type 415, headers too
    large 431).
    """
    err = errors.to_a2a_error(exc)
    code = errors.wire_grpc_code(err)
    if http_status is None:
        http = http_status_for(err)
    else:
        http, code = http_status, _CODE_OF_REFUSAL.get(http_status, code)
    body: dict[str, Any] = {"code": http, "status": code.name, "message": err.message}
    details = detail_list(err)
    if details:
        body["details"] = details
    return http, {"error": body}


def to_problem_details(exc: BaseException, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and RFC 9457 problem object for ``exc`` (``application/problem+json``).

    ``type`` is the spec's URI for A2A-specific errors and ``about:blank`` otherwise; ErrorInfo
    metadata become extension members, field violations a ``fieldViolations`` member.
    ``http_status`` overrides the table's status, as for :func:`to_rest_error`.
    """
    err = errors.to_a2a_error(exc)
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
        reason, metadata, violations = read_details(typed_details(status.get("details")))
        message = status.get("message")
        name = status.get("status")
        code = _GRPC_BY_NAME.get(name) if isinstance(name, str) else None
    elif isinstance(body, Mapping) and isinstance(body.get("type"), str):
        row = errors.spec_for_problem_type(body["type"])
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
    row = row or (errors.spec_for_reason(reason) if reason else None)
    if row is None and code in (_C.UNAVAILABLE, _C.DEADLINE_EXCEEDED):
        row = errors.spec_for_grpc_code(code)
    row = row or errors.TransportError.spec
    if not isinstance(message, str):
        message = f"HTTP {http_status} with no A2A error body"
    return row.exc_type(message, metadata=metadata, field_violations=violations, grpc_code=code)


async def send_rest_error(
    request: HttpRequest,
    send: Send,
    exc: BaseException,
    status: int | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Answer with the error: a Status body, or problem details to a client that asks for them."""
    if request.wants_problem():
        http, body = to_problem_details(exc, status)
        media = PROBLEM_JSON
    else:
        http, body = to_rest_error(exc, status)
        media = A2A_JSON
    await respond(send, http, transcoding.dumps(body), [*headers, *challenge_headers(exc)], media)


# -- the binding --------------------------------------------------------------------------------


class RestBinding:
    """Serves the HTTP+JSON routes over ``upstream``."""

    def __init__(self, upstream: Upstream, settings: BridgeSettings, card: CardEndpoint) -> None:
        self.upstream = upstream
        self.settings = settings
        self.card = card
        self.limits = settings.limits or Limits()
        self.router = Router(compile_routes())  # refuses to start on a method without an HTTP rule

    async def _message(
        self, route: Route, bound: Mapping[str, str], members: dict[str, Any], large: bool
    ) -> Message:
        fields = route.method.input_type.fields_by_name
        for name, value in bound.items():
            json_name = fields[name].json_name
            given = members.get(json_name, members.get(name))
            if given not in (None, value):
                shown = f"{errors.echo(value)} in the path but {errors.echo(given)} in the request"
                raise errors.InvalidParamsError(
                    f"{json_name} is {shown}",
                    field_violations=[FieldViolation(json_name, "differs from the path")],
                )
            members.pop(name, None)
            members[json_name] = value
        return await transcoding.decode_body(members, METHODS[route.method.name].request, in_thread=large)

    def _route(self, request: HttpRequest) -> tuple[Route, dict[str, str]]:
        return match_route(self.router, request)

    async def _members(
        self, route: Route, request: HttpRequest, receive: Receive
    ) -> tuple[dict[str, Any], bool]:
        """The request's JSON members: the body's, or the query string's; and whether the body is
        large (over ``offload_bytes``: decoded in a worker thread)."""
        query = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
        if route.body != "*":
            return query_to_json(route.method, query), False
        body = await read_body(request, receive, self.settings.max_body_bytes)
        check_content_type(request, has_body=bool(body.strip()), preferred=A2A_JSON)
        if given := query_to_json(route.method, query):  # unknown parameters are ignored (5.7)
            name = next(iter(given))
            raise errors.InvalidParamsError(
                f"{request.verb} {route.template} reads its parameters from the body: "
                f"send {name} there, not in the query",
                field_violations=[FieldViolation(name, "belongs in the body")],
            )
        members = await transcoding.parse_body(body, self.settings.offload_bytes) if body.strip() else {}
        if not isinstance(members, dict):
            raise errors.InvalidParamsError("the request body must be a JSON object")
        # What the request holds is judged on the parsed JSON: transcoding costs far more. A large
        # body is judged (and transcoded) in a worker thread: the loop serves others meanwhile.
        kind, large = METHODS[route.method.name].request, len(body) > self.settings.offload_bytes
        if large:
            await asyncio.to_thread(check_json, members, members, kind, self.limits)
        else:
            check_json(members, members, kind, self.limits)
        return members, large

    async def serve(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        """Answer a request that is not for ``/`` or the card; :class:`HttpFailure` for no route."""
        route, bound = self._route(request)
        name = route.method.name
        request.scope[METHOD_KEY] = name  # for the access log
        try:
            members, large = await self._members(route, request, receive)
            message = await self._message(route, bound, members, large)
            call = upstream_call(request, self.settings)
        except errors.A2AError as exc:
            await send_rest_error(request, send, exc)
            return
        if route.streaming:

            def encode(event: Message) -> bytes:
                answer = transcoding.encode(event, fault=errors.InvalidAgentResponseError)
                return encode_event(transcoding.dumps(answer))

            def encode_error(exc: BaseException) -> bytes:
                return encode_event(transcoding.dumps(to_rest_error(exc)[1]), "error")

            async def refuse(exc: BaseException) -> None:
                await send_rest_error(request, send, exc)

            events = self.upstream.stream(name, message, call)
            await serve_stream(
                events, receive, send, self.settings, encode=encode, encode_error=encode_error, refuse=refuse
            )
            return
        try:
            result = self.card.published(await self.upstream.unary(name, message, call))
            answer = await transcoding.encode_answer(
                result, self.settings.offload_bytes, fault=errors.InvalidAgentResponseError
            )
        except Exception as exc:
            await send_rest_error(request, send, exc)
            return
        await respond(send, 200, transcoding.dumps(answer), media=A2A_JSON)


def match_route(
    router: Router, request: HttpRequest, *, kind: str = "", hint: str = ""
) -> tuple[Route, dict[str, str]]:
    """The route ``request`` takes and its path variables; else the refusal: 405 naming the verbs
    the path allows, 404 for a path no route has (its message says "no <kind>route", then
    ``hint``), 400 for a path variable that is no UTF-8 text."""
    try:
        route, found = router.match(request.verb, request.path)
    except errors.A2AError as exc:  # a path variable that is not UTF-8 text
        raise HttpFailure(errors.InvalidParamsError.spec.http_status, exc) from None
    if route is None:
        assert isinstance(found, list)
        if found:
            error = errors.MethodNotFoundError(
                f"{errors.echo(request.verb)} is not allowed on {errors.echo(request.path)}; "
                f"allowed: {', '.join(found)}"
            )
            raise HttpFailure(405, error, [("allow", ", ".join(found))])
        error = errors.MethodNotFoundError(
            f"no {kind}route for {errors.echo(request.verb)} {errors.echo(request.path)}{hint}"
        )
        raise HttpFailure(404, error)
    assert isinstance(found, dict)
    return route, found
