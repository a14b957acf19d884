"""The session binding's single-shot cases: a large artifact over a session, and many idle sessions.

* :func:`measure_session_artifact`: the large-artifact case (:mod:`benchmarks.artifact`) over one
  session whose frame limit is 4 MiB: MB/s, and the peak RSS growth of the server AND of this
  load generator (the session client), each over its idle RSS.
* :func:`measure_resume_latency`: a stream over one session through a proxy that cuts its
  connection again and again: the drop to the first frame on the resumed connection, p50 and p99.
* :func:`measure_idle_sessions`: ``sessions`` sessions opened from this process (bare streams:
  Hello, Welcome, then nothing but heartbeats), held for a while; the server's RSS with all of them
  open, and the heartbeats it sent meanwhile (they must flow).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import grpc

from a2a_grpc import types
from a2a_grpc.client import A2AClient
from a2a_grpc.session.frames import CONNECT, ClientFrame, Heartbeat, Hello, ServerFrame
from benchmarks import procstat
from benchmarks.artifact import artifact_result
from benchmarks.servers import Endpoint
from benchmarks.workload import blob_text, stream_text
from benchmarks.workloads import grpc_channel

__all__ = ["measure_idle_sessions", "measure_resume_latency", "measure_session_artifact"]

FRAME_LIMIT = 4 * 2**20
IDLE_SETTLE_SECONDS = 0.5
HOLD_SECONDS = 6.0
"""How long the idle sessions are held once all are open (heartbeats every 2 s meanwhile)."""
HEARTBEAT_SECONDS = 2
RESUME_EVENTS_BETWEEN = 2000
"""Events read between two cuts of session-resume (the stream runs at full speed meanwhile)."""
STREAMS_PER_CHANNEL = 1000
"""Sessions opened over one channel (HTTP/2 connection) before the next one is used."""


async def measure_session_artifact(endpoint: Endpoint, total_bytes: int, chunk_bytes: int) -> dict[str, Any]:
    pid, own = endpoint.pids[0], os.getpid()
    errors: list[str] = []
    async with A2AClient(endpoint.grpc_target, timeout=60, max_message_bytes=64 * 2**20) as client:
        await client.wait_ready(10)
        async with client.session(max_frame_bytes=FRAME_LIMIT) as session:
            await session.send_message(A2AClient.text_request("warm"))
            await asyncio.sleep(IDLE_SETTLE_SECONDS)
            idle, own_idle = procstat.rss_mib(pid), procstat.rss_mib(own)
            reset = procstat.reset_peak_rss(pid) and procstat.reset_peak_rss(own)
            received = events = 0
            last = types.StreamResponse()
            start = time.perf_counter()
            request = A2AClient.text_request(blob_text(total_bytes, chunk_bytes))
            async for event in session.send_streaming_message(
                request, timeout=max(60.0, total_bytes / 2**21)
            ):
                last = event
                if event.HasField("artifact_update"):
                    events += 1
                    received += sum(len(part.raw) for part in event.artifact_update.artifact.parts)
            seconds = time.perf_counter() - start
            peak, own_peak = procstat.rss_mib(pid, "VmHWM"), procstat.rss_mib(own, "VmHWM")
    result = artifact_result(
        total_bytes, chunk_bytes, events, received, last, seconds, (idle, peak), reset, errors
    )
    growth = None if own_idle is None or own_peak is None or not reset else own_peak - own_idle
    result["client_rss_growth_mib"] = growth
    return result


async def _open(channel: grpc.aio.Channel) -> Any:
    hello = Hello(protocol_versions=["1.0"], agent_name="idle")
    hello.heartbeat_interval.FromSeconds(HEARTBEAT_SECONDS)
    stream = channel.stream_stream(
        CONNECT,
        request_serializer=ClientFrame.SerializeToString,
        response_deserializer=ServerFrame.FromString,
    )()
    await stream.write(ClientFrame(hello=hello))
    welcome = await stream.read()
    if welcome is grpc.aio.EOF or welcome.WhichOneof("frame") != "welcome":
        raise RuntimeError("no Welcome")
    return stream


class _Idle:
    """One idle session: beats every interval from the moment it opens, counts the server's beats."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.heartbeats = 0
        self.failure: str | None = None
        self.tasks = [asyncio.ensure_future(self._beat()), asyncio.ensure_future(self._read())]

    async def _beat(self) -> None:
        count = 0
        try:
            while True:
                count += 1
                await self.stream.write(ClientFrame(heartbeat=Heartbeat(count=count)))
                await asyncio.sleep(HEARTBEAT_SECONDS)
        except grpc.RpcError as exc:
            self.failure = f"{type(exc).__name__}: {exc.code()}"

    async def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            while (frame := await self.stream.read()) is not grpc.aio.EOF:
                inner = frame.batch.frames if frame.WhichOneof("frame") == "batch" else [frame]
                self.heartbeats += sum(one.WhichOneof("frame") == "heartbeat" for one in inner)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.stream.cancel()


