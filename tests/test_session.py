"""The session binding: handshake and negotiation, many calls over one stream, cancel, heartbeats,
dead peers, malformed frames, authentication. Servers bind 127.0.0.1 port 0; every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.session.frames import (
    CONNECT,
    Call,
    CallEvent,
    CancelCall,
    Chunk,
    ClientBatch,
    ClientFrame,
    Goodbye,
    Heartbeat,
    Hello,
    ServerFrame,
    Skill,
    Welcome,
    status_in,
)
from a2a_grpc.session.negotiation import SessionSettings, negotiate, skill_met
from a2a_grpc.status import from_rpc_error, from_status
from a2a_grpc.tasks import InMemoryTaskStore
from tests.test_auth import KEYS, authentication

ASYNC = pytest.mark.asyncio
WAIT = 10.0


@contextlib.asynccontextmanager
async def serving(
    agent: Any = None, session: SessionSettings | None = None, **settings: Any
) -> AsyncIterator[A2AServer]:
    chosen = ServerSettings(session=session or SessionSettings(), grace_seconds=0.5, **settings)
    server = A2AServer(agent or ReferenceAgent(), InMemoryTaskStore(), chosen)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0.5)


def card(version: str = "1.4.0", skills: tuple[str, ...] = ("echo", "stream")) -> types.AgentCard:
    return types.AgentCard(
        name="peer", version=version, skills=[types.AgentSkill(id=s, name=s) for s in skills]
    )


# --- negotiation, without a network ---------------------------------------------------------------


def hello(**fields: Any) -> Hello:
    made = Hello(protocol_versions=["1.0"], **fields)
    return made


def test_the_shorter_heartbeat_and_the_smaller_limits_are_chosen() -> None:
    ours = SessionSettings(heartbeat_interval=10.0, max_frame_bytes=4 << 20, call_frames=64)
    asked = hello(max_frame_bytes=1 << 20)
    asked.heartbeat_interval.FromSeconds(30)
    asked.window.call_frames = 1000
    welcome = negotiate(asked, ours, card())
    assert welcome.heartbeat_interval.ToSeconds() == 10  # 30 s asked, 10 s offered: 10 s for both
    assert welcome.max_frame_bytes == 1 << 20
    assert welcome.window.call_frames == 64
    assert welcome.protocol_version == "1.0"
    assert welcome.session_id != negotiate(asked, ours, card()).session_id
    quick = hello()
    quick.heartbeat_interval.FromMilliseconds(1)  # a hostile Hello cannot make the server beat 1,000/s
    assert negotiate(quick, ours, card()).heartbeat_interval.ToSeconds() == 1


@pytest.mark.parametrize(
    ("required", "offered", "met"),
    [
        ("", "1.4.0", True),
        ("1.2", "1.4.0", True),
        ("1.4", "1.4.0", True),
        ("1.5", "1.4.0", False),
        ("2.0", "1.4.0", False),
        ("1", "1.4.0", True),
        ("beta", "beta", True),
        ("beta", "1.0", False),
    ],
)
def test_skill_versions(required: str, offered: str, met: bool) -> None:
    assert skill_met(Skill(id="x", version=required), offered) is met
    assert not skill_met(Skill(id="x"), None)


def test_a_mismatch_names_exactly_what_is_missing() -> None:
    wanted = hello(
        required_skills=[
            Skill(id="echo", version="1.2"),
            Skill(id="translate"),
            Skill(id="stream", version="2.0"),
        ]
    )
    with pytest.raises(errors.CapabilityMismatchError) as mismatch:
        negotiate(wanted, SessionSettings(), card())
    assert mismatch.value.metadata["missing_skills"] == "translate,stream@2.0"
    assert "translate" in mismatch.value.message
    assert mismatch.value.grpc_code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(errors.VersionNotSupportedError) as version:
        negotiate(Hello(protocol_versions=["0.3", "2.0"]), SessionSettings(), card())
    assert version.value.metadata["unsupported_versions"] == "0.3,2.0"
    with pytest.raises(errors.CapabilityMismatchError) as both:
        negotiate(
            Hello(protocol_versions=["0.3"], required_skills=[Skill(id="fly")]), SessionSettings(), card()
        )
    assert both.value.metadata["missing_skills"] == "fly"
    assert both.value.metadata["unsupported_versions"] == "0.3"


# --- over the network -----------------------------------------------------------------------------


@ASYNC
async def test_calls_over_one_session_answer_as_the_unary_binding_does() -> None:
    async with (
        serving() as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(agent_name="planner", heartbeat_interval=30.0) as session,
    ):
        assert session.welcome is not None
        assert session.welcome.heartbeat_interval.ToSeconds() == 15  # the server's, the shorter
        assert session.welcome.agent_name == server.card().name
        sent = await session.send_message(A2AClient.text_request("echo over a session"))
        assert sent.task.artifacts[0].parts[0].text == "echo over a session"
        events = [e async for e in session.send_streaming_message(A2AClient.text_request("stream 3"))]
        assert [e.WhichOneof("payload") for e in events][:2] == ["task", "status_update"]
        assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
        got = await session.get_task(sent.task.id)
        assert got.id == sent.task.id
        listed = await session.list_tasks()
        assert {t.id for t in listed.tasks} >= {sent.task.id}
        with pytest.raises(errors.TaskNotFoundError, match="not found"):
            await session.get_task("no-such-task")
        with pytest.raises(errors.InvalidParamsError) as invalid:
            await session.get_task("..")
        assert [v.field for v in invalid.value.field_violations] == ["id"]
        assert (await session.get_task(sent.task.id)).id == sent.task.id  # the session goes on


@ASYNC
async def test_a_thousand_concurrent_calls_each_in_order_and_one_canceled() -> None:
    async with (
        serving() as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session() as session,
    ):

        async def streamed(n: int) -> list[int]:
            chunks = []
            async for event in session.send_streaming_message(A2AClient.text_request(f"stream {n % 5 + 1}")):
                if event.HasField("artifact_update"):
                    chunks.append(int(event.artifact_update.artifact.parts[0].text.rsplit(" ", 1)[-1]))
            return chunks

        slow = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 30")))
        running = [asyncio.ensure_future(streamed(n)) for n in range(1000)]
        await asyncio.sleep(0.05)
        slow.cancel()  # one call canceled while a thousand run ...
        with pytest.raises(asyncio.CancelledError):
            await slow
        results = await asyncio.gather(*running)
        for n, chunks in enumerate(results):
            assert chunks == sorted(chunks)
            assert len(chunks) == n % 5 + 1
        after = await session.send_message(A2AClient.text_request("echo still here"))  # ... the rest go on
        assert after.task.artifacts[0].parts[0].text == "echo still here"


@ASYNC
async def test_leaving_a_stream_early_cancels_that_call_only() -> None:
    async with (
        serving() as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session() as session,
    ):
        other = asyncio.ensure_future(
            _collect(session.send_streaming_message(A2AClient.text_request("stream 20")))
        )
        stream = session.send_streaming_message(A2AClient.text_request("slow 30"))
        async with contextlib.aclosing(stream) as events:
            async for _ in events:
                break  # the first event, then leave
        assert len(await other) > 20
        # The slow task is still working: the call ended, not the task.
        tasks = await session.list_tasks(types.ListTasksRequest(status=types.TASK_STATE_WORKING))
        assert len(tasks.tasks) == 1


async def _collect(stream: Any) -> list[Any]:
    return [e async for e in stream]


@ASYNC
async def test_a_call_deadline_ends_that_call() -> None:
    async with (
        serving() as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session() as session,
    ):
        with pytest.raises(errors.DeadlineExceededError):
            await session.send_message(A2AClient.text_request("slow 30"), timeout=0.3)
        assert (await session.send_message(A2AClient.text_request("echo ok"))).task.id


# --- the handshake, refused -----------------------------------------------------------------------


@ASYNC
async def test_a_handshake_asking_for_a_missing_skill_is_refused_naming_it() -> None:
    async with serving() as server, A2AClient(server.address, timeout=WAIT) as client:
        with pytest.raises(errors.CapabilityMismatchError) as refused:
            async with client.session(required_skills=["echo", Skill(id="translate", version="2.1")]):
                raise AssertionError("no session may open")
        assert refused.value.metadata["missing_skills"] == "translate@2.1"
        async with client.session(required_skills=["echo", "stream"]) as session:  # offered ones are fine
            assert session.welcome is not None


@ASYNC
async def test_a_handshake_that_never_comes_fails_at_the_servers_timeout() -> None:
    async with serving(session=SessionSettings(handshake_timeout=0.3)) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream = raw(channel)()
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(stream.read(), WAIT)
        error = from_rpc_error(ended.value)
        assert isinstance(error, errors.DeadlineExceededError)
        assert "no Hello within 0.3 s" in error.message


class Stuck:
    """A session that is told to end and never does (its calls ignore their cancellation)."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()
        self.told: list[str] = []

    def end(self, reason: str) -> None:
        self.told.append(reason)


