"""What the SQLite task store's start-up integrity check costs: ``python -m benchmarks.store_check``.

For each size it fills a store in a temporary directory with tasks shaped like an agent's
(a few history messages, one artifact, metadata; about 2.5 KiB each), closes it, then times
opening it with and without ``check_integrity``, with the file in the page cache ("warm") and
after evicting it from the cache ("cold", by ``posix_fadvise(DONTNEED)`` on the store's own
files, so nothing else on the machine is disturbed). The difference is the check. It also
times ``PRAGMA integrity_check`` beside ``PRAGMA quick_check``, which is why the store uses
the latter. Each figure is the median of ``--repeat`` opens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from a2a_grpc import types
from a2a_grpc.tasks import SqliteTaskStore

__all__ = ["main", "realistic_task"]

BATCH = 500


def realistic_task(n: int) -> types.Task:
    """A completed task: four history messages, one text artifact, a little metadata."""
    task = types.Task(id=f"task-{n:08d}", context_id=f"ctx-{n // 10:07d}")
    task.status.state = types.TASK_STATE_COMPLETED
    task.status.timestamp.seconds = 1_700_000_000 + n
    for i in range(4):
        message = task.history.add(message_id=f"m-{n}-{i}", task_id=task.id, context_id=task.context_id)
        message.role = types.ROLE_USER if i % 2 == 0 else types.ROLE_AGENT
        message.parts.add(text=f"message {i} of task {n}: " + "lorem ipsum dolor sit amet " * 10)
    artifact = task.artifacts.add(artifact_id=f"a-{n}", name="answer")
    artifact.parts.add(text="the answer, at some length. " * 40)
    task.metadata.update({"skill": "echo", "attempt": 1})
    return task


async def fill(path: Path, count: int) -> None:
    store = SqliteTaskStore(str(path), check_integrity=False)
    try:
        for start in range(0, count, BATCH):
            await asyncio.gather(
                *(store.save("", realistic_task(n)) for n in range(start, min(count, start + BATCH)))
            )
    finally:
        await store.close()


def evict(path: Path) -> None:
    """Drop the store's files from the page cache (this process's view of "cold")."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def median_seconds(run: Callable[[], object], repeat: int, before: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def open_store(path: Path, check: bool) -> None:
    store = SqliteTaskStore(str(path), check_integrity=check)
    asyncio.run(store.close())


def pragma(path: Path, name: str) -> None:
    with sqlite3.connect(path) as conn:
        (verdict,) = conn.execute(f"PRAGMA {name}").fetchone()
    assert verdict == "ok", verdict


def measure(path: Path, count: int, repeat: int) -> dict[str, float]:
    asyncio.run(fill(path, count))
    row: dict[str, float] = {"tasks": count, "mb": path.stat().st_size / 1e6}
    for label, before in (("warm", None), ("cold", lambda: evict(path))):
        with_check = median_seconds(lambda: open_store(path, True), repeat, before)
        without = median_seconds(lambda: open_store(path, False), repeat, before)
        row[f"open {label}"] = without
        row[f"check {label}"] = with_check - without
    row["quick_check"] = median_seconds(lambda: pragma(path, "quick_check"), repeat)
    row["integrity_check"] = median_seconds(lambda: pragma(path, "integrity_check"), repeat)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.store_check", description=__doc__)
    p.add_argument(
        "--tasks", default="10000,100000", help="comma-separated store sizes in tasks (default: 10000,100000)"
    )
    p.add_argument("--repeat", type=int, default=5, help="opens per figure; the median is shown (default: 5)")
    p.add_argument("--dir", type=Path, help="where to build the stores (default: a temporary directory)")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.tasks.split(",") if x.strip()]
    print(
        f"{'tasks':>8} {'MB':>7} {'open warm':>10} {'check warm':>11} {'open cold':>10} {'check cold':>11}"
        f" {'quick_check':>12} {'integrity_check':>16}   (seconds, median of {args.repeat})"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for count in sizes:
            path = Path(tmp) / f"tasks-{count}.db"
            r = measure(path, count, args.repeat)
            print(
                f"{count:>8} {r['mb']:>7.1f} {r['open warm']:>10.3f} {r['check warm']:>11.3f}"
                f" {r['open cold']:>10.3f} {r['check cold']:>11.3f} {r['quick_check']:>12.3f}"
                f" {r['integrity_check']:>16.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
