"""What one principal may hold at once: running tasks, open streams (on every binding), sessions
and detached sessions. One just over the bound is refused with RateLimitedError naming the limit
(RESOURCE_EXHAUSTED / 429, Retry-After 1) while another principal goes on; every count is
released however its holder ends (completion, failure, cancellation, a client that leaves, a
refused request), shown by opening and closing three times the bound in a row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.limits import Limits
from a2a_grpc.service import CallContext
from a2a_grpc.session.frames import ClientFrame, Goodbye, Hello, Resume
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.status import from_rpc_error
from tests.bridge_peers import open_binding
from tests.quota_peers import KEYS, grpc_client, headers_of, raw_call, serve_limited
from tests.test_session import raw
from tests.test_session_resume import Reader
from tests.webhook import until

ASYNC = pytest.mark.asyncio
SETTLE = 5.0
"""Seconds a released count may take to show (a cancellation reaching the server, a job ending)."""


async def eventually(call: Callable[[], Awaitable[Any]]) -> Any:
    """``call()`` until it is not refused for holding too much, for :data:`SETTLE` seconds at most."""
    async with asyncio.timeout(SETTLE):
        while True:
            try:
                return await call()
            except errors.RateLimitedError:
                await asyncio.sleep(0.02)


async def first_event(events: AsyncGenerator[Any, None]) -> Any:
    async with asyncio.timeout(SETTLE):
        return await anext(events)


async def open_stream(start: Callable[[], AsyncGenerator[Any, None]]) -> tuple[Any, Any]:
    """A new stream and its first event; a stream refused at its start is closed."""
    events = start()
    try:
        return events, await first_event(events)
    except BaseException:
        await events.aclose()
        raise


def slow(seconds: float = 30, tenant: str = "") -> types.SendMessageRequest:
    return A2AClient.text_request(f"slow {seconds}", return_immediately=True, tenant=tenant)


# --- running tasks ---------------------------------------------------------------------------------


@ASYNC
async def test_one_task_more_than_max_running_tasks_is_refused_before_anything_is_stored() -> None:
    async with (
        serve_limited(Limits(max_running_tasks_per_principal=2, busy_retry_after_seconds=7)) as stack,
        grpc_client(stack, "alice") as alice,
        grpc_client(stack, "bob") as bob,
    ):
        running = [(await alice.send_message(slow())).task.id for _ in range(2)]
        with pytest.raises(errors.RateLimitedError) as caught:
            await alice.send_message(slow())
        assert caught.value.limit == "max_running_tasks_per_principal"
        assert caught.value.metadata["limit_value"] == "2"
        assert caught.value.retry_after == 7  # busy_retry_after_seconds
        for binding in ("jsonrpc", "rest"):  # the same count, whichever binding asks
            refused = await raw_call(binding, stack, "alice", text="echo over")
            assert (refused.status, refused.limit, refused.retry_after) == (
                429,
                "max_running_tasks_per_principal",
                7,
            )
        listed = await alice.list_tasks()
        assert sorted(t.id for t in listed.tasks) == sorted(running)  # the refused ones left nothing
        echoed = await bob.send_message(A2AClient.text_request("echo bob"))  # another principal goes on
        assert echoed.task.status.state == types.TASK_STATE_COMPLETED
        await alice.cancel_task(running[0])
        echoed = await eventually(lambda: alice.send_message(A2AClient.text_request("echo after")))
        assert echoed.task.artifacts[0].parts[0].text == "echo after"


@ASYNC
async def test_running_tasks_are_released_however_they_end() -> None:
    """Three times the bound, in a row, of each ending: completed, failed, input-required (the
    execution ends; the task waits), canceled, refused as invalid, left by a streaming client."""
    async with (
        serve_limited(Limits(max_running_tasks_per_principal=2)) as stack,
        grpc_client(stack, "alice") as alice,
    ):
        for text in ("echo done", "fail on purpose", "ask"):
            for _ in range(6):
                await eventually(lambda text=text: alice.send_message(A2AClient.text_request(text)))
        for _ in range(6):
            task = (await eventually(lambda: alice.send_message(slow()))).task
            await alice.cancel_task(task.id)
        invalid = A2AClient.text_request("no parts")
        del invalid.message.parts[:]
        for _ in range(6):
            with pytest.raises(errors.InvalidParamsError):
                await alice.send_message(invalid)
        for _ in range(6):  # the client leaves the stream; the task runs on to its end
            events, _ = await eventually(
                lambda: open_stream(lambda: alice.send_streaming_message(A2AClient.text_request("slow 0.2")))
            )
            await events.aclose()
        held = stack.server.quotas.running.held
        await until(lambda: not held, SETTLE)
        tasks = [(await alice.send_message(slow())).task.id for _ in range(2)]  # the whole bound again
        for task_id in tasks:
            await alice.cancel_task(task_id)


# --- open streams ----------------------------------------------------------------------------------


@ASYNC
async def test_open_streams_are_counted_across_bindings_and_one_more_is_refused() -> None:
    limits = Limits(max_streams_per_principal=2)
    async with (
        serve_limited(limits) as stack,
        open_binding("grpc", stack, headers=headers_of("alice")) as via_grpc,
        open_binding("jsonrpc", stack, headers=headers_of("alice")) as via_jsonrpc,
        open_binding("rest", stack, headers=headers_of("alice")) as via_rest,
        grpc_client(stack, "bob") as bob,
    ):
        held = [via_grpc.send_streaming_message(slow()), via_jsonrpc.send_streaming_message(slow())]
        tasks = [(await first_event(events)).task.id for events in held]
        for binding in (via_rest, via_grpc, via_jsonrpc):  # a third, on any binding
            extra = binding.send_streaming_message(A2AClient.text_request("stream 1"))
            with pytest.raises(errors.RateLimitedError) as caught:
                await first_event(extra)
            await extra.aclose()
            assert caught.value.limit == "max_streams_per_principal"
            assert caught.value.retry_after == 1
        assert via_rest.last_error is not None
        assert via_rest.last_error.http_status == 429
        assert via_grpc.last_error is not None
        assert via_grpc.last_error.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        subscribed = via_rest.subscribe_to_task(types.SubscribeToTaskRequest(id=tasks[0]))
        with pytest.raises(errors.RateLimitedError):  # SubscribeToTask is a stream too
            await first_event(subscribed)
        await subscribed.aclose()
        # Unary calls are not streams; bob has his own count.
        echoed = await via_rest.send_message(A2AClient.text_request("echo unary"))
        assert echoed.task.artifacts[0].parts[0].text == "echo unary"
        async with contextlib.aclosing(bob.send_streaming_message(A2AClient.text_request("stream 2"))) as own:
            assert len([event async for event in own]) >= 3
        # Leaving one frees its place.
        await held[0].aclose()
        again, _ = await eventually(
            lambda: open_stream(lambda: via_rest.subscribe_to_task(types.SubscribeToTaskRequest(id=tasks[1])))
        )
        await again.aclose()
        await held[1].aclose()
        for task_id in tasks:
            await via_grpc.cancel_task(types.CancelTaskRequest(id=task_id))


@ASYNC
@pytest.mark.parametrize("binding", ["grpc", "jsonrpc", "rest"])
async def test_streams_are_released_when_the_client_leaves_the_stream_ends_or_fails(binding: str) -> None:
    async with (
        serve_limited(Limits(max_streams_per_principal=2)) as stack,
        open_binding(binding, stack, headers=headers_of("alice")) as alice,
    ):
        for _ in range(6):  # left early
            events, first = await eventually(
                lambda: open_stream(lambda: alice.send_streaming_message(slow()))
            )
            task = first.task
            await events.aclose()
            await alice.cancel_task(types.CancelTaskRequest(id=task.id))
        for _ in range(6):  # read to their end
            events, _ = await eventually(
                lambda: open_stream(lambda: alice.send_streaming_message(A2AClient.text_request("stream 2")))
            )
            async with contextlib.aclosing(events) as rest:
                async for _event in rest:
                    pass
        for _ in range(6):  # failed after being counted (no such task)
            with pytest.raises(errors.TaskNotFoundError):
                await eventually(
                    lambda: open_stream(
                        lambda: alice.subscribe_to_task(types.SubscribeToTaskRequest(id="no-such-task"))
                    )
                )
        opened = [await eventually(lambda: open_stream(lambda: alice.send_streaming_message(slow())))]
        opened.append(await open_stream(lambda: alice.send_streaming_message(slow())))  # the whole bound
        held = [events for events, _ in opened]
        tasks = [first.task.id for _, first in opened]
        for events, task_id in zip(held, tasks, strict=True):
            await events.aclose()
            await alice.cancel_task(types.CancelTaskRequest(id=task_id))


# --- sessions --------------------------------------------------------------------------------------


def hello_of(name: str, **fields: Any) -> Hello:
    return Hello(
        protocol_versions=["1.0"], metadata={"x-api-key": KEYS[name], "a2a-version": "1.0"}, **fields
    )


async def open_raw(channel: grpc.aio.Channel, hello: Hello) -> tuple[Any, Any, Reader]:
    """A bare session stream: (stream, Welcome, reader), or the handshake's refusal raised typed."""
    stream = raw(channel)()
    await stream.write(ClientFrame(hello=hello))
    reader = Reader(stream)
    try:
        first = await reader.next()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    assert first.WhichOneof("frame") == "welcome", first
    return stream, first.welcome, reader