@ASYNC
async def test_closing_the_sessions_waits_close_seconds_for_one_that_never_ends() -> None:
    from a2a_grpc.session.server import SessionHost

    async def card() -> types.AgentCard:
        return types.AgentCard()

    stuck = Stuck()
    host = SessionHost(None, card, SessionSettings(close_seconds=0.1))  # type: ignore[arg-type]
    host.sessions["s"] = stuck  # type: ignore[assignment]
    # Bounded below the default close_seconds (5 s): only the setting can have ended the wait in time.
    await asyncio.wait_for(host.close("the server is stopping"), 3.0)
    assert stuck.told == ["the server is stopping"]
    assert not stuck.ended.is_set()
    with pytest.raises(ValueError, match="close_seconds"):
        SessionSettings(close_seconds=0)


@ASYNC
async def test_a_server_that_never_welcomes_fails_at_the_clients_timeout() -> None:
    async def mute(requests: Any, context: Any) -> None:
        await asyncio.sleep(WAIT)

    async with fake_session_server(mute) as address, A2AClient(address, timeout=WAIT) as client:
        with pytest.raises(errors.DeadlineExceededError, match=r"no Welcome within 0\.2 s"):
            async with client.session(handshake_timeout=0.2):
                raise AssertionError("no session may open")


# --- malformed sessions and frames ----------------------------------------------------------------


Serializer = Callable[[Any], bytes]


