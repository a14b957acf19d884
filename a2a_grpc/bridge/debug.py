"""The debug endpoints over HTTP: a self-contained ASGI app (:class:`DebugApp`).

* ``GET /debug/a2a/sessions``: the caller's live sessions, a JSON list
  (:func:`a2a_grpc.observability.debug.sessions_view`);
* ``GET /debug/a2a/sessions/{session_id}``: one of them, with its handshake negotiation.

Authenticated exactly like calls: the server's :class:`~a2a_grpc.security.authentication.Authentication`
(``ServerSettings.authentication``) checks the request's headers (and a mutual-TLS client
certificate), so a request without credentials is answered 401 with ``WWW-Authenticate``. A
principal sees its own sessions only: another principal's session id is 404, as an unknown one
is (no existence leak, like tasks). Without authentication every session is shown: serve it on
loopback only, like the rest of such a server. Other verbs are 405; any other path 404.

Mounting: :func:`debug_routes` gives the routes of a gRPC server's debug endpoints (none when its
``ObservabilitySettings.debug_endpoints`` is False), for an :class:`a2a_grpc.bridge.ops.OpsApp`:
``AgentStack`` serves them on the bridge's HTTP port and on the metrics port, the reverse bridge
on its metrics port. Anywhere else, route every request whose path starts with :data:`PREFIX` to
a :class:`DebugApp`, with the path unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from a2a_grpc import errors
from a2a_grpc.bridge.exchange import HttpFailure, HttpRequest, Receive, Scope, Send, respond
from a2a_grpc.bridge.rest import send_rest_error
from a2a_grpc.observability.debug import session_view, sessions_view, visible_session
from a2a_grpc.security.authentication import Authentication
from a2a_grpc.service import CallContext
from a2a_grpc.session.server import SessionHost

if TYPE_CHECKING:
    from a2a_grpc.bridge.ops import ASGIApp
    from a2a_grpc.server import GrpcService

__all__ = ["PREFIX", "SESSIONS_PATH", "DebugApp", "debug_routes"]

PREFIX = "/debug/a2a/"
"""Every path the app serves starts with this."""
SESSIONS_PATH = "/debug/a2a/sessions"
_NO_STORE = [("cache-control", "no-store")]


class DebugApp:
    """The debug endpoints (see the module doc) of the sessions ``sessions()`` gives (None: the
    server is not serving yet: an empty list), behind ``authentication`` (None: none)."""

    def __init__(
        self, sessions: Callable[[], SessionHost | None], authentication: Authentication | None = None
    ) -> None:
        self.sessions = sessions
        self.authentication = authentication

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = HttpRequest(scope)
        try:
            await self._serve(request, send)
        except HttpFailure as failure:
            await send_rest_error(
                request, send, failure.error, failure.status, [*failure.headers, *_NO_STORE]
            )
        except errors.A2AError as exc:  # the error table's status: 401 for UnauthenticatedError
            await send_rest_error(request, send, exc, None, _NO_STORE)

    async def _serve(self, request: HttpRequest, send: Send) -> None:
        path = request.path
        if path == SESSIONS_PATH or path == SESSIONS_PATH + "/":
            session_id = None
        elif path.startswith(SESSIONS_PATH + "/"):
            session_id = path[len(SESSIONS_PATH) + 1 :]
        else:
            raise HttpFailure(
                404, errors.MethodNotFoundError(f"no debug endpoint at {errors.echo(path, 200)}")
            )
        if request.verb != "GET":
            refused = errors.MethodNotFoundError(f"{errors.echo(request.verb)}: the debug endpoints take GET")
            raise HttpFailure(405, refused, [("allow", "GET")])
        context = CallContext.from_headers(
            request.headers, peer=request.peer, front="http", client_certificate=request.client_certificate
        )
        if self.authentication is not None:
            context = await self.authentication.authenticate(context)
        host = self.sessions()
        body: list[dict[str, Any]] | dict[str, Any]
        if session_id is None:
            body = sessions_view(host, context.principal)
        else:
            # Another principal's session is as absent as an unknown one; so is a malformed id
            # (a "/" in it, a huge one): looked up as given, found by nobody.
            session = visible_session(host, session_id, context.principal) if host is not None else None
            if session is None:
                unknown = errors.SessionUnknownError(f"no session {errors.echo(session_id, 64)} here")
                raise HttpFailure(404, unknown)
            body = session_view(session, handshake=True)
        await respond(send, 200, json.dumps(body, ensure_ascii=False).encode(), _NO_STORE)


def debug_routes(server: GrpcService) -> dict[str, ASGIApp]:
    """The debug endpoints of ``server``'s sessions, as routes to mount (see the module doc)."""
    if not server.settings.observability.debug_endpoints:
        return {}
    return {PREFIX: DebugApp(lambda: server.sessions, server.settings.authentication)}
