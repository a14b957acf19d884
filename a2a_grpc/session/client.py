"""The calling side of the session binding: :class:`Session`, the A2A operations over one stream.

    async with A2AClient("127.0.0.1:50051") as client, client.session() as session:
        reply = await session.send_message(A2AClient.text_request("echo hi"))

A session has the unary client's methods (:class:`a2a_grpc._operations.ClientOperations`), with
the same typed errors and per-call deadlines; any number of them may run at once. One reader task
hands each frame to its call; a heartbeat task beats on the negotiated interval and declares the
server dead when it stays silent for the negotiated number of beats, ending every call with
:class:`~a2a_grpc.errors.UnavailableError` (their tasks go on: GetTask and SubscribeToTask reach
them). Closing a streaming call's iterator early cancels that call (CancelCall), and no other.

A draining server tells the session to go away (a Goodbye with ``going_away``): the calls running
go on, a new call on it fails at once with :class:`~a2a_grpc.errors.ServerDrainingError` (its
``retry_after`` the server's advice), and :attr:`Session.alive` turns False, so that whoever holds
it (a :class:`~a2a_grpc.session.pool.PeerPool`) opens a new session, on a new connection, for the
next calls.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import math
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._operations import ClientOperations, task_id_of
from a2a_grpc.client import with_tenant
from a2a_grpc.resilience import Clock, full_jitter
from a2a_grpc.service import SUPPORTED_VERSIONS
from a2a_grpc.session.credit import Ledger
from a2a_grpc.session.frames import (
    BATCH_OVERHEAD,
    BINDING_URI,
    CONNECT,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    Call,
    CallEnd,
    CallEvent,
    CancelCall,
    Chunk,
    ClientFrame,
    Credit,
    Goodbye,
    Heartbeat,
    Hello,
    Refresh,
    Resume,
    ServerFrame,
    Skill,
    Welcome,
    batch_bytes,
    batched,
    call_field,
    pieces,
    serialize,
    status_in,
)
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.session.replay import Replay
from a2a_grpc.status import from_rpc_error, from_status

__all__ = ["Session", "SessionOptions", "connect", "session_interface"]

log = logging.getLogger("a2a_grpc.session")
MiB = 1024 * 1024
_COUNTED = frozenset({"call", "cancel", "chunk", "credit", "refresh"})
"""The client's frames a session counts and keeps until acknowledged (see replay)."""
_RESUMABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)


def _worth_resuming(exc: grpc.RpcError, cause: errors.A2AError) -> bool:
    """A broken connection (or a server that declared this side dead and waits for a resume),
    not a refusal of the session."""
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
    return code in _RESUMABLE_CODES and isinstance(
        cause, (errors.UnavailableError, errors.TransportError, errors.InternalError)
    )


