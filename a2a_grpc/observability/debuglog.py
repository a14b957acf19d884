"""Debug logging (``ObservabilitySettings.debug``, ``A2A_DEBUG=1``): full session handshakes and
every request's payload and answer, on the ``a2a_grpc.debug`` logger at DEBUG, credentials redacted.

What is never written, wherever it appears:

* header and Hello metadata values, except those named in :data:`SHOWN_HEADERS` (``authorization``,
  API keys, cookies and any header of a scheme of ours are shown as ``(hidden)``);
* members whose name says they hold a secret (:data:`SECRET_NAMES`: ``credentials``, ``token``,
  ``resumeToken``, ``apiKey``, ``password``, ``authorization`` ...), at any depth of a payload,
  push notification configs and message metadata included;
* the path, query and user of a URL member (``url``, ``uri``, ``...Url``: a webhook's, a file's):
  it is written ``scheme://host[:port]/…``, since a webhook or a signed file URL carries its secret
  there; and the user and password of any other URL.

A payload's JSON is cut after ``debug_payload_chars`` characters (its full length said); one of
more than 256 times that many bytes is only named, with its size. With
debug off none of this runs: the server puts no :class:`DebugLog` link in its seam, and a session
checks one flag per handshake.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc.security.redact import redact_url, scrub_urls
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall
from a2a_grpc.session.frames import Hello, Welcome

__all__ = [
    "HIDDEN",
    "SECRET_NAMES",
    "SHOWN_HEADERS",
    "DebugLog",
    "hello_view",
    "log_handshake",
    "log_refusal",
    "payload_text",
    "redacted",
    "shown_headers",
    "welcome_view",
]

debug_log = logging.getLogger("a2a_grpc.debug")

TOO_LARGE_FACTOR = 256
"""Messages over ``debug_payload_chars`` times this many bytes are described, not shown."""
HIDDEN = "(hidden)"
"""What a credential is written as."""
SHOWN_HEADERS = frozenset(
    {
        "a2a-version",
        "a2a-extensions",
        "traceparent",
        "tracestate",
        "content-type",
        "accept",
        "user-agent",
        "grpc-timeout",
        "grpc-accept-encoding",
        "accept-encoding",
    }
)
"""Headers (and Hello metadata) shown with their value; every other one is :data:`HIDDEN`: an
allowlist, because a scheme may read any header (an API key's name is the card's choice)."""
SECRET_NAMES = re.compile(
    r"(?i)(authorization|credential|token|secret|password|passwd|api[-_]?key|cookie|private[-_]?key)"
)
"""Members of a payload whose value is hidden, by name (JSON or proto spelling)."""
_URL_NAMES = re.compile(r"(?i)(url|uri)$")
"""Members holding a URL: shown as ``scheme://host[:port]/…`` (``security.redact.redact_url``)."""
_NOT_SECRET = frozenset({"pageToken", "nextPageToken", "page_token", "next_page_token"})
"""List cursors: opaque, but no credential, and what one debugs a listing with."""