async def goodbye(stream: Any, reader: Reader) -> None:
    """End a bare session cleanly, reading its frames to the end of the stream."""
    await stream.write(ClientFrame(goodbye=Goodbye()))
    await stream.done_writing()
    with contextlib.suppress(grpc.aio.AioRpcError):
        for _ in range(100):
            if await reader.next() is grpc.aio.EOF:
                return
    raise AssertionError("the session did not end after a Goodbye")


@ASYNC
async def test_one_session_more_than_max_sessions_is_refused_at_its_handshake_and_counts_are_released() -> (
    None
):
    limits = Limits(max_sessions_per_principal=2, busy_retry_after_seconds=5)
    async with (
        serve_limited(limits) as stack,
        grpc_client(stack, "alice") as alice,
        grpc_client(stack, "bob") as bob,
        grpc.aio.insecure_channel(stack.address) as channel,
    ):
        async with alice.session() as one, alice.session() as two:
            for session in (one, two):
                answer = await session.send_message(A2AClient.text_request("echo in a session"))
                assert answer.task.status.state == types.TASK_STATE_COMPLETED
            with pytest.raises(errors.RateLimitedError) as caught:
                await open_raw(channel, hello_of("alice"))
            assert caught.value.limit == "max_sessions_per_principal"
            assert caught.value.retry_after == 5
            async with bob.session() as his:  # bob has his own count
                await his.send_message(A2AClient.text_request("echo bob"))
            reply = await alice.send_message(A2AClient.text_request("echo unary"))  # not a session
            assert reply.task.status.state == types.TASK_STATE_COMPLETED
        sessions = stack.server.sessions
        assert sessions is not None
        for _ in range(6):  # ended by a Goodbye, three times the bound in a row
            stream, _, reader = await eventually(lambda: open_raw(channel, hello_of("alice")))
            await goodbye(stream, reader)
        for _ in range(6):  # refused at the handshake: never counted
            with pytest.raises(errors.VersionNotSupportedError):
                await open_raw(
                    channel, Hello(protocol_versions=["9.9"], metadata={"x-api-key": KEYS["alice"]})
                )
        await until(lambda: not stack.server.quotas.sessions._open, SETTLE)
        async with alice.session() as one, alice.session() as two:  # the whole bound again
            await one.send_message(A2AClient.text_request("echo one"))
            await two.send_message(A2AClient.text_request("echo two"))


