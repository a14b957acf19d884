"""The kit's URL layout over a2a-grpc's HTTP front, which serves everything at its root.

The kit's agents mount JSON-RPC under ``/jsonrpc`` and HTTP+JSON under ``/rest``, each with its
card; its runner posts JSON-RPC at ``/jsonrpc/`` (older runners) or ``/`` (newer ones). This ASGI
wrapper removes a leading ``/jsonrpc`` or ``/rest`` segment before the front sees the path, so
``/jsonrpc/``, ``/jsonrpc`` and ``/`` are the same JSON-RPC endpoint, ``/rest/message:send`` is
``/message:send``, and ``/rest/.well-known/agent-card.json`` is the card.

Why not a prefix in the front: the front reads ``/rest/message:send`` as the HTTP+JSON route of a
tenant named ``rest`` (spec 11.3's ``/{tenant}/message:send``). Here a tenant named ``jsonrpc`` or
``rest`` cannot be addressed; this agent has no tenants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["PREFIXES", "KitLayout"]

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PREFIXES = ("/jsonrpc", "/rest")


def strip(path: str) -> str:
    """``path`` without a leading kit prefix (the path itself when it has none)."""
    for prefix in PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
    return path


class KitLayout:
    """ASGI: ``app`` served at the root and under each of :data:`PREFIXES`."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            path = scope.get("path", "")
            stripped = strip(path)
            if stripped != path:
                scope = dict(scope)
                scope["path"] = stripped
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):  # the front reads literal segments from the raw path
                    scope["raw_path"] = strip(raw.decode("latin-1")).encode("latin-1")
        await self.app(scope, receive, send)