def raw(channel: grpc.aio.Channel, serializer: Serializer = ClientFrame.SerializeToString) -> Any:
    """A bare Connect stream: frames written as they are (or, with another serializer, as bytes)."""
    return channel.stream_stream(
        CONNECT, request_serializer=serializer, response_deserializer=ServerFrame.FromString
    )


def fake_session_service(handler: grpc.RpcMethodHandler) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("a2a_grpc.session.v1.SessionService", {"Connect": handler})


@contextlib.asynccontextmanager
async def fake_session_server(connect: Callable[[Any, Any], Any]) -> AsyncIterator[str]:
    """A bare grpc.aio server whose SessionService/Connect is ``connect(requests, context)``: a
    peer that breaks the binding's rules on purpose. Yields its address."""
    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(
        connect,
        request_deserializer=ClientFrame.FromString,
        response_serializer=ServerFrame.SerializeToString,
    )
    server.add_generic_rpc_handlers((fake_session_service(handler),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


class Unbatched:
    """The frames of a bare Connect stream one by one: a Batch is read as the frames it holds."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._ready: list[ServerFrame] = []

    async def next(self) -> Any:
        """The next frame, or ``grpc.aio.EOF``."""
        while not self._ready:
            frame = await self.stream.read()
            if frame is grpc.aio.EOF or frame.WhichOneof("frame") != "batch":
                return frame
            self._ready = list(frame.batch.frames)
        return self._ready.pop(0)


async def read_to_the_end(stream: Any, seen: list[ServerFrame] | None = None) -> None:
    """Read a stream until it ends (EOF); with ``seen``, keep every frame."""
    frames = Unbatched(stream)
    async with asyncio.timeout(WAIT):
        while (frame := await frames.next()) is not grpc.aio.EOF:
            if seen is not None:
                seen.append(frame)


async def _refusal(
    server: A2AServer, *frames: Any, serializer: Serializer = ClientFrame.SerializeToString
) -> errors.A2AError:
    async with grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel, serializer)()
        for frame in frames:
            await stream.write(frame)
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_to_the_end(stream)
        return from_rpc_error(ended.value)


@ASYNC
async def test_a_malformed_session_ends_with_a_clear_status_and_the_server_keeps_serving() -> None:
    welcome_first = ClientFrame(hello=Hello(protocol_versions=["1.0"]))
    lookup = types.GetTaskRequest(id="x")
    assert lookup.id == "x"
    async with serving() as server:
        cases = [
            (
                (ClientFrame(call=Call(call_id=1, get_task=lookup)),),
                "opens with a Hello",
            ),
            ((ClientFrame(),), "opens with a Hello"),
            ((welcome_first, welcome_first), "one Hello"),
            ((welcome_first, ClientFrame()), "empty frame"),
            (
                (welcome_first, ClientFrame(call=Call(call_id=0, get_task=lookup))),
                "call_id 0",
            ),
            (
                (welcome_first, ClientFrame(batch=ClientBatch(frames=[ClientFrame(batch=ClientBatch())]))),
                "a batch holds no batch",
            ),
            ((welcome_first, ClientFrame(batch=ClientBatch(frames=[welcome_first]))), "one Hello"),
            ((ClientFrame(batch=ClientBatch(frames=[welcome_first])),), "opens with a Hello"),
        ]
        for frames, problem in cases:
            error = await _refusal(server, *frames)
            assert isinstance(error, errors.InvalidRequestError), (problem, error)
            assert problem in error.message
        garbage = await _refusal(server, b"\xff\xff\xff garbage", serializer=lambda b: b)
        assert isinstance(garbage, errors.InvalidRequestError)
        assert "not a ClientFrame" in garbage.message
        after_hello = await _refusal(
            server, welcome_first.SerializeToString(), b"\x0a\xff\x01", serializer=lambda b: b
        )
        assert isinstance(after_hello, errors.InvalidRequestError)
        version = await _refusal(server, ClientFrame(hello=Hello(protocol_versions=["0.3"])))
        assert isinstance(version, errors.VersionNotSupportedError)
        async with A2AClient(server.address, timeout=WAIT) as client, client.session() as session:
            assert (await session.send_message(A2AClient.text_request("echo alive"))).task.id


@ASYNC
async def test_a_frame_wrong_about_one_call_ends_that_call_only() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel)()
        opening = Hello(protocol_versions=["1.0"], max_frame_bytes=16 * 1024)
        await stream.write(ClientFrame(hello=opening))
        welcome = (await stream.read()).welcome
        assert welcome.max_frame_bytes == 16 * 1024
        big = A2AClient.text_request("echo " + "x" * 20_000)
        await stream.write(ClientFrame(cancel=CancelCall(call_id=99)))  # no such call
        await stream.write(ClientFrame(call=Call(call_id=5)))  # no operation
        await stream.write(ClientFrame(call=Call(call_id=6, send_message=big)))  # over the frame limit
        await stream.write(ClientFrame(call=Call(call_id=7, get_task=types.GetTaskRequest(id="missing"))))
        await stream.write(ClientFrame(heartbeat=Heartbeat(count=1)))
        ends: dict[int, errors.A2AError | None] = {}
        frames = Unbatched(stream)
        async with asyncio.timeout(WAIT):
            while len(ends) < 4:
                frame = await frames.next()
                if frame.WhichOneof("frame") == "end":
                    status = status_in(frame.end)
                    ends[frame.end.call_id] = from_status(status) if status.code else None
        assert "no call 99 is running" in str(ends[99])
        assert "names no operation" in str(ends[5])
        assert "frames are at most 16384" in str(ends[6])
        assert isinstance(ends[7], errors.TaskNotFoundError)
        await stream.write(
            ClientFrame(call=Call(call_id=8, send_message=A2AClient.text_request("echo fine")))
        )
        async with asyncio.timeout(WAIT):
            while (frame := await frames.next()).WhichOneof("frame") != "event":
                pass
        # A unary call's response ends it: one frame, marked last, no CallEnd after it.
        assert (frame.event.call_id, frame.event.seq, frame.event.last) == (8, 1, True)
        assert frame.event.send_message_response.task.artifacts[0].parts[0].text == "echo fine"
        stream.cancel()


@ASYNC
async def test_a_client_batch_is_read_as_the_frames_it_holds_in_order() -> None:
    """Calls, a cancel for a call that is not running and a heartbeat sent as one ClientBatch: each
    acts as if it had come alone; a Goodbye inside a batch ends the session there."""
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel)()
        await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
        assert (await stream.read()).WhichOneof("frame") == "welcome"
        calls = [
            ClientFrame(call=Call(call_id=i, send_message=A2AClient.text_request(f"echo {i}")))
            for i in range(1, 41)
        ]
        extra = [ClientFrame(cancel=CancelCall(call_id=77)), ClientFrame(heartbeat=Heartbeat(count=1))]
        await stream.write(ClientFrame(batch=ClientBatch(frames=calls + extra)))
        answers: dict[int, str] = {}
        ends: dict[int, str] = {}
        frames = Unbatched(stream)
        async with asyncio.timeout(WAIT):
            while len(answers) < 40 or 77 not in ends:
                frame = await frames.next()
                if frame.WhichOneof("frame") == "event":
                    task = frame.event.send_message_response.task
                    answers[frame.event.call_id] = task.artifacts[0].parts[0].text
                elif frame.WhichOneof("frame") == "end":
                    ends[frame.end.call_id] = status_in(frame.end).message
        assert answers == {i: f"echo {i}" for i in range(1, 41)}
        assert "no call 77 is running" in ends[77]
        late = ClientFrame(call=Call(call_id=99, send_message=A2AClient.text_request("echo never")))
        await stream.write(ClientFrame(batch=ClientBatch(frames=[ClientFrame(goodbye=Goodbye()), late])))
        seen: list[ServerFrame] = []
        await read_to_the_end(stream, seen)  # the server ends the stream, OK
        assert not [f for f in seen if f.WhichOneof("frame") == "event" and f.event.call_id == 99]


@ASYNC
async def test_calls_started_together_leave_the_client_in_one_batch() -> None:
    """The client's writer sends what is queued together as one ClientBatch: 50 calls started at
    once reach the server in far fewer messages than 50."""
    received: list[ClientFrame] = []

    async def answer_every_call(requests: Any, context: Any) -> None:
        welcome = Welcome(
            session_id="s", protocol_version="1.0", missed_heartbeats=3, max_frame_bytes=1 << 20
        )
        welcome.heartbeat_interval.FromSeconds(10)
        welcome.window.CopyFrom(
            negotiate(Hello(protocol_versions=["1.0"]), SessionSettings(), types.AgentCard()).window
        )
        async for frame in requests:
            received.append(frame)
            if frame.WhichOneof("frame") == "hello":
                await context.write(ServerFrame(welcome=welcome))
            inner = frame.batch.frames if frame.WhichOneof("frame") == "batch" else [frame]
            for one in inner:
                if one.WhichOneof("frame") == "call":
                    event = CallEvent(call_id=one.call.call_id, seq=1, last=True)
                    event.task.id = one.call.get_task.id
                    await context.write(ServerFrame(event=event))

    async with fake_session_server(answer_every_call) as address:
        async with A2AClient(address, timeout=WAIT) as client, client.session() as session:
            tasks = await asyncio.gather(*(session.get_task(f"t{i}") for i in range(50)))
        assert [t.id for t in tasks] == [f"t{i}" for i in range(50)]
        batches = [f for f in received if f.WhichOneof("frame") == "batch"]
        assert batches
        assert len(batches[0].batch.frames) > 1
        calls = sum(f.WhichOneof("frame") == "call" for b in batches for f in b.batch.frames) + sum(
            f.WhichOneof("frame") == "call" for f in received
        )
        assert calls == 50
        assert len(received) < 10  # a Hello, the batch(es), a Goodbye


@ASYNC
async def test_a_call_timeout_out_of_range_ends_that_call_or_is_held_to_a_year() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel)()
        await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
        assert (await stream.read()).WhichOneof("frame") == "welcome"
        lookup = types.GetTaskRequest(id="missing")
        bad = {1: (-5, 0), 2: (0, 0), 3: (1, -1), 4: (1, 10**9)}
        for call_id, (seconds, nanos) in bad.items():
            call = Call(call_id=call_id, get_task=lookup)
            call.timeout.seconds, call.timeout.nanos = seconds, nanos
            await stream.write(ClientFrame(call=call))
        huge = Call(call_id=5, get_task=lookup)
        huge.timeout.seconds = 2**62  # past year 9999: held to a year, not an overflow
        await stream.write(ClientFrame(call=huge))
        ends: dict[int, str] = {}
        frames = Unbatched(stream)
        async with asyncio.timeout(WAIT):
            while len(ends) < 5:
                frame = await frames.next()
                if frame.WhichOneof("frame") == "end":
                    ends[frame.end.call_id] = status_in(frame.end).message
        assert all("timeout must be a positive duration" in ends[i] for i in bad)
        assert "missing" in ends[5]  # it ran: GetTask found no such task
        stream.cancel()


# --- heartbeats and dead peers --------------------------------------------------------------------


@ASYNC
async def test_a_silent_client_is_declared_dead_and_its_calls_end_but_not_its_tasks() -> None:
    async with serving(session=SessionSettings(heartbeat_interval=1.0, missed_heartbeats=2)) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream = raw(channel)()
            await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
            welcome: Welcome = (await stream.read()).welcome
            assert (welcome.heartbeat_interval.ToSeconds(), welcome.missed_heartbeats) == (1, 2)
            await stream.write(
                ClientFrame(call=Call(call_id=1, send_message=A2AClient.text_request("slow 30")))
            )
            seen: list[ServerFrame] = []
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await read_to_the_end(stream, seen)
            beats = sum(frame.WhichOneof("frame") == "heartbeat" for frame in seen)
        error = from_rpc_error(ended.value)
        assert isinstance(error, errors.UnavailableError)
        assert "declared dead" in error.message
        assert beats >= 1  # the server beat while it waited
        async with A2AClient(server.address, timeout=WAIT) as client:
            tasks = await client.list_tasks()
        assert [t.status.state for t in tasks.tasks] == [types.TASK_STATE_WORKING]  # the task goes on


@ASYNC
async def test_a_client_that_beats_stays_alive_through_many_intervals() -> None:
    async with (
        serving(session=SessionSettings(heartbeat_interval=1.0, missed_heartbeats=2)) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(heartbeat_interval=1.0) as session,
    ):
        done = 0
        for _ in range(7):  # 3.5 s: past the 2 s a silent peer would last
            await session.send_message(A2AClient.text_request("echo beat"))
            done += 1
            await asyncio.sleep(0.5)
        assert done == 7


@ASYNC
async def test_a_silent_server_is_declared_dead_and_every_call_ends_with_a_typed_error() -> None:
    async def welcome_then_nothing(requests: Any, context: Any) -> None:
        await anext(aiter(requests))
        welcome = Welcome(
            session_id="s", protocol_version="1.0", missed_heartbeats=2, max_frame_bytes=1 << 20
        )
        welcome.heartbeat_interval.FromSeconds(1)
        await context.write(ServerFrame(welcome=welcome))
        await asyncio.sleep(WAIT)

    async with fake_session_server(welcome_then_nothing) as address:
        async with A2AClient(address, timeout=WAIT) as client, client.session() as session:
            calls = [session.send_message(A2AClient.text_request(f"echo {i}")) for i in range(3)]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(o, errors.UnavailableError) for o in outcomes), outcomes
        assert all("declared dead" in str(o) for o in outcomes)


# --- authentication and ownership -----------------------------------------------------------------


@ASYNC
async def test_the_handshake_checks_credentials_and_calls_act_as_their_principal() -> None:
    async with serving(authentication=authentication()) as server:
        async with A2AClient(server.address, timeout=WAIT) as anonymous:
            with pytest.raises(errors.UnauthenticatedError, match="requires credentials"):
                async with anonymous.session():
                    raise AssertionError("no session without credentials")
        alice_md = (("x-api-key", KEYS["alice"]),)
        bob_md = (("x-api-key", KEYS["bob"]),)
        async with A2AClient(server.address, timeout=WAIT, metadata=alice_md) as alice, alice.session() as s:
            task = (await s.send_message(A2AClient.text_request("ask"))).task
        async with A2AClient(server.address, timeout=WAIT, metadata=bob_md) as bob, bob.session() as s:
            with pytest.raises(errors.TaskNotFoundError):
                await s.get_task(task.id)
            with pytest.raises(errors.TaskNotFoundError):
                await s.cancel_task(task.id)
            assert task.id not in [t.id for t in (await s.list_tasks()).tasks]


# --- flow control ------------------------------------------------------------------------------------------


@ASYNC
async def test_a_slow_consumer_pauses_its_producer_and_nothing_piles_up() -> None:
    """A window of 8 frames per call: a client that stops reading a 20,000-chunk stream holds at most
    8 of its events, and the agent, held by its caller's stream, stops producing (the task stays
    WORKING, its events far fewer than 20,000) until the client reads again; then all arrive."""
    settings = SessionSettings(call_frames=8, call_bytes=1 << 20)
    async with (
        serving(session=settings) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session() as session,
    ):
        stream = session.send_streaming_message(A2AClient.text_request("stream 20000"))
        async with contextlib.aclosing(stream) as events:
            first = await anext(events)
            task_id = first.task.id
            await asyncio.sleep(0.5)  # not reading: unthrottled, 20,000 chunks take far less
            pending = next(iter(session._calls.values()))  # the stream's queue, inside the client
            assert pending.frames.qsize() <= 8
            seen = await session.get_task(task_id, history_length=0)
            assert seen.status.state == types.TASK_STATE_WORKING
            produced = len(seen.artifacts[0].parts) if seen.artifacts else 0
            assert produced < 2000, produced
            count = 1 + sum([1 async for _ in events])
        assert count == 20000 + 3  # the task, working, 20,000 chunks, completed


# --- discovery ---------------------------------------------------------------------------------------


@ASYNC
async def test_a_client_uses_the_session_the_card_offers_and_falls_back_without_one() -> None:
    from a2a_grpc.session.client import Session, connect, session_interface
    from a2a_grpc.session.frames import BINDING_URI

    async with serving() as server:
        card = server.card()
        offered = session_interface(card)
        assert offered is not None
        assert (offered.protocol_binding, offered.url) == (BINDING_URI, server.address)
        async with connect(card, timeout=WAIT) as calls:
            assert isinstance(calls, Session)
            assert (await calls.send_message(A2AClient.text_request("echo by session"))).task.id
        without = types.AgentCard()
        without.CopyFrom(card)
        del without.supported_interfaces[1:]  # a card with the gRPC interface only
        async with connect(without, timeout=WAIT) as calls:
            assert isinstance(calls, A2AClient)
            assert (await calls.send_message(A2AClient.text_request("echo unary"))).task.id
        async with connect(card, session=False, timeout=WAIT) as calls:  # not asked for
            assert isinstance(calls, A2AClient)


# --- chunking ----------------------------------------------------------------------------------------------


@ASYNC
@pytest.mark.parametrize(("limit", "size"), [(16 * 1024, 100_000), (4 << 20, 6 << 20)], ids=["16KiB", "4MiB"])
async def test_frames_over_the_limit_travel_in_chunks_byte_exact_both_ways(limit: int, size: int) -> None:
    """A message larger than the frame limit goes to the server in chunks (the Call), and the
    answer holding it twice (history and artifact) comes back in chunks; both are byte-exact, and
    the session goes on."""
    import random

    text = "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789 ", k=size))
    session_settings = SessionSettings(max_frame_bytes=limit)
    async with (
        serving(session=session_settings) as server,
        A2AClient(server.address, timeout=WAIT, max_message_bytes=64 << 20) as client,
        client.session(max_frame_bytes=limit) as session,
    ):
        assert session.welcome is not None
        assert session.welcome.max_frame_bytes == limit
        reply = await session.send_message(A2AClient.text_request(f"echo {text}"))
        assert reply.task.artifacts[0].parts[0].text == f"echo {text}"
        assert reply.task.history[0].parts[0].text == f"echo {text}"
        streamed = [e async for e in session.send_streaming_message(A2AClient.text_request(f"echo {text}"))]
        chunks = [e.artifact_update.artifact.parts[0].text for e in streamed if e.HasField("artifact_update")]
        assert chunks == [f"echo {text}"]
        small = await session.send_message(A2AClient.text_request("echo small"))
        assert small.task.artifacts[0].parts[0].text == "echo small"


@ASYNC
async def test_a_frame_larger_than_the_calls_byte_window_still_arrives() -> None:
    """A response chunked into more bytes than the call's window: the client gives each chunk's
    credit back as it joins it, so the server never waits for credit only the end would bring."""
    settings = SessionSettings(max_frame_bytes=16 * 1024, call_bytes=48 * 1024, session_bytes=64 * 1024)
    text = "w" * 300_000
    async with (
        serving(session=settings) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(max_frame_bytes=16 * 1024) as session,
    ):
        assert session.welcome is not None
        assert session.welcome.window.call_bytes == 48 * 1024
        reply = await session.send_message(A2AClient.text_request(f"echo {text}"), timeout=WAIT)
        assert reply.task.artifacts[0].parts[0].text == f"echo {text}"
        streamed = [
            e
            async for e in session.send_streaming_message(
                A2AClient.text_request(f"echo {text}"), timeout=WAIT
            )
        ]
        assert [
            e.artifact_update.artifact.parts[0].text for e in streamed if e.HasField("artifact_update")
        ] == [f"echo {text}"]


@ASYNC
async def test_chunks_joining_past_the_bound_end_that_call_only() -> None:
    settings = SessionSettings(max_frame_bytes=16 * 1024, max_joined_bytes=64 * 1024)
    async with (
        serving(session=settings) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(max_frame_bytes=16 * 1024) as session,
    ):
        with pytest.raises(errors.InvalidRequestError, match="join past 65536 bytes"):
            await session.send_message(A2AClient.text_request("echo " + "x" * 100_000))
        assert (await session.send_message(A2AClient.text_request("echo next"))).task.id


@ASYNC
async def test_chunks_that_do_not_make_a_call_end_that_call() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel)()
        await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
        await stream.read()
        await stream.write(ClientFrame(chunk=Chunk(call_id=3, data=b"\xff\xfe not a frame", last=True)))
        other = ClientFrame(call=Call(call_id=9, get_task=types.GetTaskRequest(id="x"))).SerializeToString()
        await stream.write(ClientFrame(chunk=Chunk(call_id=4, data=other, last=True)))  # call 9's, sent as 4
        ends = {}
        frames = Unbatched(stream)
        async with asyncio.timeout(WAIT):
            while len(ends) < 2:
                frame = await frames.next()
                if frame.WhichOneof("frame") == "end":
                    ends[frame.end.call_id] = from_status(status_in(frame.end))
        for call_id in (3, 4):
            assert isinstance(ends[call_id], errors.InvalidRequestError)
            assert "do not make its Call frame" in ends[call_id].message
        stream.cancel()


# --- numbering ---------------------------------------------------------------------------------------------


@ASYNC
async def test_events_carry_their_number_in_the_tasks_event_log() -> None:
    """Two calls following one task (the stream that started it, and a subscription) number its
    events alike: by the task's event log, consecutively, the same event under the same number."""
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream = raw(channel)()
        await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
        await stream.read()
        slow = A2AClient.text_request("slow 1")
        await stream.write(ClientFrame(call=Call(call_id=1, send_streaming_message=slow)))
        events: dict[int, list[tuple[int, Any]]] = {1: [], 2: []}
        ended: set[int] = set()
        frames = Unbatched(stream)
        async with asyncio.timeout(WAIT):
            while len(ended) < 2:
                frame = await frames.next()
                kind = frame.WhichOneof("frame")
                if kind == "event":
                    event = frame.event
                    events[event.call_id].append((event.seq, event.stream_response))
                    if event.call_id == 1 and len(events[1]) == 3:  # a few events in: subscribe
                        task_id = event.stream_response.status_update.task_id or events[1][0][1].task.id
                        follow = types.SubscribeToTaskRequest(id=task_id)
                        await stream.write(ClientFrame(call=Call(call_id=2, subscribe_to_task=follow)))
                elif kind == "end":
                    ended.add(frame.end.call_id)
        stream.cancel()
    for call_id in (1, 2):
        numbers = [seq for seq, _ in events[call_id]]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
    started = dict(events[1])
    assert events[1][0][0] == 0  # the new task's snapshot: no event of its log yet
    assert events[2][0][0] >= 2  # the subscription's snapshot stands where the task's log was
    for seq, event in events[2][1:]:
        assert started[seq] == event  # the same event under the same number


@ASYNC
async def test_a_stopping_server_gives_running_calls_their_end_then_says_goodbye() -> None:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(grace_seconds=0.5))
    await server.start()
    try:
        async with A2AClient(server.address, timeout=WAIT) as client, client.session() as session:
            slow = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 30")))
            await asyncio.sleep(0.2)
            await server.stop(0.5)
            # The call is answered before the session ends (with the task as it stood when its
            # execution stopped, as on the unary binding); the server then fails the task.
            ended = await slow
            assert ended.task.status.state in (types.TASK_STATE_WORKING, types.TASK_STATE_FAILED)
            # The server drained: it told the session to go away, so a new call on it is refused
            # at once, typed, with the server's advice on when to try again.
            with pytest.raises(errors.ServerDrainingError, match="draining") as refused:
                await session.get_task(ended.task.id)
            assert refused.value.retry_after == 1
    finally:
        await server.stop(0)


