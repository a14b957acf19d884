"""Credit-based flow control for the session binding.

The side that receives a call's events states a window (frames and bytes, per call and for the
whole session: ``Window``, negotiated in the handshake). The sender spends credit for every
CallEvent it sends, waits when a call's or the session's credit is spent, and gets credit back
when the receiver's application has taken events (``Credit`` frames). So a slow consumer pauses
its producer, and what is in flight is bounded on both sides. CallEnd and Heartbeat frames are not
counted: they are small and must always pass.
"""

from __future__ import annotations

import asyncio

__all__ = ["Account", "Ledger"]


class Account:
    """Credit for frames towards one peer (a call's, or the session's): spent by the sender."""

    __slots__ = ("_bytes", "_frames", "_full_bytes", "_full_frames", "_room")

    def __init__(self, frames: int, size: int) -> None:
        self._frames = frames
        self._bytes = size
        self._full_frames = frames
        self._full_bytes = size
        self._room = asyncio.Event()
        self._room.set()

    def _enough(self, size: int) -> bool:
        # A frame larger than the whole byte window still goes out, alone: when nothing is in flight.
        return self._frames >= 1 and (self._bytes >= size or self._bytes >= self._full_bytes)

    async def spend(self, size: int) -> None:
        """Wait until one frame of ``size`` bytes fits, then spend it."""
        while not self._enough(size):
            self._room.clear()
            await self._room.wait()
        self._frames -= 1
        self._bytes -= size

    def give(self, frames: int, size: int) -> None:
        """Credit returned by the receiver, never beyond the window: a peer that hands out more
        than it was given cannot make the sender hold more than the window in flight."""
        self._frames = min(self._frames + frames, self._full_frames)
        self._bytes = min(self._bytes + size, self._full_bytes)
        self._room.set()

    @property
    def available(self) -> tuple[int, int]:
        """(frames, bytes) that may be sent now."""
        return self._frames, self._bytes


class Ledger:
    """What a receiver has taken and not yet given back as credit, for one call or the session:
    returned in one Credit frame once half the window is taken (fewer, larger Credit frames)."""

    __slots__ = ("bytes", "frames", "window_bytes", "window_frames")

    def __init__(self, frames: int, size: int) -> None:
        self.window_frames, self.window_bytes = frames, size
        self.frames = 0
        self.bytes = 0

    def take(self, size: int, frames: int = 1) -> tuple[int, int] | None:
        """Count ``frames`` taken frames of ``size`` bytes in all (a joined frame counts its
        chunks); the (frames, bytes) to give back now, or None."""
        self.frames += frames
        self.bytes += size
        if self.frames * 2 >= self.window_frames or self.bytes * 2 >= self.window_bytes:
            due = (self.frames, self.bytes)
            self.frames = self.bytes = 0
            return due
        return None
