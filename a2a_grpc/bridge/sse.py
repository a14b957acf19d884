"""Server-Sent Events (``text/event-stream``, as the WHATWG HTML standard defines them), both ways.

* Writing: :func:`serve_stream` answers a streaming call of either JSON binding with the events of
  an upstream stream. It waits for the first event (at most ``first_event_wait`` seconds) so that a
  refused call is a real HTTP or JSON-RPC error; then the headers go out, each event is flushed as
  it comes, an idle stream gets a ``: keep-alive`` comment every ``heartbeat_seconds``, an error
  after the first event is a final ``event: error``, and a client that goes away closes the
  upstream stream (the race of Starlette's streaming response: the loser is cancelled).
* Reading: :class:`SseDecoder`, used by the JSON upstreams of the reverse bridge
  (:mod:`a2a_grpc.bridge.outbound`) and by tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc._bodies import AnswerError
from a2a_grpc.bridge.exchange import Receive, Send
from a2a_grpc.bridge.settings import BridgeSettings

__all__ = ["SseDecoder", "SseEvent", "encode_event", "send_event_stream", "serve_stream"]


# -- writing ------------------------------------------------------------------------------------


def encode_event(data: bytes, name: str | None = None) -> bytes:
    """One SSE event carrying ``data`` (one line of JSON), named ``name`` if given."""
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + data + b"\n\n"


async def serve_stream(
    events: AsyncGenerator[Message, None],
    receive: Receive,
    send: Send,
    settings: BridgeSettings,
    *,
    encode: Callable[[Message], bytes],
    encode_error: Callable[[BaseException], bytes],
    refuse: Callable[[BaseException], Awaitable[None]],
) -> None:
    """Answer with ``events`` as SSE (see the module doc); ``events`` is closed whatever happens.

    ``encode`` and ``encode_error`` make the binding's event of a message or of an error;
    ``refuse`` answers an error that comes before the first event, as the binding answers errors.
    """
    gone = asyncio.ensure_future(_disconnected(receive))
    upcoming = asyncio.ensure_future(_next(events))
    started = False
    wait = settings.first_event_wait
    try:
        while True:
            done, _ = await asyncio.wait({upcoming, gone}, timeout=wait, return_when="FIRST_COMPLETED")
            if gone in done:  # the client left: the finally clause closes the upstream stream
                return
            wait = settings.heartbeat_seconds
            if not done:
                if not started:
                    started = await _start(send)
                await _chunk(send, b": keep-alive\n\n")
                continue
            try:
                item = upcoming.result()
                # An event JSON cannot hold: a typed error. A large artifact: encoded (base64,
                # JSON) in a worker thread, mostly in Python code that lets the loop serve others.
                if item is None:
                    data = b""
                elif _heavy(item, settings.offload_bytes):
                    data = await asyncio.to_thread(encode, item)
                else:
                    data = encode(item)
            except Exception as exc:
                if not started:  # refused before any event: a real HTTP / JSON-RPC error
                    await refuse(exc)
                else:
                    await _chunk(send, encode_error(exc), more=False)
                return
            if not started:
                started = await _start(send)
            if item is None:
                await _chunk(send, b"", more=False)
                return
            await _chunk(send, data)
            upcoming = asyncio.ensure_future(_next(events))
    finally:
        gone.cancel()
        if not upcoming.done():
            upcoming.cancel()
            await asyncio.wait({upcoming})
        await events.aclose()


async def send_event_stream(send: Send, data: bytes) -> None:
    """A whole event stream holding one encoded event: how a v0.3 JSON-RPC stream is refused
    (the v0.3 SDK's clients read a stream's answer only as events, errors included)."""
    await _start(send)
    await _chunk(send, data, more=False)


def _heavy(item: Message, above: int) -> bool:
    """Whether ``item`` is an artifact update of more than ``above`` bytes (sizing a small one
    costs microseconds; only artifact updates carry content of any size)."""
    return (
        isinstance(item, types.StreamResponse)
        and item.WhichOneof("payload") == "artifact_update"
        and item.ByteSize() > above
    )


async def _next(events: AsyncGenerator[Message, None]) -> Message | None:
    """The next event of a stream, None at its end."""
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _start(send: Send) -> bool:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    return True


async def _chunk(send: Send, data: bytes, *, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _disconnected(receive: Receive) -> None:
    """Returns when the client goes away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


# -- reading ------------------------------------------------------------------------------------

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str = ""


class SseDecoder:
    """An incremental ``text/event-stream`` parser, as the WHATWG HTML standard reads one.

    Feed it the body's bytes as they arrive; it returns the events each chunk completes. Lines end
    in CRLF, LF or CR (a CRLF may be split across chunks); ``data`` lines of one event are joined
    with LF; lines starting with ``:`` (comments, heartbeats) and ``retry`` are ignored. An event
    the stream ends in the middle of is dropped, as the standard says.

    A line longer than ``max_sse_line_bytes``, or an event whose lines (``data``, ``event``, ``id``)
    take more than ``max_sse_event_bytes``, is :class:`a2a_grpc.bridge.bodies.AnswerError` naming
    the bound, raised as soon as the bytes passing it arrive: the decoder never holds more. Lines
    are split as bytes (a line end is never part of a UTF-8 sequence) and read as UTF-8, an
    invalid sequence as U+FFFD. :attr:`lines` counts the lines read, so a reader can tell a
    stream that progresses from one that drips.
    """

    def __init__(
        self, *, max_sse_line_bytes: int | None = None, max_sse_event_bytes: int | None = None
    ) -> None:
        self.max_line = max_sse_line_bytes
        self.max_event = max_sse_event_bytes
        self.lines = 0
        """Lines read so far (blank ones and comments included)."""
        self._partial = bytearray()
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id = ""
        self._event_bytes = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._skip_lf and chunk:
            chunk = chunk.removeprefix(b"\n")
            self._skip_lf = False
        events: list[SseEvent] = []
        start = 0
        for eol in _EOL.finditer(chunk):
            self._grow(eol.start() - start)
            self._partial += chunk[start : eol.start()]
            event = self._line(bytes(self._partial))
            self._partial.clear()
            if event is not None:
                events.append(event)
            start = eol.end()
        if start < len(chunk):
            self._grow(len(chunk) - start)
            self._partial += chunk[start:]
        self._skip_lf = chunk.endswith(b"\r")  # the LF of a CRLF may open the next chunk
        return events

    def _grow(self, more: int) -> None:
        if self.max_line is not None and len(self._partial) + more > self.max_line:
            raise AnswerError(
                f"sent an SSE line longer than {self.max_line} bytes (max_sse_line_bytes)",
                "max_sse_line_bytes",
                self.max_line,
            )

    def _line(self, raw: bytes) -> SseEvent | None:
        self.lines += 1
        if not self._started:
            self._started = True
            raw = raw.removeprefix(_BOM)
        if not raw:  # a blank line dispatches the event
            self._event_bytes = 0
            if not self._data:
                self._event = ""
                return None
            event = SseEvent("\n".join(self._data), self._event or "message", self._id)
            self._data.clear()
            self._event = ""
            return event
        if raw.startswith(b":"):
            return None
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if name not in ("data", "event", "id"):
            return None
        self._event_bytes += len(raw) + 1
        if self.max_event is not None and self._event_bytes > self.max_event:
            raise AnswerError(
                f"sent an SSE event larger than {self.max_event} bytes (max_sse_event_bytes)",
                "max_sse_event_bytes",
                self.max_event,
            )
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif "\0" not in value:
            self._id = value
        return None
