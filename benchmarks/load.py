"""The load generator: closed-loop workers on one asyncio loop, and what they measure.

``measure`` runs ``concurrency`` workers, each sending its next request as soon
as the previous answer arrives, for ``warmup`` seconds and then for a measured
window of ``duration`` seconds. Operations that complete inside the window count
towards throughput and latency (whenever they started: counting only those that
also start inside it would undercount long streams, a bias as large as their
duration over the window's); a failure anywhere (warm-up included) counts as an
error, and a run with errors is flagged by the report.
Server CPU seconds and peak RSS are taken over the same window.

The workloads (:mod:`benchmarks.workloads`) say what one operation is; this
module only times them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from benchmarks import procstat

__all__ = ["Operation", "RunStats", "Workload", "WorkloadError", "measure", "percentile"]

DRAIN_SECONDS = 15.0
"""After the window: how long running operations may finish before they are cancelled."""
ERROR_BACKOFF_SECONDS = 0.01
"""A worker whose operation failed waits this long, so a dead server is not hammered in a hot loop."""
MAX_ERROR_SAMPLES = 5


class WorkloadError(Exception):
    """An answer that arrived but is not the success the workload expects."""


class Operation(Protocol):
    """One worker's way to do one operation; returns how many units (requests, events) it completed."""

    async def __call__(self) -> int: ...


class Workload(Protocol):
    """What the load generator drives: opened once per run, one operation per worker."""

    unit: str
    """What one unit is, for the report: ``req``, ``event``, ``msg``."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def operation(self, index: int) -> Operation: ...


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100)
    return sorted_values[int(rank) - 1]


@dataclass
class RunStats:
    """One case at one concurrency."""

    concurrency: int
    window_s: float = 0.0
    operations: int = 0
    units: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    server_rss_peak_mib: float | None = None
    rss_peak_reset: bool = False
    other_cpu_s: float | None = None
    """CPU the rest of the machine used in the window: noise that makes the figures less reliable."""

    def record_error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies)
        window = self.window_s or float("nan")
        return {
            "concurrency": self.concurrency,
            "window_s": round(self.window_s, 4),
            "operations": self.operations,
            "units": self.units,
            "ops_per_s": self.operations / window,
            "units_per_s": self.units / window,
            "p50_ms": percentile(lat, 50) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
            "mean_ms": (sum(lat) / len(lat) * 1000) if lat else float("nan"),
            "errors": self.errors,
            "error_samples": list(self.error_samples),
            "server_cpu_per_s": None if self.server_cpu_s is None else self.server_cpu_s / window,
            "client_cpu_per_s": None if self.client_cpu_s is None else self.client_cpu_s / window,
            "other_cpu_per_s": None if self.other_cpu_s is None else max(0.0, self.other_cpu_s / window),
            "server_rss_peak_mib": self.server_rss_peak_mib,
            "rss_peak_reset": self.rss_peak_reset,
        }


class _Window:
    """CPU counters of the servers and of this process, read at the start and end of the window."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.start = self.end = 0.0
        self._server0: float | None = None
        self._client0 = 0.0
        self._busy0: float | None = None
        self.reset = False

    def _server_cpu(self) -> float | None:
        values = [procstat.cpu_seconds(pid) for pid in self.pids]
        return None if not values or any(v is None for v in values) else sum(v or 0.0 for v in values)

    def open(self) -> None:
        self.reset = all([procstat.reset_peak_rss(pid) for pid in self.pids]) and bool(self.pids)
        self._server0 = self._server_cpu()
        self._client0 = time.process_time()
        self._busy0 = procstat.busy_cpu_seconds()
        self.start = time.perf_counter()

    def close(self, stats: RunStats) -> None:
        self.end = time.perf_counter()
        server1 = self._server_cpu()
        busy1 = procstat.busy_cpu_seconds()
        stats.client_cpu_s = time.process_time() - self._client0
        stats.window_s = self.end - self.start
        if server1 is not None and self._server0 is not None:
            stats.server_cpu_s = server1 - self._server0
            if busy1 is not None and self._busy0 is not None:
                stats.other_cpu_s = busy1 - self._busy0 - stats.server_cpu_s - stats.client_cpu_s
        peaks = [procstat.rss_mib(pid, "VmHWM") for pid in self.pids]
        if peaks and all(p is not None for p in peaks):
            stats.server_rss_peak_mib = sum(p or 0.0 for p in peaks)
        stats.rss_peak_reset = self.reset


async def measure(
    workload: Workload, concurrency: int, warmup: float, duration: float, server_pids: Sequence[int]
) -> RunStats:
    """Drive ``workload`` with ``concurrency`` closed-loop workers; see the module docstring."""
    stats = RunStats(concurrency)
    window = _Window(server_pids)
    start = float("inf")
    end = float("inf")
    stopping = False
    clock = time.perf_counter

    async def work(op: Operation) -> None:
        latencies = stats.latencies
        while not stopping:
            t0 = clock()
            try:
                n = await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stats.record_error(exc)
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)
                continue
            t1 = clock()
            if start <= t1 <= end:
                latencies.append(t1 - t0)
                stats.operations += 1
                stats.units += n

    operations = [await workload.operation(i) for i in range(concurrency)]
    tasks = [asyncio.create_task(work(op)) for op in operations]
    try:
        await asyncio.sleep(warmup)
        window.open()
        start = window.start
        await asyncio.sleep(duration)
        window.close(stats)
        end = window.end
        stopping = True
        _, pending = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
        if pending:
            stats.record_error(
                TimeoutError(f"{len(pending)} operation(s) still running {DRAIN_SECONDS}s after the window")
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
    return stats
