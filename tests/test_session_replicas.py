"""Sessions resume on any replica: two real servers share one Redis (the session directory), a
small TCP forwarder in front of them plays the load balancer, and a session cut from one replica
resumes through the other, which forwards it to the session's home (a2a_grpc.session.forward).
Refusals are typed and prompt: a home that stopped, died or cannot be reached; a forged token or
another principal's credentials (refused at the edge, the home never contacted); an unreadable
directory entry; Redis gone.

In-process A2AServer instances, not `a2a-grpc serve` processes: the CLI's `--store` does not
choose a Redis-backed store yet, so a process could not be given the shared directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
import redis.asyncio

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.redisconn import parse_redis_url
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.limits import Limits
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.session.directory import (
    DirectoryEntryError,
    DirectoryUnavailableError,
    Home,
    MemorySessionDirectory,
    RedisSessionDirectory,
    SessionDirectory,
    SessionEntry,
    decode,
    digest,
    encode,
)
from a2a_grpc.session.forward import FORWARDED_BY
from a2a_grpc.session.frames import ClientFrame, Hello
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.status import from_rpc_error
from a2a_grpc.tasks import InMemoryTaskStore
from tests.redisserver import start_redis
from tests.test_session import raw
from tests.test_session_resume import opened, read_all, refused, resume_hello

ASYNC = pytest.mark.asyncio
WAIT = 20.0


class Switch:
    """A TCP forwarder on 127.0.0.1 (the load balancer): each new connection goes to the port
    ``target`` names now; :meth:`cut` drops every connection (RST). Counts what it accepted."""

    def __init__(self, target: int = 0) -> None:
        self.target = target
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Switch:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pump(source, sink, pair))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, pair: set[asyncio.StreamWriter]
    ) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for side in pair:
                side.transport.abort()
                self._writers.discard(side)

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()


def redis_directory(url: str) -> RedisSessionDirectory:
    return RedisSessionDirectory(parse_redis_url(url), timeout=2.0)


@contextlib.asynccontextmanager
async def replica(
    directory: SessionDirectory, *, advertise: str | None = None, **settings: Any
) -> AsyncIterator[A2AServer]:
    chosen = ServerSettings(
        grace_seconds=0.5,
        advertise_address=advertise,
        session=settings.pop("session", SessionSettings(resume_grace=10.0)),
        **settings,
    )
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), chosen, session_directory=directory)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0.5)


@contextlib.asynccontextmanager
async def two_replicas(
    url: str | None = None, directory: SessionDirectory | None = None, **settings: Any
) -> AsyncIterator[tuple[A2AServer, A2AServer, Switch]]:
    """Replica A (reached by the others through a counting forwarder: ``front.accepted`` counts the
    connections made to A by other replicas) and replica B, sharing one directory: Redis at ``url``,
    else ``directory`` (default: one of this process)."""
    shared = (directory or MemorySessionDirectory()) if url is None else None
    async with (
        Switch() as front,
        replica(shared or redis_directory(url or ""), advertise=f"127.0.0.1:{front.port}", **settings) as a,
        replica(shared or redis_directory(url or ""), **settings) as b,
    ):
        front.target = a.port
        yield a, b, front


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds (bounded: WAIT seconds)."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110 - the state polled has no event to wait on
            await asyncio.sleep(0.01)


def chunks(events: list[types.StreamResponse]) -> list[str]:
    return [p.text for e in events if e.HasField("artifact_update") for p in e.artifact_update.artifact.parts]


async def detached_on(server: A2AServer, hello: Hello | None = None) -> tuple[Any, int]:
    """A session opened on ``server`` directly, whose connection then drops: (welcome, received)."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        stream, welcome, reader = await opened(channel, hello)
        stream.cancel()
    held = server.sessions
    assert held is not None
    # The Welcome may arrive before its server has recorded the session: wait for it, detached.
    await until(lambda: (s := held.sessions.get(welcome.session_id)) is not None and not s.attached)
    return welcome, reader.received


