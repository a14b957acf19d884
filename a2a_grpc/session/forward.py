"""Resuming a session on another replica: :class:`Forwarder`.

A session lives in the process that opened it, its home (:mod:`a2a_grpc.session.directory` says
why). A replica's :class:`Forwarder` writes the homes of its own sessions in the session directory
(when each opens, before its Welcome, so that a client never holds a session id the directory does
not know; renewed while they live), and takes the resumes of sessions it does not hold: it looks
the session up, checks at its edge what it can (the resume token's and the principal's digests, its
own limits), and when the home is alive opens ``Connect`` to the home's advertised address and
passes the frames through both ways, unchanged: the client's Hello and frames up, the home's
Welcome, replay and live frames down (as bytes, never decoded), and the home's final status. The
home checks the token and the credentials again, as for any resume, and its replay sends exactly
what the client missed. Either side ending ends the other: the client leaving cancels the upstream
call (the home sees a drop and waits for the next resume), the home ending ends the client's stream
with the home's status.

What does not pass: the client's TLS certificate (the home sees the forwarder's connection), so a
deployment whose sessions authenticate by client certificate resumes them on their home only; and
the client's address (the home logs the forwarder's). Forwarding between TLS replicas is not built
(the server makes no forwarder when it serves TLS). A forwarded resume is never forwarded again
(the metadata key :data:`FORWARDED_BY` marks it), so that stale entries cannot make a loop.

Refusals are the binding's own typed errors: no entry, ``SessionUnknownError``; a home that is
not alive, or one that cannot be reached or does not answer within the handshake timeout,
``SessionExpiredError`` (the client then reads its tasks, which the task registry keeps,
with GetTask and SubscribeToTask); a token or principal that does not match the entry,
``SessionTokenError``, without contacting the home; an unreadable entry, ``SessionUnknownError``
(logged); a directory that cannot be read, ``UnavailableError`` (the client retries its resume
until ``resume_timeout``). Forwarded sessions count against this replica's session limits, and a
draining replica tells them to go away as it tells its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc

from a2a_grpc import errors
from a2a_grpc.observability import debuglog
from a2a_grpc.security.authentication import Authentication
from a2a_grpc.security.quota import SessionQuota, principal_key
from a2a_grpc.service import CallContext
from a2a_grpc.session.directory import (
    DirectoryEntryError,
    DirectoryUnavailableError,
    Home,
    SessionDirectory,
    SessionEntry,
    digest,
)
from a2a_grpc.session.frames import CONNECT, ClientFrame, Goodbye, Hello, ServerFrame, serialize
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.status import abort

__all__ = ["FORWARDED_BY", "Forwarder", "Forwarding"]

log = logging.getLogger("a2a_grpc.session")

FORWARDED_BY = "a2a-session-forwarded-by"
"""Metadata a forwarder adds to the Connect it opens to a session's home: its owner id. A replica
never forwards a Connect that carries it."""
MAX_CHANNELS = 256
"""Channels to other replicas kept open at most; past it the least recently used one closes."""
_NOT_PASSED = frozenset(
    {"content-type", "te", "user-agent", "host", "accept-encoding", "grpc-accept-encoding"}
)


def passed_metadata(metadata: Iterable[tuple[str, Any]] | None) -> list[tuple[str, Any]]:
    """The client's call metadata as a forwarder passes it on: all but the transport's own keys."""
    return [
        (k, v)
        for k, v in metadata or ()
        if not k.startswith((":", "grpc-")) and k not in _NOT_PASSED and k != FORWARDED_BY
    ]


def caller_digest(context: CallContext) -> str:
    """Who opened a session, as its entry keeps it (the digest of its principal key)."""
    return digest(principal_key(context))


class Forwarding:
    """One resumed connection passed through to the session's home."""

    def __init__(self, session_id: str, context: grpc.aio.ServicerContext, home: Home) -> None:
        self.session_id = session_id
        self.context = context
        self.home = home
        self.ended = asyncio.Event()
        self._task = asyncio.current_task()
        self._down = asyncio.Lock()  # one writer towards the client at a time
        self._live = False  # the home's Welcome has gone down: other frames may follow
        self._going_away: Goodbye | None = None
        self._told = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._undecodable = False  # the client sent bytes that are not a frame

    def end(self, reason: str) -> None:
        """Cut it (a limit, or the forwarder stops): both sides end; the home waits for a resume."""
        log.info("forwarded session %s cut: %s", self.session_id, reason)
        if self._task is not None and not self.ended.is_set():
            self._task.cancel()

    def go_away(self, notice: Goodbye) -> None:
        """This replica drains: tell the client to go away (its running calls go on through it)."""
        self._going_away = notice
        if self._live:
            self._tell()

    def _tell(self) -> None:
        if self._told or self._going_away is None:
            return
        self._told = True
        task = asyncio.get_running_loop().create_task(
            self._write(serialize(ServerFrame(goodbye=self._going_away)))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, data: bytes) -> None:
        async with self._down:
            with contextlib.suppress(Exception):  # the stream is ending: its end says why
                await self.context.write(data)

    async def run(self, call: Any, hello: Hello, frames: AsyncIterator[Any], timeout: float) -> None:
        """Pass ``hello`` and ``frames`` up, the home's frames down, until either side ends."""
        try:
            async with asyncio.timeout(timeout):
                await call.write(ClientFrame(hello=hello))
                first = await call.read()
        except TimeoutError:
            raise _gone(self.session_id, self.home, f"it did not answer within {timeout:g} s") from None
        except grpc.RpcError as exc:
            await _refused_by_home(self.context, exc, self.session_id, self.home)
        if first is grpc.aio.EOF:
            await _ended_by_home(self.context, call, self.session_id, self.home)
        async with self._down:
            await self.context.write(first)
        self._live = True
        if self._going_away is not None:
            self._tell()
        loop = asyncio.get_running_loop()
        down = loop.create_task(self._pass_down(call), name=f"forward-{self.session_id}-down")
        up = loop.create_task(self._pass_up(call, frames), name=f"forward-{self.session_id}-up")
        try:
            await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
            if not self._undecodable:
                await down  # the home's end ends both sides (the client's half-close waits for it)
        finally:
            for task in (down, up):
                task.cancel()
            await asyncio.wait({down, up}, timeout=1.0)
        if self._undecodable:  # what the home would have said, had it read those bytes
            raise errors.InvalidRequestError(
                "a frame is not a ClientFrame (protobuf could not decode its bytes)"
            )
        await _ended_by_home(self.context, call, self.session_id, self.home)

    async def _pass_down(self, call: Any) -> None:
        try:
            while (data := await call.read()) is not grpc.aio.EOF:
                async with self._down:
                    await self.context.write(data)
        except grpc.RpcError:
            pass  # the call's status says what happened (_ended_by_home)

    async def _pass_up(self, call: Any, frames: AsyncIterator[Any]) -> None:
        try:
            async for frame in frames:
                if not isinstance(frame, ClientFrame):  # bytes that are not a frame: the session ends
                    self._undecodable = True
                    return
                await call.write(frame)
            await call.done_writing()
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the home's side ended: its status ends the client's (_pass_down sees it)