def test_credit_never_grows_past_the_window() -> None:
    from a2a_grpc.session.credit import Account, Ledger

    account = Account(8, 1000)
    account.give(10**9, 10**12)  # a peer handing out more than it was given
    assert account.available == (8, 1000)
    ledger = Ledger(8, 1000)
    assert [ledger.take(10) for _ in range(3)] == [None, None, None]
    assert ledger.take(10) == (4, 40)  # half the frames taken: given back at once
    assert ledger.take(600) == (1, 600)  # more than half the bytes: likewise


async def work_through_mismatched_heartbeats(seconds: float, *, pauses: bool) -> None:
    """The client proposes 30 s, the server 1 s: both use 1 s. Steady work for ``seconds`` (more
    than the 2 s a silent peer would last): quick tasks, and with ``pauses`` also tasks that work
    across several intervals and idle gaps longer than 2 s when nothing but heartbeats flows.
    Every task completes and none is lost."""
    async with (
        serving(session=SessionSettings(heartbeat_interval=1.0, missed_heartbeats=2)) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(heartbeat_interval=30.0) as session,
    ):
        assert session.welcome is not None
        assert session.welcome.heartbeat_interval.ToSeconds() == 1
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        sent: list[str] = []

        async def worker(n: int) -> None:
            while loop.time() < end:
                text = f"echo {n}-{len(sent)}"
                sent.append(text)
                reply = await session.send_message(A2AClient.text_request(text))
                assert reply.task.status.state == types.TASK_STATE_COMPLETED
                assert reply.task.artifacts[0].parts[0].text == text
                await asyncio.sleep(0.05)

        async def slow_worker() -> None:
            while loop.time() < end:
                sent.append("slow 2.5")
                events = [e async for e in session.send_streaming_message(A2AClient.text_request("slow 2.5"))]
                assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
                await asyncio.sleep(2.5)  # the session idles past two intervals: heartbeats alone

        workers = [worker(n) for n in range(8)]
        if pauses:
            workers += [slow_worker(), slow_worker()]
        await asyncio.gather(*workers)
        assert session.alive
        listed = await session.list_tasks(types.ListTasksRequest(page_size=100))
        assert listed.total_size == len(sent)  # every task is there: none dropped
        states = set()
        request = types.ListTasksRequest(page_size=100)
        while True:
            page = await session.list_tasks(request)
            states |= {t.status.state for t in page.tasks}
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        assert states == {types.TASK_STATE_COMPLETED}


