"""The live stream (a2a_grpc.live): one bidirectional call bound to one task, open through
input-required; a multi-turn task completed over one stream, one live stream per task, and
reattaching to a live task after a drop; hostile first requests."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.live import LIVE_EXTENSION, SEND_LIVE, LiveRequest
from a2a_grpc.reference_agent import ReferenceAgent, reference_card
from a2a_grpc.server import ServerSettings
from a2a_grpc.status import from_rpc_error
from a2a_grpc.testing import serving

ASYNC = pytest.mark.asyncio
WAIT = 10.0


class Interview(Agent):
    """Asks for a name, then an age (input-required twice), then completes with both."""

    def __init__(self) -> None:
        self.card = reference_card()

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        asked = len([m for m in (context.task.history if context.task else []) if m.role == types.ROLE_AGENT])
        if asked == 0:
            await updater.require_input("your name?")
        elif asked == 1:
            await updater.require_input(f"and your age, {context.text}?")
        else:
            await updater.complete(f"thanks: {context.text}")


def state_of(event: types.StreamResponse) -> int | None:
    if event.HasField("task"):
        return event.task.status.state
    if event.HasField("status_update"):
        return event.status_update.status.state
    return None


def said(event: types.StreamResponse) -> str:
    status = event.task.status if event.HasField("task") else event.status_update.status
    return " ".join(p.text for p in status.message.parts)


async def until_state(
    events: AsyncIterator[types.StreamResponse], *states: int, snapshots: bool = True
) -> types.StreamResponse:
    """The next event in one of ``states``; ``snapshots=False`` skips Task snapshots (a turn on a
    task opens with the task as it stands, as SendStreamingMessage does)."""
    async with asyncio.timeout(WAIT):
        async for event in events:
            if event.HasField("task") and not snapshots:
                continue
            if state_of(event) in states:
                return event
    raise AssertionError(f"the stream ended before reaching {states}")


async def next_question(events: AsyncIterator[types.StreamResponse]) -> str:
    return said(await until_state(events, types.TASK_STATE_INPUT_REQUIRED, snapshots=False))


@ASYNC
async def test_a_multi_turn_task_completes_over_one_live_stream() -> None:
    async with serving(Interview()) as served:
        card = await served.client.get_agent_card()
        assert LIVE_EXTENSION in [e.uri for e in card.capabilities.extensions]
        async with served.client.live("let us begin") as live:
            events = aiter(live)
            asked = await until_state(events, types.TASK_STATE_INPUT_REQUIRED)
            assert said(asked) == "your name?"
            await live.send("alice")
            assert await next_question(events) == "and your age, alice?"
            await live.send("30")
            done = await until_state(events, types.TASK_STATE_COMPLETED)
            assert said(done) == "thanks: 30"
            rest = [e async for e in events]
            assert rest == []  # the call ends with the terminal state
        task = await served.client.get_task(live.task_id)
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert [m.role for m in task.history].count(types.ROLE_USER) == 3


@ASYNC
async def test_a_second_live_stream_on_a_task_is_refused_and_a_reattach_takes_over() -> None:
    async with serving(Interview()) as served:
        first = served.client.live("begin")
        await first.__aenter__()
        events = aiter(first)
        await until_state(events, types.TASK_STATE_INPUT_REQUIRED)
        task_id = first.task_id
        async with served.client.live(A2AClient.text_request("bob").message, task_id=task_id) as second:
            with pytest.raises(errors.LiveStreamActiveError, match="one live stream per task"):
                async for _ in second:
                    pass
        # The first client drops; it comes back with only the task id and carries on.
        await first.close()
        async with served.client.live(task_id=task_id) as again:
            resumed = aiter(again)
            snapshot = await until_state(resumed, types.TASK_STATE_INPUT_REQUIRED)
            assert snapshot.HasField("task")
            assert said(snapshot) == "your name?"
            await again.send("carol")
            assert await next_question(resumed) == "and your age, carol?"
            await again.send("41")
            done = await until_state(resumed, types.TASK_STATE_COMPLETED)
            assert said(done) == "thanks: 41"


@ASYNC
async def test_reattaching_takes_over_from_a_stream_the_server_still_holds() -> None:
    async with serving(Interview()) as served, served.client.live("begin") as stale:
        await until_state(aiter(stale), types.TASK_STATE_INPUT_REQUIRED)
        async with served.client.live(task_id=stale.task_id) as fresh:  # the old one still open
            events = aiter(fresh)
            await until_state(events, types.TASK_STATE_INPUT_REQUIRED)
            await fresh.send("dan")
            assert await next_question(events) == "and your age, dan?"
        with pytest.raises(errors.A2AError):  # the stale stream was ended by the takeover
            await drain(stale)


@ASYNC
async def test_a_task_that_is_over_reattaches_to_its_final_state_and_ends() -> None:
    async with serving(ReferenceAgent()) as served:
        async with served.client.live("echo once") as live:
            events = [e async for e in live]
        assert state_of(events[-1]) == types.TASK_STATE_COMPLETED
        async with served.client.live(task_id=live.task_id) as again:
            replay = [e async for e in again]
        assert [state_of(e) for e in replay] == [types.TASK_STATE_COMPLETED]


async def drain(live: Any) -> None:
    async for _ in live:
        pass


async def live_refusal(served: Any, *requests: LiveRequest | bytes) -> errors.A2AError:
    """The error a live stream ends with after ``requests`` (bytes are sent as they are)."""
    stream = grpc.aio.insecure_channel(served.address)
    async with stream as channel:
        call = channel.stream_stream(
            SEND_LIVE,
            request_serializer=lambda r: r if isinstance(r, bytes) else r.SerializeToString(),
            response_deserializer=types.StreamResponse.FromString,
        )(metadata=(("a2a-version", "1.0"),))
        for request in requests:
            await call.write(request)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await asyncio.wait_for(read_all(call), WAIT)
        return from_rpc_error(ended.value)


async def read_all(call: Any) -> None:
    while await call.read() is not grpc.aio.EOF:
        pass


@ASYNC
async def test_hostile_live_streams_get_typed_errors_and_the_server_keeps_serving() -> None:
    async with serving(Interview()) as served:
        empty = await live_refusal(served, LiveRequest())
        assert isinstance(empty, errors.InvalidRequestError)
        assert "carries a message, or a task_id" in empty.message
        unknown = await live_refusal(served, LiveRequest(task_id="no-such-task"))
        assert isinstance(unknown, errors.TaskNotFoundError)
        start = LiveRequest(message=A2AClient.text_request("begin").message)
        elsewhere = LiveRequest(message=A2AClient.text_request("x").message, task_id="another-task")
        wrong = await live_refusal(served, start, elsewhere)
        assert isinstance(wrong, errors.InvalidRequestError)
        assert "bound to task" in wrong.message
        no_message = await live_refusal(served, start, LiveRequest())
        assert isinstance(no_message, errors.InvalidRequestError)
        # A request over max_receive_message_bytes (16 MiB), first or later: the error names it.
        huge = LiveRequest(message=A2AClient.text_request("x" * (16 * 1024 * 1024 + 1)).message)
        for sent in ((huge,), (start, huge)):
            too_large = await live_refusal(served, *sent)
            assert isinstance(too_large, errors.LimitExceededError)
            assert too_large.limit == "max_receive_message_bytes"
        # Bytes that are no LiveRequest: a typed error, not UNKNOWN.
        garbage = await live_refusal(served, b"\xff\xff\xff")
        assert isinstance(garbage, errors.InvalidRequestError)
        with pytest.raises(ValueError, match="starts with a message"):
            served.client.live()
        async with served.client.live("begin") as live:  # still serving
            await until_state(aiter(live), types.TASK_STATE_INPUT_REQUIRED)


@ASYNC
async def test_a_live_stream_silent_past_live_first_request_seconds_ends_with_a_typed_error() -> None:
    settings = ServerSettings(live_first_request_seconds=0.2)
    async with serving(Interview(), settings=settings) as served:
        silent = await live_refusal(served)  # opened, and nothing sent (nor closed)
        assert isinstance(silent, errors.InvalidRequestError)
        assert "first request within 0.2 s" in silent.message
        async with served.client.live("begin") as live:  # a stream that speaks is served
            await until_state(aiter(live), types.TASK_STATE_INPUT_REQUIRED)


def test_live_first_request_seconds_must_be_positive_and_finite() -> None:
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="live_first_request_seconds"):
            ServerSettings(live_first_request_seconds=bad)


class Gatekeeper(Agent):
    """Wants credentials first (auth-required), then completes with what it was given."""

    def __init__(self) -> None:
        self.card = reference_card()

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        if context.task is None:
            await updater.require_auth("sign in first")
        else:
            await updater.complete(f"signed in as {context.text}")


@ASYNC
async def test_a_live_stream_stays_open_through_auth_required() -> None:
    async with serving(Gatekeeper()) as served, served.client.live("open the vault") as live:
        events = aiter(live)
        asked = await until_state(events, types.TASK_STATE_AUTH_REQUIRED)
        assert said(asked) == "sign in first"
        await live.send("erin")
        done = await until_state(events, types.TASK_STATE_COMPLETED, snapshots=False)
        assert said(done) == "signed in as erin"
