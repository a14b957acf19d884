"""The JSON-RPC binding (spec section 9): ``POST /`` of the bridge, and its error objects.

Requests and answers are ``application/json`` (9.1). Method names are the RPC names of the
method table (:data:`a2a_grpc.service.METHODS`); ``params`` and ``result`` are ProtoJSON
(:mod:`a2a_grpc.bridge.transcoding`). Errors carry the section 5.4 code and the ``@type``d ErrorInfo /
BadRequest details in ``data`` (:func:`to_jsonrpc_error`; :func:`from_jsonrpc_error` reads them
back, for the reverse bridge). JSON-RPC errors travel with HTTP 200 (the request reached the
JSON-RPC layer); only a refused body or header (413, 415, 431) has another status. Streaming
methods answer with Server-Sent Events whose data are JSON-RPC responses (:mod:`a2a_grpc.bridge.sse`).

The v0.3 method names (``message/send`` ...) are served at the same endpoint
(:mod:`a2a_grpc.bridge.v03front`): their params and results in the v0.3 JSON shapes
(:mod:`a2a_grpc.v03.jsonrpc_methods`), their errors in v0.3 form (codes v0.3 lacks are -32603,
:func:`a2a_grpc.v03.errors.to_jsonrpc_error_v03`), the upstream called exactly as for v1.0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from a2a_grpc import errors
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.accesslog import METHOD_KEY
from a2a_grpc.bridge.card import CardEndpoint
from a2a_grpc.bridge.errordetails import detail_list, read_details, string_map, typed_details
from a2a_grpc.bridge.exchange import (
    JSON,
    HttpFailure,
    HttpRequest,
    Receive,
    Send,
    challenge_headers,
    check_content_type,
    read_body,
    requested_version,
    respond,
    upstream_call,
)
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.sse import encode_event, send_event_stream, serve_stream
from a2a_grpc.bridge.upstream import Upstream
from a2a_grpc.bridge.v03front import check_v03_version, v03_call
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shape import check_json
from a2a_grpc.service import METHODS
from a2a_grpc.v03.errors import to_jsonrpc_error_v03
from a2a_grpc.v03.jsonrpc_methods import V03Method, method_table

__all__ = ["JsonRpcBinding", "from_jsonrpc_error", "to_jsonrpc_error"]


def to_jsonrpc_error(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error object for ``exc``: ``code``, ``message`` and typed-details ``data``."""
    err = errors.to_a2a_error(exc)
    data = detail_list(err)
    obj: dict[str, Any] = {"code": err.spec.jsonrpc_code, "message": err.message}
    if data:
        obj["data"] = data
    return obj


def from_jsonrpc_error(obj: Mapping[str, Any]) -> errors.A2AError:
    """The :class:`A2AError` for a JSON-RPC error object (or a whole response holding ``error``)."""
    if isinstance(obj.get("error"), Mapping):
        obj = obj["error"]
    data = obj.get("data")
    details = typed_details(data)
    reason, metadata, violations = read_details(details)
    if not details:
        metadata = string_map(data)  # a flat ``data`` object is read as metadata
    code = obj.get("code")
    row = (
        (errors.spec_for_reason(reason) if reason else None)
        or (errors.spec_for_jsonrpc_code(code) if isinstance(code, int) else None)
        or errors.InternalError.spec
    )
    message = obj.get("message")
    return row.exc_type(
        message if isinstance(message, str) else None, metadata=metadata, field_violations=violations
    )


def _answer(rpc_id: Any, member: str, value: Any) -> bytes:
    return transcoding.dumps({"jsonrpc": "2.0", "id": rpc_id, member: value})


