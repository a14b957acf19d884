"""One log line per HTTP request of the bridge, on the ``a2a_grpc.access`` logger (INFO).

``http POST /message:send 200 SendMessage 1.4 ms peer=127.0.0.1:53712``: the verb and path (as
sent, percent-encoded: a decoded ``%0A`` would start a forged log line; long paths cut), the status
sent, the A2A method the request was for (the JSON-RPC method, or the route's RPC; ``-`` when none
was reached), the time until the response ended, and the client. The record carries them as
``extra`` too (``binding`` ``http``, ``method``, ``status``, ``duration_ms``, ``peer``, ``verb``,
``path``): members of a JSON log line, with the ids of the call the request made.
The same logger carries the gRPC servers' lines (``a2a_grpc._accesslog.AccessLog``), so one
handler sees every call of a process whichever binding it came by.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

__all__ = ["METHOD_KEY", "access_logged"]

log = logging.getLogger("a2a_grpc.access")
METHOD_KEY = "a2a_grpc.method"
"""Scope key where the app records the A2A method a request was for."""
PATH_CHARS = 120

_UNPRINTABLE = re.compile(rb"[^\x21-\x7e]")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def access_logged(app: App, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the request with ``app``, then log its line (also when it fails or the client leaves)."""
    start = time.perf_counter()
    status = "-"

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = str(message["status"])
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        path = _shown_path(scope)
        if len(path) > PATH_CHARS:
            path = path[:PATH_CHARS] + f"\u2026({len(path)})"
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        elapsed = (time.perf_counter() - start) * 1000
        method = scope.get(METHOD_KEY, "-")
        verb = scope.get("method")
        log.info(
            "http %s %s %s %s %.1f ms peer=%s",
            verb,
            path,
            status,
            method,
            elapsed,
            peer,
            extra={
                "binding": "http",
                "method": None if method == "-" else method,
                "status": status,
                "duration_ms": round(elapsed, 3),
                "peer": peer if client else None,
                "verb": verb,
                "path": path,
            },
        )


def _shown_path(scope: Scope) -> str:
    """The request's path as the client sent it, every byte outside printable ASCII escaped."""
    raw = scope.get("raw_path")
    if raw:
        return _UNPRINTABLE.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")
    return quote(str(scope.get("path", "")), safe="/:@!$&'()*+,;=%")
