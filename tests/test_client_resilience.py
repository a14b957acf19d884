"""Client resilience against peers that fail in parts: which calls are tried again and after how
long (full-jitter backoff, within the deadline), the circuit breaker's three states, a SendMessage
sent twice and run once (the server's de-duplication by message id), fallback to a card's next
gRPC interface, and keepalive pings the server accepts.

The failing peer is scripted: a grpc.aio server on 127.0.0.1 port 0 whose every call takes the
next step of its method's script (an error to fail with, or an answer). Time and chance are
injected (a fake clock, fixed random draws), so delays are asserted exactly and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from a2a_grpc import errors, types
from a2a_grpc._dedupe import Repeats
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import SERVER_MIN_PING_INTERVAL_MS, A2AClient, ClientSettings
from a2a_grpc.parts import text_part
from a2a_grpc.reference_agent import reference_card
from a2a_grpc.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    Clock,
    ResiliencePolicy,
)
from a2a_grpc.security.limits import Limits
from a2a_grpc.status import STATUS_DETAILS_KEY, abort
from a2a_grpc.testing import CuttingProxy, serving

ASYNC = pytest.mark.asyncio


# -- the scripted peer, the clock and the dice ------------------------------------------------------

STREAMING = {"SendStreamingMessage", "SubscribeToTask"}
THEN_UNAVAILABLE = "one event, then UNAVAILABLE"


def _task(state: int = types.TASK_STATE_WORKING, task_id: str = "t1") -> types.Task:
    task = types.Task(id=task_id, context_id="c1")
    task.status.state = state
    return task


DEFAULT_ANSWERS: dict[str, Message] = {
    "GetTask": _task(),
    "CancelTask": _task(types.TASK_STATE_CANCELED),
    "ListTasks": types.ListTasksResponse(),
    "SendMessage": types.SendMessageResponse(task=_task()),
    "CreateTaskPushNotificationConfig": types.TaskPushNotificationConfig(task_id="t1", id="hook"),
}


class ScriptedPeer(grpc.GenericRpcHandler):
    """Answers every A2A method; each call of a method takes the next step of its script: an
    A2AError or a gRPC code to fail with, a message to answer, seconds (a float) to wait before
    the default answer, :data:`THEN_UNAVAILABLE` (streams:
    one event, then the connection's failure). An empty script answers ``DEFAULT_ANSWERS`` (streams:
    one task event after ``quiet`` seconds)."""

    def __init__(self, options: Iterable[tuple[str, Any]] = ()) -> None:
        self.options = list(options)
        self.scripts: dict[str, list[object]] = collections.defaultdict(list)
        self.calls: collections.Counter[str] = collections.Counter()
        self.quiet = 0.0
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def __aenter__(self) -> ScriptedPeer:
        self._server = grpc.aio.server(options=self.options)
        self._server.add_generic_rpc_handlers((self,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.stop(0)

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        name = details.method.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
        serialize: Callable[[Message], bytes] = lambda m: m.SerializeToString()  # noqa: E731
        if name in STREAMING:

            async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Message]:
                step = await self._step(name, context)
                await asyncio.sleep(self.quiet)
                yield types.StreamResponse(task=_task())
                if step == THEN_UNAVAILABLE:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: the connection went away")

            return grpc.unary_stream_rpc_method_handler(stream, response_serializer=serialize)

        async def unary(request: bytes, context: grpc.aio.ServicerContext) -> Message:
            step = await self._step(name, context)
            return step if isinstance(step, Message) else DEFAULT_ANSWERS.get(name, types.Task())

        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=serialize)

    async def _step(self, name: str, context: grpc.aio.ServicerContext) -> object:
        self.calls[name] += 1
        script = self.scripts[name]
        step = script.pop(0) if script else None
        if isinstance(step, errors.A2AError):
            await abort(context, step)
        if isinstance(step, grpc.StatusCode):
            await context.abort(step, f"scripted {step.name}")
        if isinstance(step, grpc.Status):
            await context.abort_with_status(step)
        if isinstance(step, float):  # a slow answer
            await asyncio.sleep(step)
        return step


class FakeClock(Clock):
    """Time that moves only when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