async def resumed_on(server: A2AServer, hello: Hello) -> errors.A2AError:
    """The typed refusal ``server`` answers the resume ``hello`` with, promptly (bounded wait)."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        async with asyncio.timeout(WAIT):
            return await refused(channel, hello)


# --- the must-show: cut from A, resumed through B, every event once -------------------------------


@ASYNC
@pytest.mark.parametrize("backend", ["redis", "redis-cluster", "memory"])
async def test_a_session_cut_from_one_replica_resumes_on_the_other_with_every_event_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster"}.get(backend)
    url = request.getfixturevalue(fixture) if fixture is not None else None
    async with (
        two_replicas(url) as (a, b, front),
        Switch(a.port) as balancer,
        A2AClient(f"127.0.0.1:{balancer.port}", timeout=WAIT) as client,
        client.session(resume_timeout=WAIT) as session,
    ):
        assert session.session_id in a.sessions.sessions  # type: ignore[union-attr]
        unary = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 3")))
        events: list[types.StreamResponse] = []
        cut = False
        async for event in session.send_streaming_message(
            A2AClient.text_request("stream 1500"), timeout=WAIT * 3
        ):
            events.append(event)
            if not cut and len(chunks(events)) == 300:
                cut = True
                assert not unary.done()  # the unary call is in flight across the cut
                balancer.target = b.port  # the load balancer now sends new connections to B
                balancer.cut()
        assert chunks(events) == [f"chunk {i}" for i in range(1500)]  # no gap, no duplicate, in order
        assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED
        reply = await asyncio.wait_for(unary, WAIT)
        assert reply.task.status.state == types.TASK_STATE_COMPLETED  # the call in flight, once
        assert session.resumes == 1
        assert front.accepted >= 1  # B reached A (the home) to serve the resume
        assert b.sessions is not None
        assert b.sessions.forwarder is not None
        assert len(b.sessions.forwarder.forwarded) == 1
        assert session.session_id not in b.sessions.sessions  # it still lives on A
        after = await session.send_message(A2AClient.text_request("echo through B"))
        assert after.task.artifacts[0].parts[0].text == "echo through B"


@ASYNC
async def test_a_session_forwarded_twice_in_a_row_still_loses_nothing(redis_url: str) -> None:
    """Cut again while forwarded: the client resumes through B again (a new forward), then on A
    itself; the home's replay keeps the stream exact across all three connections."""
    async with (
        two_replicas(redis_url) as (a, b, _),
        Switch(a.port) as balancer,
        A2AClient(f"127.0.0.1:{balancer.port}", timeout=WAIT) as client,
        client.session(resume_timeout=WAIT) as session,
    ):
        events: list[types.StreamResponse] = []
        targets = {200: b.port, 500: b.port, 800: a.port}
        async for event in session.send_streaming_message(
            A2AClient.text_request("stream 1200"), timeout=WAIT * 3
        ):
            events.append(event)
            target = targets.pop(len(chunks(events)), None) if event.HasField("artifact_update") else None
            if target is not None:
                balancer.target = target
                balancer.cut()
        assert chunks(events) == [f"chunk {i}" for i in range(1200)]
        assert session.resumes == 3
        # Its last connection is A's own: the client's leaving B ended B's upstream call too.
        await until(lambda: not b.sessions.forwarder.forwarded)  # type: ignore[union-attr]
        assert a.sessions is not None
        assert a.sessions.sessions[session.session_id].attached