@ASYNC
async def test_past_max_detached_sessions_the_oldest_detached_one_expires() -> None:
    limits = Limits(max_sessions_per_principal=4, max_detached_sessions_per_principal=1)
    async with (
        serve_limited(limits, session=SessionSettings(resume_grace=30.0)) as stack,
        grpc.aio.insecure_channel(stack.address) as channel,
    ):
        first, first_welcome, _ = await open_raw(channel, hello_of("alice"))
        second, second_welcome, _ = await open_raw(channel, hello_of("alice"))
        bobs, bob_welcome, _ = await open_raw(channel, hello_of("bob"))
        sessions = stack.server.sessions
        assert sessions is not None
        first.cancel()  # its connection drops: detached, waiting to be resumed
        bobs.cancel()  # bob's detached one is his own count
        await until(lambda: not sessions.sessions[first_welcome.session_id].attached, SETTLE)
        second.cancel()  # one detached more than alice may have: the oldest, the first, ends
        await until(lambda: first_welcome.session_id not in sessions.sessions, SETTLE)
        alice = CallContext(principal=Principal("alice", scheme="apiKey"))
        assert stack.server.quotas.sessions.held(alice) == (1, 1)  # the ended one no longer counts

        def resuming(welcome: Any, name: str = "alice") -> Hello:
            resume = Resume(session_id=welcome.session_id, resume_token=welcome.resume_token)
            return hello_of(name, resume=resume)

        with pytest.raises(errors.SessionExpiredError):
            await open_raw(channel, resuming(first_welcome))
        again, welcome, reader = await open_raw(channel, resuming(second_welcome))
        assert welcome.resumed
        await goodbye(again, reader)
        bob_again, welcome, reader = await open_raw(channel, resuming(bob_welcome, "bob"))
        assert welcome.resumed
        await goodbye(bob_again, reader)