class Dice(random.Random):
    """Draws the given numbers, in turn (then 0.5)."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0) if self.draws else 0.5


def client_of(
    peer: ScriptedPeer, clock: FakeClock, *draws: float, timeout: float | None = 30.0, **policy: Any
) -> A2AClient:
    settings = ClientSettings(timeout=timeout, resilience=ResiliencePolicy(**policy))
    return A2AClient(peer.address, settings=settings, clock=clock, rng=Dice(*draws))


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[ScriptedPeer]:
    async with ScriptedPeer() as scripted:
        yield scripted


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


# -- backoff and the deadline -----------------------------------------------------------------------


@ASYNC
async def test_a_read_is_retried_with_full_jitter_backoff(peer: ScriptedPeer) -> None:
    peer.scripts["GetTask"] = [UNAVAILABLE, UNAVAILABLE, UNAVAILABLE]
    clock = FakeClock()
    async with client_of(peer, clock, 0.5, 0.25, 0.75) as client:
        task = await client.get_task("t1")
    assert task.id == "t1"
    assert peer.calls["GetTask"] == 4
    # Ceilings 100, 200, 400 ms (base 100 ms, doubling), each times its draw.
    assert clock.slept == pytest.approx([0.05, 0.05, 0.3])


@ASYNC
async def test_the_ceiling_stops_at_the_cap_and_the_attempts_are_bounded(peer: ScriptedPeer) -> None:
    peer.scripts["ListTasks"] = [UNAVAILABLE] * 10
    clock = FakeClock()
    async with client_of(
        peer, clock, *[0.999] * 5, timeout=None, max_attempts=6, backoff_cap=0.5, breaker_failures=10
    ) as client:
        with pytest.raises(errors.UnavailableError, match="scripted UNAVAILABLE"):
            await client.list_tasks()
    assert peer.calls["ListTasks"] == 6  # max_attempts, then the last error stands
    assert clock.slept == pytest.approx([0.0999, 0.1998, 0.3996, 0.4995, 0.4995])


@ASYNC
async def test_a_backoff_that_would_pass_the_deadline_ends_the_call(peer: ScriptedPeer) -> None:
    peer.scripts["GetTask"] = [UNAVAILABLE] * 5
    clock = FakeClock()
    async with client_of(peer, clock, 0.99, 0.99, timeout=1.0, backoff_base=0.4) as client:
        with pytest.raises(errors.UnavailableError, match="after the call's deadline") as caught:
            await client.get_task("t1")
    # 0.396 s fits in the 1 s deadline; the next wait (0.792 s) would end past it: no third attempt.
    # The error is the peer's (the deadline has not passed), saying why no attempt followed.
    assert clock.slept == pytest.approx([0.396])
    assert peer.calls["GetTask"] == 2
    assert "GetTask: 2 attempts" in caught.value.message
    assert caught.value.grpc_code == grpc.StatusCode.UNAVAILABLE
    assert isinstance(caught.value.__cause__, errors.UnavailableError)


@ASYNC
async def test_each_attempt_gets_what_is_left_of_the_deadline(peer: ScriptedPeer) -> None:
    """0.1881 s of a 0.2 s deadline are spent waiting: the second attempt has 0.0119 s, and a
    peer that takes 0.5 s to answer it fails it with DEADLINE_EXCEEDED, not retried."""
    peer.scripts["GetTask"] = [UNAVAILABLE, 0.5]
    clock = FakeClock()
    async with client_of(peer, clock, 0.99, timeout=0.2, backoff_base=0.19) as client:
        started = time.monotonic()
        with pytest.raises(errors.DeadlineExceededError):
            await client.get_task("t1")
        took = time.monotonic() - started
    assert clock.slept == pytest.approx([0.1881])
    assert peer.calls["GetTask"] == 2
    assert took < 0.4  # the attempt's own deadline ended it, not the peer's 0.5 s answer


@ASYNC
async def test_what_is_not_retried(peer: ScriptedPeer) -> None:
    clock = FakeClock()
    async with client_of(peer, clock) as client:
        # A2A errors: the same request gets the same answer.
        peer.scripts["GetTask"] = [errors.TaskNotFoundError("task 't9' not found")]
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task("t9")
        peer.scripts["ListTasks"] = [errors.InvalidParamsError("page_size too large")]
        with pytest.raises(errors.InvalidParamsError):
            await client.list_tasks()
        # A limit (RESOURCE_EXHAUSTED without retry advice): it will fail again.
        peer.scripts["GetTask"] = [errors.LimitExceededError("too big", limit="max_parts", value=1)]
        with pytest.raises(errors.LimitExceededError):
            await client.get_task("t1")
        # A rate limit asking for longer than the backoff cap: not waited for.
        peer.scripts["GetTask"] = [errors.RateLimitedError("slow down", limit="rate", retry_after=60)]
        with pytest.raises(errors.RateLimitedError):
            await client.get_task("t1")
        # Not repeatable: a push config without an id (a repeat would make a second one).
        peer.scripts["CreateTaskPushNotificationConfig"] = [UNAVAILABLE]
        hook = types.TaskPushNotificationConfig(task_id="t1", url="https://hooks.example/")
        with pytest.raises(errors.UnavailableError):
            await client.create_task_push_notification_config(hook)
        # INTERNAL is the peer's failure, but not one that says it did nothing.
        peer.scripts["GetTask"] = [grpc.StatusCode.INTERNAL]
        with pytest.raises(errors.InternalError):
            await client.get_task("t1")
    assert clock.slept == []
    assert peer.calls == {"GetTask": 4, "ListTasks": 1, "CreateTaskPushNotificationConfig": 1}


@ASYNC
async def test_what_is_retried_besides_reads(peer: ScriptedPeer) -> None:
    clock = FakeClock()
    async with client_of(peer, clock, 0.5, 0.5, 0.5) as client:
        # A rate limit with advice within the cap: its retry_after, exactly.
        peer.scripts["GetTask"] = [errors.RateLimitedError("slow down", limit="rate", retry_after=2)]
        assert (await client.get_task("t1")).id == "t1"
        assert clock.slept == [2.0]
        # A push config naming its id replaces itself.
        peer.scripts["CreateTaskPushNotificationConfig"] = [UNAVAILABLE]
        hook = types.TaskPushNotificationConfig(task_id="t1", id="hook", url="https://hooks.example/")
        assert (await client.create_task_push_notification_config(hook)).id == "hook"
        # A message with its message_id (the server answers a repeat from the first receipt).
        peer.scripts["SendMessage"] = [UNAVAILABLE]
        assert (await client.send_message(A2AClient.text_request("hi"))).task.id == "t1"
    assert peer.calls["CreateTaskPushNotificationConfig"] == 2
    assert peer.calls["SendMessage"] == 2
    assert clock.slept == pytest.approx([2.0, 0.05, 0.05])


class _Advised(grpc.Status):
    """RESOURCE_EXHAUSTED from some other server: no ErrorInfo, only a RetryInfo of 250 ms."""

    def __init__(self) -> None:
        status = status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="busy")
        info = error_details_pb2.RetryInfo()
        info.retry_delay.nanos = 250_000_000
        status.details.add().Pack(info)
        self.code = grpc.StatusCode.RESOURCE_EXHAUSTED
        self.details = "busy"
        self.trailing_metadata = ((STATUS_DETAILS_KEY, status.SerializeToString()),)


@ASYNC
async def test_a_draining_servers_retry_hint_is_waited_for(peer: ScriptedPeer) -> None:
    draining = errors.ServerDrainingError("draining", retry_after=2)
    peer.scripts["GetTask"] = [draining, errors.ServerDrainingError("draining", retry_after=3600)]
    clock = FakeClock()
    async with client_of(peer, clock, 0.5, 0.5) as client:
        assert (await client.get_task("t1")).id == "t1"
    # The hint when it is longer than the backoff; a hint past backoff_cap (10 s) is not waited
    # for: the backoff is (200 ms times its draw).
    assert clock.slept == pytest.approx([2.0, 0.1])
    assert peer.calls["GetTask"] == 3


@ASYNC
async def test_resource_exhausted_is_retried_on_any_servers_retry_info(peer: ScriptedPeer) -> None:
    peer.scripts["GetTask"] = [_Advised()]
    clock = FakeClock()
    async with client_of(peer, clock) as client:
        assert (await client.get_task("t1")).id == "t1"
    assert clock.slept == [0.25]
    assert peer.calls["GetTask"] == 2


@ASYNC
async def test_a_message_is_not_sent_again_when_the_policy_says_so(peer: ScriptedPeer) -> None:
    peer.scripts["SendMessage"] = [UNAVAILABLE]
    async with client_of(peer, FakeClock(), retry_send_message=False) as client:
        with pytest.raises(errors.UnavailableError):
            await client.send_message(A2AClient.text_request("hi"))
        request = A2AClient.text_request("hi")
        request.message.message_id = ""  # no id: nothing to recognize it by
        peer.scripts["SendMessage"] = [UNAVAILABLE]
    async with client_of(peer, FakeClock()) as client:
        with pytest.raises(errors.UnavailableError):
            await client.send_message(request)
    assert peer.calls["SendMessage"] == 2


@ASYNC
async def test_a_stream_is_retried_only_before_its_first_event(peer: ScriptedPeer) -> None:
    clock = FakeClock()
    async with client_of(peer, clock) as client:
        peer.scripts["SubscribeToTask"] = [UNAVAILABLE, UNAVAILABLE]
        events = [e async for e in client.subscribe_to_task("t1")]
        assert [e.task.id for e in events] == ["t1"]
        assert peer.calls["SubscribeToTask"] == 3
        peer.scripts["SubscribeToTask"] = [THEN_UNAVAILABLE]
        seen: list[types.StreamResponse] = []

        async def read_all() -> None:
            async for event in client.subscribe_to_task("t1"):
                seen.append(event)

        with pytest.raises(errors.UnavailableError):
            await read_all()
        assert len(seen) == 1
        assert peer.calls["SubscribeToTask"] == 4
    assert len(clock.slept) == 2


@ASYNC
async def test_a_retried_cancel_that_finds_the_task_canceled_returns_it(peer: ScriptedPeer) -> None:
    """The first attempt canceled the task, and its answer was lost: the retry's
    TaskNotCancelableError is the effect asked for, and the call answers the canceled task."""
    peer.scripts["CancelTask"] = [UNAVAILABLE, errors.TaskNotCancelableError("task 't1' is CANCELED")]
    peer.scripts["GetTask"] = [_task(types.TASK_STATE_CANCELED)]
    async with client_of(peer, FakeClock()) as client:
        task = await client.cancel_task("t1")
        assert task.status.state == types.TASK_STATE_CANCELED
        # Not canceled by us (it completed): the error stands.
        peer.scripts["CancelTask"] = [UNAVAILABLE, errors.TaskNotCancelableError("task 't1' is COMPLETED")]
        peer.scripts["GetTask"] = [_task(types.TASK_STATE_COMPLETED)]
        with pytest.raises(errors.TaskNotCancelableError):
            await client.cancel_task("t1")
        # A first attempt's TaskNotCancelableError is the answer, no reading after it.
        peer.scripts["CancelTask"] = [errors.TaskNotCancelableError("task 't1' is COMPLETED")]
        with pytest.raises(errors.TaskNotCancelableError):
            await client.cancel_task("t1")
    assert peer.calls == {"CancelTask": 5, "GetTask": 2}


# -- the circuit breaker ----------------------------------------------------------------------------


@ASYNC
async def test_the_breaker_opens_half_opens_and_closes(peer: ScriptedPeer) -> None:
    clock = FakeClock()
    async with client_of(peer, clock, max_attempts=1, breaker_failures=3, breaker_cooldown=5.0) as client:
        breaker = client.breakers[peer.address]
        peer.scripts["GetTask"] = [UNAVAILABLE] * 3
        for _ in range(3):
            with pytest.raises(errors.UnavailableError):
                await client.get_task("t1")
        assert breaker.state is BreakerState.OPEN
        # Open: refused at once, naming the breaker; nothing reaches the peer.
        with pytest.raises(CircuitOpenError, match=f"circuit breaker of {peer.address} is open") as caught:
            await client.get_task("t1")
        assert caught.value.metadata["breaker"] == peer.address
        assert isinstance(caught.value, errors.UnavailableError)
        assert peer.calls["GetTask"] == 3
        # After the cool-down, one probe: it fails, and the breaker opens again.
        clock.t += 5.0
        assert breaker.state is BreakerState.HALF_OPEN
        peer.scripts["GetTask"] = [UNAVAILABLE]
        with pytest.raises(errors.UnavailableError):
            await client.get_task("t1")
        assert breaker.state is BreakerState.OPEN
        assert peer.calls["GetTask"] == 4
        with pytest.raises(CircuitOpenError):
            await client.get_task("t1")
        # The next probe succeeds: closed again, every call goes through.
        clock.t += 5.0
        assert (await client.get_task("t1")).id == "t1"
        assert breaker.state is BreakerState.CLOSED
        assert (await client.get_task("t1")).id == "t1"
        assert peer.calls["GetTask"] == 6


@ASYNC
async def test_answers_of_the_protocol_do_not_count_against_the_peer(peer: ScriptedPeer) -> None:
    async with client_of(peer, FakeClock(), breaker_failures=2) as client:
        for _ in range(5):
            peer.scripts["GetTask"] = [errors.TaskNotFoundError("no such task")]
            with pytest.raises(errors.TaskNotFoundError):
                await client.get_task("t9")
        assert client.breakers[peer.address].state is BreakerState.CLOSED


def test_the_breaker_opens_on_a_failure_ratio_and_lets_one_probe_through() -> None:
    clock = FakeClock()
    policy = ResiliencePolicy(breaker_failures=10, breaker_window=4, breaker_failure_ratio=0.5)
    breaker = CircuitBreaker("peer:1", policy, clock)
    failure = errors.UnavailableError("down")
    for outcome in (failure, None, failure):  # not judged until the window is full
        breaker.admit()
        breaker.record(outcome)
    assert breaker.state is BreakerState.CLOSED
    breaker.admit()
    breaker.record(None)  # 2 of the last 4 failed: half
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError, match=r"2 of its last 4 calls failed.*probe call through in 5\.0 s"):
        breaker.admit()
    clock.t += policy.breaker_cooldown
    breaker.admit()  # the probe
    with pytest.raises(CircuitOpenError, match="its probe call is in flight"):
        breaker.admit()
    breaker.release()  # the probe's caller gave up: no verdict, the next may probe
    breaker.admit()
    breaker.record(errors.DeadlineExceededError("too slow for its caller"))  # no verdict either
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.admit()
    breaker.record(None)
    assert breaker.state is BreakerState.CLOSED
    for outcome in (failure, None, None, None):  # counts started afresh
        breaker.admit()
        breaker.record(outcome)
    assert breaker.state is BreakerState.CLOSED


def test_the_policy_is_checked() -> None:
    for bad in (
        {"max_attempts": 0},
        {"max_attempts": 21},
        {"backoff_base": 0},
        {"backoff_cap": 0.05},
        {"breaker_failure_ratio": 0},
        {"breaker_window": 0},
        {"breaker_cooldown": -1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ResiliencePolicy(**bad)  # type: ignore[arg-type]


# -- a message sent twice is run once ---------------------------------------------------------------


class Counting(Agent):
    """Counts executions; ``wait`` holds each until ``gate`` opens; ``cut`` calls ``on_run`` first."""

    def __init__(self) -> None:
        self.card = reference_card()
        self.runs = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.on_run: Callable[[], None] = lambda: None

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        self.runs += 1
        if context.text == "reply":
            await updater.reply(f"reply {self.runs}")
            return
        await updater.working()
        self.on_run()
        await self.gate.wait()
        await updater.artifact([text_part(f"run {self.runs}")])
        await updater.complete()


@ASYNC
async def test_a_message_sent_again_is_answered_from_its_first_receipt() -> None:
    agent = Counting()
    async with serving(agent) as served:
        client = served.client
        request = A2AClient.text_request("work")
        first = (await client.send_message(request)).task
        again = (await client.send_message(request)).task
        assert again.id == first.id
        assert again.status.state == types.TASK_STATE_COMPLETED
        assert again.artifacts[0].parts[0].text == "run 1"
        # The stream of a repeat: the task as it is (settled).
        events = [e async for e in client.send_streaming_message(request)]
        assert [e.task.id for e in events] == [first.id]
        # A direct reply is the same reply.
        reply = A2AClient.text_request("reply")
        said = [(await client.send_message(reply)).message.parts[0].text for _ in range(2)]
        assert said == ["reply 2", "reply 2"]
        assert agent.runs == 2
        # Another message under a used id is refused, naming the field; the server keeps serving.
        reused = A2AClient.text_request("other", context_id="elsewhere")
        reused.message.message_id = request.message.message_id
        with pytest.raises(errors.InvalidParamsError) as caught:
            await client.send_message(reused)
        assert [v.field for v in caught.value.field_violations] == ["message.message_id"]
        assert (await client.send_message(A2AClient.text_request("work"))).task.id != first.id
        assert agent.runs == 3


@ASYNC
async def test_a_repeat_that_arrives_while_the_first_runs_joins_it() -> None:
    agent = Counting()
    agent.gate.clear()
    async with serving(agent) as served:
        request = A2AClient.text_request("work")
        first = asyncio.ensure_future(served.client.send_message(request))
        second = asyncio.ensure_future(served.client.send_message(request))
        streamed = served.client.send_streaming_message(request)
        async with contextlib.aclosing(streamed):
            snapshot = await anext(streamed)  # the repeat streams the running task
            agent.gate.set()
            rest = [e async for e in streamed]
        answers = await asyncio.gather(first, second)
    assert agent.runs == 1
    assert answers[0].task.id == answers[1].task.id == snapshot.task.id
    assert [a.task.status.state for a in answers] == [types.TASK_STATE_COMPLETED] * 2
    assert rest[-1].status_update.status.state == types.TASK_STATE_COMPLETED


@ASYNC
async def test_a_first_receipt_that_failed_is_not_remembered() -> None:
    """A message refused before any task or reply exists (here: it continues a task that does not
    exist) leaves nothing behind: sent again, it is judged again, and the server keeps serving."""
    agent = Counting()
    async with serving(agent) as served:
        handler = served.server.handler
        assert handler is not None
        request = A2AClient.text_request("work", task_id="no-such-task")
        for _ in range(2):
            with pytest.raises(errors.TaskNotFoundError):
                await served.client.send_message(request)
        assert len(handler.repeats) == 0
        assert (await served.client.send_message(A2AClient.text_request("work"))).task.artifacts
        assert len(handler.repeats) == 1
    assert agent.runs == 1


@ASYNC
async def test_a_repeat_waiting_for_a_first_receipt_that_fails_takes_its_place() -> None:
    repeats = Repeats(Limits())
    message = A2AClient.text_request("work").message
    first = await repeats.receive("alice", message)
    waiting = asyncio.ensure_future(repeats.receive("alice", message))
    await asyncio.sleep(0)
    assert not waiting.done()  # a repeat waits for the first to become something

    async def refused() -> Any:
        raise errors.UnavailableError("the server is stopping")

    with pytest.raises(errors.UnavailableError):
        await first.started(refused())
    second = await asyncio.wait_for(waiting, 5)
    assert second.earlier is None  # a first receipt now, remembered in place of the failed one
    assert len(repeats) == 1


@ASYNC
async def test_a_send_whose_answer_was_lost_is_retried_and_run_once() -> None:
    """The connection drops while the agent works (a proxy cuts it): the client gets UNAVAILABLE,
    sends the same message again on a new connection, and gets the first's task, finished."""
    agent = Counting()
    async with serving(agent) as served, CuttingProxy(served.server.port) as proxy:
        agent.on_run = lambda: proxy.cut() if agent.runs == 1 else None
        async with A2AClient(f"127.0.0.1:{proxy.port}", timeout=10) as client:
            started = time.monotonic()
            task = (await client.send_message(A2AClient.text_request("work"))).task
            took = time.monotonic() - started
    print(f"send retried after a cut connection: answered in {took * 1000:.0f} ms")
    assert proxy.cuts == 1
    assert agent.runs == 1
    assert task.status.state == types.TASK_STATE_COMPLETED
    assert task.artifacts[0].parts[0].text == "run 1"
    assert took < 5.0  # one backoff (at most 100 ms) and a reconnect, not a deadline