def _gone(session_id: str, home: Home, why: str) -> errors.SessionExpiredError:
    return errors.SessionExpiredError(
        f"session {errors.echo(session_id)} lived on replica {home.address} ({why}): it ended with it; "
        "its tasks go on (read them with GetTask or SubscribeToTask)"
    )


async def _refused_by_home(
    context: grpc.aio.ServicerContext, exc: grpc.RpcError, session_id: str, home: Home
) -> None:
    """The home failed the resume before its Welcome: a home that cannot be reached (UNAVAILABLE
    from the transport, no A2A error) is gone; anything else (its own typed refusal) passes
    unchanged."""
    trailing = _trailers(exc)
    code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else grpc.StatusCode.UNAVAILABLE
    typed = any(k == "grpc-status-details-bin" for k, _ in trailing)
    if code == grpc.StatusCode.UNAVAILABLE and not typed:
        await abort(context, _gone(session_id, home, "it cannot be reached"))
    details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else ""
    await context.abort(code, details or "", tuple(trailing))


async def _ended_by_home(context: grpc.aio.ServicerContext, call: Any, session_id: str, home: Home) -> None:
    """The home's stream ended: the client's ends with the same status."""
    code, details, trailing = await call.code(), await call.details(), await call.trailing_metadata()
    kept = passed_metadata(trailing) + [(k, v) for k, v in trailing or () if k == "grpc-status-details-bin"]
    if code == grpc.StatusCode.OK:
        context.set_trailing_metadata(tuple(kept))
        return
    log.info("forwarded session %s: its home %s ended the stream (%s)", session_id, home.address, code.name)
    await context.abort(code, details or "", tuple(kept))


