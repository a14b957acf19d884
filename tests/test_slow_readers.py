"""No reader can stall a task: a subscriber that never reads (over gRPC, or SSE) does not slow the
caller's own stream of ``stream 100000``, and is itself ended with EventsNotRetainedError once it
reads again, behind the retained window. The event rates are logged (for the record: timings
are not asserted in tests; the benchmarks measure speed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from a2a_grpc import errors, status, types
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import ServerSettings
from tests.bridge_http_peers import RawConnection

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
log = logging.getLogger("tests.slow_readers")

EVENTS = 100_000
WAIT = 120.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[AgentStack]:
    async with AgentStack(ReferenceAgent(), grpc=ServerSettings(port=0), http_port=0) as served:
        yield served


async def caller_stream(stack: AgentStack, on_task: asyncio.Future[str]) -> tuple[int, float, int]:
    """The caller's own stream of ``stream 100000``: chunks received, events per second, last state."""
    chunks = 0
    state = types.TASK_STATE_UNSPECIFIED
    async with A2AClient(stack.grpc_address, timeout=WAIT) as client:
        start = time.perf_counter()
        stream = client.send_streaming_message(A2AClient.text_request(f"stream {EVENTS}"), timeout=WAIT)
        async with contextlib.aclosing(stream):
            async for event in stream:
                if event.HasField("task") and not on_task.done():
                    on_task.set_result(event.task.id)
                elif event.HasField("artifact_update"):
                    chunks += 1
                elif event.HasField("status_update"):
                    state = event.status_update.status.state
        elapsed = time.perf_counter() - start
    return chunks, chunks / elapsed, state


async def subscribers(stack: AgentStack, task_id: str) -> int:
    assert stack.server is not None
    assert stack.server.handler is not None
    run = stack.server.handler.runs.get("", task_id)
    return len(run.subscribers) if run is not None else 0


async def until_subscribed(stack: AgentStack, task_id: str) -> None:
    """Until the task has its second reader (the caller's stream is the first)."""
    async with asyncio.timeout(WAIT):
        while await subscribers(stack, task_id) < 2:  # noqa: ASYNC110 - state of another party
            await asyncio.sleep(0.01)


async def read_to_the_end(call: grpc.aio.UnaryStreamCall[object, object]) -> int:
    read = 0
    async with asyncio.timeout(WAIT):
        async for _ in call:
            read += 1
    return read


async def test_an_idle_grpc_subscriber_does_not_slow_the_caller_and_is_ended_with_the_error(
    stack: AgentStack,
) -> None:
    on_task: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    alone = await caller_stream(stack, on_task)
    assert alone[0] == EVENTS
    on_task = asyncio.get_running_loop().create_future()
    caller = asyncio.ensure_future(caller_stream(stack, on_task))
    task_id = await asyncio.wait_for(on_task, WAIT)
    async with grpc.aio.insecure_channel(stack.grpc_address) as channel:
        subscribe = channel.unary_stream(
            "/lf.a2a.v1.A2AService/SubscribeToTask",
            request_serializer=types.SubscribeToTaskRequest.SerializeToString,
            response_deserializer=types.StreamResponse.FromString,
        )
        idle = subscribe(types.SubscribeToTaskRequest(id=task_id), metadata=(("a2a-version", "1.0"),))
        await until_subscribed(stack, task_id)  # the subscription exists, and is not read
        chunks, rate, state = await asyncio.wait_for(caller, WAIT)
        log.warning(
            "stream %d: the caller alone %.0f events/s; beside an idle gRPC subscriber %.0f events/s",
            EVENTS,
            alone[1],
            rate,
        )
        assert (chunks, state) == (EVENTS, types.TASK_STATE_COMPLETED)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_to_the_end(idle)
    error = status.from_rpc_error(ended.value)
    assert isinstance(error, errors.EventsNotRetainedError), error
    assert ended.value.code() == grpc.StatusCode.ABORTED
    assert int(error.metadata["oldest_retained"]) > int(error.metadata["position"]) + 1  # a real gap, said


async def test_an_idle_sse_subscriber_does_not_slow_the_caller_and_is_ended_with_the_error(
    stack: AgentStack,
) -> None:
    assert stack.http is not None
    on_task: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    caller = asyncio.ensure_future(caller_stream(stack, on_task))
    task_id = await asyncio.wait_for(on_task, WAIT)
    idle = await RawConnection.open(stack.http.port)
    try:
        await idle.send(
            f"GET /tasks/{task_id}:subscribe HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\n\r\n".encode()
        )
        await until_subscribed(stack, task_id)
        chunks, rate, state = await asyncio.wait_for(caller, WAIT)
        log.warning("stream %d beside an idle SSE subscriber: %.0f events/s", EVENTS, rate)
        assert (chunks, state) == (EVENTS, types.TASK_STATE_COMPLETED)
        received = await idle.read_until(b"EVENTS_NOT_RETAINED", timeout=WAIT)
    finally:
        await idle.close()
    assert b"event: error" in received
    assert received.count(b"artifactUpdate") < EVENTS