@ASYNC
async def test_the_server_remembers_within_its_window_and_its_bounds() -> None:
    now = [0.0]
    limits = Limits(dedupe_window_seconds=60, max_remembered_messages=3, max_remembered_reply_bytes=100)
    repeats = Repeats(limits, clock=lambda: now[0])

    def message(n: int) -> types.Message:
        return A2AClient.text_request(f"m{n}").message

    messages = [message(n) for n in range(5)]
    for m in messages[:3]:
        receipt = await repeats.receive("alice", m)
        assert receipt.earlier is None
        repeats.drop(("alice", m.message_id), receipt._entry)  # type: ignore[arg-type]
    # Dropped (a failed first receipt): each is a first receipt again.
    assert len(repeats) == 0
    for m in messages:
        await repeats.receive("alice", m)
    assert len(repeats) == 3  # max_remembered_messages: the two oldest forgotten
    now[0] += 61
    await repeats.receive("bob", messages[0])
    assert len(repeats) == 1  # the window passed: only bob's is remembered
    # One caller's id never meets another's.
    receipt = await repeats.receive("carol", messages[0])
    assert receipt.earlier is None


# -- fallback to another interface of the card ------------------------------------------------------


def _dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@ASYNC
async def test_a_card_client_falls_back_to_the_next_interface(caplog: pytest.LogCaptureFixture) -> None:
    agent = Counting()
    async with serving(agent) as served:
        down = f"127.0.0.1:{_dead_port()}"
        card = types.AgentCard(name="two-doors")
        card.supported_interfaces.add(url=down, protocol_binding="GRPC", protocol_version="1.0")
        card.supported_interfaces.add(url="http://json.example/", protocol_binding="JSONRPC")
        card.supported_interfaces.add(url=f"grpc://{served.address}", protocol_binding="GRPC")
        with caplog.at_level(logging.WARNING, logger="a2a_grpc.client"):
            async with A2AClient.from_card(card, timeout=10) as client:
                assert client.targets == [down, served.address]
                assert client.target == down
                task = (await client.send_message(A2AClient.text_request("work"))).task
                assert client.target == served.address  # it says which one it uses
                assert (await client.get_task(task.id)).id == task.id
    assert task.status.state == types.TASK_STATE_COMPLETED
    assert agent.runs == 1
    moves = [r.getMessage() for r in caplog.records if "falling back" in r.getMessage()]
    assert moves == [moves[0]]
    assert f"falling back to {served.address}" in moves[0]
    assert down in moves[0]