def _trailers(exc: grpc.RpcError) -> list[tuple[str, Any]]:
    trailing = exc.trailing_metadata() if isinstance(exc, grpc.aio.AioRpcError) else None
    return list(trailing or ())


class Forwarder:
    """A replica's part in the session directory: the homes of its sessions, and the resumes of
    sessions that live elsewhere (see the module doc). ``channel_of`` opens a channel to another
    replica's address."""

    def __init__(
        self,
        directory: SessionDirectory,
        home: Home,
        settings: SessionSettings,
        channel_of: Callable[[str], grpc.aio.Channel],
        authentication: Authentication | None = None,
        quota: SessionQuota | None = None,
        debug: bool = False,
    ) -> None:
        self.directory = directory
        self.home = home
        self.settings = settings
        self.authentication = authentication
        self.quota = quota
        self.debug = debug
        self.forwarded: set[Forwarding] = set()
        """The connections being passed through now."""
        self._channel_of = channel_of
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._renewing: asyncio.Task[None] | None = None
        self._reachable = True  # the directory answered its last write
        self._unwritten: dict[str, SessionEntry] = {}  # entries of sessions opened while it did not
        self.sessions: Callable[[], Iterable[str]] = tuple
        """The ids of this replica's sessions now (set by the session host), renewed together."""
        self._going_away: Goodbye | None = None
        self._retry_after: float | None = None

    @property
    def lease(self) -> float:
        """Seconds an entry (and this replica's liveness) lives unless renewed."""
        return 3 * self.settings.home_refresh_seconds

    # -- the homes of this replica's sessions -----------------------------------------------------

    async def entered(self, session_id: str, token: str, context: CallContext) -> None:
        """A session opens here: write its entry (before its Welcome). While the directory does not
        answer, nobody waits for it: the entry is kept and written once the renewal reaches it again
        (until then the session resumes on this replica only)."""
        if self._renewing is None:  # the first session: this replica announces itself first
            self._renewing = asyncio.get_running_loop().create_task(
                self._renew(), name="session-directory-renewal"
            )
            await self._renew_once()
        entry = SessionEntry(self.home, digest(token), caller_digest(context))
        if not self._reachable:  # one failed write is enough: the renewal finds when it is back
            self._unwritten[session_id] = entry
            return
        try:
            await self.directory.enter(session_id, entry, self.lease)
        except DirectoryUnavailableError as exc:
            self._unreachable(exc)
            self._unwritten[session_id] = entry

    def _unreachable(self, exc: DirectoryUnavailableError) -> None:
        if self._reachable:
            log.warning(
                "the session directory does not answer (%s): sessions opened meanwhile resume on this "
                "replica only until it does (retried every %g s)",
                exc,
                self.settings.home_refresh_seconds,
            )
        self._reachable = False

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.settings.home_refresh_seconds)
            await self._renew_once()

    async def _renew_once(self) -> None:
        open_now = list(self.sessions())
        if self._unwritten:  # only those still open (bounded by the sessions held)
            held = set(open_now)
            self._unwritten = {s: e for s, e in self._unwritten.items() if s in held}
        try:
            if self._unwritten:
                await self.directory.enter_many(self._unwritten, self.lease)
                self._unwritten = {}
            await self.directory.renew(self.home, open_now, self.lease)
        except DirectoryUnavailableError as exc:
            self._unreachable(exc)
            return
        if not self._reachable:
            log.info("the session directory answers again: every session here resumes on any replica")
            self._reachable = True

    # -- resumes of sessions that live elsewhere --------------------------------------------------

    async def forward(
        self,
        hello: Hello,
        frames: AsyncIterator[Any],
        context: grpc.aio.ServicerContext,
        base: CallContext,
        refusal: Callable[[str], errors.A2AError],
    ) -> None:
        """Serve a resume of a session not held here (see the module doc); ``refusal`` is the
        error this replica gives on its own (unknown, or expired here)."""
        resume = hello.resume
        wanted = resume.session_id
        try:
            if any(k == FORWARDED_BY for k, _ in context.invocation_metadata() or ()):
                raise refusal(wanted)  # forwarded once already: never twice
            entry = await self._entry(wanted, refusal)
            if not entry.token_matches(resume.resume_token):
                raise errors.SessionTokenError(
                    f"that is not the resume token of session {errors.echo(wanted)}"
                )
            caller = base
            if self.authentication is not None:
                headers = {**base.headers, **{str(k).lower(): str(v) for k, v in hello.metadata.items()}}
                caller = await self.authentication.authenticate(dataclasses.replace(base, headers=headers))
            if not entry.principal_matches(principal_key(caller)):
                raise errors.SessionTokenError(f"session {errors.echo(wanted)} belongs to another principal")
            if entry.home.owner == self.home.owner:
                raise errors.SessionExpiredError(
                    f"session {errors.echo(wanted)} ended: it was not resumed in time"
                )
            if not await self._alive(entry.home.owner):
                raise _gone(wanted, entry.home, "that replica is gone")
            if self._retry_after is not None:
                raise errors.ServerDrainingError(
                    "the server is draining: resume the session through another replica",
                    retry_after=self._retry_after,
                )
        except errors.A2AError as exc:
            log.info("resuming session %s here refused: %s", errors.echo(wanted), exc.message)
            if self.debug:
                debuglog.log_refusal(hello, exc.message, base.peer)
            await abort(context, exc)
        forwarding = Forwarding(wanted, context, entry.home)
        if self.quota is not None:
            try:
                self.quota.open(forwarding, caller)
            except errors.A2AError as exc:
                await abort(context, exc)
        self.forwarded.add(forwarding)
        metadata = [*passed_metadata(context.invocation_metadata()), (FORWARDED_BY, self.home.owner)]
        call = self._channel(entry.home.address).stream_stream(
            CONNECT, request_serializer=serialize, response_deserializer=None
        )(metadata=tuple(metadata))
        if self._going_away is not None:
            forwarding.go_away(self._going_away)
        log.info("session %s: resumed here, forwarded to its home %s", wanted, entry.home.address)
        try:
            await forwarding.run(call, hello, frames, self.settings.handshake_timeout)
        except errors.A2AError as exc:
            await abort(context, exc)
        finally:
            call.cancel()
            forwarding.ended.set()
            self.forwarded.discard(forwarding)
            if self.quota is not None:
                self.quota.ended(forwarding)

    async def _entry(self, wanted: str, refusal: Callable[[str], errors.A2AError]) -> SessionEntry:
        try:
            entry = await self.directory.find(wanted)
        except DirectoryEntryError as exc:
            log.warning(
                "session %s: its session directory entry is unreadable (%s)", errors.echo(wanted), exc
            )
            raise errors.SessionUnknownError(
                f"session {errors.echo(wanted)} cannot be located: its session directory entry is unreadable"
            ) from None
        except DirectoryUnavailableError as exc:
            raise errors.UnavailableError(
                f"session {errors.echo(wanted)} cannot be located now: the session directory cannot be "
                f"read ({exc}); try again"
            ) from None
        if entry is None:
            raise refusal(wanted)
        return entry

    async def _alive(self, owner: str) -> bool:
        try:
            return await self.directory.alive(owner)
        except DirectoryUnavailableError as exc:
            raise errors.UnavailableError(
                f"the session directory cannot be read ({exc}); try again"
            ) from None

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.pop(address, None)
        if channel is None:
            channel = self._channel_of(address)
            if len(self._channels) >= MAX_CHANNELS:  # the least recently used goes
                oldest = next(iter(self._channels))
                self._close_later(self._channels.pop(oldest))
        self._channels[address] = channel  # most recently used last
        return channel

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        task = asyncio.get_running_loop().create_task(channel.close(self.settings.close_seconds))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- draining, stopping -----------------------------------------------------------------------

    def go_away(self, notice: Goodbye, retry_after: float) -> None:
        """This replica drains: each forwarded session is told to go away; new forwards are refused."""
        self._going_away = notice
        self._retry_after = retry_after
        for forwarding in list(self.forwarded):
            forwarding.go_away(notice)

    async def quiet(self) -> None:
        """Until every forwarded session has ended (a client told to go away closes its session
        once its calls are over)."""
        waits = [f.ended.wait() for f in list(self.forwarded)]
        if waits:
            await asyncio.gather(*waits)

    async def aclose(self, reason: str, timeout: float) -> None:
        """Cut what is forwarded, mark this replica gone, close the channels and the directory."""
        for forwarding in list(self.forwarded):
            forwarding.end(reason)
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.wait({self._renewing}, timeout=timeout)
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=timeout)
        started = time.monotonic()
        try:
            await self.directory.depart(self.home)
        except DirectoryUnavailableError as exc:  # its liveness lapses within the lease instead
            log.warning("the session directory cannot be told this replica stops (%s)", exc)
        for channel in self._channels.values():
            await channel.close(max(timeout - (time.monotonic() - started), 0))
        self._channels.clear()
        await self.directory.aclose()
