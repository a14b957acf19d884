"""Reading a peer's HTTP bodies within bounds (the reverse bridge's upstreams, JWKS key servers).

httpx inflates a compressed body one network read at a time, with no bound on what a read
inflates to: 64 KiB of gzip can be 64 MiB of zeros. Here bodies are read raw and inflated by
:class:`ContentDecoder`, which hands out at most :data:`STEP` bytes at a time, so a reader that
counts them (:func:`read_body`, the SSE reader of :mod:`a2a_grpc.bridge.outbound`) stops at its
bound having held little more than the bound. Only the encodings we ask for
(:data:`ACCEPT_ENCODING`) are read, one at a time: an answer in another, or in several layered
(a bomb inside a bomb), is refused.

Failures are :class:`AnswerError`: what is wrong, in words that follow "upstream agent at URL",
and the setting whose bound was passed, if any. The caller names the agent and the call.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator, Iterator, Sequence

import httpx

__all__ = [
    "ACCEPT_ENCODING",
    "STEP",
    "AnswerError",
    "ContentDecoder",
    "content_decoder",
    "decoded",
    "read_body",
]

ACCEPT_ENCODING = "gzip, deflate"
"""The ``Accept-Encoding`` of every request to an upstream: what :class:`ContentDecoder` reads."""
STEP = 64 * 1024
"""Most bytes one step of inflating hands out; more input waits in zlib until they are taken."""

_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


class AnswerError(Exception):
    """An answer the bridge stops reading; ``limit`` names the setting whose bound it passed."""

    def __init__(self, problem: str, limit: str = "", value: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.limit = limit
        self.value = value

    def metadata(self) -> dict[str, object]:
        """``limit`` and ``limit_value``, as :class:`a2a_grpc.errors.LimitExceededError` names them."""
        return {"limit": self.limit, "limit_value": self.value} if self.limit else {}


class ContentDecoder:
    """Inflates one ``gzip`` or ``deflate`` body fed in pieces, handing out at most :data:`STEP`
    bytes per step. ``deflate`` is read with or without its zlib wrapper (servers send both)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z: zlib._Decompress | None = zlib.decompressobj(_GZIP) if encoding != "deflate" else None
        self._head = b""  # the first bytes of a deflate body, until they say whether it is wrapped

    def _start_deflate(self, data: bytes) -> bytes:
        self._head += data
        if len(self._head) < 2:
            return b""
        cmf, flg = self._head[0], self._head[1]
        wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
        self._z = zlib.decompressobj(_ZLIB if wrapped else _RAW_DEFLATE)
        data, self._head = self._head, b""
        return data

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The inflated bytes ``data`` completes, :data:`STEP` at most each; zlib errors pass."""
        if self._z is None:
            data = self._start_deflate(data)
            if self._z is None:
                return
        z = self._z
        while True:
            out = z.decompress(data, STEP)
            if out:
                yield out
            if z.eof:
                # gzip allows members one after another; after a deflate stream nothing may follow
                data = z.unused_data
                if not data:
                    return
                if self.encoding == "deflate":
                    raise zlib.error("data after the end of the deflate stream")
                z = self._z = zlib.decompressobj(_GZIP)
                continue
            data = z.unconsumed_tail
            if not data and len(out) < STEP:  # all input taken and no output left waiting
                return


def content_decoder(codings: Sequence[str]) -> ContentDecoder | None:
    """The decoder of a ``Content-Encoding`` header's values; None for identity; :class:`AnswerError`
    for an encoding we did not ask for, or more than one."""
    named = [c.strip().lower() for value in codings for c in value.split(",")]
    layers = [c for c in named if c and c != "identity"]
    if not layers:
        return None
    if len(layers) > 1:
        raise AnswerError(
            f"answered in {len(layers)} content encodings layered ({', '.join(layers)}), "
            f"not one of {ACCEPT_ENCODING} as asked"
        )
    if layers[0] not in ("gzip", "x-gzip", "deflate"):
        raise AnswerError(f"answered in content encoding {layers[0]!r}, not {ACCEPT_ENCODING} as asked")
    return ContentDecoder(layers[0])


async def decoded(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body of a streamed ``response``, inflated :data:`STEP` bytes at most at a time."""
    try:
        whole = response.content  # already read and decoded: a response made in memory (MockTransport)
    except httpx.ResponseNotRead:
        pass
    else:
        for start in range(0, len(whole), STEP):
            yield whole[start : start + STEP]
        return
    decoder = content_decoder(response.headers.get_list("content-encoding"))
    async for raw in response.aiter_raw():
        if decoder is None:
            yield raw
            continue
        try:
            for piece in decoder.feed(raw):
                yield piece
        except zlib.error as exc:
            raise AnswerError(f"sent a body that is not valid {decoder.encoding} ({exc})") from None


async def read_body(response: httpx.Response, max_bytes: int, limit: str = "max_response_bytes") -> bytes:
    """The whole body of a streamed ``response``, inflated; :class:`AnswerError` naming ``limit``
    as soon as it passes ``max_bytes`` (a ``Content-Length`` over it is refused unread)."""
    too_large = AnswerError(f"sent an answer larger than {max_bytes} bytes ({limit})", limit, max_bytes)
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes and not response.headers.get("content-encoding"):
        raise too_large
    body = bytearray()
    async with contextlib.aclosing(decoded(response)) as pieces:
        async for piece in pieces:
            if len(body) + len(piece) > max_bytes:
                raise too_large
            body += piece
    return bytes(body)
