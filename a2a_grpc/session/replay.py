"""What a session keeps to survive a dropped connection: :class:`Replay`.

Each side counts the frames it sends that matter to a call (the server's CallEvent, CallEnd and
Chunk frames; the client's Call, CancelCall, Chunk and Credit frames; not Hello, Welcome,
Heartbeat, Goodbye or the Batch envelope) and keeps each until the peer acknowledges it: every
Heartbeat, Credit and batch carries ``received``, the number of counted frames its sender has
received so far. A connection delivers frames in order, so that one number says exactly which
frames arrived. When a session resumes on a new connection, each side sends again the frames
after the other's ``received``: nothing lost, nothing twice.

What is kept is bounded by flow control: the server cannot send more than the credit windows
allow before the client's Credit frames (which acknowledge) come back; the client's unacknowledged
frames are its calls' starts, cancels and credits since the server's last batch or heartbeat.
"""

from __future__ import annotations

import collections
import itertools

from a2a_grpc import errors

__all__ = ["Replay"]


class Replay:
    """The counted frames one side sent that the peer has not acknowledged, with their positions
    (the first counted frame is position 1)."""

    __slots__ = ("_frames", "acked", "bytes", "sent")

    def __init__(self) -> None:
        self._frames: collections.deque[bytes] = collections.deque()
        self.sent = 0
        """How many counted frames were sent (the position of the last one)."""
        self.acked = 0
        """How many of them the peer acknowledged (positions up to it are forgotten)."""
        self.bytes = 0
        """The bytes kept."""

    def add(self, frame: bytes) -> None:
        self._frames.append(frame)
        self.sent += 1
        self.bytes += len(frame)

    def ack(self, received: int) -> None:
        """The peer received the first ``received`` counted frames; a smaller number than an
        earlier one changes nothing (acknowledgements can cross). More than was sent is a lie."""
        if received > self.sent:
            raise errors.InvalidRequestError(
                f"the peer acknowledges {received} frames; {self.sent} were sent"
            )
        while self.acked < received:
            self.bytes -= len(self._frames.popleft())
            self.acked += 1

    def after(self, received: int) -> list[bytes]:
        """The frames after position ``received``, to send again on a new connection (and what
        they acknowledge is forgotten). SessionPositionNotRetainedError if that position is
        outside what is kept."""
        if not self.acked <= received <= self.sent:
            raise errors.SessionPositionNotRetainedError(
                f"the client received {received} frames; this session retains positions "
                f"{self.acked + 1} to {self.sent}",
                metadata={"received": str(received), "oldest_retained": str(self.acked + 1)},
            )
        self.ack(received)
        return list(self._frames)

    def since(self, position: int) -> list[bytes]:
        """The frames after ``position`` (at least the oldest kept), without forgetting any: what
        was sent meanwhile on a connection still being resumed, not yet acknowledged."""
        skip = max(position - self.acked, 0)
        return list(itertools.islice(self._frames, skip, None))  # no copy of what is skipped

    def __len__(self) -> int:
        return len(self._frames)