@ASYNC
async def test_waiting_for_a_card_client_settles_on_an_interface_that_connects() -> None:
    async with serving(Counting()) as served:
        card = types.AgentCard(name="two-doors")
        card.supported_interfaces.add(url=f"127.0.0.1:{_dead_port()}", protocol_binding="GRPC")
        card.supported_interfaces.add(url=served.address, protocol_binding="GRPC")
        async with A2AClient.from_card(card, timeout=10) as client:
            await client.wait_ready(10)
            assert client.target == served.address
        card.supported_interfaces[1].url = f"127.0.0.1:{_dead_port()}"
        async with A2AClient.from_card(card, timeout=10) as nowhere:
            with pytest.raises(TimeoutError, match="no interface of"):
                await nowhere.wait_ready(0.3)


@ASYNC
async def test_a_call_that_may_not_be_repeated_fails_but_the_next_one_falls_back() -> None:
    async with serving(Counting()) as served:
        card = types.AgentCard(name="two-doors")
        card.supported_interfaces.add(url=f"127.0.0.1:{_dead_port()}", protocol_binding="GRPC")
        card.supported_interfaces.add(url=served.address, protocol_binding="GRPC")
        async with A2AClient.from_card(card, timeout=10) as client:
            hook = types.TaskPushNotificationConfig(task_id="t1", url="https://hooks.example/")
            with pytest.raises(errors.UnavailableError):
                await client.create_task_push_notification_config(hook)  # no id: not sent again
            assert client.target == served.address
            with pytest.raises(errors.TaskNotFoundError):  # reached the live interface
                await client.get_task("t1")


