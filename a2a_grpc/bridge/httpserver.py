"""Run an ASGI app (the bridge) on uvicorn inside the caller's event loop.

:class:`HttpServer` binds its own socket first (port 0 picks a free one, and :attr:`port` tells
which), so the caller knows the address before any request arrives and the agent card can name
it. A port already in use is an error (``reuse_port=True`` shares it with other processes that ask
to, as ``ServerSettings.reuse_port`` does for gRPC). It installs no signal handlers: the process
that embeds it (``a2a-grpc serve``) owns those.

With ``tls`` (:class:`a2a_grpc.security.tls.TlsSettings`) it serves HTTPS, and on a connection
where the client presented a verified certificate the ASGI app finds it in the request scope: the
ASGI TLS extension (``scope["extensions"]["tls"]``, its ``client_cert_chain`` in PEM) and, parsed
once per connection, :data:`a2a_grpc.bridge.exchange.CLIENT_CERTIFICATE` (a
:class:`a2a_grpc.security.identity.ClientCertificate`). uvicorn itself puts neither in the scope:
:func:`tls_protocol` adds them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import ssl
from typing import Any

import uvicorn

from a2a_grpc.bridge.exchange import CLIENT_CERTIFICATE
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.security.identity import ClientCertificate
from a2a_grpc.security.tls import TlsSettings

__all__ = ["HttpServer", "head_timeout_protocol", "tls_protocol"]

log = logging.getLogger("a2a_grpc.bridge.http")

_DEFAULTS = BridgeSettings()

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
"""``tls_version`` as the ASGI TLS extension writes it: the protocol's number on the wire."""


def _tls_extensions(transport: Any) -> dict[str, Any] | None:
    """The scope extensions of a TLS connection (None for plaintext), read once per connection."""
    tls: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if tls is None:
        return None
    der = tls.getpeercert(binary_form=True)  # only ever a certificate the handshake verified
    certificate = ClientCertificate.from_der(der) if der else None
    return {
        "tls": {
            "server_cert": None,
            # Python's ssl hands over the client's own certificate, not the chain it sent.
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": certificate.subject if certificate else None,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(tls.version() or ""),
            "cipher_suite": None,
        },
        CLIENT_CERTIFICATE: certificate,
    }