def shown_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with every value outside :data:`SHOWN_HEADERS` hidden (the names stay)."""
    return {k: (v if k.lower() in SHOWN_HEADERS else HIDDEN) for k, v in headers.items()}


def _secret(name: str, value: Any) -> bool:
    return bool(SECRET_NAMES.search(name)) and name not in _NOT_SECRET and value not in ("", None)


def _shown(name: str, value: Any) -> Any:
    if _secret(name, value):
        return HIDDEN
    if isinstance(value, str) and _URL_NAMES.search(name):
        return redact_url(value)  # a webhook's or a file's URL may carry its secret in path or query
    return _hide(value)


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shown(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide(v) for v in value]
    return value


def redacted(message: Message) -> dict[str, Any]:
    """``message`` as its JSON object (proto3 JSON mapping), every secret member hidden."""
    shown: dict[str, Any] = _hide(json_format.MessageToDict(message))
    return shown


def payload_text(message: Message, limit: int) -> str:
    """``message`` redacted, as one line of JSON, cut after ``limit`` characters. A message of more
    than ``limit * 256`` bytes is not converted at all (a large artifact would cost its size again
    in memory, to show its first characters): its type and size are said instead."""
    size = message.ByteSize()
    if size > limit * TOO_LARGE_FACTOR:
        return f"({message.DESCRIPTOR.name} of {size} bytes: too large to show)"
    text = scrub_urls(json.dumps(redacted(message), ensure_ascii=False, separators=(",", ":")))
    return text if len(text) <= limit else f"{text[:limit]}\u2026({len(text)} chars)"


def hello_view(hello: Hello) -> dict[str, Any]:
    """A Hello as JSON, its metadata's credentials and a resume token hidden."""
    view = redacted(hello)
    if hello.metadata:
        view["metadata"] = shown_headers(dict(hello.metadata))
    return view


def welcome_view(welcome: Welcome) -> dict[str, Any]:
    """A Welcome as JSON, its resume token hidden (whoever holds it can take the session over)."""
    return redacted(welcome)


def _dumps(value: Any) -> str:
    return scrub_urls(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def log_handshake(hello: Hello, welcome: Welcome, peer: str) -> None:
    """The whole negotiation of a session that opened (or resumed): Hello, Welcome, and what was agreed."""
    agreed = {
        "protocol_version": welcome.protocol_version,
        "heartbeat_seconds": welcome.heartbeat_interval.ToTimedelta().total_seconds(),
        "missed_heartbeats": welcome.missed_heartbeats,
        "max_frame_bytes": welcome.max_frame_bytes,
        "max_concurrent_calls": welcome.max_concurrent_calls,
        "window": json_format.MessageToDict(welcome.window),
    }
    debug_log.debug(
        "session %s %s by %s: hello=%s welcome=%s negotiated=%s",
        welcome.session_id,
        "resumed" if welcome.resumed else "opened",
        peer or "?",
        _dumps(hello_view(hello)),
        _dumps(welcome_view(welcome)),
        _dumps(agreed),
    )


def log_refusal(hello: Hello | None, reason: str, peer: str) -> None:
    """A handshake refused, with its reason and the Hello that was refused (if it came)."""
    shown = _dumps(hello_view(hello)) if hello is not None else "(none)"
    debug_log.debug("session handshake from %s refused: %s; hello=%s", peer or "?", scrub_urls(reason), shown)


class DebugLog(Interceptor):
    """Logs each call's request (with its headers) and its answer, or each event of a stream, and
    how it failed: only in a seam whose server runs with ``debug`` (see the module doc)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def _request(self, method: Method, request: Message, context: CallContext) -> None:
        debug_log.debug(
            "%s %s from %s: headers=%s request=%s",
            context.front or "-",
            method.name,
            context.peer or "-",
            _dumps(shown_headers(context.headers)),
            payload_text(request, self.limit),
        )

    def _failed(self, method: Method, exc: BaseException) -> None:
        if isinstance(exc, GeneratorExit | asyncio.CancelledError):
            debug_log.debug("%s: the caller left", method.name)
            return
        text = scrub_urls(str(exc))[: self.limit]
        debug_log.debug("%s failed: %s: %s", method.name, type(exc).__name__, text)

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        self._request(method, request, context)
        try:
            answer = await call_next(request, context)
        except BaseException as exc:
            self._failed(method, exc)
            raise
        debug_log.debug("%s answer=%s", method.name, payload_text(answer, self.limit))
        return answer

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        self._request(method, request, context)
        count = 0
        try:
            async for event in call_next(request, context):
                count += 1
                debug_log.debug("%s event %d=%s", method.name, count, payload_text(event, self.limit))
                yield event
        except BaseException as exc:
            self._failed(method, exc)
            raise
        debug_log.debug("%s ended after %d events", method.name, count)