# -- keepalive --------------------------------------------------------------------------------------


def _pinging(interval_ms: int) -> ClientSettings:
    return ClientSettings(keepalive_time_ms=interval_ms, resilience=ResiliencePolicy(max_attempts=1))


def _ping_policy(min_interval_ms: int) -> list[tuple[str, int]]:
    """A server's ping policy: grpc's defaults but for the shortest interval it takes pings at."""
    return [("grpc.http2.min_ping_interval_without_data_ms", min_interval_ms)]


@pytest.mark.slow
@ASYNC
async def test_keepalive_pings_the_server_accepts_keep_the_channel_usable() -> None:
    """Short values on both sides, in the relation of the defaults (the client pings exactly as
    often as the server takes pings: grpc's 5 minutes there, 1 s here; grpc's client sends no
    ping sooner than 1 s after the last). A stream quiet for 4 pings, then 3 s idle: the stream
    ends well and the channel answers. The control, beside it: the same client against a server
    that takes a ping a minute is cut off (GOAWAY too_many_pings), so the pings did reach the
    server, and were accepted above."""
    assert ClientSettings().keepalive_time_ms == SERVER_MIN_PING_INTERVAL_MS
    interval = 1000

    async def agreeing() -> None:
        async with ScriptedPeer(_ping_policy(interval)) as peer:
            peer.quiet = 4.2
            async with A2AClient(peer.address, settings=_pinging(interval)) as client:
                events = [e async for e in client.subscribe_to_task("t1")]
                assert [e.task.id for e in events] == ["t1"]
                await asyncio.sleep(3 * interval / 1000)
                assert (await client.get_task("t1")).id == "t1"

    async def too_eager() -> float:
        async with ScriptedPeer(_ping_policy(60_000)) as peer:
            peer.quiet = 30.0
            async with A2AClient(peer.address, settings=_pinging(interval)) as client:
                started = time.monotonic()
                with pytest.raises(errors.UnavailableError, match=r"(?i)too many pings"):
                    await anext(client.subscribe_to_task("t1"))
                return time.monotonic() - started

    _, cut_after = await asyncio.gather(agreeing(), too_eager())
    print(
        f"a client pinging every {interval} ms, against a server taking one a minute: "
        f"cut off after {cut_after:.1f} s"
    )
    assert cut_after < 20.0


