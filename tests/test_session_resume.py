"""Resuming a session on a new connection: the server sends exactly the frames the client missed,
then live ones, and its calls carry on; refusals are typed (unknown, expired, wrong token or
principal, a position it does not retain). These tests speak raw frames; the client's own
resume is tested through a proxy that cuts connections."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import reference_card
from a2a_grpc.session.frames import (
    Call,
    ClientFrame,
    Heartbeat,
    Hello,
    Refresh,
    Resume,
    ServerFrame,
    Welcome,
    status_in,
)
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.status import from_rpc_error
from a2a_grpc.testing import CuttingProxy
from tests.test_session import Unbatched, fake_session_server, raw, serving

ASYNC = pytest.mark.asyncio
WAIT = 10.0
COUNTED = {"event", "end", "chunk"}


class Reader:
    """A raw session's frames as a client sees them, counting the server's counted frames."""

    def __init__(self, stream: Any) -> None:
        self.frames = Unbatched(stream)
        self.received = 0

    async def next(self) -> Any:
        async with asyncio.timeout(WAIT):
            frame = await self.frames.next()
        if frame is not grpc.aio.EOF and frame.WhichOneof("frame") in COUNTED:
            self.received += 1
        return frame


async def opened(channel: grpc.aio.Channel, hello: Hello | None = None) -> tuple[Any, Welcome, Reader]:
    stream = raw(channel)()
    await stream.write(ClientFrame(hello=hello or Hello(protocol_versions=["1.0"])))
    reader = Reader(stream)
    first = await reader.next()
    assert first.WhichOneof("frame") == "welcome", first
    return stream, first.welcome, reader


async def echoed(stream: Any, reader: Reader, call_id: int, text: str) -> str:
    """Start ``text`` as SendMessage call ``call_id`` on a raw session; the text it answers with."""
    await stream.write(ClientFrame(call=Call(call_id=call_id, send_message=A2AClient.text_request(text))))
    while (frame := await reader.next()).WhichOneof("frame") != "event":
        pass
    return str(frame.event.send_message_response.task.artifacts[0].parts[0].text)


def resume_hello(welcome: Welcome, received: int, token: str | None = None) -> Hello:
    return Hello(
        protocol_versions=["1.0"],
        resume=Resume(
            session_id=welcome.session_id, resume_token=token or welcome.resume_token, received=received
        ),
    )


def chunks_of(frames: list[Any]) -> list[str]:
    texts = []
    for frame in frames:
        if frame.WhichOneof("frame") == "event" and frame.event.stream_response.HasField("artifact_update"):
            texts += [p.text for p in frame.event.stream_response.artifact_update.artifact.parts]
    return texts


@ASYNC
async def test_a_resumed_session_sends_exactly_what_was_missed_then_carries_on() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream, welcome, reader = await opened(channel)
        await stream.write(
            ClientFrame(call=Call(call_id=1, send_streaming_message=A2AClient.text_request("stream 200")))
        )
        seen: list[Any] = []
        while len(chunks_of(seen)) < 50:
            seen.append(await reader.next())
        stream.cancel()  # the connection drops mid-stream
        await asyncio.sleep(0.1)
        assert welcome.session_id in server.sessions.sessions  # detached, waiting
        again, resumed, reader2 = await opened(channel, resume_hello(welcome, reader.received))
        assert resumed.resumed
        assert resumed.session_id == welcome.session_id
        assert resumed.received == 1  # the server had the one Call
        while True:
            frame = await reader2.next()
            seen.append(frame)
            if frame.WhichOneof("frame") == "end":
                break
        assert status_in(seen[-1].end).code == 0
        assert chunks_of(seen) == [f"chunk {i}" for i in range(200)]  # no gap, no duplicate
        seqs = [f.event.seq for f in seen if f.WhichOneof("frame") == "event"]
        assert seqs == sorted(set(seqs))
        assert await echoed(again, reader2, 2, "echo after") == "echo after"
        again.cancel()


@ASYNC
async def test_frames_the_server_had_not_received_are_counted_and_resent_once() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream, welcome, reader = await opened(channel)
        await stream.write(ClientFrame(call=Call(call_id=1, send_message=A2AClient.text_request("echo one"))))
        while (await reader.next()).WhichOneof("frame") != "event":
            pass
        stream.cancel()
        await asyncio.sleep(0.1)
        again, resumed, reader2 = await opened(channel, resume_hello(welcome, reader.received))
        assert resumed.received == 1
        # The client resends what came after received=1 (here: a new call), exactly once.
        await again.write(ClientFrame(call=Call(call_id=2, send_message=A2AClient.text_request("echo two"))))
        while (frame := await reader2.next()).WhichOneof("frame") != "event":
            pass
        assert frame.event.call_id == 2
        again.cancel()


async def refused(channel: grpc.aio.Channel, hello: Hello) -> errors.A2AError:
    stream = raw(channel)()
    await stream.write(ClientFrame(hello=hello))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(read_all(stream), WAIT)
    return from_rpc_error(ended.value)


async def read_all(stream: Any) -> None:
    while await stream.read() is not grpc.aio.EOF:
        pass


@ASYNC
async def test_resume_refusals_are_typed_and_leave_the_session_as_it_was() -> None:
    settings = SessionSettings(resume_grace=0.5, max_detached=5.0)
    async with serving(session=settings) as server, grpc.aio.insecure_channel(server.address) as channel:
        stream, welcome, reader = await opened(channel)
        await stream.write(ClientFrame(call=Call(call_id=1, send_message=A2AClient.text_request("echo x"))))
        while (await reader.next()).WhichOneof("frame") != "event":
            pass
        stream.cancel()
        await asyncio.sleep(0.1)
        unknown = Hello(protocol_versions=["1.0"], resume=Resume(session_id="f" * 32, resume_token="t"))
        assert isinstance(await refused(channel, unknown), errors.SessionUnknownError)
        wrong = await refused(channel, resume_hello(welcome, reader.received, token="0" * 48))
        assert isinstance(wrong, errors.SessionTokenError)
        beyond = await refused(channel, resume_hello(welcome, reader.received + 5))
        assert isinstance(beyond, errors.SessionPositionNotRetainedError)
        assert "retains positions" in beyond.message
        # None of that harmed it: the right Hello resumes it.
        again, resumed, _ = await opened(channel, resume_hello(welcome, reader.received))
        assert resumed.resumed
        again.cancel()
        # Past resume_grace with no call running, it ends (waited for, bounded: a loaded machine
        # may take longer than the grace to notice the drop).
        async with asyncio.timeout(WAIT):
            while welcome.session_id in server.sessions.sessions:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.05)
        expired = await refused(channel, resume_hello(welcome, reader.received))
        assert isinstance(expired, errors.SessionExpiredError)


@ASYNC
async def test_another_principal_cannot_resume_a_session_with_its_token() -> None:
    from tests.test_auth import KEYS, authentication

    async with (
        serving(authentication=authentication()) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        alice = Hello(protocol_versions=["1.0"], metadata={"x-api-key": KEYS["alice"]})
        stream, welcome, _ = await opened(channel, alice)
        stream.cancel()
        await asyncio.sleep(0.1)
        as_bob = resume_hello(welcome, 0)
        as_bob.metadata["x-api-key"] = KEYS["bob"]
        error = await refused(channel, as_bob)
        assert isinstance(error, errors.SessionTokenError)
        assert "another principal" in error.message
        as_alice = resume_hello(welcome, 0)
        as_alice.metadata["x-api-key"] = KEYS["alice"]
        again, resumed, _ = await opened(channel, as_alice)
        assert resumed.resumed
        again.cancel()


@ASYNC
async def test_acknowledged_frames_are_forgotten_and_cannot_be_asked_for_again() -> None:
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream, welcome, reader = await opened(channel)
        await stream.write(
            ClientFrame(call=Call(call_id=1, send_streaming_message=A2AClient.text_request("stream 20")))
        )
        while (await reader.next()).WhichOneof("frame") != "end":
            pass
        session = server.sessions.sessions[welcome.session_id]
        assert len(session.replay) == reader.received  # nothing acknowledged yet: all kept
        await stream.write(ClientFrame(heartbeat=Heartbeat(count=1, received=reader.received)))
        for _ in range(100):
            if not len(session.replay):
                break
            await asyncio.sleep(0.01)
        assert len(session.replay) == 0
        stream.cancel()
        await asyncio.sleep(0.1)
        error = await refused(channel, resume_hello(welcome, 3))  # older than what was acknowledged
        assert isinstance(error, errors.SessionPositionNotRetainedError)


# --- the client resumes by itself: a proxy that cuts connections ---------------------------------------


@contextlib.asynccontextmanager
async def through_a_proxy(
    agent: Any = None,
    *,
    session: SessionSettings | None = None,
    cut_after_bytes: list[int] | None = None,
    max_message_bytes: int | None = None,
) -> AsyncIterator[tuple[A2AClient, Any, CuttingProxy]]:
    """A server (``agent``: the reference agent by default), a cutting proxy before it, and a
    client's session through the proxy."""
    extra = {} if max_message_bytes is None else {"max_message_bytes": max_message_bytes}
    async with (
        serving(agent, session=session) as server,
        CuttingProxy(server.port, cut_after_bytes=cut_after_bytes) as proxy,
        A2AClient(f"127.0.0.1:{proxy.port}", timeout=WAIT, **extra) as client,
        client.session(resume_timeout=WAIT) as opened,
    ):
        yield client, opened, proxy