@ASYNC
async def test_the_home_ending_a_forwarded_session_ends_it_at_the_client_and_at_the_forwarder(
    redis_url: str,
) -> None:
    async with (
        two_replicas(redis_url) as (a, b, _),
        Switch(a.port) as balancer,
        A2AClient(f"127.0.0.1:{balancer.port}", timeout=WAIT) as client,
        client.session(resume_timeout=WAIT) as session,
    ):
        await session.send_message(A2AClient.text_request("echo on A"))
        balancer.target = b.port
        balancer.cut()
        reply = await session.send_message(A2AClient.text_request("echo through B"))
        assert reply.task.artifacts[0].parts[0].text == "echo through B"
        assert b.sessions is not None
        assert b.sessions.forwarder is not None
        assert len(b.sessions.forwarder.forwarded) == 1
        await a.stop(0.5)  # the home drains: it tells the session to go away, then ends it
        await until(lambda: not session.alive)
        assert session.going_away
        await until(lambda: not b.sessions.forwarder.forwarded)  # type: ignore[union-attr]
        with pytest.raises(errors.UnavailableError):  # ServerDrainingError: try elsewhere
            await session.send_message(A2AClient.text_request("echo after"))


# --- a home that is gone: a typed error, promptly ----------------------------------------------------


@ASYNC
async def test_resuming_on_b_a_session_whose_home_stopped_is_expired(redis_url: str) -> None:
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        await a.stop(0.5)  # its sessions end; the directory hears it
        error = await resumed_on(b, resume_hello(welcome, received))
        assert isinstance(error, errors.SessionExpiredError), error
        assert front.accepted == 0


@ASYNC
async def test_resuming_on_b_a_session_whose_home_died_is_expired(redis_url: str) -> None:
    """A died without a word: its liveness lapsed (removed here, as the lease would), its entry is
    still there."""
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        assert a.sessions is not None
        assert a.sessions.forwarder is not None
        owner = a.sessions.forwarder.home.owner
        async with redis.asyncio.Redis.from_url(redis_url) as r:
            assert await r.delete(f"a2a:replica:{{{owner}}}") == 1
        error = await resumed_on(b, resume_hello(welcome, received))
        assert isinstance(error, errors.SessionExpiredError), error
        assert "gone" in error.message
        assert front.accepted == 0


@ASYNC
async def test_resuming_on_b_a_session_whose_home_cannot_be_reached_is_expired(redis_url: str) -> None:
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        await front.__aexit__(None, None, None)  # A's address refuses connections now
        error = await resumed_on(b, resume_hello(welcome, received))
        assert isinstance(error, errors.SessionExpiredError), error
        assert "cannot be reached" in error.message


# --- refused at the edge: the home is never contacted ------------------------------------------------


@ASYNC
async def test_a_forged_resume_token_is_refused_by_b_without_contacting_a(redis_url: str) -> None:
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        error = await resumed_on(b, resume_hello(welcome, received, token="0" * 48))
        assert isinstance(error, errors.SessionTokenError), error
        unknown = Hello(protocol_versions=["1.0"])
        unknown.resume.session_id, unknown.resume.resume_token = "f" * 32, "t"
        assert isinstance(await resumed_on(b, unknown), errors.SessionUnknownError)
        assert front.accepted == 0  # nothing reached A
        # The session was not harmed: its true token resumes it through B.
        async with grpc.aio.insecure_channel(b.address) as channel:
            stream, resumed, _ = await opened(channel, resume_hello(welcome, received))
            assert resumed.resumed
            assert resumed.session_id == welcome.session_id
            stream.cancel()
        assert front.accepted == 1


@ASYNC
async def test_another_principal_with_a_valid_session_id_and_token_is_refused_by_b(redis_url: str) -> None:
    from tests.test_auth import KEYS, authentication

    async with two_replicas(redis_url, authentication=authentication()) as (a, b, front):
        alice = Hello(protocol_versions=["1.0"], metadata={"x-api-key": KEYS["alice"]})
        welcome, received = await detached_on(a, alice)
        as_bob = resume_hello(welcome, received)
        as_bob.metadata["x-api-key"] = KEYS["bob"]
        error = await resumed_on(b, as_bob)
        assert isinstance(error, errors.SessionTokenError), error
        assert "another principal" in error.message
        nobody = resume_hello(welcome, received)  # no credentials at all
        assert isinstance(await resumed_on(b, nobody), errors.UnauthenticatedError)
        assert front.accepted == 0
        as_alice = resume_hello(welcome, received)
        as_alice.metadata["x-api-key"] = KEYS["alice"]
        async with grpc.aio.insecure_channel(b.address) as channel:
            stream, resumed, _ = await opened(channel, as_alice)  # the home checks her again, and agrees
            assert resumed.resumed
            stream.cancel()


