"""The HTTP front of the bridge: one ASGI app that dispatches each request to what serves it.

Served at the bridge's root URL, over any upstream (:mod:`a2a_grpc.bridge.upstream`):

* ``POST /``: JSON-RPC 2.0 (spec section 9, :mod:`a2a_grpc.bridge.jsonrpc`);
* the HTTP+JSON routes (section 11, :mod:`a2a_grpc.bridge.rest`) compiled from the proto's
  ``google.api.http`` rules, tenant bindings included;
* ``GET /.well-known/agent-card.json``: the upstream card with this bridge's interfaces
  (:mod:`a2a_grpc.bridge.card`);
* A2A v0.3 beside v1.0 (``BridgeSettings.serve_v03``, :mod:`a2a_grpc.bridge.v03front`): the v0.3
  JSON-RPC method names at ``POST /``, and the v0.3 HTTP+JSON routes (:mod:`a2a_grpc.bridge.rest03`)
  for ``/v1/...`` requests whose ``A2A-Version`` (header, else query parameter) is absent or 0.x;
  with 1.x they are v1.0's (tenant ``v1``);
* ``GET /healthz``: 200 ``SERVING`` while the app serves, 503 ``NOT_SERVING`` once it drains
  (:attr:`BridgeApp.serving` False; docs/shutdown.md);
* ``GET /metrics``: the Prometheus metrics of the process, and whatever else is mounted on
  :attr:`BridgeApp.ops` (:mod:`a2a_grpc.bridge.ops`);
* ``GET /.well-known/jwks.json``: the public keys of this agent's delegation tokens, when
  ``BridgeSettings.jwks`` holds them (:mod:`a2a_grpc.security.delegation`);
* ``/debug/a2a/...``: the debug endpoints, when given (``debug``, :mod:`a2a_grpc.bridge.debug`).

Streaming methods answer with Server-Sent Events (:mod:`a2a_grpc.bridge.sse`). Headers cross to the upstream
through an allowlist (``authorization``, ``a2a-*``, ``traceparent``, ``tracestate``);
``Grpc-Timeout`` (``5S``, ``250m``, or plain seconds) becomes the upstream deadline. What crosses
must fit gRPC metadata whatever the upstream: printable ASCII (an ``a2a-…-bin`` header: base64),
else 400 naming the header; at most :attr:`BridgeSettings.max_forwarded_header_bytes` in all, else
431 (:func:`a2a_grpc.bridge.exchange.upstream_call`). A request refused before it reaches a binding (405,
413, 415, 431, unknown route) is answered with a ``google.rpc.Status`` body; a bug of ours with a
logged traceback and an "internal error".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import MutableMapping
from typing import Any

from a2a_grpc import errors
from a2a_grpc.bridge.accesslog import access_logged
from a2a_grpc.bridge.card import CardEndpoint
from a2a_grpc.bridge.exchange import (
    ClientGone,
    HttpFailure,
    HttpRequest,
    Receive,
    Scope,
    Send,
    respond,
    serve_lifespan,
)
from a2a_grpc.bridge.jsonrpc import JsonRpcBinding
from a2a_grpc.bridge.ops import OpsApp
from a2a_grpc.bridge.rest import RestBinding, send_rest_error
from a2a_grpc.bridge.rest03 import RestV03Binding
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import CARD_PATH, Upstream
from a2a_grpc.bridge.v03front import is_v03_rest
from a2a_grpc.observability.metrics import HTTP_BINDING, WIRES
from a2a_grpc.security.limits import Limits

__all__ = ["BridgeApp"]

log = logging.getLogger("a2a_grpc.bridge.app")

JWKS_PATH = "/.well-known/jwks.json"
"""Where the public keys of this agent's delegation tokens are published (``BridgeSettings.jwks``)."""


