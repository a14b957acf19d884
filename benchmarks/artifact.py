"""The large-artifact case: one streamed artifact of many MiB, its speed and the server's memory.

The server is first warmed with one echo call and left idle for a moment; its
resident memory then is the "idle RSS". The peak RSS counter is reset, one
SendStreamingMessage asks for ``total`` bytes in ``chunk``-byte pieces, and the
client counts every byte it receives. The result is MB/s (10^6 bytes per
second of the call) and the growth of the server's peak RSS over idle RSS:
a server that streams without buffering the artifact grows by a few chunks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from a2a_grpc import types
from benchmarks import procstat
from benchmarks.payload import GRPC_METADATA, check_task_bytes, grpc_send_request
from benchmarks.servers import Endpoint
from benchmarks.workload import blob_text
from benchmarks.workloads import SEND_MESSAGE, SEND_STREAMING_MESSAGE, grpc_channel

__all__ = ["artifact_result", "measure_artifact"]

IDLE_SETTLE_SECONDS = 0.5
MIN_SECONDS_PER_MIB = 0.5
"""The call's deadline: at least 60 s, and this long per MiB (far slower than any sane server)."""


async def measure_artifact(endpoint: Endpoint, total_bytes: int, chunk_bytes: int) -> dict[str, Any]:
    pid = endpoint.pids[0]
    channel = await grpc_channel(endpoint.grpc_target)
    errors: list[str] = []
    try:
        warm = await channel.unary_unary(SEND_MESSAGE)(
            grpc_send_request().render(), metadata=GRPC_METADATA, timeout=30
        )
        if problem := check_task_bytes(warm):
            errors.append(f"warm-up echo: {problem}")
        await asyncio.sleep(IDLE_SETTLE_SECONDS)
        idle = procstat.rss_mib(pid)
        reset = procstat.reset_peak_rss(pid)
        cpu0 = procstat.cpu_seconds(pid)
        request = grpc_send_request(blob_text(total_bytes, chunk_bytes)).render()
        deadline = max(60.0, total_bytes / 2**20 * MIN_SECONDS_PER_MIB)
        received = events = 0
        last = types.StreamResponse()
        start = time.perf_counter()
        call = channel.unary_stream(SEND_STREAMING_MESSAGE)(request, metadata=GRPC_METADATA, timeout=deadline)
        async for data in call:
            last = types.StreamResponse.FromString(data)
            if last.HasField("artifact_update"):
                events += 1
                received += sum(len(part.raw) for part in last.artifact_update.artifact.parts)
        seconds = time.perf_counter() - start
        cpu1 = procstat.cpu_seconds(pid)
        peak = procstat.rss_mib(pid, "VmHWM")
    finally:
        await channel.close()
    result = artifact_result(
        total_bytes, chunk_bytes, events, received, last, seconds, (idle, peak), reset, errors
    )
    result["server_cpu_per_s"] = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / seconds
    return result


def artifact_result(
    total_bytes: int,
    chunk_bytes: int,
    events: int,
    received: int,
    last: types.StreamResponse,
    seconds: float,
    rss: tuple[float | None, float | None],
    reset: bool,
    errors: list[str],
) -> dict[str, Any]:
    """The figures of one large-artifact transfer, with its errors (bytes missing, no completed
    status at the end); ``rss`` is the server's (idle, peak) in MiB."""
    if received != total_bytes:
        errors.append(f"received {received} of {total_bytes} bytes")
    if last.status_update.status.state != types.TASK_STATE_COMPLETED:
        errors.append(f"stream did not end with a completed status: {last.WhichOneof('payload')}")
    idle, peak = rss
    return {
        "total_bytes": total_bytes,
        "chunk_bytes": chunk_bytes,
        "events": events,
        "received_bytes": received,
        "seconds": seconds,
        "mb_per_s": received / 1e6 / seconds if seconds > 0 else float("nan"),
        "idle_rss_mib": idle,
        "peak_rss_mib": peak,
        "rss_growth_mib": None if idle is None or peak is None or not reset else peak - idle,
        "rss_peak_reset": reset,
        "errors": len(errors),
        "error_samples": errors,
    }