@ASYNC
async def test_heartbeats_that_differ_are_agreed_and_a_long_run_drops_nothing() -> None:
    await work_through_mismatched_heartbeats(4.0, pauses=False)


@ASYNC
@pytest.mark.soak
@pytest.mark.timeout(180)
async def test_soak_heartbeats_that_differ_through_a_minute_of_work_and_idle_gaps() -> None:
    """``make soak``: a minute (60 intervals) of quick and slow tasks and idle gaps."""
    await work_through_mismatched_heartbeats(60.0, pauses=True)


@ASYNC
async def test_a_server_that_ignores_credit_ends_the_session_not_the_clients_memory() -> None:
    async def flood(requests: Any, context: Any) -> None:
        frames = aiter(requests)
        await anext(frames)
        welcome = Welcome(
            session_id="s", protocol_version="1.0", missed_heartbeats=3, max_frame_bytes=1 << 20
        )
        welcome.heartbeat_interval.FromSeconds(15)
        welcome.window.call_frames, welcome.window.session_frames = 4, 64
        welcome.window.call_bytes = welcome.window.session_bytes = 1 << 20
        await context.write(ServerFrame(welcome=welcome))
        call = (await anext(frames)).call
        for seq in range(1, 1000):  # no credit asked for, none waited for
            event = CallEvent(call_id=call.call_id, seq=seq)
            event.stream_response.status_update.task_id = "t"
            await context.write(ServerFrame(event=event))
        await asyncio.sleep(WAIT)

    async with (
        fake_session_server(flood) as address,
        A2AClient(address, timeout=WAIT) as client,
        client.session() as session,
    ):

        async def read_slowly() -> None:  # a reader slower than the flood
            stream = session.send_streaming_message(A2AClient.text_request("stream 3"))
            async with contextlib.aclosing(stream) as events:
                async for _ in events:
                    await asyncio.sleep(0.01)

        with pytest.raises(errors.InvalidAgentResponseError, match="more events than the credit"):
            await read_slowly()


