"""Reading Server-Sent Events (``text/event-stream``), as the WHATWG HTML standard defines them.

The bridge writes SSE in :mod:`bridge.app`; this is the reading side, used by the JSON client of
the reverse bridge (:mod:`bridge.jsonclient`) and by tests.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SseDecoder", "SseEvent"]

_EOL = re.compile(r"\r\n|\r|\n")


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
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial: list[str] = []
        self._skip_lf = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id = ""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        text = self._text.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._skip_lf:
            text = text.removeprefix("\n")
        events: list[SseEvent] = []
        start = 0
        for eol in _EOL.finditer(text):
            self._partial.append(text[start : eol.start()])
            event = self._line("".join(self._partial))
            self._partial.clear()
            if event is not None:
                events.append(event)
            start = eol.end()
        if start < len(text):
            self._partial.append(text[start:])
        self._skip_lf = text.endswith("\r")  # the LF of a CRLF may open the next chunk
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:  # a blank line dispatches the event
            if not self._data:
                self._event = ""
                return None
            event = SseEvent("\n".join(self._data), self._event or "message", self._id)
            self._data.clear()
            self._event = ""
            return event
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