@ASYNC
async def test_a_forwarded_session_counts_against_the_forwarders_session_limit(redis_url: str) -> None:
    async with two_replicas(redis_url, limits=Limits(max_sessions_per_principal=1)) as (a, b, front):
        welcome, received = await detached_on(a)
        async with grpc.aio.insecure_channel(b.address) as channel:
            own, _, _ = await opened(channel)  # B's one session for this principal
            error = await refused(channel, resume_hello(welcome, received))
            assert isinstance(error, errors.RateLimitedError), error
            assert error.limit == "max_sessions_per_principal"
            own.cancel()
        assert front.accepted == 0


# --- what the directory holds, and what happens when it cannot be read -------------------------------


FIELDS = {"v": 1, "owner": "x", "address": "h:1", "token": "0" * 64, "principal": "0" * 64}
GARBAGE = [
    b"\xff\xfe not json \x00",
    b"[]",
    b'{"v": 1}',
    b'{"v": 2, "owner": "x", "address": "h:1"}',
    json.dumps(
        {"v": 1, "owner": "x", "address": "no port", "token": "0" * 64, "principal": "0" * 64}
    ).encode(),
    json.dumps({"v": 1, "owner": "x", "address": "h:1", "token": "zz", "principal": "0" * 64}).encode(),
    json.dumps({"v": 1, "owner": 7, "address": "h:1", "token": "0" * 64, "principal": "0" * 64}).encode(),
    b"{" * 100_000,
]


@pytest.mark.parametrize("data", GARBAGE, ids=[f"garbage-{i}" for i in range(len(GARBAGE))])
def test_an_entry_that_is_not_ours_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(DirectoryEntryError):
        decode(data)


def test_an_entry_keeps_digests_never_the_token_nor_the_principal() -> None:
    entry = SessionEntry(Home("owner1", "10.0.0.7:50051"), digest("the-token"), digest("alice|"))
    data = encode(entry)
    assert b"the-token" not in data
    assert b"alice" not in data
    back = decode(data)
    assert back == entry
    assert back.token_matches("the-token")
    assert not back.token_matches("the-token ")
    assert back.principal_matches("alice|")