async def stream_through_cuts(text: str, cut_at: list[int], expected: int) -> tuple[list[Any], Any]:
    """Stream ``text`` over a session through a proxy, cutting it when that many artifact events
    have arrived; return the events and the session."""
    async with through_a_proxy() as (_, session, proxy):
        events: list[Any] = []
        chunks = 0
        async for event in session.send_streaming_message(A2AClient.text_request(text), timeout=WAIT * 3):
            events.append(event)
            if event.HasField("artifact_update"):
                chunks += 1
                if cut_at and chunks == cut_at[0]:
                    cut_at.pop(0)
                    proxy.cut()
        assert session.resumes == proxy.cuts
        assert session.alive
        after = await session.send_message(A2AClient.text_request("echo after the cuts"))
        assert after.task.artifacts[0].parts[0].text == "echo after the cuts"
        return events, session


@ASYNC
@pytest.mark.parametrize("cuts", [[300], [200, 400, 600]], ids=["one-cut", "three-cuts-in-a-row"])
async def test_a_cut_mid_stream_is_resumed_with_every_event_once_and_in_order(cuts: list[int]) -> None:
    events, session = await stream_through_cuts("stream 1000", list(cuts), 1000)
    chunks = [
        p.text for e in events if e.HasField("artifact_update") for p in e.artifact_update.artifact.parts
    ]
    assert chunks == [f"chunk {i}" for i in range(1000)]  # by content: no gap, no duplicate
    assert events[-1].status_update.status.state == 3  # TASK_STATE_COMPLETED, the last event
    assert session.resumes == len(cuts)


