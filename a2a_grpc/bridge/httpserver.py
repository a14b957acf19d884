"""Run an ASGI app (the bridge) on uvicorn inside the caller's event loop.

:class:`HttpServer` binds its own socket first (port 0 picks a free one, and :attr:`port` tells
which), so the caller knows the address before any request arrives and the agent card can name
it. A port already in use is an error (``reuse_port=True`` shares it with other processes that ask
to, as ``ServerSettings.reuse_port`` does for gRPC). It installs no signal handlers: the process
that embeds it (``a2a-grpc serve``) owns those.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
from typing import Any

import uvicorn

__all__ = ["HttpServer"]

log = logging.getLogger("a2a_grpc.bridge.http")


class HttpServer:
    """One uvicorn server on one listening socket, started and stopped from async code."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        grace: float = 5.0,
        reuse_port: bool = False,
    ) -> None:
        self.app = app
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
        return f"http://{host}:{self.port}"

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
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ws="none",
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            timeout_graceful_shutdown=int(max(self.grace, 1)),
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
