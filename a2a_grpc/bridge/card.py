"""The agent card as the bridge publishes it: ``GET /.well-known/agent-card.json`` (spec section 8).

The upstream's card with this bridge's JSONRPC and HTTP+JSON interfaces added after the
upstream's own (the GRPC one stays first: it is the preferred interface), served as a plain JSON
document (``application/json``) with a strong ``ETag`` (a hash of the body), ``Last-Modified``
(when the served content last changed) and ``Cache-Control`` (spec 8.6). ``If-None-Match``, or
without it ``If-Modified-Since``, gets a 304. The same interfaces are added to the answers of
``GetExtendedAgentCard`` (:meth:`CardEndpoint.published`).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.exchange import HttpFailure, HttpRequest, Send, raw_headers, respond
from a2a_grpc.bridge.upstream import CARD_PATH, Upstream
from a2a_grpc.service import SUPPORTED_VERSIONS

__all__ = ["CardEndpoint", "bridge_interfaces"]


def bridge_interfaces(base_url: str, version: str = SUPPORTED_VERSIONS[-1]) -> list[types.AgentInterface]:
    """The card entries of a bridge at ``base_url``: JSON-RPC at its root, HTTP+JSON at its base."""
    base = base_url.rstrip("/")
    return [
        types.AgentInterface(url=base + "/", protocol_binding="JSONRPC", protocol_version=version),
        types.AgentInterface(url=base, protocol_binding="HTTP+JSON", protocol_version=version),
    ]


class CardEndpoint:
    """Serves the upstream's card at :data:`CARD_PATH`, with the bridge's interfaces."""

    def __init__(self, upstream: Upstream, max_age: int, public_url: str | None = None) -> None:
        self.upstream = upstream
        self.max_age = max_age
        self.public_url = public_url
        """The bridge's base URL for its interfaces; None adds none (set once the port is known)."""
        self.clock: Callable[[], float] = time.time
        """Wall-clock seconds, for ``Last-Modified`` (replaceable in tests)."""
        self._tag = ""
        self._changed = 0

    def published(self, answer: Message) -> Message:
        """``answer`` with the bridge's interfaces if it is an agent card; otherwise as it is."""
        if not self.public_url or not isinstance(answer, types.AgentCard):
            return answer
        out = types.AgentCard()
        out.CopyFrom(answer)
        version = answer.supported_interfaces[0].protocol_version if answer.supported_interfaces else ""
        have = {(i.protocol_binding, i.url) for i in out.supported_interfaces}
        for interface in bridge_interfaces(self.public_url, version or SUPPORTED_VERSIONS[-1]):
            if (interface.protocol_binding, interface.url) not in have:
                out.supported_interfaces.append(interface)
        return out

    async def serve(
        self, request: HttpRequest, send: Send, refuse: Callable[[BaseException], Awaitable[None]]
    ) -> None:
        """Answer a request for the card; ``refuse`` answers an upstream that gives none."""
        if request.verb not in ("GET", "HEAD"):
            raise HttpFailure(
                405,
                errors.MethodNotFoundError(f"{errors.echo(request.verb)} {CARD_PATH}: use GET"),
                [("allow", "GET, HEAD")],
            )
        try:
            card = self.published(await self.upstream.card())
        except Exception as exc:
            await refuse(exc)
            return
        body = transcoding.dumps_sorted(transcoding.encode(card))  # sorted: the same card, the same ETag
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if etag != self._tag:  # the content changed (or is served for the first time): now
            self._tag, self._changed = etag, int(self.clock())
        headers = [
            ("etag", etag),
            ("last-modified", email.utils.formatdate(self._changed, usegmt=True)),
            ("cache-control", f"public, max-age={self.max_age}"),
        ]
        if _not_modified(request.headers, etag, self._changed):
            await send({"type": "http.response.start", "status": 304, "headers": raw_headers(headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        await respond(send, 200, b"" if request.verb == "HEAD" else body, headers, length=len(body))


def _not_modified(headers: Mapping[str, str], etag: str, changed: int) -> bool:
    """Whether a GET or HEAD of the card may be answered 304 (RFC 9110 section 13.2.2)."""
    wanted = headers.get("if-none-match")
    if wanted is not None:  # when present it decides alone: If-Modified-Since is not looked at
        return wanted.strip() == "*" or etag in (tag.strip().removeprefix("W/") for tag in wanted.split(","))
    since = headers.get("if-modified-since")
    if since is None or since.count(",") > 1:  # absent, or sent twice (we join repeats with commas)
        return False
    try:
        date = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):  # not an HTTP-date (or two of them): ignored, RFC 9110 13.1.3
        return False
    if date.tzinfo is None:  # "-0000": the date is in UTC all the same
        date = date.replace(tzinfo=datetime.UTC)
    # HTTP-dates have one-second resolution; _changed is kept in whole seconds to match.
    return changed <= date.timestamp()
