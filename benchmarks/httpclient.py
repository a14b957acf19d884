"""A minimal HTTP/1.1 keep-alive client for the load generator, over asyncio streams.

It sends request bytes the caller encoded once (request line, headers, body)
and parses just enough of the answer: the status code, then a body framed by
``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the
connection. :meth:`HttpConnection.events` reads a Server-Sent Events body and
yields each event's ``data``. One connection serves one worker, one request at
a time; a generic client (httpx) would cost the load generator several times
more CPU per request than the servers it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["HttpConnection", "HttpError", "http_request"]

_HEAD_END = b"\r\n\r\n"
_CRLF = b"\r\n"
_STREAM_LIMIT = 1024 * 1024


class HttpError(Exception):
    """The peer broke the HTTP framing (or closed the connection mid-response)."""


def http_request(
    method: str, host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 request with a body (keep-alive is HTTP/1.1's default)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConnection:
    """One keep-alive connection to ``host:port``; (re)connects on first use and after a failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, limit=_STREAM_LIMIT
            )
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Send ``data`` (a whole request); return (status, body)."""
        try:
            status, reader, framing, length, keep = await self._send(data)
            if framing == "length":
                body = await reader.readexactly(length)
            else:
                body = b"".join([piece async for piece in self._pieces(reader, framing)])
        except BaseException:
            await self.close()
            raise
        if not keep:
            await self.close()
        return status, body

    async def events(self, data: bytes) -> AsyncIterator[bytes]:
        """Send ``data``; yield the ``data`` field of each Server-Sent Event of the answer.

        A non-200 answer raises HttpError with the start of its body.
        """
        done = False
        try:
            status, reader, framing, length, keep = await self._send(data)
            if status != 200:
                body = await reader.readexactly(length) if framing == "length" else b""
                raise HttpError(f"HTTP {status}: {body[:200]!r}")
            pieces = self._exactly(reader, length) if framing == "length" else self._pieces(reader, framing)
            buffer = b""
            async for piece in pieces:
                buffer += piece.replace(b"\r\n", b"\n")
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    lines = [
                        line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")
                    ]
                    if lines:
                        yield b"\n".join(lines)
            done = True
        finally:
            if not done or not keep:
                await self.close()  # a stream left half-read cannot carry the next request

    async def _send(self, data: bytes) -> tuple[int, asyncio.StreamReader, str, int, bool]:
        reader, writer = await self._open()
        writer.write(data)
        try:
            head = await reader.readuntil(_HEAD_END)
        except asyncio.IncompleteReadError as exc:
            raise HttpError("connection closed before a response") from exc
        if not head.startswith(b"HTTP/1.") or len(head) < 12:
            raise HttpError(f"not an HTTP/1.x response: {head[:40]!r}")
        status = int(head[9:12])
        framing, length, keep = "eof", 0, True
        for line in head[:-4].split(_CRLF)[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                framing, length = "length", int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                framing = "chunked"
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if framing == "eof":
            keep = False
        return status, reader, framing, length, keep

    @staticmethod
    async def _exactly(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
        yield await reader.readexactly(length)

    @staticmethod
    async def _pieces(reader: asyncio.StreamReader, framing: str) -> AsyncIterator[bytes]:
        """The body as it arrives: chunked pieces, or everything until the peer closes."""
        if framing == "eof":
            while piece := await reader.read(65536):
                yield piece
            return
        while True:
            try:
                size_line = await reader.readuntil(_CRLF)
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(_CRLF) != _CRLF:
                        pass  # trailers, then the blank line that ends the body
                    return
                piece = await reader.readexactly(size + 2)
            except asyncio.IncompleteReadError as exc:
                raise HttpError("connection closed inside a chunked body") from exc
            except ValueError as exc:
                raise HttpError(f"bad chunk size line {size_line[:40]!r}") from exc
            yield piece[:-2]