@pytest.mark.parametrize("call_id", [1, 127, 128, 300, 2**40])
@pytest.mark.parametrize("seq", [0, 1, 200, 2**33])
@pytest.mark.parametrize("last", [False, True])
def test_event_bytes_are_what_protobuf_would_write(call_id: int, seq: int, last: bool) -> None:
    from a2a_grpc.session.frames import PAYLOADS, event_bytes, event_of

    task = types.Task(id="t" * 300, context_id="c")  # a body past one length byte
    task.artifacts.add(artifact_id="a").parts.add(text="x" * 5000)
    samples: list[Any] = [
        task,
        types.StreamResponse(task=task),
        types.SendMessageResponse(task=task),
        types.ListTasksResponse(tasks=[task], total_size=1),
        types.TaskPushNotificationConfig(id="p", task_id="t", url="https://hooks.example.com/x"),
        types.ListTaskPushNotificationConfigsResponse(),
        types.AgentCard(name="a"),
    ]
    from google.protobuf import empty_pb2

    from a2a_grpc._gen.a2a_grpc.session.v1 import session_pb2

    empty_class = type(session_pb2.CallEvent().empty)
    samples.append(empty_class())
    assert {m.DESCRIPTOR.full_name for m in samples} == set(PAYLOADS)
    for message in samples:
        made = event_bytes(call_id, seq, message, last=last)
        assert made == event_of(call_id, seq, message, last=last).SerializeToString()
        parsed = ServerFrame.FromString(made).event
        assert (parsed.call_id, parsed.seq, parsed.last) == (call_id, seq, last)
    assert empty_pb2.Empty.DESCRIPTOR.full_name in PAYLOADS


