"""Memory stays bounded while a large artifact streams: a byte window, and a retention cap that says so."""

from __future__ import annotations

import asyncio

import pytest

from a2a_grpc import types
from a2a_grpc._handler import RequestHandler
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.service import CallContext
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.tasks.eventlog import Backpressure, InMemoryEventLog, Retention
from a2a_grpc.tasks.run import UNRETAINED_KEY
from tests.conftest import serve, shutdown

CHUNK = 10_000


class Chunks(Agent):
    """Streams ``N`` raw chunks of CHUNK bytes into one artifact, then completes."""

    card = types.AgentCard(name="chunks", description="streams chunks", version="1")
    card.capabilities.streaming = True

    def __init__(self) -> None:
        self.reported = 0

    async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
        count = int(ctx.text.split()[-1])
        for i in range(count):
            part = types.Part(raw=bytes([i % 256]) * CHUNK)
            await updater.artifact([part], artifact_id="blob", append=i > 0, last_chunk=i == count - 1)
            self.reported = i + 1
        await updater.complete()


@pytest.mark.asyncio
async def test_content_beyond_the_retention_cap_is_streamed_not_kept_and_marked() -> None:
    served = await serve(Chunks(), max_retained_artifact_bytes=3 * CHUNK + 100)
    try:
        events = [e async for e in served.client.send_streaming_message(A2AClient.text_request("go 10"))]
        updates = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
        chunks = [a.parts[0].raw for a in updates]
        assert [c[0] for c in chunks] == list(range(10))  # every chunk reached the stream, in order
        assert all(len(c) == CHUNK for c in chunks)
        task = await served.client.get_task(events[0].task.id)
        assert task.status.state == types.TASK_STATE_COMPLETED
        (artifact,) = task.artifacts
        assert artifact.artifact_id == "blob"
        assert [p.raw[0] for p in artifact.parts] == [0, 1, 2]  # what fits is kept, in order
        dropped = artifact.metadata.fields[UNRETAINED_KEY].number_value
        assert dropped == sum(a.ByteSize() for a in updates[3:])
    finally:
        await shutdown(served)


@pytest.mark.asyncio
async def test_a_replaced_artifact_frees_its_retained_bytes() -> None:
    class Replace(Agent):
        card = types.AgentCard(name="replace", description="replaces", version="1")

        async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
            for i in range(5):  # each report replaces the last: only one chunk is ever kept
                await updater.artifact([types.Part(raw=bytes([i]) * CHUNK)], artifact_id="a")
            await updater.complete()

    served = await serve(Replace(), max_retained_artifact_bytes=CHUNK + 100)
    try:
        reply = await served.client.send_message(A2AClient.text_request("go"))
        (artifact,) = reply.task.artifacts
        assert artifact.parts[0].raw == bytes([4]) * CHUNK
        assert UNRETAINED_KEY not in artifact.metadata.fields
    finally:
        await shutdown(served)


@pytest.mark.asyncio
async def test_the_byte_window_holds_the_agent_back_until_the_subscriber_reads() -> None:
    agent = Chunks()
    events = InMemoryEventLog(Retention(events=1000), Backpressure(events=1000, bytes=3 * CHUNK))
    handler = RequestHandler(agent, InMemoryTaskStore(), events=events)
    request = A2AClient.text_request("go 20")
    stream = handler.send_streaming_message(request, CallContext(version="1.0"))
    try:
        first = await anext(stream)
        assert first.HasField("task")
        for _ in range(100):  # let the agent run until the window stops it (bounded)
            await asyncio.sleep(0)
        (run,) = handler.runs.all()
        assert agent.reported < 20  # held back, not buffering all 200 kB
        unread = run.log.appended_bytes - next(iter(run.subscribers)).reader.read_bytes
        assert unread <= 3 * CHUNK + CHUNK  # at most one event past the bound
        held = agent.reported
        seen = 0
        async for event in stream:
            seen += event.HasField("artifact_update")
            if seen == 5:
                break
        for _ in range(100):
            await asyncio.sleep(0)
        assert agent.reported > held  # reading made room
    finally:
        await stream.aclose()
        await handler.aclose(grace=1.0)