@ASYNC
async def test_frames_lost_in_flight_are_sent_again_by_the_server(caplog: pytest.LogCaptureFixture) -> None:
    """The proxy drops the bytes in flight when it cuts (twice, mid-stream): the server sends the
    frames the client never got again, and the stream is still exactly the agent's."""
    caplog.set_level("INFO", logger="a2a_grpc.session")
    async with through_a_proxy(cut_after_bytes=[30_000, 60_000]) as (_, session, proxy):
        events = [
            e
            async for e in session.send_streaming_message(
                A2AClient.text_request("stream 1000"), timeout=WAIT * 3
            )
        ]
        assert proxy.cuts == 2
        assert session.resumes == 2
    chunks = [
        p.text for e in events if e.HasField("artifact_update") for p in e.artifact_update.artifact.parts
    ]
    assert chunks == [f"chunk {i}" for i in range(1000)]
    resent = [
        int(r.getMessage().split("(")[-1].split(" ")[0])
        for r in caplog.records
        if "sent again)" in r.getMessage() and "resumed by" in r.getMessage()
    ]
    assert len(resent) == 2
    assert sum(resent) > 0  # frames the server had sent and the client never got, sent again


class Blob(Agent):
    """Streams one artifact of BLOB_BYTES in 1 MiB pieces, each piece's bytes naming its index."""

    def __init__(self) -> None:
        self.card = reference_card()

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.working()
        pieces = BLOB_BYTES // PIECE
        artifact_id = None
        for i in range(pieces):
            artifact_id = await updater.artifact(
                [types.Part(raw=piece(i))],
                artifact_id=artifact_id,
                name="blob",
                append=i > 0,
                last_chunk=i == pieces - 1,
            )
        await updater.complete()


PIECE = 1 << 20
BLOB_BYTES = 256 * PIECE


