"""The agent card as the bridge publishes it: ``GET /.well-known/agent-card.json`` (spec section 8).

The upstream's card with this bridge's JSONRPC and HTTP+JSON interfaces added after the
upstream's own (the GRPC one stays first: it is the preferred interface), served as a plain JSON
document (``application/json``) with a strong ``ETag`` (a hash of the body), ``Last-Modified``
(when the served content last changed) and ``Cache-Control`` (spec 8.6). ``If-None-Match``, or
without it ``If-Modified-Since``, gets a 304. The same interfaces are added to the answers of
``GetExtendedAgentCard`` (:meth:`CardEndpoint.published`).

With ``serve_v03`` (``BridgeSettings.serve_v03``, the default) the bridge's interfaces are listed
twice, for protocol version 1.0 and 0.3 (same URLs: the bridge tells the two apart by method name
and ``A2A-Version``), and the card served is the merged card
(:func:`a2a_grpc.v03.card.merged_card_json`): the v1.0 ProtoJSON plus the v0.3 members a v0.3
client reads (``url``, ``preferredTransport``, ``additionalInterfaces``, ``protocolVersion``...),
which v1.0 clients ignore. :meth:`CardEndpoint.v03_json` is the card as v0.3 answers it
(``agent/getAuthenticatedExtendedCard``, ``GET /v1/card``).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.exchange import HttpFailure, HttpRequest, Send, raw_headers, respond
from a2a_grpc.bridge.upstream import CARD_PATH, Upstream
from a2a_grpc.service import SUPPORTED_VERSIONS
from a2a_grpc.v03.card import V03_VERSION, merged_card_json, v03_card_json

__all__ = ["CardEndpoint", "bridge_interfaces"]


def bridge_interfaces(
    base_url: str, version: str = SUPPORTED_VERSIONS[-1], *, v03: bool = False
) -> list[types.AgentInterface]:
    """The card entries of a bridge at ``base_url``: JSON-RPC at its root, HTTP+JSON at its base;
    with ``v03``, the same two again for protocol version 0.3 (after: v1.0 clients take the first
    they support, v0.3 clients read only the 0.3 ones)."""
    base = base_url.rstrip("/")
    versions = [version, V03_VERSION] if v03 else [version]
    return [
        types.AgentInterface(url=url, protocol_binding=binding, protocol_version=v)
        for v in versions
        for url, binding in ((base + "/", "JSONRPC"), (base, "HTTP+JSON"))
    ]


class CardEndpoint:
    """Serves the upstream's card at :data:`CARD_PATH`, with the bridge's interfaces."""

    def __init__(
        self, upstream: Upstream, max_age: int, public_url: str | None = None, *, serve_v03: bool = True
    ) -> None:
        self.upstream = upstream
        self.serve_v03 = serve_v03
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
        have = {(i.protocol_binding, i.url, i.protocol_version) for i in out.supported_interfaces}
        ours = bridge_interfaces(self.public_url, version or SUPPORTED_VERSIONS[-1], v03=self.serve_v03)
        for interface in ours:
            if (interface.protocol_binding, interface.url, interface.protocol_version) not in have:
                out.supported_interfaces.append(interface)
        return out

    def v03_json(self, answer: types.AgentCard) -> dict[str, Any]:
        """``answer`` (published) as the v0.3 card JSON. Without a URL of ours yet and no v0.3
        interface upstream, the card names an empty JSON-RPC ``url``: nothing better is known."""
        card = self.published(answer)
        assert isinstance(card, types.AgentCard)
        data = v03_card_json(card)
        if data is None:
            bare = types.AgentCard()
            bare.CopyFrom(card)
            bare.supported_interfaces.add(protocol_binding="JSONRPC", protocol_version=V03_VERSION)
            data = v03_card_json(bare)
            assert data is not None
        return data

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
        document = transcoding.encode(card)
        if self.serve_v03 and isinstance(card, types.AgentCard):
            document = merged_card_json(card, document)
        body = transcoding.dumps_sorted(document)  # sorted: the same card, the same ETag
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