ErrorForm = Callable[[BaseException], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Rpc:
    """One JSON-RPC method as this binding serves it, in either protocol generation."""

    upstream: str
    """The v1.0 method the upstream is called with."""
    request: type[Message]
    """The v1.0 request (the limits read its parsed JSON: v0.3 params have the same members)."""
    streaming: bool
    decode: Callable[[object], Message]
    """``params`` -> the v1.0 request."""
    encode: Callable[[Message], Any]
    """The v1.0 answer (or one event) -> ``result`` JSON."""
    error: ErrorForm
    v03: bool = False


def _v10_rpc(name: str) -> _Rpc | None:
    method = METHODS.get(name)
    if method is None:
        return None
    return _Rpc(
        name,
        method.request,
        method.streaming,
        lambda params: transcoding.decode(params, method.request),
        lambda answer: transcoding.encode(answer, fault=errors.InvalidAgentResponseError),
        to_jsonrpc_error,
    )


def _v03_rpc(row: V03Method) -> _Rpc:
    def encode(answer: Message) -> Any:
        try:
            return row.encode_result(answer)
        except errors.InvalidParamsError as exc:  # the agent's answer, not the caller's request
            violations = exc.field_violations
            raise errors.InvalidAgentResponseError(exc.message, field_violations=violations) from None

    return _Rpc(
        row.v10,
        METHODS[row.v10].request,
        row.streaming,
        row.decode_params,
        encode,
        to_jsonrpc_error_v03,
        v03=True,
    )


class JsonRpcBinding:
    """Serves JSON-RPC requests over ``upstream``: the v1.0 methods, and (``serve_v03``) the v0.3
    ones, by name (:mod:`a2a_grpc.bridge.v03front`)."""

    def __init__(self, upstream: Upstream, settings: BridgeSettings, card: CardEndpoint) -> None:
        self.upstream = upstream
        self.settings = settings
        self.card = card
        self.limits = settings.limits or Limits()
        table = method_table(encode_card=card.v03_json) if settings.serve_v03 else {}
        self._v03 = {name: _v03_rpc(row) for name, row in table.items()}

    def _rpc(self, name: str) -> _Rpc:
        rpc = _v10_rpc(name) or self._v03.get(name)
        if rpc is None:
            shown = errors.echo(name)
            raise errors.MethodNotFoundError(f"method {shown} not found", metadata={"method": name})
        return rpc

    async def serve(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        rpc_id: Any = None
        form: ErrorForm = to_jsonrpc_error  # until a v0.3 method is named
        try:
            check_content_type(request, has_body=True, preferred=JSON)
            body = await read_body(request, receive, self.settings.max_body_bytes)
            envelope = await transcoding.parse_body(body, self.settings.offload_bytes)
            if not isinstance(envelope, dict):
                kind = "a batch (an array)" if isinstance(envelope, list) else transcoding.json_kind(envelope)
                raise errors.InvalidRequestError(f"a JSON-RPC request must be an object, not {kind}")
            rpc_id = envelope.get("id")
            if "id" not in envelope:
                raise errors.InvalidRequestError("request has no id: A2A methods always answer")
            if not isinstance(rpc_id, str | int) or isinstance(rpc_id, bool):
                rpc_id = None
                raise errors.InvalidRequestError("id must be a string or an integer")
            if isinstance(rpc_id, str) and len(rpc_id) > (most := self.settings.max_jsonrpc_id_chars):
                # Every answer (each SSE event too) repeats the id: a huge one is refused, not echoed.
                rpc_id, length = None, len(rpc_id)
                raise errors.InvalidRequestError(f"id is {length} characters long: at most {most} are read")
            if envelope.get("jsonrpc") != "2.0":
                raise errors.InvalidRequestError('jsonrpc must be "2.0"')
            name = envelope.get("method")
            if not isinstance(name, str):
                raise errors.InvalidRequestError("method must be a string")
            rpc = self._rpc(name)
            form = rpc.error
            request.scope[METHOD_KEY] = name  # for the access log
            if rpc.v03:
                check_v03_version(requested_version(request))
            # What the request holds is judged on the parsed JSON: transcoding costs far more. A
            # large body is judged and transcoded in a worker thread (Python code: the loop serves
            # others meanwhile).
            params = envelope.get("params", {})
            large = len(body) > self.settings.offload_bytes
            if large:
                await asyncio.to_thread(check_json, envelope, params, rpc.request, self.limits)
                message = await asyncio.to_thread(rpc.decode, params)
            else:
                check_json(envelope, params, rpc.request, self.limits)
                message = rpc.decode(params)
            call = upstream_call(request, self.settings)
            if rpc.v03:
                call = v03_call(request, call)
        except HttpFailure as failure:
            body = _answer(rpc_id, "error", form(failure.error))
            await respond(send, failure.status, body, failure.headers)
            return
        except errors.A2AError as exc:
            await self._error(send, rpc_id, exc, form)
            return
        if rpc.streaming:

            def encode(event: Message) -> bytes:
                return encode_event(_answer(rpc_id, "result", rpc.encode(event)))

            def encode_error(exc: BaseException) -> bytes:
                return encode_event(_answer(rpc_id, "error", rpc.error(exc)), "error")

            async def refuse(exc: BaseException) -> None:
                if rpc.v03:  # an event stream whatever happens: v0.3 clients read nothing else
                    await send_event_stream(send, encode_error(exc))
                else:
                    await self._error(send, rpc_id, exc, rpc.error)

            events = self.upstream.stream(rpc.upstream, message, call)
            await serve_stream(
                events, receive, send, self.settings, encode=encode, encode_error=encode_error, refuse=refuse
            )
            return
        try:
            result = self.card.published(await self.upstream.unary(rpc.upstream, message, call))
            if result.ByteSize() > self.settings.offload_bytes:  # a task holding large parts
                answer = await asyncio.to_thread(rpc.encode, result)
            else:
                answer = rpc.encode(result)
        except Exception as exc:
            await self._error(send, rpc_id, exc, rpc.error)
            return
        await respond(send, 200, _answer(rpc_id, "result", answer))

    async def _error(self, send: Send, rpc_id: Any, exc: BaseException, form: ErrorForm) -> None:
        # A refusal of credentials is an HTTP 401 with its challenge, a rate limit a 429 and a
        # draining server a 503, both with Retry-After (the body still a JSON-RPC error): HTTP
        # clients, proxies and load balancers handle these at that level.
        headers = challenge_headers(exc)
        status = 200
        if isinstance(exc, errors.UnauthenticatedError) and headers:
            status = 401
        elif isinstance(exc, errors.RateLimitedError | errors.ServerDrainingError):
            status = exc.spec.http_status
        body = _answer(rpc_id, "error", form(exc))
        await respond(send, status, body, headers)