class BridgeApp:
    """ASGI app serving the JSON-RPC and HTTP+JSON bindings and the card of one upstream agent."""

    def __init__(
        self, upstream: Upstream, settings: BridgeSettings | None = None, *, ops: OpsApp | None = None
    ) -> None:
        self.upstream = upstream
        self.ops = ops if ops is not None else OpsApp()
        """``/metrics`` and what else is mounted on it (:mod:`a2a_grpc.bridge.ops`; the debug
        endpoints, ``/debug/a2a/``, in ``AgentStack``), served before the HTTP+JSON routes;
        ``OpsApp(metrics=False)`` serves no metrics."""
        settings = settings or BridgeSettings()
        if settings.limits is None:  # the in-process server's, so that both fronts refuse alike
            handler = getattr(upstream, "handler", None)
            limits = getattr(handler, "limits", None)
            limits = limits if isinstance(limits, Limits) else Limits()
            settings = dataclasses.replace(settings, limits=limits)
        self.settings = settings
        self.card = CardEndpoint(
            upstream, self.settings.card_max_age, self.settings.public_url, serve_v03=self.settings.serve_v03
        )
        self.jsonrpc = JsonRpcBinding(upstream, self.settings, self.card)
        self.rest = RestBinding(upstream, self.settings, self.card)
        self.rest03 = RestV03Binding(upstream, self.settings, self.card) if self.settings.serve_v03 else None
        jwks = self.settings.jwks
        self._jwks = json.dumps(dict(jwks), separators=(",", ":")).encode() if jwks is not None else None
        self.serving = True
        """False once the server behind it drains: ``/healthz`` answers 503, so load balancers stop
        sending (the calls themselves are refused by the server's drain gate)."""

    @property
    def public_url(self) -> str | None:
        """The base URL the card names for the bridge's interfaces (settable once the port is known)."""
        return self.card.public_url

    @public_url.setter
    def public_url(self, url: str | None) -> None:
        self.card.public_url = url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.settings.log_requests and scope["type"] == "http":
            await access_logged(self._serve, scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
            return
        if kind != "http":
            return
        request = HttpRequest(scope)
        path = request.path

        async def refuse(exc: BaseException) -> None:
            await send_rest_error(request, send, exc)

        try:
            if path == "/":
                if request.verb != "POST":
                    raise HttpFailure(
                        405,
                        errors.MethodNotFoundError(
                            f"{errors.echo(request.verb)} / is not served: JSON-RPC takes POST"
                        ),
                        [("allow", "POST")],
                    )
                HTTP_BINDING.set("jsonrpc")  # this request's task only: the metrics link reads it
                if self.ops.metrics:
                    receive, send = _counted("jsonrpc", receive, send)
                await self.jsonrpc.serve(request, receive, send)
            elif path == CARD_PATH:
                await self.card.serve(request, send, refuse)
            elif path == JWKS_PATH and self._jwks is not None and request.verb in ("GET", "HEAD"):
                cache = [("cache-control", f"public, max-age={self.settings.card_max_age}")]
                body = b"" if request.verb == "HEAD" else self._jwks
                await respond(
                    send, 200, body, cache, media="application/jwk-set+json", length=len(self._jwks)
                )
            elif path == "/healthz" and request.verb in ("GET", "HEAD"):
                if self.serving:
                    await respond(send, 200, b'{"status":"SERVING"}')
                else:
                    await respond(send, 503, b'{"status":"NOT_SERVING"}')
            elif (ops := self.ops.route(scope["path"])) is not None:
                await ops(scope, receive, send)
            else:
                HTTP_BINDING.set("rest")
                if self.ops.metrics:
                    receive, send = _counted("rest", receive, send)
                # Header first (spec 3.6.1): A2A-Version 1.x is v1.0 (/v1/... is then tenant "v1"),
                # none or 0.x on /v1/... is v0.3; anything else is v1.0's to answer (or refuse).
                if self.rest03 is not None and is_v03_rest(request):
                    await self.rest03.serve(request, receive, send)
                else:
                    await self.rest.serve(request, receive, send)
        except HttpFailure as failure:  # refused before reaching a binding: Status body
            await send_rest_error(request, send, failure.error, failure.status, failure.headers)
        except ClientGone:
            return
        except Exception:  # a bug of ours: logged with its traceback, answered as "internal error"
            log.exception("unhandled error serving %s %s", request.verb, request.path)
            with contextlib.suppress(Exception):  # fails if the response had already started
                await send_rest_error(request, send, errors.InternalError(errors.INTERNAL_MESSAGE))


def _counted(binding: str, receive: Receive, send: Send) -> tuple[Receive, Send]:
    """``receive`` and ``send``, adding the body bytes they carry to ``binding``'s
    ``a2a_received_bytes_total`` and ``a2a_sent_bytes_total``."""
    wire = WIRES[binding]

    async def counted_receive() -> MutableMapping[str, Any]:
        message = await receive()
        wire.received += len(message.get("body", b""))
        return message

    async def counted_send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            wire.sent += len(message.get("body", b""))
        await send(message)

    return counted_receive, counted_send