@ASYNC
async def test_frames_ready_together_go_in_one_batch_within_the_frame_limit() -> None:
    limit = 16 * 1024
    async with (
        serving(session=SessionSettings(max_frame_bytes=limit)) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stream = raw(channel)()
        await stream.write(ClientFrame(hello=Hello(protocol_versions=["1.0"])))
        await stream.read()
        for call_id in range(1, 201):
            echo = A2AClient.text_request(f"echo {call_id}")
            await stream.write(ClientFrame(call=Call(call_id=call_id, send_message=echo)))
        answered: dict[int, str] = {}
        batches = 0
        async with asyncio.timeout(WAIT):
            while len(answered) < 200:
                frame = await stream.read()
                inner = list(frame.batch.frames) if frame.WhichOneof("frame") == "batch" else [frame]
                if len(inner) > 1:
                    batches += 1
                    assert frame.ByteSize() <= limit + 16  # the batch's own few bytes of framing
                for one in inner:
                    if one.WhichOneof("frame") == "event":
                        reply = one.event.send_message_response.task.artifacts[0].parts[0].text
                        answered[one.event.call_id] = reply
        stream.cancel()
    assert answered == {n: f"echo {n}" for n in range(1, 201)}
    assert batches >= 1  # 200 answers ready close together: some went out as batches