async def measure_idle_sessions(endpoint: Endpoint, sessions: int) -> dict[str, Any]:
    pid = endpoint.pids[0]
    errors: list[str] = []
    channels = [await grpc_channel(endpoint.grpc_target) for _ in range(-(-sessions // STREAMS_PER_CHANNEL))]
    idles: list[_Idle] = []
    try:
        await asyncio.sleep(IDLE_SETTLE_SECONDS)
        idle = procstat.rss_mib(pid)
        start = time.perf_counter()
        for at in range(0, sessions, 200):  # in batches: a burst of 10,000 handshakes at once is another test
            batch = [_open(channels[i // STREAMS_PER_CHANNEL]) for i in range(at, min(at + 200, sessions))]
            for outcome in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    if len(errors) < 5:
                        errors.append(f"{type(outcome).__name__}: {outcome}")
                else:
                    idles.append(_Idle(outcome))
        opened = time.perf_counter() - start
        seen = sum(i.heartbeats for i in idles)
        await asyncio.sleep(HOLD_SECONDS)
        heartbeats = sum(i.heartbeats for i in idles) - seen
        held = procstat.rss_mib(pid)
        lost = [i.failure for i in idles if i.failure]
        if lost:
            errors.append(f"{len(lost)} sessions failed while held, e.g. {lost[0]}")
    finally:
        for one in idles:
            await one.close()
        for channel in channels:
            await channel.close()
    streams = idles
    if len(streams) != sessions:
        errors.append(f"{sessions - len(streams)} of {sessions} sessions did not open")
    return {
        "sessions": len(streams),
        "open_seconds": opened,
        "idle_rss_mib": idle,
        "rss_with_sessions_mib": held,
        "rss_per_session_kib": None
        if idle is None or held is None or not streams
        else (held - idle) * 1024 / len(streams),
        "server_heartbeats_seen": heartbeats,
        "hold_seconds": HOLD_SECONDS,
        "errors": len(errors),
        "error_samples": errors,
    }


async def measure_resume_latency(endpoint: Endpoint, cuts: int) -> dict[str, Any]:
    """One session through a proxy in this process, one endless stream over it; ``cuts`` times,
    cut every connection and time the drop to the first frame on the resumed connection (replayed
    events first, then live ones). Every event must arrive once and in order."""
    from a2a_grpc.testing import CuttingProxy

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: list[str] = []
    async with (
        CuttingProxy(endpoint.grpc_port) as proxy,
        A2AClient(f"127.0.0.1:{proxy.port}", timeout=60) as client,
        client.session(agent_name="resume-bench") as session,
    ):
        stream = cast(
            AsyncGenerator[types.StreamResponse, None],
            session.send_streaming_message(A2AClient.text_request(stream_text(100_000_000))),
        )
        seen, next_cut, cut_at, last_seq = 0, RESUME_EVENTS_BETWEEN, 0.0, 0
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                seen += 1
                if event.HasField("artifact_update"):
                    last_seq += 1
                if cut_at and session.resumes == proxy.cuts and session.first_frame_after_resume:
                    latencies.append(session.first_frame_after_resume - cut_at)
                    cut_at, next_cut = 0.0, seen + RESUME_EVENTS_BETWEEN
                    if len(latencies) == cuts:
                        break
                if not cut_at and seen >= next_cut:
                    cut_at = loop.time()
                    session.first_frame_after_resume = None
                    proxy.cut()
        if seen != last_seq + 1:  # the Task snapshot first, then one artifact event each
            errors.append(f"{seen} events, {last_seq} artifact updates: a gap or a duplicate")
    latencies.sort()

    def at(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "cuts": len(latencies),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "errors": len(errors),
        "error_samples": errors[:3],
    }