def piece(i: int) -> bytes:
    return i.to_bytes(4, "big") * (PIECE // 4)


@ASYNC
@pytest.mark.timeout(120)
async def test_a_256_mib_artifact_cut_twice_arrives_byte_exact() -> None:
    expected = hashlib.sha256()
    for i in range(BLOB_BYTES // PIECE):
        expected.update(piece(i))
    got = hashlib.sha256()
    received = 0
    cuts = [60 << 20, 170 << 20]
    async with through_a_proxy(Blob(), cut_after_bytes=cuts, max_message_bytes=64 << 20) as (
        _client,
        session,
        proxy,
    ):
        async for event in session.send_streaming_message(A2AClient.text_request("blob"), timeout=120):
            if event.HasField("artifact_update"):
                for part in event.artifact_update.artifact.parts:
                    got.update(part.raw)
                    received += len(part.raw)
        assert (proxy.cuts, session.resumes) == (2, 2)
    assert received == BLOB_BYTES
    assert got.hexdigest() == expected.hexdigest()  # every byte, once, in order


@ASYNC
@pytest.mark.parametrize("text", ["slow 3", "stream 2000"], ids=["task-still-running", "task-already-over"])
async def test_a_session_that_cannot_be_resumed_falls_back_to_the_task_and_loses_no_terminal_state(
    text: str,
) -> None:
    """The network is out longer than the server keeps the session: the resume is refused
    (expired), and the call goes on as SubscribeToTask (or GetTask, for a task already over) on
    the unary binding: its last event is the task's terminal state."""
    settings = SessionSettings(resume_grace=0.3, max_detached=0.6)
    async with through_a_proxy(session=settings) as (client, session, proxy):
        events: list[Any] = []
        async for event in session.send_streaming_message(A2AClient.text_request(text), timeout=WAIT * 2):
            events.append(event)
            if len(events) == 2:
                proxy.down = True
                proxy.cut()
                await asyncio.sleep(1.5)  # past max_detached: the server ends the session
                proxy.down = False
        assert not session.alive  # the session is gone ...
        last = events[-1]
        final = last.task.status if last.HasField("task") else last.status_update.status
        assert final.state == types.TASK_STATE_COMPLETED  # ... its call's task's end is not
        task_id = events[0].task.id
        if text.startswith("stream"):  # over before the fallback read it: GetTask's snapshot
            texts = [p.text for a in last.task.artifacts for p in a.parts]
            assert texts == [f"chunk {i}" for i in range(2000)]
        with pytest.raises(errors.SessionExpiredError):  # a new call on the dead session: its typed error
            await session.get_task(task_id)
        assert (await client.get_task(task_id)).status.state == types.TASK_STATE_COMPLETED


def _forget_the_session(session: Any) -> None:
    session.welcome.session_id = "f" * 32  # as after the server's restart: it knows no such session


def _lose_the_token(session: Any) -> None:
    session.welcome.resume_token = "0" * 48


def _claim_too_much(session: Any) -> None:
    session._received += 10_000  # a position the server never reached


@ASYNC
@pytest.mark.parametrize(
    ("spoil", "refusal"),
    [
        (_forget_the_session, errors.SessionUnknownError),
        (_lose_the_token, errors.SessionTokenError),
        (_claim_too_much, errors.SessionPositionNotRetainedError),
    ],
    ids=["unknown-session", "wrong-token", "position-not-retained"],
)
async def test_every_refused_resume_still_yields_the_tasks_final_state(spoil: Any, refusal: type) -> None:
    """Each other refusal of a resume (the expired one is above) is its own typed error, and the
    call's task still ends in front of the caller, read on the unary binding."""
    async with through_a_proxy() as (_, session, proxy):
        events: list[Any] = []
        async for event in session.send_streaming_message(A2AClient.text_request("slow 1.5"), timeout=WAIT):
            events.append(event)
            if len(events) == 2:
                spoil(session)
                proxy.cut()
        assert not session.alive
        with pytest.raises(refusal):  # the session's end says why
            await session.get_task(events[0].task.id)
        last = events[-1]
        final = last.task.status if last.HasField("task") else last.status_update.status
        assert final.state == types.TASK_STATE_COMPLETED


# --- credentials and tasks have their own lifetimes ----------------------------------------------------


@ASYNC
async def test_a_task_outlives_the_sessions_token_and_the_client_refreshes_it_on_the_live_session() -> None:
    import time

    from tests.test_auth import authentication, token

    def fresh(seconds: float, subject: str = "dave") -> dict[str, str]:
        return {"authorization": f"Bearer {token(sub=subject, exp=int(time.time() + seconds))}"}

    async with (
        serving(authentication=authentication(leeway_seconds=0)) as server,
        A2AClient(server.address, timeout=WAIT) as client,
        client.session(metadata=fresh(2)) as session,
    ):
        long = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 3.5")))
        await asyncio.sleep(3.0)  # the Hello's token has expired meanwhile
        with pytest.raises(errors.UnauthenticatedError, match="claim exp"):
            await session.get_task("any")  # a new call with the expired token
        reply = await long  # the task started with a valid token: it does not fail
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
        with pytest.raises(errors.PermissionDeniedError, match="another principal"):
            await session.refresh(fresh(60, subject="mallory"))
        with pytest.raises(errors.UnauthenticatedError):
            await session.refresh({"authorization": "Bearer not-a-token"})
        await session.refresh(fresh(60))  # the same principal, a new token
        assert (await session.get_task(reply.task.id)).id == reply.task.id
        assert session.alive


@ASYNC
async def test_a_session_the_client_closes_leaves_its_tasks_running() -> None:
    async with serving() as server, A2AClient(server.address, timeout=WAIT) as client:
        async with client.session() as session:
            first = await session.send_message(A2AClient.text_request("slow 1", return_immediately=True))
        assert first.task.status.state == types.TASK_STATE_WORKING
        for _ in range(100):
            task = await client.get_task(first.task.id)
            if task.status.state == types.TASK_STATE_COMPLETED:
                break
            await asyncio.sleep(0.05)
        assert task.status.state == types.TASK_STATE_COMPLETED  # the session's end was not the task's


# --- hostile peers --------------------------------------------------------------------------------------


@ASYNC
async def test_a_client_that_acknowledges_frames_never_sent_loses_its_session_and_the_server_serves_on() -> (
    None
):
    async with serving() as server, grpc.aio.insecure_channel(server.address) as channel:
        stream, _, _ = await opened(channel)
        await stream.write(ClientFrame(heartbeat=Heartbeat(count=1, received=10**12)))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_all(stream)
        error = from_rpc_error(ended.value)
        assert isinstance(error, errors.InvalidRequestError)
        assert "acknowledges" in error.message
        # A Refresh under call id 0 is refused as that call, and the session goes on.
        again, _, reader2 = await opened(channel)
        await again.write(ClientFrame(refresh=Refresh(call_id=0, metadata={"authorization": "Bearer x"})))
        while (frame := await reader2.next()).WhichOneof("frame") != "end":
            pass
        assert "call_id 0" in status_in(frame.end).message
        assert await echoed(again, reader2, 1, "echo alive") == "echo alive"
        again.cancel()
        # A resume of a session never opened, under a huge id: refused, the id not echoed whole.
        unknown = Hello(protocol_versions=["1.0"], resume=Resume(session_id="x" * 10_000))
        error = await refused(channel, unknown)
        assert isinstance(error, errors.SessionUnknownError)
        assert len(error.message) < 200  # the id is not echoed whole


@ASYNC
async def test_a_server_that_acknowledges_frames_never_sent_ends_the_session_with_a_typed_error() -> None:
    async def lying(requests: Any, context: Any) -> None:
        await anext(aiter(requests))
        welcome = Welcome(session_id="s", resume_token="t", protocol_version="1.0", missed_heartbeats=3)
        welcome.max_frame_bytes = 1 << 20
        welcome.heartbeat_interval.FromSeconds(10)
        await context.write(ServerFrame(welcome=welcome))
        await asyncio.sleep(0.2)
        await context.write(ServerFrame(heartbeat=Heartbeat(count=1, received=999)))
        await asyncio.sleep(WAIT)

    async with (
        fake_session_server(lying) as address,
        A2AClient(address, timeout=WAIT) as client,
        client.session() as session,
    ):
        with pytest.raises(errors.InvalidAgentResponseError, match="wrong about the session"):
            await session.get_task("t1")
        assert not session.alive


def test_the_replay_forgets_only_what_the_peer_acknowledged() -> None:
    from a2a_grpc.session.replay import Replay

    replay = Replay()
    for i in range(1, 6):
        replay.add(f"frame {i}".encode())
    assert replay.after(2) == [b"frame 3", b"frame 4", b"frame 5"]  # the peer had 1 and 2
    assert (replay.acked, len(replay)) == (2, 3)
    assert replay.since(4) == [b"frame 5"]  # sent again on a new connection: still kept
    assert (replay.acked, len(replay)) == (2, 3)
    replay.ack(1)  # an older acknowledgement, overtaken: changes nothing
    assert replay.acked == 2
    with pytest.raises(errors.InvalidRequestError, match="acknowledges 9 frames; 5 were sent"):
        replay.ack(9)
    with pytest.raises(errors.SessionPositionNotRetainedError):
        replay.after(1)  # before what was acknowledged: gone
    replay.ack(5)
    assert (len(replay), replay.bytes) == (0, 0)