def tls_protocol(base: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class ``base`` (httptools' or h11's), adding the TLS scope extensions.

    Both protocols read the ASGI app from ``self.app`` for every request: on a TLS connection the
    subclass wraps it once, in ``connection_made`` (the handshake is over by then), with a function
    that puts the connection's extensions into each request's scope.
    """

    class TlsScopeProtocol(base):  # type: ignore[valid-type,misc]
        app: Any  # set by uvicorn's protocol: the ASGI app

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            extensions = _tls_extensions(transport)
            if extensions is not None:
                app = self.app

                async def with_tls(scope: Any, receive: Any, send: Any) -> None:
                    scope["extensions"] = {**scope.get("extensions", {}), **extensions}
                    await app(scope, receive, send)

                self.app = with_tls

    TlsScopeProtocol.__name__ = TlsScopeProtocol.__qualname__ = f"TlsScope{base.__name__}"
    return TlsScopeProtocol


def head_timeout_protocol(base: type[asyncio.Protocol], seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class ``base``, closing a connection that does not send a whole
    request head (request line and headers) within ``seconds`` of opening or of its previous
    response. uvicorn has no such bound: a client that sends half a request is held forever.

    Both of uvicorn's protocols set ``self.cycle`` to a new request cycle the moment a head is
    complete: the subclass sees that assignment (a property) and stops the timer; it starts the
    timer again when a response is complete and no pipelined request is waiting.
    """

    class HeadTimeoutProtocol(base):  # type: ignore[valid-type,misc]
        transport: Any  # set by uvicorn's protocol
        loop: asyncio.AbstractEventLoop
        _head_timer: asyncio.TimerHandle | None = None

        @property
        def cycle(self) -> Any:
            return self.__dict__.get("_cycle")

        @cycle.setter
        def cycle(self, value: Any) -> None:
            self.__dict__["_cycle"] = value
            if value is not None:
                self._stop_head_timer()

        def _start_head_timer(self) -> None:
            self._stop_head_timer()
            self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            transport = self.transport
            if transport is not None and not transport.is_closing():
                log.debug("closing an HTTP connection that sent no whole request head in %g s", seconds)
                transport.close()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            cycle = self.cycle
            if not self.transport.is_closing() and (cycle is None or cycle.response_complete):
                self._start_head_timer()

    HeadTimeoutProtocol.__name__ = HeadTimeoutProtocol.__qualname__ = f"HeadTimeout{base.__name__}"
    return HeadTimeoutProtocol


class HttpServer:
    """One uvicorn server on one listening socket, started and stopped from async code.

    ``header_timeout`` and ``max_connections`` bound what clients can hold
    (``BridgeSettings.header_timeout_seconds`` and ``max_connections``): a connection that sends
    no whole request head within ``header_timeout`` seconds is closed, and a request arriving while
    more than ``max_connections`` connections are open (or as many requests run) is answered 503.
    ``grace``: on stop, how long requests in flight may finish (``BridgeSettings.shutdown_grace_seconds``).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        grace: float = _DEFAULTS.shutdown_grace_seconds,
        reuse_port: bool = False,
        tls: TlsSettings | None = None,
        header_timeout: float = _DEFAULTS.header_timeout_seconds,
        max_connections: int = _DEFAULTS.max_connections,
    ) -> None:
        if not header_timeout > 0 or max_connections <= 0:
            raise ValueError("header_timeout and max_connections must be positive")
        self.app = app
        self.tls = tls
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.host = host
        self.requested_port = port
        self.grace = grace
        self.reuse_port = reuse_port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("HttpServer is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def bind(self) -> int:
        """Open the listening socket (before :meth:`start`, to learn the port early)."""
        if self._socket is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without
            # it a kept-alive connection waits ~40 ms (Nagle + delayed ACK) on every answer.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            # SO_REUSEADDR only lets a restart bind past connections in TIME_WAIT; on its own it
            # never shares a port another process listens on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((self.host, self.requested_port))
            except (OSError, OverflowError) as exc:
                sock.close()
                errno = getattr(exc, "errno", None)
                reason = (getattr(exc, "strerror", None) or str(exc)).lower()
                raise OSError(
                    errno, f"cannot listen on {self.host}:{self.requested_port}: {reason}"
                ) from None
            sock.listen(1024)
            sock.setblocking(False)
            self._socket = sock
        return self.port

    async def start(self, timeout: float = 10.0) -> int:
        self.bind()
        assert self._socket is not None
        base: type[asyncio.Protocol]
        if importlib.util.find_spec("httptools"):
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
        else:
            from uvicorn.protocols.http.h11_impl import H11Protocol as base
        http = head_timeout_protocol(base, self.header_timeout)
        tls: dict[str, Any] = {}
        if self.tls is not None:
            context = self.tls.ssl_context()
            http = tls_protocol(http)
            tls = {"ssl_context_factory": lambda config, default: context}
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ws="none",
            http=http,
            timeout_graceful_shutdown=int(max(self.grace, 1)),
            # uvicorn counts the connection asking among the open ones: one more lets exactly
            # max_connections be served.
            limit_concurrency=self.max_connections + 1,
            **tls,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server._serve(sockets=[self._socket]), name="bridge-http")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not server.started:
            if self._task.done():
                self._task.result()  # re-raise the start-up failure
                raise RuntimeError("HTTP server stopped during start-up")
            if loop.time() > deadline:
                raise TimeoutError(f"HTTP server did not start within {timeout:g} s")
            await asyncio.sleep(0.005)
        return self.port

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.grace + 2)
            except TimeoutError:
                log.warning("HTTP server did not stop within %.1f s; cancelling it", self.grace + 2)
                self._task.cancel()
                await asyncio.wait({self._task})
        if self._socket is not None:
            self._socket.close()
        self._server = self._task = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