_SERVER = SessionSettings()


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What a client asks for in its Hello, and how long it waits for the Welcome."""

    agent_name: str = ""
    """Who calls, for the server's logs."""
    required_skills: Iterable[Skill | str] = ()
    """Skills the server must offer: ``Skill(id=..., version=...)`` or an id."""
    offered_skills: Iterable[Skill | str] = ()
    heartbeat_interval: float = _SERVER.heartbeat_interval
    """Seconds; the session uses the shorter of this and the server's. By default a server's (as
    ``max_frame_bytes``, ``handshake_timeout`` and ``max_joined_bytes``: :class:`SessionSettings`),
    so that neither side's defaults impose on the other's."""
    max_frame_bytes: int = _SERVER.max_frame_bytes
    """The largest frame the client sends or takes; the session uses the smaller of this and the server's."""
    handshake_timeout: float = _SERVER.handshake_timeout
    """Seconds to wait for the Welcome: its own setting, apart from call deadlines."""
    max_joined_bytes: int = _SERVER.max_joined_bytes
    """The largest CallEvent frame joined from chunks; a larger one fails its call."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Service parameters and credentials for every call (``authorization``, an API key's header)."""
    tenant: str = ""
    resume: bool = True
    """Resume the session by itself when its connection breaks (the calls carry on); False: a
    broken connection ends every waiting call with UnavailableError."""
    resume_timeout: float = 30.0
    """Seconds to keep trying to resume before the waiting calls end (a call's own deadline may
    end it sooner)."""
    resume_backoff_base: float = 0.1
    """Seconds: the ceiling of the wait before the second resume attempt, doubled for each further
    one; each wait is a uniform draw below its ceiling (full jitter,
    :func:`~a2a_grpc.resilience.full_jitter`), so that the clients of a restarted server do not
    all come back at once ..."""
    resume_backoff_cap: float = 10.0
    """... and no ceiling grows past this many seconds."""
    close_flush_seconds: float = 5.0
    """How long closing waits for the frames queued before the Goodbye to be sent, and then for the
    server to end the stream."""

    def __post_init__(self) -> None:
        for name in ("resume_backoff_base", "resume_backoff_cap", "close_flush_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.resume_backoff_cap < self.resume_backoff_base:
            raise ValueError(
                f"resume_backoff_cap ({self.resume_backoff_cap!r}) must be at least resume_backoff_base "
                f"({self.resume_backoff_base!r})"
            )

    def hello(self) -> Hello:
        def skill(value: Skill | str) -> Skill:
            return value if isinstance(value, Skill) else Skill(id=value)

        hello = Hello(
            protocol_versions=list(reversed(SUPPORTED_VERSIONS)),
            agent_name=self.agent_name,
            required_skills=[skill(s) for s in self.required_skills],
            offered_skills=[skill(s) for s in self.offered_skills],
            max_frame_bytes=self.max_frame_bytes,
            metadata=dict(self.metadata),
            tenant=self.tenant,
        )
        hello.heartbeat_interval.FromNanoseconds(int(self.heartbeat_interval * 1e9))
        return hello


class _Pending:
    """One call's frames, as the reader hands them over, and the credit its taken events owe."""

    __slots__ = ("frames", "joining", "ledger")

    def __init__(self, ledger: Ledger) -> None:
        self.frames: asyncio.Queue[tuple[CallEvent | CallEnd | BaseException, int, int]] = asyncio.Queue()
        """(frame, frames it came in, bytes they took): what the reader handed over, in order."""
        self.ledger = ledger
        self.joining: bytearray | None = None
        """The data of a CallEvent frame's chunks so far."""


class Session(ClientOperations):
    """An open session (see the module doc); make one with ``A2AClient.session()``."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        options: SessionOptions,
        *,
        tenant: str = "",
        fallback: Any = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._clock = clock or Clock()
        self._rng = rng or random.Random()
        """Where the resume's backoff reads time, sleeps and draws its jitter (tests pass theirs)."""
        self._fallback = fallback
        """The unary client of the same channel: where a call's task is read when the session is
        gone for good (``A2AClient.session()`` gives it)."""
        self.tenant = tenant or options.tenant
        self.welcome: Welcome | None = None
        """The server's terms, once open: session id, heartbeat, frame limit, offered skills."""
        self._channel = channel
        self._connection: Any = None
        self._calls: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: errors.A2AError | None = None
        self._last_seen = 0.0
        self._outbox: collections.deque[tuple[bytes, bool]] = collections.deque()
        """Serialized frames the writer task has not sent yet."""
        self._outbox_bytes = 0
        self._outbox_limit = 2 * MiB
        self._queued = asyncio.Event()  # the outbox has frames for the writer
        self._room = asyncio.Event()  # the outbox holds no more than its limit
        self._room.set()
        self._closing = False
        self._goodbye: str | None = None  # the server's Goodbye reason, once it said it
        self._going_away: Goodbye | None = None  # a draining server's notice, once it sent it
        self._ready = asyncio.Event()  # a connection is there to write to (clear: resuming)
        self._replay = Replay()  # the counted frames sent, until the server acknowledges them
        self._received = 0  # the server's counted frames received
        self._resumes = 0
        self._first_frame_pending = False
        self.first_frame_after_resume: float | None = None
        """When (the event loop's clock) the first frame arrived on the connection of the latest
        resume: how long a resume took, for who knows when the connection broke."""
        self._drop_reason: errors.A2AError | None = None  # why this side dropped the connection
        self._session_ledger = Ledger(1, 1)
        self._flood_limit = 1 << 30

    # -- life --------------------------------------------------------------------------------------

    async def open(self) -> Session:
        first, welcome = await self._handshake(self.options.hello(), self.options.handshake_timeout)
        self._connection = first
        self.welcome = welcome
        window = welcome.window
        self._session_ledger = Ledger(window.session_frames, window.session_bytes)
        self._flood_limit = max(window.call_frames, 1) * 2 + 2
        # A large call's chunks wait while two frame limits' worth are queued: memory stays bounded.
        self._outbox_limit = 2 * max(welcome.max_frame_bytes, 64 * 1024)
        loop = asyncio.get_running_loop()
        self._last_seen = loop.time()
        self._ready.set()
        self._tasks = [
            loop.create_task(self._read()),
            loop.create_task(self._heartbeats()),
            loop.create_task(self._write()),
        ]
        return self

    async def _handshake(self, hello: Hello, timeout: float, *, wait: bool = False) -> tuple[Any, Welcome]:
        """A new stream, its Hello written and its Welcome read within ``timeout`` (``wait``: for
        the channel to reconnect too), or the typed error of the server's refusal."""
        stub = self._channel.stream_stream(
            CONNECT,
            request_serializer=serialize,
            response_deserializer=ServerFrame.FromString,
        )
        stream = stub(wait_for_ready=wait or None)
        try:
            async with asyncio.timeout(timeout):
                await stream.write(ClientFrame(hello=hello))
                first = await stream.read()
        except TimeoutError:
            stream.cancel()
            raise errors.DeadlineExceededError(
                f"the session handshake did not complete: no Welcome within {timeout:g} s",
                grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
            ) from None
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        if first is grpc.aio.EOF or first.WhichOneof("frame") != "welcome":
            stream.cancel()
            raise errors.InvalidAgentResponseError("the server did not answer the Hello with a Welcome")
        return stream, first.welcome

    async def close(self) -> None:
        """Say Goodbye (after every frame queued before it), end the stream, end every call still
        waiting (UnavailableError)."""
        if self._connection is None:
            return
        with contextlib.suppress(Exception):
            await self._send(ClientFrame(goodbye=Goodbye(reason="the client closed the session")))
        self._closing = True
        self._queued.set()
        reader, writer = self._tasks[0], self._tasks[-1]
        flush = self.options.close_flush_seconds
        await asyncio.wait({writer}, timeout=flush)  # it half-closes once all is sent
        # The server ends the stream once it has read the Goodbye: cancelling before that could
        # reach it first, and a stream cancelled without a Goodbye is a drop it keeps for a resume.
        await asyncio.wait({reader}, timeout=flush)
        stream, self._connection = self._connection, None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        stream.cancel()
        self._fail_all(errors.UnavailableError("the session was closed"))

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def alive(self) -> bool:
        """Open, and neither closed nor failed (its stream ended for good, or its peer was declared
        dead and the session could not be resumed), nor told to go away by a draining server. A
        session resuming is alive."""
        return self._connection is not None and self._failure is None and self._going_away is None

    @property
    def going_away(self) -> bool:
        """The server is draining and told this session to go away: its running calls go on, it
        takes no new one (open a new session for those)."""
        return self._going_away is not None

    def _draining(self) -> errors.ServerDrainingError:
        assert self._going_away is not None
        delay = self._going_away.retry_delay
        return errors.ServerDrainingError(
            f"session {self.session_id}: the server is draining: open a new session for new calls",
            retry_after=delay.seconds + delay.nanos / 1e9 if delay.seconds or delay.nanos else None,
        )

    @property
    def session_id(self) -> str:
        return self.welcome.session_id if self.welcome is not None else ""

    async def refresh(self, metadata: Mapping[str, str], *, timeout: float | None = None) -> None:
        """Replace the session's credentials (or other service parameters, by header name) for
        the calls that start from now on, and for its resumes: a token about to expire, say.
        Calls already running are not affected. The server checks them as it checked the
        Hello's; they must prove the same principal (else PermissionDeniedError, and the session
        keeps the earlier ones)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        call_id = next(self._ids)
        pending = self._calls[call_id] = _Pending(Ledger(1, 1))
        fresh = {str(k).lower(): str(v) for k, v in metadata.items()}
        try:
            await self._send(ClientFrame(refresh=Refresh(call_id=call_id, metadata=fresh)))
            try:
                item = await self._next(call_id, pending, deadline)
            except TimeoutError:
                raise errors.DeadlineExceededError(
                    f"the server did not answer the refresh within {timeout:g} s",
                    grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                ) from None
        finally:
            self._calls.pop(call_id, None)
        if isinstance(item, CallEnd) and item.status.code != 0:
            raise from_status(status_in(item))
        self.options = dataclasses.replace(self.options, metadata={**self.options.metadata, **fresh})

    @property
    def resumes(self) -> int:
        """How many times the session was resumed on a new connection."""
        return self._resumes

    # -- frames --------------------------------------------------------------------------------------

    async def _send(self, frame: ClientFrame) -> None:
        """Queue ``frame`` for the writer task. It returns at once unless the queue holds more than
        its limit (a large call's chunks), then once the writer has made room."""
        if self._connection is None or self._failure is not None:
            raise self._failure or errors.UnavailableError("the session is closed")
        # Always through the writer task, even when it is idle: the frames of other calls started
        # meanwhile join the same write (writing here at once measured 25 % fewer calls at c=16,
        # as the server reads each frame alone, and 14 % more at c=1).
        data = frame.SerializeToString()
        self._outbox.append((data, frame.WhichOneof("frame") in _COUNTED))
        self._outbox_bytes += len(data)
        self._queued.set()
        if self._outbox_bytes > self._outbox_limit:
            self._room.clear()
            await self._room.wait()
            if self._failure is not None:
                raise self._failure

    async def _write(self) -> None:
        """Send the queued frames in order; what is queued together goes in one write, as a
        ClientBatch within the frame limit (a write into grpc costs the server a read, whatever it
        carries). Counted frames are kept until the server acknowledges them (a resume sends
        again those it missed). While the session resumes, it waits. Half-closes the stream once
        closing and everything is sent."""
        assert self.welcome is not None
        outbox, replay = self._outbox, self._replay
        limit = min(self.welcome.max_frame_bytes, MAX_BATCH_BYTES)
        try:
            while True:
                if not outbox:
                    if self._closing:
                        await self._connection.done_writing()
                        return
                    self._queued.clear()
                    await self._queued.wait()
                    continue
                await self._ready.wait()
                connection = self._connection
                data, counted = outbox.popleft()
                ready = [data]
                if counted:
                    replay.add(data)
                size = len(data)
                batched = BATCH_OVERHEAD + size
                while outbox and len(ready) < MAX_BATCH:
                    if batched + len(outbox[0][0]) + BATCH_OVERHEAD > limit:
                        break
                    data, counted = outbox.popleft()
                    if counted:
                        replay.add(data)
                    ready.append(data)
                    size += len(data)
                    batched += len(data) + BATCH_OVERHEAD
                self._outbox_bytes -= size
                if self._outbox_bytes <= self._outbox_limit:
                    self._room.set()
                try:
                    await connection.write(
                        ready[0] if len(ready) == 1 else batch_bytes(ready, self._received)
                    )
                except (grpc.RpcError, asyncio.InvalidStateError) as exc:
                    if not self.options.resume or self._closing:
                        raise
                    # The connection broke: what counts is in the replay; the reader resumes.
                    self._ready.clear()
                    connection.cancel()
                    log.debug("session %s: a write failed (%s)", self.session_id, type(exc).__name__)
        except (grpc.RpcError, asyncio.InvalidStateError) as exc:
            self._failed_writing(exc)
        finally:
            self._room.set()  # a sender waiting for room finds the failure, or the session closed

    def _ended_by_server(self) -> errors.UnavailableError:
        if self._going_away is not None:  # it drained: the calls it cut may be tried elsewhere
            return self._draining()
        said = f": {self._goodbye}" if self._goodbye else ""
        return errors.UnavailableError(f"the server ended the session{said}")

    def _failed_writing(self, exc: BaseException) -> None:
        if self._goodbye is not None:  # the server ended it: that is what went wrong
            self._fail_all(self._ended_by_server())
        else:
            self._fail_all(errors.UnavailableError(f"the session's stream failed: {type(exc).__name__}"))
        if self._connection is not None:
            self._connection.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            stream = self._connection
            if stream is None:
                return
            try:
                frame = await stream.read()
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the session is closing
                # The stream was cancelled under the reader: a dead peer, or a failed write.
                dropped = self._drop_reason or errors.UnavailableError("the session's connection was dropped")
                self._drop_reason = None
                if self._closing or not await self._resume(dropped):
                    return
                continue
            except grpc.RpcError as exc:
                cause = from_rpc_error(exc)
                if self._goodbye is not None:  # the server ended the session: nothing to resume
                    self._fail_all(self._ended_by_server())
                    return
                if self._closing or not _worth_resuming(exc, cause):
                    self._fail_all(cause)
                    return
                if not await self._resume(cause):
                    return
                continue
            if frame is grpc.aio.EOF:
                if self._closing:  # the answer to our Goodbye: close() ends the calls
                    return
                if self._goodbye is not None:
                    self._fail_all(self._ended_by_server())
                    return
                gone = errors.UnavailableError("the server ended the stream without a Goodbye")
                if not await self._resume(gone):
                    return
                continue
            self._last_seen = loop.time()
            if self._first_frame_pending:
                self._first_frame_pending = False
                self.first_frame_after_resume = self._last_seen
            if frame.WhichOneof("frame") == "batch":  # frames sent together: each as if alone
                for inner in frame.batch.frames:
                    if not await self._handle(inner):
                        return
                if frame.batch.received and not self._acked(frame.batch.received):
                    return
            elif not await self._handle(frame):
                return

    def _acked(self, received: int) -> bool:
        """The server acknowledges ``received`` of this side's counted frames; False (the session
        ended) when it claims more than were sent: a server that cannot count cannot resume."""
        try:
            self._replay.ack(received)
        except errors.A2AError as exc:
            self._fail_all(
                errors.InvalidAgentResponseError(f"the server is wrong about the session: {exc.message}")
            )
            if self._connection is not None:
                self._connection.cancel()
            return False
        return True

    async def _resume(self, cause: errors.A2AError) -> bool:
        """Resume the session on a new stream after its connection broke (``cause``): bounded
        retries with exponential backoff and full jitter (``resume_backoff_base`` and
        ``resume_backoff_cap``), within ``resume_timeout``. The server sends
        what this side missed; this side sends what the server missed. False (every waiting call
        ended with the reason) when it cannot be resumed."""
        if not self.options.resume or self.welcome is None or self._closing:
            self._fail_all(cause)
            return False
        self._ready.clear()
        old = self._connection
        if old is not None:
            old.cancel()
        loop, clock = asyncio.get_running_loop(), self._clock
        give_up = clock.now() + self.options.resume_timeout
        attempts, last = 0, cause
        log.info("session %s: the connection broke (%s); resuming", self.session_id, cause.message)
        while True:
            attempts += 1
            hello = self.options.hello()
            hello.resume.CopyFrom(
                Resume(
                    session_id=self.welcome.session_id,
                    resume_token=self.welcome.resume_token,
                    received=self._received,
                )
            )
            remaining = give_up - clock.now()
            missed: list[bytes] = []
            try:
                stream, welcome = await self._handshake(
                    hello, max(min(self.options.handshake_timeout, remaining), 0.01), wait=True
                )
                if not welcome.resumed:
                    stream.cancel()
                    raise errors.InvalidAgentResponseError("the server answered a resume with a new session")
                missed = self._replay.after(welcome.received)
                for write in batched(missed, min(self.welcome.max_frame_bytes, MAX_BATCH_BYTES)):
                    await stream.write(write)
            except errors.SessionNotResumableError as exc:  # typed: the caller may fall back on it
                log.info("session %s cannot be resumed: %s", self.session_id, exc.message)
                self._fail_all(exc)
                return False
            except errors.InvalidAgentResponseError as exc:
                log.info("session %s cannot be resumed: %s", self.session_id, exc.message)
                self._fail_all(errors.UnavailableError(f"{cause.message}; resuming failed: {exc.message}"))
                return False
            except errors.A2AError as exc:
                last = exc
            except (grpc.RpcError, asyncio.InvalidStateError) as exc:
                last = errors.UnavailableError(f"the new stream failed: {type(exc).__name__}")
            else:
                if self._closing:
                    stream.cancel()
                    return False
                self._connection = stream
                self._last_seen = loop.time()
                self._resumes += 1
                self._first_frame_pending = True
                self._ready.set()
                log.info(
                    "session %s resumed (attempt %d; %d frames sent again)",
                    self.session_id,
                    attempts,
                    len(missed),
                )
                return True
            remaining = give_up - clock.now()
            if remaining <= 0 or self._closing:
                self._fail_all(
                    errors.UnavailableError(
                        f"the session's connection broke and it could not be resumed within "
                        f"{self.options.resume_timeout:g} s ({attempts} attempts; the last: {last.message})"
                    )
                )
                return False
            base, cap = self.options.resume_backoff_base, self.options.resume_backoff_cap
            await clock.sleep(min(remaining, full_jitter(attempts, base, cap, self._rng.random())))

    async def _handle(self, frame: ServerFrame) -> bool:
        """Act on one frame from the server; False when the session must end (a flood)."""
        kind = frame.WhichOneof("frame")
        if kind == "event":
            self._received += 1
            event = frame.event
            pending = self._calls.pop(event.call_id, None) if event.last else self._calls.get(event.call_id)
            if pending is None:  # a call we left: its credit is still owed to the session
                await self._taken(None, frame.ByteSize())
                return True
            if pending.frames.qsize() >= self._flood_limit:
                # More than the credit it was given: a server that ignores flow control would
                # grow this queue without bound. The session ends.
                self._fail_all(
                    errors.InvalidAgentResponseError(
                        "the server sent more events than the credit it was given"
                    )
                )
                self._connection.cancel()
                return False
            pending.frames.put_nowait((event, 1, frame.ByteSize()))
            if event.last:  # the call ends with it, OK
                pending.frames.put_nowait((CallEnd(call_id=event.call_id), 0, 0))
        elif kind == "chunk":
            self._received += 1
            await self._join(frame.chunk, frame.ByteSize())
        elif kind == "end":
            self._received += 1
            ended = self._calls.pop(frame.end.call_id, None)
            if ended is not None:
                ended.frames.put_nowait((frame.end, 0, 0))
        elif kind == "heartbeat":
            if frame.heartbeat.received and not self._acked(frame.heartbeat.received):
                return False
        elif kind == "goodbye":
            if frame.goodbye.going_away:  # not the end yet: the running calls go on
                log.info("session %s: the server is going away: %s", self.session_id, frame.goodbye.reason)
                self._going_away = frame.goodbye
                return True
            log.info("session %s: the server said goodbye: %s", self.session_id, frame.goodbye.reason)
            self._goodbye = frame.goodbye.reason or "no reason given"
        return True

    async def _heartbeats(self) -> None:
        assert self.welcome is not None
        beat = self.welcome.heartbeat_interval.ToTimedelta().total_seconds()
        missed = self.welcome.missed_heartbeats
        loop = asyncio.get_running_loop()
        for count in itertools.count(1):
            await asyncio.sleep(beat)
            if not self._ready.is_set():
                continue  # resuming: the reader is on it
            silent = loop.time() - self._last_seen
            if silent > beat * missed:
                dead = errors.UnavailableError(
                    f"the server sent nothing for {silent:.1f} s ({missed} heartbeats): session declared dead"
                )
                if not self.options.resume:
                    self._fail_all(dead)
                    if self._connection is not None:
                        self._connection.cancel()
                    return
                log.info("session %s: %s; resuming", self.session_id, dead.message)
                self._drop_reason = dead
                self._ready.clear()
                if self._connection is not None:
                    self._connection.cancel()  # the reader sees it and resumes
                continue
            with contextlib.suppress(errors.A2AError):
                await self._send(ClientFrame(heartbeat=Heartbeat(count=count, received=self._received)))

    async def _join(self, chunk: Any, size: int) -> None:
        """One chunk of a CallEvent frame larger than the frame limit: the joined frame is handed
        over as one event. Each chunk's credit goes back as it is joined (the join is bounded by
        ``max_joined_bytes``): a frame larger than the call's byte window must not wait for credit
        that only its own end would give back."""
        pending = self._calls.get(chunk.call_id)
        if pending is None:
            await self._taken(None, size)
            return
        data = pending.joining if pending.joining is not None else bytearray()
        data += chunk.data
        pending.joining = data
        await self._taken((chunk.call_id, pending), size)
        if len(data) > self.options.max_joined_bytes:
            self._calls.pop(chunk.call_id, None)
            limit = self.options.max_joined_bytes
            error = errors.InvalidAgentResponseError(f"a response's chunks join past {limit} bytes")
            pending.frames.put_nowait((error, 0, 0))
            await self._cancel_sent(chunk.call_id)
            return
        if not chunk.last:
            return
        pending.joining = None
        try:
            frame = ServerFrame.FromString(bytes(data))
        except Exception:
            frame = ServerFrame()
        if frame.WhichOneof("frame") != "event" or frame.event.call_id != chunk.call_id:
            error = errors.InvalidAgentResponseError("a call's chunks do not make one of its CallEvents")
            pending.frames.put_nowait((error, 0, 0))
            return
        pending.frames.put_nowait((frame.event, 0, 0))  # its chunks' credit is given back already
        if frame.event.last:  # the call ends with it, OK
            self._calls.pop(chunk.call_id, None)
            pending.frames.put_nowait((CallEnd(call_id=chunk.call_id), 0, 0))

    async def _cancel_sent(self, call_id: int) -> None:
        with contextlib.suppress(errors.A2AError):
            await self._send(ClientFrame(cancel=CancelCall(call_id=call_id)))

    def _fail_all(self, error: errors.A2AError) -> None:
        self._failure = self._failure or error
        calls, self._calls = self._calls, {}
        for pending in calls.values():
            pending.frames.put_nowait((error, 0, 0))

    # -- calls ---------------------------------------------------------------------------------------

    async def _begin(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> tuple[int, _Pending]:
        if self._going_away is not None:
            raise self._draining()
        call_id = next(self._ids)
        call = Call(call_id=call_id)
        getattr(call, call_field(name)).CopyFrom(with_tenant(request, self.tenant))
        if timeout is not None:
            call.timeout.FromNanoseconds(int(timeout * 1e9))
        for key, value in metadata or ():
            call.metadata[key] = value if isinstance(value, str) else value.decode("latin-1")
        window = self.welcome.window if self.welcome is not None else None
        ledger = Ledger(window.call_frames, window.call_bytes) if window is not None else Ledger(1, 1)
        pending = self._calls[call_id] = _Pending(ledger)
        frame = ClientFrame(call=call)
        limit = self.welcome.max_frame_bytes if self.welcome is not None else 0
        try:
            if not limit or frame.ByteSize() <= limit:
                await self._send(frame)
            else:  # larger than the frame limit: its bytes go in chunks
                parts = pieces(frame.SerializeToString(), limit)
                for i, data in enumerate(parts):
                    await self._send(
                        ClientFrame(chunk=Chunk(call_id=call_id, data=data, last=i == len(parts) - 1))
                    )
        except BaseException:
            self._calls.pop(call_id, None)
            raise
        return call_id, pending

    async def _next(self, call_id: int, pending: _Pending, deadline: float | None) -> CallEvent | CallEnd:
        async with asyncio.timeout_at(deadline):
            item, frames, size = await pending.frames.get()
        if isinstance(item, BaseException):
            raise item
        if frames:  # a CallEvent that came whole (a joined one gave its credit back as it came)
            await self._taken((call_id, pending), size, frames)
        return item

    async def _taken(self, call: tuple[int, _Pending] | None, size: int, count: int = 1) -> None:
        """The application took a frame of ``size`` bytes: give credit back when half a window
        has been taken (the call's, while it runs; the session's)."""
        frames: list[ClientFrame] = []
        if (
            call is not None
            and call[0] in self._calls
            and (due := call[1].ledger.take(size, count)) is not None
        ):
            credit = Credit(call_id=call[0], frames=due[0], bytes=due[1], received=self._received)
            frames.append(ClientFrame(credit=credit))
        if (session_due := self._session_ledger.take(size, count)) is not None:
            credit = Credit(call_id=0, frames=session_due[0], bytes=session_due[1], received=self._received)
            frames.append(ClientFrame(credit=credit))
        for frame in frames:
            with contextlib.suppress(errors.A2AError):
                await self._send(frame)

    async def _cancel(self, call_id: int) -> None:
        if self._calls.pop(call_id, None) is not None:
            await self._cancel_sent(call_id)

    async def _call_unary(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        call_id, pending = await self._begin(name, request, timeout, metadata)
        response: Message | None = None
        try:
            while True:
                item = await self._next(call_id, pending, deadline)
                if isinstance(item, CallEvent):
                    response = getattr(item, item.WhichOneof("payload"))
                    continue
                if item.status.code != 0:
                    raise from_status(status_in(item))
                if response is None:
                    raise errors.InvalidAgentResponseError(f"{name} ended without a response")
                return response
        except TimeoutError:
            await self._cancel(call_id)
            raise errors.DeadlineExceededError(
                f"{name} did not finish within {timeout:g} s", grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED
            ) from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(call_id))
            raise
        except errors.A2AError as exc:
            if name != "GetTask" or not self._gave_up(exc):
                raise
            # A read: asked again on the unary binding, so the answer is not lost with the session.
            log.info("session %s is gone (%s): GetTask on the unary binding", self.session_id, exc.message)
            assert self._fallback is not None
            return await self._fallback._unary(
                name, request, self._left(deadline), self._metadata_for(metadata)
            )

    def _trace_peer(self) -> str:
        return self._fallback.target if self._fallback is not None else ""

    async def _call_stream(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> AsyncIterator[types.StreamResponse]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        call_id, pending = await self._begin(name, request, timeout, metadata)
        finished = False
        task_id = request.id if name == "SubscribeToTask" else request.message.task_id  # type: ignore[attr-defined]
        try:
            while True:
                try:
                    item = await self._next(call_id, pending, deadline)
                except TimeoutError:
                    raise errors.DeadlineExceededError(
                        f"{name} stream did not finish within {timeout:g} s",
                        grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                    ) from None
                except errors.A2AError as exc:
                    if not task_id or not self._gave_up(exc):
                        raise
                    finished = True  # the session's call is gone with it: nothing to cancel
                    log.info(
                        "session %s is gone (%s): following task %s on the unary binding",
                        self.session_id,
                        exc.message,
                        task_id,
                    )
                    async for event in self._follow(task_id, deadline, metadata):
                        yield event
                    return
                if isinstance(item, CallEnd):
                    finished = True
                    if item.status.code != 0:
                        raise from_status(status_in(item))
                    return
                event = item.stream_response
                task_id = task_id or task_id_of(event)
                yield event
        finally:
            if not finished:  # the reader left early, or failed: this call ends, no other
                await asyncio.shield(self._cancel(call_id))

    # -- when the session is gone for good ----------------------------------------------------------

    def _gave_up(self, exc: BaseException) -> bool:
        """The session failed as a whole (its connection broke and it could not be resumed), not
        this call alone, and not by the server's Goodbye: a task the call follows can still be
        read on the unary binding."""
        return (
            self._fallback is not None
            and self._failure is not None
            and not self._closing
            and self._goodbye is None
            and isinstance(exc, (errors.SessionNotResumableError, errors.UnavailableError))
        )

    @staticmethod
    def _left(deadline: float | None) -> float | None:
        return None if deadline is None else max(deadline - asyncio.get_running_loop().time(), 0.001)

    def _metadata_for(
        self, metadata: Sequence[tuple[str, str | bytes]] | None
    ) -> list[tuple[str, str | bytes]]:
        """The call's metadata and the session's own (its Hello's), minus what the unary client
        sends by itself."""
        assert self._fallback is not None
        own = {key for key, _ in self._fallback._metadata}
        given = list(metadata or ())
        named = {key for key, _ in given}
        return given + [(k, v) for k, v in self.options.metadata.items() if k not in own and k not in named]

    async def _follow(
        self, task_id: str, deadline: float | None, metadata: Sequence[tuple[str, str | bytes]] | None
    ) -> AsyncIterator[types.StreamResponse]:
        """The rest of a task's events on the unary binding: SubscribeToTask (its snapshot first),
        or, for a task already over, its final state from GetTask. No terminal state is lost."""
        assert self._fallback is not None
        request = types.SubscribeToTaskRequest(id=task_id, tenant=self.tenant)
        extra = self._metadata_for(metadata)
        try:
            async for event in self._fallback._stream(
                "SubscribeToTask", request, self._left(deadline), extra
            ):
                yield event
        except errors.UnsupportedOperationError:  # the task is over: its final state
            get = types.GetTaskRequest(id=task_id, tenant=self.tenant)
            task = await self._fallback._unary("GetTask", get, self._left(deadline), extra)
            yield types.StreamResponse(task=task)


def session_interface(card: types.AgentCard) -> types.AgentInterface | None:
    """The card's session-binding interface for A2A 1.x (its ``BINDING_URI``), if it has one."""
    for interface in card.supported_interfaces:
        version = interface.protocol_version or SUPPORTED_VERSIONS[-1]
        if interface.protocol_binding == BINDING_URI and version.split(".")[0] == "1":
            return interface
    return None


@contextlib.asynccontextmanager
async def connect(
    card: types.AgentCard,
    *,
    session: bool = True,
    options: SessionOptions | None = None,
    **client_options: Any,
) -> AsyncIterator[ClientOperations]:
    """The A2A operations of the agent of ``card``: over a session when ``session`` is asked for
    and the card offers the session binding, else over the unary binding (the card's first GRPC
    interface). Either way the same methods, errors and deadlines. ``client_options`` are
    :class:`~a2a_grpc.client.A2AClient`'s (credentials, tls, timeout ...)."""
    from a2a_grpc.client import A2AClient, grpc_target

    offered = session_interface(card) if session else None
    client = A2AClient.from_card(card, **client_options)
    async with client:
        if offered is None:
            yield client
            return
        if offered.url != client.target:  # the session binding on another address than gRPC's
            target, tls = grpc_target(offered.url)
            client_options.setdefault("tls", tls)
            elsewhere = A2AClient.from_card(_only(card, offered, target), **client_options)
            async with elsewhere as other, other.session(options) as opened:
                yield opened
            return
        async with client.session(options) as opened:
            yield opened


def _only(card: types.AgentCard, interface: types.AgentInterface, target: str) -> types.AgentCard:
    """``card`` with one GRPC interface at ``target`` (where its session binding is served)."""
    copy = types.AgentCard()
    copy.CopyFrom(card)
    del copy.supported_interfaces[:]
    copy.supported_interfaces.add(
        url=target,
        protocol_binding="GRPC",
        protocol_version=interface.protocol_version,
        tenant=interface.tenant,
    )
    return copy