@ASYNC
@pytest.mark.parametrize("data", [GARBAGE[0], GARBAGE[4], b"x" * 1_000_000], ids=["bytes", "fields", "huge"])
async def test_a_garbage_directory_entry_is_a_typed_error_and_the_server_serves_on(
    redis_url: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        async with redis.asyncio.Redis.from_url(redis_url) as r:
            await r.set(f"a2a:session:{{{welcome.session_id}}}", data)
        error = await resumed_on(b, resume_hello(welcome, received))
        assert isinstance(error, errors.SessionUnknownError), error
        assert "unreadable" in error.message
        assert any("unreadable" in r.getMessage() for r in caplog.records)
        assert front.accepted == 0
        async with grpc.aio.insecure_channel(b.address) as channel:  # B serves on
            stream, fresh, _ = await opened(channel)
            assert fresh.session_id
            stream.cancel()


@ASYNC
async def test_redis_gone_during_a_resume_is_a_typed_error_and_the_replicas_serve_on(tmp_path: Path) -> None:
    own = start_redis(tmp_path / "redis")
    try:
        async with two_replicas(own.url) as (a, b, front):
            welcome, received = await detached_on(a)
            own.stop()  # Redis goes away
            error = await resumed_on(b, resume_hello(welcome, received))
            assert isinstance(error, errors.UnavailableError), error
            assert "session directory" in error.message
            assert front.accepted == 0
            async with grpc.aio.insecure_channel(b.address) as channel:  # sessions still open (at home only)
                stream, fresh, _ = await opened(channel)
                assert fresh.session_id
                stream.cancel()
            async with grpc.aio.insecure_channel(a.address) as channel:  # and A resumes its own
                stream, resumed, _ = await opened(channel, resume_hello(welcome, received))
                assert resumed.resumed
                stream.cancel()
    finally:
        own.stop()


class Flaky(MemorySessionDirectory):
    """A directory that stops answering while ``down``."""

    down = False

    async def _bounded(self, work: Any) -> Any:
        if self.down:
            work.close()
            raise DirectoryUnavailableError("down (a test)")
        return await super()._bounded(work)


@ASYNC
async def test_sessions_opened_while_the_directory_is_away_resume_anywhere_once_it_is_back() -> None:
    directory = Flaky()
    async with two_replicas(directory=directory, session=SessionSettings(home_refresh_seconds=0.2)) as (
        a,
        b,
        front,
    ):
        directory.down = True
        welcome, received = await detached_on(a)  # its handshake did not wait for the directory
        error = await resumed_on(b, resume_hello(welcome, received))
        assert isinstance(error, errors.UnavailableError), error
        directory.down = False  # back: the renewal writes the entry it kept
        forwarder = a.sessions.forwarder  # type: ignore[union-attr]
        assert forwarder is not None
        await until(lambda: not forwarder._unwritten)
        async with grpc.aio.insecure_channel(b.address) as channel:
            stream, resumed, _ = await opened(channel, resume_hello(welcome, received))
            assert resumed.resumed
            stream.cancel()
        assert front.accepted == 1


@ASYNC
async def test_a_server_takes_its_directory_from_a_store_with_a_redis_target(redis_url: str) -> None:
    class RedisBacked(InMemoryTaskStore):
        target = parse_redis_url(redis_url + "?prefix=agent7")

    server = A2AServer(ReferenceAgent(), RedisBacked(), ServerSettings(grace_seconds=0.5))
    await server.start()
    try:
        assert server.sessions is not None
        assert server.sessions.forwarder is not None
        directory = server.sessions.forwarder.directory
        assert isinstance(directory, RedisSessionDirectory)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream, welcome, _ = await opened(channel)
            entry = await directory.find(welcome.session_id)
            assert entry is not None
            assert entry.home.address == server.address
            assert entry.token_matches(welcome.resume_token)
            stream.cancel()
        async with redis.asyncio.Redis.from_url(redis_url) as r:
            assert await r.exists(f"agent7:session:{{{welcome.session_id}}}")
    finally:
        await server.stop(0.5)
    async with redis.asyncio.Redis.from_url(redis_url) as r:  # it stopped: no liveness left
        assert not await r.keys("agent7:replica:*")
        assert 0 < await r.pttl(f"agent7:session:{{{welcome.session_id}}}") <= 30_000  # lapses with the lease


# --- a draining forwarder -----------------------------------------------------------------------------


@ASYNC
async def test_a_draining_forwarder_tells_its_forwarded_sessions_to_go_away(redis_url: str) -> None:
    async with (
        two_replicas(redis_url) as (a, b, _),
        Switch(a.port) as balancer,
        A2AClient(f"127.0.0.1:{balancer.port}", timeout=WAIT) as client,
        client.session(resume_timeout=WAIT) as session,
    ):
        await session.send_message(A2AClient.text_request("echo on A"))
        balancer.target = b.port
        balancer.cut()
        running = asyncio.ensure_future(session.send_message(A2AClient.text_request("slow 1")))
        assert b.sessions is not None
        assert b.sessions.forwarder is not None
        await until(lambda: bool(b.sessions.forwarder.forwarded))  # type: ignore[union-attr]
        b.sessions.go_away(1.0)
        await until(lambda: session.going_away)
        reply = await asyncio.wait_for(running, WAIT)  # its running call goes on
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
        with pytest.raises(errors.ServerDrainingError):
            await session.send_message(A2AClient.text_request("echo refused"))
        async with grpc.aio.insecure_channel(b.address) as channel:  # nor does it forward new resumes
            welcome, received = await detached_on(a)
            error = await refused(channel, resume_hello(welcome, received))
            assert isinstance(error, errors.ServerDrainingError), error


# --- hostile clients through the forwarder -----------------------------------------------------------


@ASYNC
async def test_a_resume_already_forwarded_is_never_forwarded_again(redis_url: str) -> None:
    """A replica that does not hold the session answers a forwarded resume itself: stale entries
    (or a client setting the mark) can make no loop."""
    async with two_replicas(redis_url) as (a, b, front):
        welcome, received = await detached_on(a)
        async with grpc.aio.insecure_channel(b.address) as channel:
            stream = raw(channel)(metadata=((FORWARDED_BY, "someone"),))
            await stream.write(ClientFrame(hello=resume_hello(welcome, received)))
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async with asyncio.timeout(WAIT):
                    await read_all(stream)
        assert isinstance(from_rpc_error(ended.value), errors.SessionUnknownError)
        assert front.accepted == 0


@ASYNC
async def test_bytes_that_are_not_a_frame_end_a_forwarded_session_with_a_typed_error(redis_url: str) -> None:
    async with two_replicas(redis_url) as (a, b, _):
        welcome, received = await detached_on(a)
        async with grpc.aio.insecure_channel(b.address) as channel:
            stream = raw(channel, serializer=lambda data: data)()
            await stream.write(ClientFrame(hello=resume_hello(welcome, received)).SerializeToString())
            first = await stream.read()
            assert first.welcome.resumed  # from A, through B
            await stream.write(b"\xff\xff\xff garbage")
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                async with asyncio.timeout(WAIT):
                    await read_all(stream)
        error = from_rpc_error(ended.value)
        assert isinstance(error, errors.InvalidRequestError), error
        assert "not a ClientFrame" in error.message
        async with grpc.aio.insecure_channel(b.address) as channel:  # B serves on
            again, resumed, _ = await opened(channel, resume_hello(welcome, received))
            assert resumed.resumed
            again.cancel()


# --- Redis Cluster ----------------------------------------------------------------------------------


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[str]:
    """A three-node Redis Cluster on loopback (masters only), stopped by PID; its URL."""
    nodes = [
        start_redis(tmp_path / f"node{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        for i in range(3)
    ]
    try:
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        client = redis.Redis(host="127.0.0.1", port=nodes[0].port, socket_timeout=5)
        try:
            deadline = time.monotonic() + 20
            while client.cluster("info").get("cluster_state") != "ok":  # type: ignore[no-untyped-call]
                assert time.monotonic() < deadline, "the cluster did not come up"
                time.sleep(0.05)
        finally:
            client.close()
        yield f"redis://127.0.0.1:{nodes[0].port}/0?cluster=true"
    finally:
        for node in nodes:
            node.stop()


@ASYNC
async def test_the_directory_works_on_a_redis_cluster(redis_cluster: str) -> None:
    directory = redis_directory(redis_cluster)
    home = Home("owner-1", "10.0.0.1:50051")
    ids = [f"session-{i}" for i in range(40)]  # spread over the cluster's slots
    try:
        for i, session_id in enumerate(ids):
            entry = SessionEntry(home, digest(f"token-{i}"), digest("alice|"))
            await directory.enter(session_id, entry, ttl=30)
        await directory.renew(home, ids, ttl=60)  # one pipeline across slots
        assert await directory.alive(home.owner)
        found = await directory.find(ids[7])
        assert found is not None
        assert found.token_matches("token-7")
        assert await directory.find("never-opened") is None
        await directory.depart(home)
        assert not await directory.alive(home.owner)
    finally:
        await directory.aclose()
