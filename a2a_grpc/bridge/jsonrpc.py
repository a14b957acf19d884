"""The JSON-RPC binding (spec section 9): ``POST /`` of the bridge, and its error objects.

Requests and answers are ``application/json`` (9.1). Method names are the RPC names of the
method table (:data:`a2a_grpc.service.METHODS`); ``params`` and ``result`` are ProtoJSON
(:mod:`a2a_grpc.bridge.transcoding`). Errors carry the section 5.4 code and the ``@type``d ErrorInfo /
BadRequest details in ``data`` (:func:`to_jsonrpc_error`; :func:`from_jsonrpc_error` reads them
back, for the reverse bridge). JSON-RPC errors travel with HTTP 200 (the request reached the
JSON-RPC layer); only a refused body or header (413, 415, 431) has another status. Streaming
methods answer with Server-Sent Events whose data are JSON-RPC responses (:mod:`a2a_grpc.bridge.sse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
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
    respond,
    upstream_call,
)
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.sse import encode_event, serve_stream
from a2a_grpc.bridge.upstream import Upstream
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shape import check_json
from a2a_grpc.service import METHODS

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


class JsonRpcBinding:
    """Serves JSON-RPC requests over ``upstream``."""

    def __init__(self, upstream: Upstream, settings: BridgeSettings, card: CardEndpoint) -> None:
        self.upstream = upstream
        self.settings = settings
        self.card = card
        self.limits = settings.limits or Limits()

    async def serve(self, request: HttpRequest, receive: Receive, send: Send) -> None:
        rpc_id: Any = None
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
            method = METHODS.get(name)
            if method is None:
                raise errors.MethodNotFoundError(
                    f"method {errors.echo(name)} not found", metadata={"method": name}
                )
            request.scope[METHOD_KEY] = name  # for the access log
            # What the request holds is judged on the parsed JSON: transcoding costs far more. A
            # large body is judged and transcoded in a worker thread (Python code: the loop serves
            # others meanwhile).
            params = envelope.get("params", {})
            large = len(body) > self.settings.offload_bytes
            if large:
                await asyncio.to_thread(check_json, envelope, params, method.request, self.limits)
            else:
                check_json(envelope, params, method.request, self.limits)
            message = await transcoding.decode_body(params, method.request, in_thread=large)
            call = upstream_call(request, self.settings)
        except HttpFailure as failure:
            body = _answer(rpc_id, "error", to_jsonrpc_error(failure.error))
            await respond(send, failure.status, body, failure.headers)
            return
        except errors.A2AError as exc:
            await self._error(send, rpc_id, exc)
            return
        if method.streaming:

            def encode(event: Message) -> bytes:
                answer = transcoding.encode(event, fault=errors.InvalidAgentResponseError)
                return encode_event(_answer(rpc_id, "result", answer))

            def encode_error(exc: BaseException) -> bytes:
                return encode_event(_answer(rpc_id, "error", to_jsonrpc_error(exc)), "error")

            async def refuse(exc: BaseException) -> None:
                await self._error(send, rpc_id, exc)

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
            await self._error(send, rpc_id, exc)
            return
        await respond(send, 200, _answer(rpc_id, "result", answer))

    async def _error(self, send: Send, rpc_id: Any, exc: BaseException) -> None:
        # A refusal of credentials is an HTTP 401 with its challenge, a rate limit a 429 and a
        # draining server a 503, both with Retry-After (the body still a JSON-RPC error): HTTP
        # clients, proxies and load balancers handle these at that level.
        headers = challenge_headers(exc)
        status = 200
        if isinstance(exc, errors.UnauthenticatedError) and headers:
            status = 401
        elif isinstance(exc, errors.RateLimitedError | errors.ServerDrainingError):
            status = exc.spec.http_status
        body = _answer(rpc_id, "error", to_jsonrpc_error(exc))
        await respond(send, status, body, headers)