# --- stored bytes ----------------------------------------------------------------------------------


@ASYNC
async def test_a_message_that_would_pass_max_stored_bytes_per_task_is_refused_and_nothing_is_stored() -> None:
    async with (
        serve_limited(Limits(max_stored_bytes_per_task=4096)) as stack,
        grpc_client(stack, "alice") as alice,
    ):
        with pytest.raises(errors.LimitExceededError) as caught:
            await alice.send_message(A2AClient.text_request("echo " + "x" * 5000))
        assert caught.value.limit == "max_stored_bytes_per_task"
        assert caught.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not isinstance(caught.value, errors.RateLimitedError)  # sending it again fails again
        refused = await raw_call("rest", stack, "alice", text="echo " + "x" * 5000)
        assert (refused.status, refused.limit) == (413, "max_stored_bytes_per_task")
        assert not (await alice.list_tasks()).tasks
        # A continuation that would pass it: refused, and the task still waits for its input.
        asked = (await alice.send_message(A2AClient.text_request("ask"))).task
        assert asked.status.state == types.TASK_STATE_INPUT_REQUIRED
        with pytest.raises(errors.LimitExceededError) as caught:
            await alice.send_message(A2AClient.text_request("y" * 5000, task_id=asked.id))
        assert caught.value.limit == "max_stored_bytes_per_task"
        waiting = await alice.get_task(asked.id)
        assert waiting.status.state == types.TASK_STATE_INPUT_REQUIRED
        assert len(waiting.history) == len(asked.history)
        done = await alice.send_message(A2AClient.text_request("small", task_id=asked.id))
        assert done.task.status.state == types.TASK_STATE_COMPLETED
        echoed = await alice.send_message(A2AClient.text_request("echo still here"))
        assert echoed.task.artifacts[0].parts[0].text == "echo still here"


@ASYNC
@pytest.mark.parametrize("text", ["bytes 8000", "stream 1000"])
async def test_an_agent_that_outgrows_max_stored_bytes_per_task_fails_its_task_naming_the_limit(
    text: str,
) -> None:
    async with (
        serve_limited(Limits(max_stored_bytes_per_task=4096)) as stack,
        grpc_client(stack, "alice") as alice,
    ):
        events = []
        async with contextlib.aclosing(alice.send_streaming_message(A2AClient.text_request(text))) as stream:
            async for event in stream:
                events.append(event)
        final = events[-1].status_update.status
        assert final.state == types.TASK_STATE_FAILED
        assert "max_stored_bytes_per_task" in final.message.parts[0].text
        task = await alice.get_task(events[0].task.id)
        assert task.status.state == types.TASK_STATE_FAILED
        assert task.ByteSize() <= 4096 + 1024  # what was refused was not kept (the failure itself is)
        echoed = await alice.send_message(A2AClient.text_request("echo after"))
        assert echoed.task.artifacts[0].parts[0].text == "echo after"


@ASYNC
async def test_max_stored_bytes_per_principal_bounds_what_one_principal_keeps_and_no_one_else() -> None:
    async with serve_limited(Limits(max_stored_bytes_per_principal=20_000)) as stack:
        async with grpc_client(stack, "alice") as alice:
            kept = 0
            with contextlib.suppress(errors.LimitExceededError):
                for _ in range(20):
                    await alice.send_message(A2AClient.text_request("echo " + "z" * 2000))
                    kept += 1
            assert 3 <= kept < 10  # each task keeps the text twice (message and artifact)
            with pytest.raises(errors.LimitExceededError) as caught:
                await alice.send_message(A2AClient.text_request("echo " + "z" * 2000))
            assert caught.value.limit == "max_stored_bytes_per_principal"
            assert len((await alice.list_tasks()).tasks) == kept  # the refused ones left nothing
        refused = await raw_call("jsonrpc", stack, "alice", text="echo " + "z" * 2000)
        assert (refused.ok, refused.limit) == (False, "max_stored_bytes_per_principal")
        assert (await raw_call("rest", stack, "bob", text="echo bob's own")).ok
