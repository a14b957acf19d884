"""The event log: numbered events, replay from a position, retention whoever reads, the typed error
for a position the window no longer holds, and backpressure from the primary reader only."""

from __future__ import annotations

import asyncio
import contextlib
import tracemalloc

import pytest

from a2a_grpc import errors, types
from a2a_grpc.tasks.eventlog import Backpressure, InMemoryEventLog, LogReader, Retention, TaskLog

pytestmark = pytest.mark.asyncio


def status(n: int) -> types.StreamResponse:
    event = types.StreamResponse()
    event.status_update.task_id = "t"
    event.status_update.status.message.message_id = f"m{n}"
    return event


def chunk(n: int, size: int) -> types.StreamResponse:
    event = types.StreamResponse()
    event.artifact_update.artifact.artifact_id = "a"
    event.artifact_update.artifact.parts.add(raw=bytes([n % 256]) * size)
    return event


def append(log: TaskLog, event: types.StreamResponse) -> int:
    return log.append(event, event.ByteSize())


async def read(reader: LogReader, count: int) -> list[int]:
    out = []
    async with asyncio.timeout(5):
        async for seq, _ in reader:
            out.append(seq)
            if len(out) == count:
                break
    return out


async def test_events_are_numbered_and_a_late_reader_gets_exactly_what_follows_its_position() -> None:
    log = InMemoryEventLog().open("", "t")
    seqs = [append(log, status(i)) for i in range(10)]
    assert seqs == list(range(1, 11))
    late = log.reader(after=4)
    assert await read(late, 6) == [5, 6, 7, 8, 9, 10]
    # ... then live ones, in order, as they come
    pending = asyncio.ensure_future(read(late, 3))
    await asyncio.sleep(0)
    for i in range(3):
        append(log, status(10 + i))
    assert await pending == [11, 12, 13]
    events = [event.status_update.status.message.message_id for _, event in log.retained_after(10) or []]
    assert events == ["m10", "m11", "m12"]


async def test_retention_bounds_events_and_bytes_whoever_reads() -> None:
    log = InMemoryEventLog(Retention(events=50, bytes=1 << 20), Backpressure(events=10, bytes=1 << 16)).open(
        "", "t"
    )
    for i in range(500):
        append(log, status(i))
    assert (log.first, log.last) == (451, 500)  # the latest 50, with no reader at all
    sized = InMemoryEventLog(Retention(events=1000, bytes=100_000), Backpressure(events=10, bytes=50_000))
    big = sized.open("", "b")
    for i in range(100):
        append(big, chunk(i, 10_000))
    assert big.retained_bytes <= 100_000
    assert big.last - big.first + 1 == big.retained_bytes // chunk(0, 10_000).ByteSize()
    # The newest event is kept even when it alone exceeds the byte bound.
    append(big, chunk(0, 300_000))
    assert big.first == big.last == 101


async def test_a_position_older_than_the_window_is_a_typed_error_not_a_gap() -> None:
    log = InMemoryEventLog(Retention(events=20), Backpressure(events=10)).open("", "t")
    for i in range(100):
        append(log, status(i))
    with pytest.raises(errors.EventsNotRetainedError) as lost:
        await read(log.reader(after=5), 1)
    assert lost.value.metadata == {"task_id": "t", "position": "5", "oldest_retained": "81"}
    assert await read(log.reader(after=80), 2) == [81, 82]  # the oldest retained position is fine


async def test_a_reader_that_falls_behind_is_ended_with_the_error_and_the_producer_never_waits() -> None:
    log = InMemoryEventLog(Retention(events=100), Backpressure(events=10)).open("", "t")
    idle = log.reader(after=0)  # a subscriber that stops reading after one event
    append(log, status(0))
    assert await read(idle, 1) == [1]
    for i in range(1000):  # no backpressure: it is not the primary reader
        append(log, status(i))
    with pytest.raises(errors.EventsNotRetainedError):
        await read(idle, 1)
    idle.close()


