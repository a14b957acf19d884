"""The serving side of the session binding: ``a2a_grpc.session.v1.SessionService/Connect``.

:class:`SessionHost` serves Connect: it reads each stream's Hello (within the handshake
timeout), and either opens a :class:`ServerSession` (negotiation,
:func:`~a2a_grpc.session.negotiation.negotiate`; the credentials checked once) or, for a Hello
that resumes, hands the new connection to the session it names. A session reads frames until its
connection ends: each Call runs as its own asyncio task through the call seam
(:class:`a2a_grpc.service.Service`, the same chain the gRPC and JSON fronts use, so
authentication, ownership and interceptors hold here too), and writes its CallEvents and one
CallEnd. One pump task sends every frame in order and keeps the counted ones until the client
acknowledges them (:mod:`a2a_grpc.session.replay`); a heartbeat task beats and watches the peer.

What ends what: an error about one call (an unknown operation, a frame too large, a cancel for a
call that is not running) ends that call with an error CallEnd; an error about the session (no
Hello in time, a second Hello, undecodable bytes, an empty frame, a call id in use) ends the
session with an error status; a Goodbye ends it cleanly. A draining server
(:meth:`SessionHost.go_away`) refuses new sessions with ServerDrainingError and tells each open one
to go away (a Goodbye with ``going_away``): its running calls go on, its new calls are refused, and
it ends once its last call has ended. A connection that drops (or a peer that
stops beating) detaches the session: its calls carry on (paused by flow control once nobody reads
them) and it waits to be resumed, for ``resume_grace`` seconds after its last call ended and
``max_detached`` at most, then ends. Ending a session cancels its calls, never their tasks.

Replicas: with a :class:`~a2a_grpc.session.forward.Forwarder`, the host writes where each of its
sessions lives in the session directory (before the Welcome) and hands a resume of a session it
never held to the forwarder, which passes the connection through to the session's home
(:mod:`a2a_grpc.session.forward`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed

from a2a_grpc import errors, types
from a2a_grpc.observability import debuglog
from a2a_grpc.observability.context import SESSION_ID
from a2a_grpc.observability.metrics import (
    SESSIONS_ACTIVE,
    counting_deserializer,
    counting_serializer,
    handshake_observed,
)
from a2a_grpc.security.authentication import Authentication
from a2a_grpc.security.quota import SessionQuota
from a2a_grpc.service import CallContext, EventCursor, Service, deadline_after, parse_extensions
from a2a_grpc.session.credit import Account
from a2a_grpc.session.forward import Forwarder
from a2a_grpc.session.frames import (
    BATCH_OVERHEAD,
    CALLS,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    SESSION_SERVICE,
    Chunk,
    ClientFrame,
    Goodbye,
    Heartbeat,
    Hello,
    ServerFrame,
    Welcome,
    batch_bytes,
    batched,
    end_of,
    event_bytes,
    pieces,
    serialize,
)
from a2a_grpc.session.negotiation import SessionSettings, negotiate
from a2a_grpc.session.replay import Replay
from a2a_grpc.status import abort, status_of

__all__ = ["ServerSession", "SessionHost"]

log = logging.getLogger("a2a_grpc.session")

_CANCELLED = status_pb2.Status(code=grpc.StatusCode.CANCELLED.value[0], message="the call was canceled")
_COUNTED = frozenset({"event", "end", "chunk"})
"""The server's frames a session counts and keeps until acknowledged (see replay)."""
MAX_CALL_TIMEOUT = 366 * 86400.0
"""A call's timeout beyond this (a year) counts as this: a deadline the clock can hold."""
EXPIRED_REMEMBERED = 10_000
"""Ended sessions remembered, so that resuming one says "expired", not "unknown"."""
RESUMES_KEPT = 4
"""Handshakes of resumes a session keeps for its debug view (the latest), besides its opening one."""


