"""One agent served over gRPC and over the two JSON bindings, from one process: one object.

    from a2a_grpc.bridge.stack import AgentStack

    async with AgentStack(Shout(), store="sqlite:///tasks.db", grpc_port=50051, http_port=8080) as stack:
        print(stack.grpc_address, stack.http_url)
        await stack.wait()

This is what ``a2a-grpc serve --http-port`` runs: an :class:`a2a_grpc.server.A2AServer` (A2AService,
the public card service, health checking, reflection) and, in the same event loop, the bridge's
HTTP front (:class:`a2a_grpc.bridge.app.BridgeApp`) over the server's own request handler, so a JSON call
costs no extra network hop; it goes through the server's call seam, so the interceptors of
``ServerSettings.interceptors`` see the calls of every binding. The agent card lists the gRPC
interface first, then JSON-RPC and HTTP+JSON; ``/.well-known/agent-card.json`` serves it. Without
``http_port`` only gRPC is served.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Self

from a2a_grpc.agent import Agent
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.push import PushNotifier
from a2a_grpc.security.authentication import check_exposure
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import TaskStore, open_store
from a2a_grpc.types import AgentCard

if TYPE_CHECKING:
    from a2a_grpc.bridge.app import BridgeApp
    from a2a_grpc.bridge.httpserver import HttpServer
    from a2a_grpc.bridge.ops import OpsServer

__all__ = ["AgentStack"]


class AgentStack:
    """An agent on gRPC and (with ``http_port``) JSON-RPC + HTTP+JSON; start, then stop, once.

    ``store`` is a :class:`TaskStore` (left open on stop: it is yours) or a store URL for
    :func:`a2a_grpc.tasks.open_store` (opened on start, closed on stop). ``grpc`` holds the gRPC
    server's settings; ``grpc_port`` and ``host``, when given, override its port and host.
    ``http_port`` 0 picks a free port; ``http_host`` defaults to the gRPC host. ``bridge`` holds the
    HTTP front's settings (its ``public_url`` names the JSON interfaces in the card; default: the
    address it listens on). With ``grpc.tls`` both ports serve TLS with those settings. Push
    notifications are delivered by a :class:`PushNotifier` of the stack's own unless one is given.
    """

    def __init__(
        self,
        agent: Agent,
        store: TaskStore | str = "memory",
        *,
        grpc: ServerSettings | None = None,
        host: str | None = None,
        grpc_port: int | None = None,
        http_port: int | None = None,
        http_host: str | None = None,
        bridge: BridgeSettings | None = None,
        notifier: PushNotifier | None = None,
    ) -> None:
        settings = grpc or ServerSettings()
        if host is not None:
            settings = dataclasses.replace(settings, host=host)
        if grpc_port is not None:
            settings = dataclasses.replace(settings, port=grpc_port)
        self.grpc_settings = settings
        self.agent = agent
        self.bridge_settings = bridge or BridgeSettings()
        self.http_port = http_port
        self.http_host = http_host or self.grpc_settings.host
        self._store_spec = store
        self.store: TaskStore | None = None if isinstance(store, str) else store
        self._own_notifier = notifier is None
        self.notifier = notifier
        self.server: A2AServer | None = None
        self.http: HttpServer | None = None
        self.ops: OpsServer | None = None
        """The metrics port (``grpc.observability.metrics_port``), once started; None without one."""
        self._app: BridgeApp | None = None
        self._started = False

    # -- where it is -------------------------------------------------------------------------------

    @property
    def grpc_address(self) -> str:
        """``HOST:PORT`` of the gRPC server (the bound port, once started)."""
        return self._server().address

    @property
    def http_url(self) -> str | None:
        """Base URL of the JSON bindings (``http://HOST:PORT``, ``https://`` with TLS), or None
        without ``http_port``."""
        return self.http.url if self.http is not None else None

    @property
    def card(self) -> AgentCard:
        """The public card as served (gRPC interface first, then the JSON ones)."""
        handler = self._server().handler
        assert handler is not None
        return handler.card

    def _server(self) -> A2AServer:
        if self.server is None:
            raise RuntimeError("the AgentStack is not started")
        return self.server

    # -- life --------------------------------------------------------------------------------------

    async def start(self) -> Self:
        """Open the store (if given as a URL), bind both ports, serve. OSError if a port is taken."""
        if self._started:
            raise RuntimeError("an AgentStack starts once")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start(self) -> None:
        if self.store is None:
            assert isinstance(self._store_spec, str)
            self.store = open_store(self._store_spec)
        if self.notifier is None:
            self.notifier = PushNotifier()
        interfaces = []
        if self.http_port is not None:
            auth = self.grpc_settings.authentication
            check_exposure(
                self.http_host, auth, self.grpc_settings.allow_unauthenticated, "JSON-RPC and HTTP+JSON"
            )
            if auth is not None:  # the headers the schemes read must reach the seam
                forwarded = tuple(dict.fromkeys([*self.bridge_settings.forward_headers, *auth.headers]))
                self.bridge_settings = dataclasses.replace(self.bridge_settings, forward_headers=forwarded)
            # Imported here: serving gRPC alone needs none of the HTTP extra (uvicorn, orjson).
            from a2a_grpc.bridge.card import bridge_interfaces
            from a2a_grpc.bridge.httpserver import HttpServer

            # Every listener of the stack serves TLS alike: the gRPC settings' (https:// in the card).
            self.http = HttpServer(
                None,
                self.http_host,
                self.http_port,
                tls=self.grpc_settings.tls,
                reuse_port=self.grpc_settings.reuse_port,  # both ports shared alike (serve --workers)
                header_timeout=self.bridge_settings.header_timeout_seconds,
                max_connections=self.bridge_settings.max_connections,
                grace=self.bridge_settings.shutdown_grace_seconds,
            )
            self.http.bind()  # first, so that the card can name the port
            public = (self.bridge_settings.public_url or self.http.url).rstrip("/")
            interfaces = bridge_interfaces(public, v03=self.bridge_settings.serve_v03)
        self.server = A2AServer(
            self.agent, self.store, self.grpc_settings, notifier=self.notifier, extra_interfaces=interfaces
        )
        await self.server.start()
        observability = self.grpc_settings.observability
        if self.http is not None:
            from a2a_grpc.bridge.app import BridgeApp
            from a2a_grpc.bridge.debug import debug_routes
            from a2a_grpc.bridge.ops import OpsApp
            from a2a_grpc.bridge.upstream import LocalUpstream

            assert self.server.handler is not None
            app = BridgeApp(
                LocalUpstream(self.server.handler, self.server.service),
                self.bridge_settings,
                ops=OpsApp(debug_routes(self.server), metrics=observability.metrics),
            )
            app.public_url = public
            self.http.app = self._app = app
            await self.http.start()
        if observability.metrics_port is not None:  # a port of its own, with or without the HTTP one
            from a2a_grpc.bridge.debug import debug_routes
            from a2a_grpc.bridge.ops import ops_server

            self.ops = ops_server(observability, debug_routes(self.server))
            assert self.ops is not None
            await self.ops.start()

    def hurry(self) -> None:
        """Cut the grace of a stop under way short (a second SIGTERM): see ``A2AServer.hurry``."""
        if self.server is not None:
            self.server.hurry()

    async def stop(self, grace: float | None = None) -> None:
        """Drain (``A2AServer.drain``: NOT_SERVING on gRPC health and on ``/healthz``, new calls
        refused on every binding, sessions told to go away, running calls given ``grace``
        seconds, then the task core's truthful stop), then close what the stack opened.
        Idempotent."""
        # The agent first: running tasks get their final state, which every stream (gRPC and
        # SSE alike) delivers before it ends; the HTTP server then has nothing left to cut.
        try:
            if self._app is not None:
                self._app.serving = False
            if self.server is not None:
                await self.server.stop(grace)
        finally:
            http, self.http = self.http, None
            if http is not None:
                await http.stop()
            ops, self.ops = self.ops, None
            if ops is not None:
                await ops.stop()
        if self._own_notifier and self.notifier is not None:
            await self.notifier.aclose()
            self.notifier = None
        if isinstance(self._store_spec, str) and self.store is not None:
            store, self.store = self.store, None
            await store.close()

    async def wait(self) -> None:
        """Until the gRPC server stops (or the calling task is cancelled)."""
        if self.server is not None:
            await self.server.wait()
        else:  # never started: nothing to wait for
            await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