async def test_only_the_primary_reader_holds_the_producer_back() -> None:
    log = InMemoryEventLog(Retention(events=100), Backpressure(events=5)).open("", "t")
    primary = log.reader(after=0, primary=True)
    log.reader(after=0)  # a second reader that never reads: it holds nothing
    for i in range(5):
        await log.room()
        append(log, status(i))
    waiting = asyncio.ensure_future(log.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the primary has its allowance unread
    assert await read(primary, 2) == [1, 2]
    await asyncio.sleep(0.01)
    assert not waiting.done()  # 3 of 5 unread: a waiting producer resumes at half (2)
    assert await read(primary, 1) == [3]
    await asyncio.wait_for(waiting, 1)  # reading made room
    primary.close()
    for i in range(50):  # a primary that left holds nothing any more
        await asyncio.wait_for(log.room(), 1)
        append(log, status(i))


async def test_an_event_larger_than_the_retained_bytes_never_cuts_the_primary_reader() -> None:
    log = InMemoryEventLog(Retention(events=100, bytes=10_000), Backpressure(events=50, bytes=5_000))
    task_log = log.open("", "t")
    primary = task_log.reader(after=0, primary=True)
    behind = task_log.reader(after=0)  # another reader, that reads nothing yet
    append(task_log, status(1))  # the task, unread
    append(task_log, chunk(2, 20_000))  # one event twice the retained bytes
    # The caller's own stream reads both: nothing it has yet to read was dropped.
    assert await read(primary, 2) == [1, 2]
    await asyncio.wait_for(task_log.room(), 1)
    append(task_log, status(3))  # once read, retention applies again: the large event goes
    assert task_log.first == 3
    assert task_log.retained_bytes < 10_000
    # Any other reader falls out of the window as before, with the typed error.
    with pytest.raises(errors.EventsNotRetainedError):
        await read(behind, 1)
    primary.close()


async def test_backpressure_bounds_memory_with_a_slow_primary_reader() -> None:
    size = 100_000
    log = InMemoryEventLog(
        Retention(events=10_000, bytes=64 << 20), Backpressure(events=10_000, bytes=1 << 20)
    )
    task_log = log.open("", "t")
    primary = task_log.reader(after=0, primary=True)

    async def produce() -> None:
        for i in range(200):  # 20 MB in all
            await task_log.room()
            task_log.append(chunk(i, size), size)

    tracemalloc.start()
    try:
        producer = asyncio.ensure_future(produce())
        peak_unread = 0
        async with asyncio.timeout(20):
            async for seq, _ in primary:
                await asyncio.sleep(0)  # a slow reader
                peak_unread = max(peak_unread, task_log.appended_bytes - primary.read_bytes)
                if seq == 200:
                    break
        await producer
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Unread bytes never passed the 1 MiB allowance by more than one event ...
    assert peak_unread <= (1 << 20) + size
    # ... but retention keeps up to 64 MiB of events for other readers: bounded by it, not by 20 MB.
    assert peak < 64 << 20
    primary.close()


async def test_a_closed_log_ends_its_readers_after_the_last_event() -> None:
    events = InMemoryEventLog()
    log = events.open("", "t")
    reader = log.reader(after=0)
    append(log, status(1))
    events.finish(log)
    assert await read(reader, 10) == [1]
    with pytest.raises(RuntimeError, match="closed"):
        append(log, status(2))


async def test_logs_nobody_left_early_are_dropped_at_once_others_after_a_while() -> None:
    events = InMemoryEventLog(Retention(terminal_seconds=0.05))
    done = events.open("", "done")
    reader = done.reader(after=0)
    append(done, status(1))
    events.finish(done)
    assert await read(reader, 5) == [1]
    reader.close()
    events.release(done)
    assert events.get("", "done") is None  # read to the end: nobody comes back for it
    left = events.open("", "left")
    early = left.reader(after=0)
    append(left, status(1))
    early.close()  # left before the end: it may come back
    events.release(left)
    assert events.get("", "left") is left
    await asyncio.sleep(0.1)
    assert events.get("", "left") is None
    reopened = events.open("", "left", last_seq=1)
    assert reopened.last == 1


async def test_a_sink_makes_events_visible_only_once_stored_and_its_failure_reaches_readers() -> None:
    class Sink:
        def __init__(self) -> None:
            self.submitted: list[tuple[TaskLog, int]] = []

        def submit(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
            self.submitted.append((log, seq))

        async def stored_after(
            self, tenant: str, task_id: str, seq: int
        ) -> list[tuple[int, types.StreamResponse]]:
            return []

    sink = Sink()
    log = InMemoryEventLog(sink=sink).open("", "t")
    reader = log.reader(after=0)
    append(log, status(1))
    append(log, status(2))
    pending = asyncio.ensure_future(read(reader, 2))
    await asyncio.sleep(0.01)
    assert not pending.done()  # not stored yet: not visible
    log.stored(2)
    assert await pending == [1, 2]
    append(log, status(3))
    waiting = asyncio.ensure_future(log.durable(3))
    log.fail(errors.InternalError("disk full"))
    with pytest.raises(errors.InternalError, match="disk full"):
        await waiting
    with pytest.raises(errors.InternalError):
        await read(reader, 1)
    with contextlib.suppress(Exception):
        reader.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="must fit in the retained window"):
        InMemoryEventLog(Retention(events=10), Backpressure(events=20))
    with pytest.raises(ValueError, match="retention needs"):
        Retention(events=0)
    with pytest.raises(ValueError, match="backpressure needs"):
        Backpressure(bytes=0)