class _Undecodable:
    """Bytes that are not a ClientFrame: the session ends with INVALID_ARGUMENT."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _deserialize(data: bytes) -> ClientFrame | _Undecodable:
    try:
        return ClientFrame.FromString(data)
    except Exception:
        return _Undecodable("protobuf could not decode its bytes")


def _lower(metadata: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in metadata.items()}


def _counted(frame: ServerFrame | bytes) -> bool:
    # Serialized frames on the queue are CallEvents (event_bytes); the rest are messages.
    return isinstance(frame, bytes) or frame.WhichOneof("frame") in _COUNTED


class ServerSession:
    """One session: its calls, its frames, and the connection it is attached to (see the module
    doc). Opened by :meth:`open` on its first connection; :meth:`resume` attaches a new one."""

    def __init__(
        self,
        service: Service,
        card: types.AgentCard,
        settings: SessionSettings,
        authentication: Authentication | None,
        base: CallContext,
        on_ended: Callable[[ServerSession], None] | None = None,
        quota: SessionQuota | None = None,
        debug: bool = False,
        on_open: Callable[[ServerSession], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.debug = debug
        """Log each handshake in full (``a2a_grpc.observability.debuglog``)."""
        self._on_open = on_open  # before the Welcome: the session directory learns its home
        self.quota = quota
        self.card = card
        self.settings = settings
        self.authentication = authentication
        self.base = base
        self._on_ended = on_ended
        self.session_id = ""
        self.welcome = Welcome()
        self.replay = Replay()
        """The counted frames sent and not yet acknowledged by the client."""
        self.ended = asyncio.Event()
        self._finishing = False
        self._resuming = asyncio.Lock()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._joining: dict[int, bytearray | None] = {}  # chunks of call frames; None: refused
        self._credits: dict[int, Account] = {}
        self._ends: set[asyncio.Task[None]] = set()  # CallEnds of calls that never started, queueing
        self._window = settings.window
        self._session_credit = Account(settings.session_frames, settings.session_bytes)
        self._out: asyncio.Queue[ServerFrame | bytes | None] = asyncio.Queue(maxsize=settings.session_frames)
        self._received = 0  # the client's counted frames received
        self._last_seen = 0.0
        self._tenant = ""
        self._max_frame = settings.max_frame_bytes
        self._max_calls = settings.max_concurrent_calls
        self._beat = settings.heartbeat_interval
        self._missed = settings.missed_heartbeats
        self._ending = asyncio.Event()
        self._goodbye = ""
        self._conn: grpc.aio.ServicerContext | None = None  # the connection frames are written to
        self._connection: asyncio.Task[Any] | None = None  # the task serving that connection
        self._pump: asyncio.Task[None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._last_call_ended = 0.0
        # For the debug view (a2a_grpc.observability.debug): kept as received, redacted when shown.
        self.hello = Hello()
        self.resumes: collections.deque[tuple[Hello, Welcome]] = collections.deque(maxlen=RESUMES_KEPT)
        self.opened = asyncio.get_running_loop().time()
        self.last_heartbeat: float | None = None
        self.call_methods: dict[int, tuple[str, float]] = {}
        """The running calls' operation (the Call's request field) and start, by call id."""
        self._going_away: Goodbye | None = None  # the notice sent when the server drains
        self._served = False  # a connection has served it (it is past its handshake)

    @property
    def finishing(self) -> bool:
        """Ending (or ended): it takes no connection any more."""
        return self._finishing

    @property
    def attached(self) -> bool:
        return self._conn is not None

    @property
    def last_seen(self) -> float:
        """When the peer last sent a frame (the loop's clock)."""
        return self._last_seen

    def credit(self) -> tuple[tuple[int, int], dict[int, tuple[int, int]]]:
        """(frames, bytes) the server may send now before the client gives credit back: the
        session's, and each running call's."""
        return self._session_credit.available, {c: a.available for c, a in self._credits.items()}

    def end(self, reason: str) -> None:
        """End the session from the server's side: a Goodbye saying ``reason`` if it is attached,
        then the stream ends (OK); running calls end, their tasks do not."""
        self._goodbye = reason
        self._ending.set()
        if self._conn is None and not self.finishing:  # detached: nothing serves it to see _ending
            task = asyncio.get_running_loop().create_task(
                self._finish(), name=f"session-{self.session_id}-end"
            )
            self._ends.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._ends.discard)

    def go_away(self, retry_after: float) -> None:
        """The server drains: tell the client to go away (a Goodbye with ``going_away``; the seam
        refuses the session's new calls) and end the session once its running calls are over."""
        if self._going_away is not None or self.finishing:
            return
        self._going_away = going_away_notice(retry_after)
        if self._conn is not None:
            self._tell_going_away()
        elif self._served and not self._calls:  # detached and idle: nothing to wait for
            self.end("the server is draining")
        # Detached with calls: told if the client resumes. Not serving yet (its handshake has
        # just ended): serve() tells it.

    def _tell_going_away(self) -> None:
        assert self._going_away is not None
        self._queue(ServerFrame(goodbye=self._going_away))
        if not self._calls:
            self.end("the server is draining")

    def _queue(self, frame: ServerFrame) -> None:
        """Put ``frame`` on the way out without waiting for room (held until it is taken)."""
        task = asyncio.get_running_loop().create_task(self._out.put(frame))
        self._ends.add(task)  # held until it is done: the loop keeps only a weak reference
        task.add_done_callback(self._ends.discard)

    # -- opening, resuming ------------------------------------------------------------------------

    async def open(self, hello: Hello, context: grpc.aio.ServicerContext) -> None:
        """Negotiate, check the credentials, write the Welcome (or abort the stream)."""
        try:
            welcome = negotiate(hello, self.settings, self.card)
            base = await self._authenticated(hello, welcome.protocol_version)
            if self.quota is not None:  # counted until it ends (the host releases a failed open)
                self.quota.open(self, base)
        except errors.A2AError as exc:
            log.info("session from %s refused at its handshake: %s", self.base.peer or "?", exc.message)
            if self.debug:
                debuglog.log_refusal(hello, exc.message, self.base.peer)
            await abort(context, exc)
        self.base = base
        self.welcome = welcome
        self.session_id = welcome.session_id
        self.hello = hello
        SESSION_ID.set(self.session_id)  # for everything this connection's tasks do, calls included
        if self._on_open is not None:
            await self._on_open(self)
        self._tenant = hello.tenant
        self._max_frame = welcome.max_frame_bytes
        self._window = welcome.window
        self._session_credit = Account(welcome.window.session_frames, welcome.window.session_bytes)
        self._beat = welcome.heartbeat_interval.ToTimedelta().total_seconds()
        self._missed = welcome.missed_heartbeats
        await context.write(ServerFrame(welcome=welcome))
        if self.debug:
            debuglog.log_handshake(hello, welcome, self.base.peer)
        self._pump = asyncio.get_running_loop().create_task(
            self._run_pump(), name=f"session-{self.session_id}-pump"
        )
        log.info(
            "session %s open: %s from %s, heartbeat %.3g s, frames up to %d bytes",
            self.session_id,
            hello.agent_name or "a client",
            self.base.peer or "?",
            self._beat,
            self._max_frame,
        )

    async def _authenticated(self, hello: Hello, version: str) -> CallContext:
        base = dataclasses.replace(
            self.base,
            headers={**self.base.headers, **_lower(hello.metadata)},
            version=hello.metadata.get("a2a-version") or version,
        )
        if self.authentication is not None:  # once here; every call is checked again in the seam
            base = await self.authentication.authenticate(base)
        return base

    async def resume(self, hello: Hello, context: grpc.aio.ServicerContext, base: CallContext) -> None:
        """Attach ``context`` (a new connection whose Hello resumes this session): check the token
        and the principal, write a Welcome marked resumed, send what the client has not
        received, then go live. Typed errors (SessionTokenError, SessionPositionNotRetainedError)
        abort the new stream and leave the session as it was."""
        SESSION_ID.set(self.session_id)
        async with self._resuming:  # one resume at a time; the later takes over
            await self._resume(hello, context, base)

    async def _resume(self, hello: Hello, context: grpc.aio.ServicerContext, base: CallContext) -> None:
        resume = hello.resume
        try:
            if not hmac.compare_digest(resume.resume_token.encode(), self.welcome.resume_token.encode()):
                raise errors.SessionTokenError(f"that is not the resume token of session {self.session_id}")
            caller = base
            if self.authentication is not None:
                caller = dataclasses.replace(base, headers={**base.headers, **_lower(hello.metadata)})
                caller = await self.authentication.authenticate(caller)
            if _who(caller) != _who(self.base):
                raise errors.SessionTokenError(f"session {self.session_id} belongs to another principal")
            missed = self.replay.after(resume.received)
        except errors.A2AError as exc:
            log.info("resuming session %s refused: %s", self.session_id, exc.message)
            if self.debug:
                debuglog.log_refusal(hello, exc.message, base.peer)
            await abort(context, exc)
        old = self._connection
        self._detach()
        if old is not None:  # the old connection still looked alive here: it is over now
            old.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        welcome = Welcome()
        welcome.CopyFrom(self.welcome)
        welcome.resumed = True
        welcome.received = self._received
        await context.write(ServerFrame(welcome=welcome))
        self.resumes.append((hello, welcome))
        if self.debug:
            debuglog.log_handshake(hello, welcome, base.peer)
        # What the client missed, then whatever the pump kept meanwhile, then live.
        position = resume.received
        while position < self.replay.sent:
            # The kept frames the client missed, then those the pump kept meanwhile: read without
            # forgetting them, since the client has not acknowledged them yet.
            pending = missed if missed else self.replay.since(position)
            missed = []
            for write in batched(pending, min(self._max_frame, MAX_BATCH_BYTES)):
                await context.write(write)
            position += len(pending)
        self._conn = context
        self._connection = asyncio.current_task()  # serve() takes it from here
        if self.quota is not None:
            self.quota.attached(self)
        log.info(
            "session %s resumed by %s at frame %d (%d sent again)",
            self.session_id,
            base.peer or "?",
            resume.received,
            position - resume.received,
        )

    # -- one connection -----------------------------------------------------------------------------

    async def serve(
        self, frames: AsyncIterator[ClientFrame | _Undecodable], context: grpc.aio.ServicerContext
    ) -> None:
        """Serve the session on this connection until it ends: the session ends (Goodbye, an error
        about the session, the server ending it) or detaches (the connection dropped, the peer
        stopped beating)."""
        loop = asyncio.get_running_loop()
        self._conn = context
        self._connection = asyncio.current_task()
        self._last_seen = loop.time()
        self._served = True
        if self._going_away is not None:  # the server drains: this connection is told too
            self._tell_going_away()
        reader = loop.create_task(self._read(frames), name=f"session-{self.session_id}-reader")
        watch = loop.create_task(self._heartbeats(), name=f"session-{self.session_id}-heartbeats")
        ending = loop.create_task(self._ending.wait(), name=f"session-{self.session_id}-end")
        failure: BaseException | None = None
        detach = False
        try:
            done, _ = await asyncio.wait({reader, watch, ending}, return_when=asyncio.FIRST_COMPLETED)
            if ending in done:  # the server ends the session: say why, then end it cleanly
                await self._out.put(ServerFrame(goodbye=Goodbye(reason=self._goodbye)))
            elif watch in done:  # the peer is silent: dead, or its network is
                detach = True
                failure = errors.UnavailableError(
                    f"the session's peer sent nothing for {self._beat * self._missed:g} s "
                    f"({self._missed} heartbeats): declared dead"
                    + (
                        f"; the session waits {self.settings.resume_grace:g} s to be resumed"
                        if self._resumable()
                        else ""
                    )
                )
            elif reader.cancelled() or isinstance(
                reader.exception(), (grpc.RpcError, asyncio.InvalidStateError)
            ):
                detach = True  # the connection broke under the reader
            elif reader.exception() is not None:
                failure = reader.exception()
            elif not self._ending.is_set():
                detach = True  # the stream ended without a Goodbye: a drop, as far as we know
        except asyncio.CancelledError:
            detach = True  # grpc cancels the handler of a connection that dropped
        finally:
            for task in (reader, watch, ending):
                task.cancel()
            await asyncio.wait({reader, watch, ending}, timeout=self.settings.close_seconds)
            if self._connection is asyncio.current_task():
                if detach and self._resumable():
                    self._detach()
                    self._expiry = loop.create_task(self._expire(), name=f"session-{self.session_id}-expiry")
                    log.info("session %s detached: waiting to be resumed", self.session_id)
                    if self.quota is not None:  # may end the oldest detached one of its principal
                        self.quota.detached(self)
                else:
                    await self._finish()
        if failure is not None:
            await abort(context, failure)

    def _resumable(self) -> bool:
        return self.settings.resume_grace > 0 and not self._ending.is_set()

    def _detach(self) -> None:
        self._conn = None
        self._connection = None

    async def _read(self, frames: AsyncIterator[ClientFrame | _Undecodable]) -> None:
        loop = asyncio.get_running_loop()
        async for frame in frames:
            self._last_seen = loop.time()
            if not self._take(frame):
                self._goodbye = "the client said goodbye"
                self._ending.set()  # a clean end: no resume
                return

    # -- frames from the client -------------------------------------------------------------------

    def _take(self, frame: ClientFrame | _Undecodable) -> bool:
        """Act on one frame; False when the client said Goodbye."""
        if isinstance(frame, _Undecodable):
            raise errors.InvalidRequestError(f"a frame is not a ClientFrame ({frame.problem})")
        kind = frame.WhichOneof("frame")
        if kind == "call":
            self._received += 1
            self._start(frame)
        elif kind == "batch":  # frames sent together: each as if alone
            for inner in frame.batch.frames:
                if inner.WhichOneof("frame") == "batch":
                    raise errors.InvalidRequestError("a batch holds no batch")
                if not self._take(inner):
                    return False
            if frame.batch.received:
                self.replay.ack(frame.batch.received)
        elif kind == "refresh":
            self._received += 1
            refreshing = asyncio.get_running_loop().create_task(self._refresh(frame.refresh))
            self._ends.add(refreshing)  # held until done, like a CallEnd being queued
            refreshing.add_done_callback(self._ends.discard)
        elif kind == "cancel":
            self._received += 1
            task = self._calls.get(frame.cancel.call_id)
            if task is None:
                self._end(
                    frame.cancel.call_id,
                    errors.InvalidRequestError(
                        f"no call {frame.cancel.call_id} is running in this session (it may have just ended)"
                    ),
                )
            else:
                task.cancel()
        elif kind == "credit":
            self._received += 1
            credit = frame.credit
            if credit.received:
                self.replay.ack(credit.received)
            account = self._session_credit if credit.call_id == 0 else self._credits.get(credit.call_id)
            if account is not None:  # credit for a call that just ended is normal: nothing to do
                account.give(credit.frames, credit.bytes)
        elif kind == "chunk":
            self._received += 1
            self._join(frame.chunk)
        elif kind == "heartbeat":  # a sign of life (counted by the reader), and an acknowledgement
            self.last_heartbeat = self._last_seen
            if frame.heartbeat.received:
                self.replay.ack(frame.heartbeat.received)
        elif kind == "goodbye":
            return False
        elif kind == "hello":
            raise errors.InvalidRequestError("a session has one Hello, its first frame")
        else:
            raise errors.InvalidRequestError("an empty frame (no field of ClientFrame.frame is set)")
        return True

    def _join(self, chunk: Any) -> None:
        """One chunk of a Call frame larger than the frame limit; the whole frame starts its call."""
        call_id = chunk.call_id
        if call_id == 0:
            raise errors.InvalidRequestError("call_id 0 is not a call id (call ids start at 1)")
        joined = self._joining.setdefault(call_id, bytearray())
        if joined is not None:
            joined += chunk.data
            if len(joined) > self.settings.max_joined_bytes:
                self._joining[call_id] = None  # refused: the rest of its chunks are dropped
                limit = self.settings.max_joined_bytes
                self._end(call_id, errors.InvalidRequestError(f"the call's chunks join past {limit} bytes"))
        if not chunk.last:
            return
        data = self._joining.pop(call_id)
        if data is None:
            return
        frame = _deserialize(bytes(data))
        if (
            isinstance(frame, _Undecodable)
            or frame.WhichOneof("frame") != "call"
            or frame.call.call_id != call_id
        ):
            self._end(
                call_id,
                errors.InvalidRequestError(f"the chunks of call {call_id} do not make its Call frame"),
            )
            return
        self._start(frame, joined=True)

    def _start(self, frame: ClientFrame, *, joined: bool = False) -> None:
        call = frame.call
        call_id = call.call_id
        if call_id == 0:
            raise errors.InvalidRequestError("call_id 0 is not a call id (call ids start at 1)")
        if call_id in self._calls:
            raise errors.InvalidRequestError(f"call id {call_id} is already running in this session")
        size = 0 if joined else frame.ByteSize()
        if size > self._max_frame:
            self._end(
                call_id,
                errors.LimitExceededError(
                    f"the call's frame is {size} bytes; this session's frames are at most "
                    f"{self._max_frame} (max_frame_bytes)",
                    limit="max_frame_bytes",
                    value=self._max_frame,
                ),
            )
            return
        field = call.WhichOneof("request")
        if field is None:
            self._end(
                call_id, errors.InvalidRequestError("the call names no operation (Call.request is not set)")
            )
            return
        if len(self._calls) >= self._max_calls:
            self._end(
                call_id,
                errors.TransportError(
                    f"this session already runs {len(self._calls)} calls, its limit",
                    grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED,
                ),
            )
            return
        timeout: float | None = None
        if call.HasField("timeout"):
            given = call.timeout
            if (
                given.seconds < 0
                or not 0 <= given.nanos < 1_000_000_000
                or not (given.seconds or given.nanos)
            ):
                self._end(
                    call_id, errors.InvalidRequestError("the call's timeout must be a positive duration")
                )
                return
            # Arithmetic, not Duration.ToTimedelta(): cheaper, and no OverflowError past year 9999.
            timeout = min(given.seconds + given.nanos / 1e9, MAX_CALL_TIMEOUT)
        window = self._window
        self._credits[call_id] = Account(window.call_frames, window.call_bytes)
        loop = asyncio.get_running_loop()
        self.call_methods[call_id] = (field, loop.time())
        task = loop.create_task(self._run_call(call_id, field, call, timeout))
        self._calls[call_id] = task

    def _end(self, call_id: int, exc: BaseException) -> None:
        """End a call that never started: its CallEnd goes out without blocking the reader."""
        self._queue(end_of(call_id, status_of(exc)))

    # -- running a call ---------------------------------------------------------------------------

    async def _run_call(self, call_id: int, field: str, call: Any, timeout: float | None) -> None:
        method = CALLS[field]
        request = getattr(call, field)
        if not request.tenant and self._tenant:
            request.tenant = self._tenant
        own = _lower(call.metadata) if call.metadata else {}
        headers = {**self.base.headers, **own} if own else self.base.headers
        context = dataclasses.replace(
            self.base,
            headers=headers,
            extensions=parse_extensions(headers.get("a2a-extensions")),
            tenant=request.tenant,
            deadline=deadline_after(timeout),
            call_id=f"{self.session_id}/{call_id}",
            # Each call's own trace (its Call frame's), never the Hello's: calls of one session
            # belong to many traces.
            traceparent=own.get("traceparent"),
            tracestate=own.get("tracestate"),
        )
        end: Any = status_pb2.Status()
        try:
            async with asyncio.timeout_at(context.deadline):
                if method.streaming:
                    # Events are numbered by the task's event log where the operation knows it
                    # (resume reads from there); else by their position in the call.
                    cursor = EventCursor()
                    numbered = dataclasses.replace(context, cursor=cursor)
                    stream = self.service.stream(method.name)(request, numbered)
                    position = 0
                    async with contextlib.aclosing(stream) as events:
                        async for event in events:
                            position += 1
                            seq = position if cursor.seq is None else cursor.seq
                            await self._emit(call_id, event_bytes(call_id, seq, event))
                else:
                    response = await self.service.unary(method.name)(request, context)
                    # The response ends the call: one frame, no CallEnd (a write per call saved).
                    await self._emit(call_id, event_bytes(call_id, 1, response, last=True))
                    end = None
        except asyncio.CancelledError:
            end = _CANCELLED
        except TimeoutError:
            end = status_of(
                errors.DeadlineExceededError(
                    f"{method.name} did not finish within its {timeout:g} s",
                    grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            )
        except Exception as exc:
            end = status_of(exc)
        finally:
            self._calls.pop(call_id, None)
            self._credits.pop(call_id, None)
            self.call_methods.pop(call_id, None)
            self._last_call_ended = asyncio.get_running_loop().time()
        if end is not None:  # else the last event said it
            with contextlib.suppress(asyncio.CancelledError):
                await self._out.put(end_of(call_id, end))
        if self._going_away is not None and not self._calls:  # draining, and its last call is over
            self.end("the server is draining")

    async def _emit(self, call_id: int, frame: bytes) -> None:
        """Send one CallEvent (its serialized frame) once the call's and the session's credit allow
        it (module :mod:`a2a_grpc.session.credit`): a client that does not read pauses this call's
        producer."""
        size = len(frame)
        if size <= self._max_frame:
            await self._spend(call_id, size)
            await self._out.put(frame)
            return
        # Larger than the limit: its bytes go in chunks, each a frame for credit.
        parts = pieces(frame, self._max_frame)
        for i, data in enumerate(parts):
            chunk = ServerFrame(chunk=Chunk(call_id=call_id, data=data, last=i == len(parts) - 1))
            await self._spend(call_id, chunk.ByteSize())
            await self._out.put(chunk)

    async def _spend(self, call_id: int, size: int) -> None:
        account = self._credits.get(call_id)
        if account is not None:
            await account.spend(size)
        await self._session_credit.spend(size)

    async def _refresh(self, refresh: Any) -> None:
        """New credentials for the next calls, checked as the Hello's were: the same principal,
        or refused (the session keeps its earlier ones). Answered with a CallEnd."""
        status: Any = status_pb2.Status()
        try:
            if refresh.call_id == 0:
                raise errors.InvalidRequestError("call_id 0 is not a call id (call ids start at 1)")
            candidate = dataclasses.replace(
                self.base, headers={**self.base.headers, **_lower(refresh.metadata)}, principal=None
            )
            if self.authentication is not None:
                candidate = await self.authentication.authenticate(candidate)
                if _who(candidate) != _who(self.base):
                    raise errors.PermissionDeniedError(
                        "the new credentials prove another principal than the session's: "
                        "it keeps the earlier ones"
                    )
            self.base = candidate
            log.info("session %s: credentials refreshed", self.session_id)
        except errors.A2AError as exc:
            status = status_of(exc)
        await self._out.put(end_of(refresh.call_id, status))

    # -- writing, beating, ending ------------------------------------------------------------------

    async def _run_pump(self) -> None:
        """Take the queued frames in order, count and keep those that matter to calls (the replay),
        and write them to the connection, if there is one: what is ready at once goes in one write,
        as a Batch of up to the frame limit (a write into grpc costs more than the frame it
        carries). Detached, frames go to the replay only (heartbeats are dropped)."""
        out, replay, limit = self._out, self.replay, min(self._max_frame, MAX_BATCH_BYTES)
        carry: ServerFrame | bytes | None = None
        while True:
            frame = carry if carry is not None else await out.get()
            carry = None
            if frame is None:  # the end
                return
            ready = [serialize(frame)]
            if _counted(frame):
                replay.add(ready[0])
            size, ended = BATCH_OVERHEAD + len(ready[0]), False
            while not out.empty() and len(ready) < MAX_BATCH:
                following = out.get_nowait()
                if following is None:
                    ended = True
                    break
                data = serialize(following)
                if size + len(data) + BATCH_OVERHEAD > limit:
                    carry = following  # the next write's first frame
                    break
                if _counted(following):
                    replay.add(data)
                ready.append(data)
                size += len(data) + BATCH_OVERHEAD
            conn = self._conn
            if conn is not None:
                try:
                    await conn.write(ready[0] if len(ready) == 1 else batch_bytes(ready, self._received))
                except Exception as exc:  # the connection is going: the replay keeps what matters
                    log.debug("session %s: a write failed (%s)", self.session_id, type(exc).__name__)
            if ended:
                return

    async def _heartbeats(self) -> None:
        """Beat every interval; return when the peer has been silent for ``missed`` intervals."""
        loop = asyncio.get_running_loop()
        count = 0
        while True:
            await asyncio.sleep(self._beat)
            silent = loop.time() - self._last_seen
            if silent > self._beat * self._missed:
                log.warning(
                    "session %s: nothing from %s for %.1f s (%d heartbeats): declaring it dead",
                    self.session_id,
                    self.base.peer or "the client",
                    silent,
                    self._missed,
                )
                return
            count += 1
            await self._out.put(ServerFrame(heartbeat=Heartbeat(count=count, received=self._received)))

    async def _expire(self) -> None:
        """A detached session: end it ``resume_grace`` seconds after its last call ended (calls
        still running keep it), ``max_detached`` seconds after it detached at most."""
        loop = asyncio.get_running_loop()
        detached = loop.time()
        limit = detached + self.settings.max_detached
        while True:
            now = loop.time()
            if self._calls:
                wake = limit
            else:
                wake = min(limit, max(self._last_call_ended, detached) + self.settings.resume_grace)
            if now >= wake:
                break
            await asyncio.sleep(min(wake - now, 1.0))
        log.info("session %s ended: nobody resumed it", self.session_id)
        await self._finish()

    async def _finish(self) -> None:
        """End the session: its calls end (their tasks go on), what is queued is written if a
        connection is attached, the pump stops."""
        if self._finishing:
            return
        self._finishing = True
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()
        calls = list(self._calls.values())
        for task in calls:
            task.cancel()
        if calls:
            await asyncio.wait(calls, timeout=self.settings.close_seconds)
        pump = self._pump
        if pump is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._out.put_nowait(None)  # let the pump flush what is queued (the calls' CallEnds)
            done, _ = await asyncio.wait({pump}, timeout=self.settings.close_seconds)
            if not done:
                pump.cancel()
        for task in list(self._ends):  # CallEnds the pump never took: no one reads them now
            task.cancel()
        self._conn = None
        self.ended.set()  # after the flush: whoever waits for it (a stopping server) may cut now
        if self.quota is not None:
            self.quota.ended(self)
        if self._on_ended is not None:
            self._on_ended(self)
        log.info("session %s closed", self.session_id)


def going_away_notice(retry_after: float) -> Goodbye:
    """The Goodbye a draining server sends its sessions (``retry_after``: seconds, whole, at least 1)."""
    notice = Goodbye(reason="the server is draining: open a new session for new calls", going_away=True)
    notice.retry_delay.FromNanoseconds(int(max(1, math.ceil(retry_after)) * 1e9))
    return notice


def _refusal(context: grpc.aio.ServicerContext) -> str:
    """The ``a2a_handshake_duration_seconds`` outcome of a handshake that did not complete: the
    status it was aborted with tells, unless the peer left (it cancelled, or the server stopped)."""
    code = context.code()
    if context.cancelled() or code is None or code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        return "failed"
    return "timeout" if code == grpc.StatusCode.DEADLINE_EXCEEDED else "refused"


def _who(context: CallContext) -> tuple[str, str] | None:
    principal = context.principal
    return None if principal is None else (principal.id, principal.tenant)


class SessionHost:
    """``SessionService/Connect`` over ``service`` (the call seam of the agent's operations), and
    the sessions it holds. ``card`` gives the card the handshake checks skills against;
    ``context_of`` the base context of a stream (its peer, its client certificate)."""

    def __init__(
        self,
        service: Service,
        card: Callable[[], Awaitable[types.AgentCard]],
        settings: SessionSettings | None = None,
        authentication: Authentication | None = None,
        context_of: Callable[[grpc.aio.ServicerContext], CallContext] | None = None,
        quota: SessionQuota | None = None,
        debug: bool = False,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.service = service
        self.card = card
        self.forwarder = forwarder
        """Replicas: writes this host's sessions in the session directory and forwards the resumes
        of sessions that live on another replica (:mod:`a2a_grpc.session.forward`); None: one
        process, whose sessions resume here only."""
        if forwarder is not None:
            forwarder.sessions = self.sessions_open
        self.debug = debug
        """Log each session's handshake in full, credentials redacted (``ObservabilitySettings.debug``)."""
        self.quota = quota
        """Sessions per principal (open, and waiting to be resumed); None: not counted."""
        self.settings = settings or SessionSettings()
        self.authentication = authentication
        self.context_of = context_of
        self.sessions: dict[str, ServerSession] = {}
        """The sessions open now (attached to a connection or waiting to be resumed), by id."""
        self._expired: collections.OrderedDict[str, None] = collections.OrderedDict()
        """The ids of the sessions that ended, oldest first (at most EXPIRED_REMEMBERED)."""
        self._retry_after: float | None = None  # set once the server drains (go_away)

    async def _connect(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> None:
        base = (
            self.context_of(context)
            if self.context_of is not None
            else CallContext(peer=context.peer(), front="session")
        )
        frames = aiter(requests)
        started = time.perf_counter()
        left = False
        elsewhere = False  # a resume of a session this host does not hold: forwarded
        try:
            hello = await self._hello(frames, context)
            if hello is None:  # the client closed its side (or went away) before its Hello
                left = True
                await abort(context, errors.InvalidRequestError("the stream ended before its Hello"))
            if self._retry_after is not None and not hello.HasField("resume"):
                # Draining: no new session (a resume may still fetch what its calls sent).
                await abort(
                    context,
                    errors.ServerDrainingError(
                        "the server is draining: it opens no new session; "
                        "try again, another replica may answer",
                        retry_after=self._retry_after,
                    ),
                )
            if hello.HasField("resume"):
                held = await self._resumable(hello, context)
                if held is None:
                    elsewhere = True
                else:
                    session = held
                    await session.resume(hello, context, base)
            else:
                card = await self.card()
                session = ServerSession(
                    self.service,
                    card,
                    self.settings,
                    self.authentication,
                    base,
                    on_ended=self._forget,
                    quota=self.quota,
                    debug=self.debug,
                    on_open=self._entered if self.forwarder is not None else None,
                )
                try:
                    await session.open(hello, context)
                except BaseException:
                    if self.quota is not None:  # refused or dropped at its handshake: it never counted
                        self.quota.ended(session)
                    raise
        except BaseException:
            handshake_observed("failed" if left else _refusal(context), started)
            raise
        if elsewhere:
            assert self.forwarder is not None
            await self.forwarder.forward(hello, frames, context, base, self._refusal)
            return
        if hello.HasField("resume"):
            handshake_observed("resumed", started)
        else:
            handshake_observed("opened", started)
            self.sessions[session.session_id] = session
            SESSIONS_ACTIVE.inc()
            if self._retry_after is not None:  # the server began to drain during this handshake
                session.go_away(self._retry_after)
        await session.serve(frames, context)

    def _forget(self, session: ServerSession) -> None:
        """A session ended: it is no longer open, and resuming it says "expired"."""
        if self.sessions.pop(session.session_id, None) is not None:
            SESSIONS_ACTIVE.dec()
        self._expired[session.session_id] = None
        while len(self._expired) > EXPIRED_REMEMBERED:
            self._expired.popitem(last=False)

    async def _entered(self, session: ServerSession) -> None:
        assert self.forwarder is not None
        await self.forwarder.entered(session.session_id, session.welcome.resume_token, session.base)

    def sessions_open(self) -> list[str]:
        """The ids of the sessions open now (attached or waiting to be resumed)."""
        return list(self.sessions)

    def _refusal(self, wanted: str) -> errors.A2AError:
        """Why a session not held here cannot be resumed here."""
        shown = errors.echo(wanted, 64)
        if wanted in self._expired:
            return errors.SessionExpiredError(f"session {shown} ended: it was not resumed in time")
        return errors.SessionUnknownError(f"no session {shown} was opened here")

    async def _hello(
        self, frames: AsyncIterator[ClientFrame | _Undecodable], context: grpc.aio.ServicerContext
    ) -> Hello | None:
        """The stream's first frame, a Hello (an error status ends the stream otherwise); None if
        the stream ended before any frame came."""
        timeout = self.settings.handshake_timeout
        try:
            async with asyncio.timeout(timeout):
                first = await anext(frames)
        except TimeoutError:
            await abort(
                context,
                errors.DeadlineExceededError(
                    f"the session handshake did not complete: no Hello within {timeout:g} s "
                    "(the server's handshake timeout)",
                    grpc_code=grpc.StatusCode.DEADLINE_EXCEEDED,
                ),
            )
        except StopAsyncIteration:
            return None
        if isinstance(first, _Undecodable):
            await abort(
                context, errors.InvalidRequestError(f"the first frame is not a ClientFrame ({first.problem})")
            )
        kind = first.WhichOneof("frame")
        if kind != "hello":
            await abort(
                context,
                errors.InvalidRequestError(
                    f"a session opens with a Hello frame, not {kind or 'an empty frame'}"
                ),
            )
        return first.hello

    async def _resumable(self, hello: Hello, context: grpc.aio.ServicerContext) -> ServerSession | None:
        """The session ``hello`` resumes, if held here; None if another replica may hold it (the
        forwarder asks the session directory); else the stream ends with the typed refusal."""
        wanted = hello.resume.session_id
        session = self.sessions.get(wanted)
        if session is None or session.finishing:
            if session is None and self.forwarder is not None and wanted not in self._expired:
                return None  # never held here: it may live on another replica
            error = self._refusal(wanted)
            log.info("resuming a session refused: %s", error.message)
            if self.debug:
                debuglog.log_refusal(hello, error.message, context.peer())
            await abort(context, error)
        assert session is not None
        return session

    def handler(self, *, count_bytes: bool = False) -> grpc.GenericRpcHandler:
        """``SessionService/Connect``; with ``count_bytes`` every frame's bytes count in the
        ``session`` binding's ``a2a_received_bytes_total`` and ``a2a_sent_bytes_total``."""
        method = grpc.stream_stream_rpc_method_handler(
            self._connect,
            request_deserializer=counting_deserializer("session", _deserialize)
            if count_bytes
            else _deserialize,
            response_serializer=counting_serializer("session", serialize) if count_bytes else serialize,
        )
        return grpc.method_handlers_generic_handler(SESSION_SERVICE.full_name, {"Connect": method})

    def go_away(self, retry_after: float) -> None:
        """The server drains: refuse new sessions (ServerDrainingError advising ``retry_after``
        seconds) and tell every open one to go away (:meth:`ServerSession.go_away`)."""
        self._retry_after = retry_after
        for session in list(self.sessions.values()):
            session.go_away(retry_after)
        if self.forwarder is not None:  # and every session forwarded through here
            self.forwarder.go_away(going_away_notice(retry_after), retry_after)

    async def quiet(self) -> None:
        """Until every session open now has ended (after :meth:`go_away`, each ends with its last
        call), and every forwarded one."""
        waits: list[Awaitable[object]] = [s.ended.wait() for s in list(self.sessions.values())]
        if self.forwarder is not None:
            waits.append(self.forwarder.quiet())
        await asyncio.gather(*waits)

    async def close(self, reason: str, timeout: float | None = None) -> None:
        """End every session with a Goodbye saying ``reason`` (their calls end; their tasks
        do not), waiting up to ``timeout`` seconds (default: ``SessionSettings.close_seconds``) for
        them to be gone."""
        if timeout is None:
            timeout = self.settings.close_seconds
        open_now = list(self.sessions.values())
        for session in open_now:
            session.end(reason)
        waits = [asyncio.ensure_future(s.ended.wait()) for s in open_now]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=timeout)
            for wait in pending:
                wait.cancel()
        if self.forwarder is not None:  # the forwarded ones are cut; the directory hears this replica stops
            await self.forwarder.aclose(reason, timeout)