# -- the bridge's gRPC upstream: gRPC's own retry policy ---------------------------------------------


@ASYNC
async def test_the_bridges_grpc_upstream_retries_reads_through_grpcs_own_policy(peer: ScriptedPeer) -> None:
    from a2a_grpc.bridge.upstream import Call, GrpcUpstream

    call = Call({"a2a-version": "1.0"}, 10.0)
    upstream = GrpcUpstream(peer.address)
    try:
        peer.scripts["GetTask"] = [UNAVAILABLE, UNAVAILABLE]
        task = await upstream.unary("GetTask", types.GetTaskRequest(id="t1"), call)
        assert isinstance(task, types.Task)
        assert peer.calls["GetTask"] == 3  # two failures, then the answer, in one call
        # A message is never sent again by the channel (our loop alone may, by message id).
        peer.scripts["SendMessage"] = [UNAVAILABLE]
        with pytest.raises(errors.UnavailableError):
            await upstream.unary("SendMessage", A2AClient.text_request("hi"), call)
        assert peer.calls["SendMessage"] == 1
        # Attempts are bounded: a read that keeps failing fails, after four attempts.
        peer.scripts["ListTasks"] = [UNAVAILABLE] * 10
        with pytest.raises(errors.UnavailableError):
            await upstream.unary("ListTasks", types.ListTasksRequest(), call)
        assert peer.calls["ListTasks"] == 4
    finally:
        await upstream.aclose()
    once = GrpcUpstream(peer.address, settings=ClientSettings(resilience=ResiliencePolicy(max_attempts=1)))
    try:
        peer.scripts["GetTask"] = [UNAVAILABLE]
        with pytest.raises(errors.UnavailableError):
            await once.unary("GetTask", types.GetTaskRequest(id="t1"), call)
        assert peer.calls["GetTask"] == 4
    finally:
        await once.aclose()
