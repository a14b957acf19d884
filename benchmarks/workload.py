"""The work every benchmarked agent does, shared by our agent and the SDK's so both do the same.

A request is a SendMessage whose one text part is either the echo payload
(:data:`TEXT`, 100 bytes) or a command the agents recognise by its first
character:

* ``TEXT``: create a task, add ONE artifact holding the text, complete it.
* ``!stream N TEXT``: create a task, add N artifact chunks (appends to one
  artifact) each holding TEXT, complete it: N artifact-update events.
* ``!blob TOTAL CHUNK``: create a task, stream one raw artifact of TOTAL
  bytes in CHUNK-byte pieces, complete it.
* ``!ask`` (our agent only, for the SubscribeToTask fan-out): create a task that waits for input;
  the task's next message is one of the above.

Nothing here imports protobuf or a server, so a server process loads only
what it serves.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ASK", "TEXT", "Command", "blob_text", "parse_command", "stream_text"]

TEXT = "a2a benchmark payload: the same hundred bytes of text for every server, echoed back as one artifact."
"""The echo payload: 100 ASCII bytes (one text part of the request, one artifact of the answer)."""

_COMMAND = "!"
ASK = "!ask"
_STREAM = "!stream"
_BLOB = "!blob"


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed request text: ``kind`` is ``echo``, ``stream`` or ``blob``."""

    kind: str
    text: str = ""
    count: int = 0
    """stream: events to send; blob: total bytes."""
    chunk: int = 0
    """blob: bytes per artifact chunk."""


def stream_text(events: int) -> str:
    return f"{_STREAM} {events} {TEXT}"


def blob_text(total_bytes: int, chunk_bytes: int) -> str:
    return f"{_BLOB} {total_bytes} {chunk_bytes}"


def parse_command(text: str) -> Command:
    """What a request asks for. Unknown or malformed commands raise ValueError."""
    if not text.startswith(_COMMAND):
        return Command("echo", text)
    word, _, rest = text.partition(" ")
    if word == _STREAM:
        count, _, payload = rest.partition(" ")
        return Command("stream", payload, count=int(count))
    if word == _BLOB:
        total, _, chunk = rest.partition(" ")
        if int(chunk) <= 0:
            raise ValueError(f"blob chunk must be positive: {text!r}")
        return Command("blob", count=int(total), chunk=int(chunk))
    raise ValueError(f"unknown benchmark command {word!r}")
