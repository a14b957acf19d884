"""What operators read over HTTP: ``/metrics``, and whatever else is mounted beside it.

:class:`OpsApp` is a small ASGI app: ``GET /metrics`` answers the Prometheus text format of
prometheus-client's default registry (:mod:`a2a_grpc.observability.metrics` and the agent's own
metrics alike), and more routes can be mounted on it (:meth:`OpsApp.mount`), each an ASGI app at
an exact path (``/debug/a2a/sessions``) or under a prefix ending in ``/`` (``/debug/a2a/``). The
bridge's HTTP front (:class:`a2a_grpc.bridge.app.BridgeApp`) serves one on its own port; a process
without an HTTP port gets one of its own with :class:`OpsServer`, on
``ObservabilitySettings.metrics_host`` and ``metrics_port`` (:func:`ops_server`).

``/metrics`` holds no ids (no label carries one) and is served without authentication, as
Prometheus scrapes it; the metrics port listens on 127.0.0.1 unless configured otherwise. A
mounted app that must be authenticated (the debug endpoints) checks its callers itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Self

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from a2a_grpc.bridge.exchange import Receive, Scope, Send, respond, serve_lifespan
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.observability.settings import ObservabilitySettings

__all__ = ["METRICS_PATH", "ASGIApp", "OpsApp", "OpsServer", "metrics_endpoint", "ops_server"]

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
METRICS_PATH = "/metrics"


async def metrics_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /metrics``: every collector of the default registry, in the Prometheus text format."""
    verb = scope.get("method", "GET")
    if verb not in ("GET", "HEAD"):
        await respond(send, 405, b'{"error":"/metrics takes GET"}', [("allow", "GET, HEAD")])
        return
    body = generate_latest(REGISTRY)
    await respond(send, 200, b"" if verb == "HEAD" else body, media=CONTENT_TYPE_LATEST, length=len(body))


class OpsApp:
    """``/metrics`` (unless ``metrics`` is False) and the ``routes`` given or mounted later: each
    path is exact, or a prefix when it ends with ``/``; the longest match serves. Anything else is 404."""

    def __init__(self, routes: Mapping[str, ASGIApp] | None = None, *, metrics: bool = True) -> None:
        self._exact: dict[str, ASGIApp] = {}
        self._prefixes: dict[str, ASGIApp] = {}
        self.metrics = metrics
        """Whether metrics are served (the bridge's HTTP front counts its bytes only then)."""
        if metrics:
            self.mount(METRICS_PATH, metrics_endpoint)
        for path, app in (routes or {}).items():
            self.mount(path, app)

    def mount(self, path: str, app: ASGIApp) -> None:
        """Serve ``app`` at ``path`` (a prefix if it ends with ``/``); replaces what was there."""
        if not path.startswith("/"):
            raise ValueError(f"a mounted path starts with '/', not {path!r}")
        (self._prefixes if path.endswith("/") else self._exact)[path] = app

    @property
    def paths(self) -> list[str]:
        """What is mounted, exact paths and prefixes."""
        return sorted([*self._exact, *self._prefixes])

    def route(self, path: str) -> ASGIApp | None:
        """The app that serves ``path``, if any."""
        app = self._exact.get(path)
        if app is not None or not self._prefixes:
            return app
        best = max((p for p in self._prefixes if path.startswith(p)), key=len, default=None)
        return None if best is None else self._prefixes[best]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        app = self.route(scope["path"])
        if app is None:
            await respond(send, 404, b'{"error":"not found"}')
            return
        await app(scope, receive, send)


class OpsServer:
    """An :class:`OpsApp` on a port of its own (``host``, ``port``; 0 picks one)."""

    def __init__(self, app: OpsApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.http = HttpServer(app, host, port)

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        return self.http.url

    async def start(self) -> int:
        """Bind and serve; the bound port. OSError if the port is taken."""
        return await self.http.start()

    async def stop(self) -> None:
        await self.http.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def ops_server(
    observability: ObservabilitySettings, routes: Mapping[str, ASGIApp] | None = None
) -> OpsServer | None:
    """The ops port ``observability`` asks for (``metrics_port``; None: none), serving ``/metrics``
    when ``observability.metrics`` is on, and ``routes``."""
    if observability.metrics_port is None:
        return None
    app = OpsApp(routes, metrics=observability.metrics)
    return OpsServer(app, observability.metrics_host, observability.metrics_port)
