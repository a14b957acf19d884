"""Connections to peers, opened once and shared: :class:`PeerPool`.

A session carries any number of calls at once, so an agent that calls the same peer again and
again (a planner's delegations) wants one session per peer, not one per call: a handshake per call
would cost what the session binding exists to save. A pool opens a peer's connection on first use,
lends it to every caller, and closes it once nobody has used it for ``idle_seconds``
(:class:`PoolSettings`)::

    pool = PeerPool(open_peer, idle_seconds=60)      # open_peer(key) -> async context manager
    async with pool.lease("10.0.0.7:50051") as peer:  # opened once, shared while it lives
        reply = await peer.send_message(...)
    await pool.aclose()                               # closes every peer; the pool stays usable

What ``open_peer`` yields is the pool's to hold (a :class:`~a2a_grpc.session.client.Session`, an
``A2AClient``, or anything that holds one). A held value that is dead (a Session whose stream
failed, see :attr:`Session.alive <a2a_grpc.session.client.Session.alive>`, or anything whose
``alive`` attribute is False) is closed and opened again at the next lease; a lease already running
keeps what it has and sees its call fail with the session's typed error (resuming a session is
not the pool's work). A failed opening is not kept: the next lease tries again, after a wait that
grows with the failures in a row (full jitter from ``reopen_backoff_base`` doubling up to
``reopen_backoff_cap``: :func:`~a2a_grpc.resilience.full_jitter`), shared by every lease of that
peer, so that the agents of a mesh whose peer restarted do not all dial it again at once.

A Session a draining server told to go away (:attr:`Session.going_away
<a2a_grpc.session.client.Session.going_away>`) is not alive either: the next lease opens a new one
(on a new connection: behind a load balancer, another replica; the same server refuses it with
ServerDrainingError while it drains). The old one is closed once the leases using it have ended,
so that their calls run to their end.

To call an agent by what it does rather than where it is, a
:class:`~a2a_grpc.mesh.routing.Router` leases through a pool keyed by address: ``async with
router.lease(pool, skill, context_id) as (address, peer):`` (the replica that context sticks to,
skipping those whose circuit breaker is open; docs/routing.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from a2a_grpc.resilience import Clock, full_jitter

__all__ = ["PeerPool", "PoolSettings"]

log = logging.getLogger("a2a_grpc.session")

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How a pool keeps connections to peers (the reference agent's ``delegate``)."""

    idle_seconds: float = 60.0
    """A connection to a peer that nobody has used for this long is closed."""
    max_peers: int = 64
    """Connections held at most; past it, the least recently used one that nobody uses is closed."""
    close_seconds: float = 5.0
    """How long closing one peer's connection may take before it is left to the garbage collector."""
    going_away_seconds: float = 120.0
    """How long a connection whose server is going away is kept for the leases still using it
    (their calls run on) before it is closed under them; a server's drain is over well before that
    (its grace period; Kubernetes allows 30 s by default)."""
    reopen_backoff_base: float = 0.1
    """Seconds: after a peer's connection failed to open, the ceiling of the wait before it is
    dialled again, doubled for each further failure in a row (each wait a uniform draw below its
    ceiling: full jitter) ..."""
    reopen_backoff_cap: float = 10.0
    """... and no ceiling grows past this many seconds. A successful opening starts afresh."""

    def __post_init__(self) -> None:
        for name in (
            "idle_seconds",
            "close_seconds",
            "going_away_seconds",
            "reopen_backoff_base",
            "reopen_backoff_cap",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be positive seconds, not {value!r}")
        if isinstance(self.max_peers, bool) or not isinstance(self.max_peers, int) or self.max_peers < 1:
            raise ValueError(f"max_peers must be at least 1, not {self.max_peers!r}")
        if self.reopen_backoff_cap < self.reopen_backoff_base:
            raise ValueError(
                f"reopen_backoff_cap ({self.reopen_backoff_cap!r}) must be at least reopen_backoff_base "
                f"({self.reopen_backoff_base!r})"
            )


class _Peer(Generic[T]):
    __slots__ = ("last_used", "left", "opening", "stack", "users")

    def __init__(self, opening: asyncio.Task[T], stack: AsyncExitStack) -> None:
        self.opening = opening
        self.stack = stack
        self.users = 0
        self.last_used = 0.0
        self.left = asyncio.Event()
        """Set whenever no lease uses it."""
        self.left.set()

    def going_away(self) -> bool:
        """Open, and its server told it to go away (see the module doc)."""
        done = self.opening.done() and not self.opening.cancelled() and self.opening.exception() is None
        return done and bool(getattr(self.opening.result(), "going_away", False))

    def alive(self) -> bool:
        if not self.opening.done():
            return True  # still opening: its waiters get its outcome
        if self.opening.cancelled() or self.opening.exception() is not None:
            return False
        return bool(getattr(self.opening.result(), "alive", True))


class PeerPool(Generic[K, T]):
    """One shared connection per key (see the module doc). ``open_peer(key)`` gives an async context
    manager whose value is lent; it is exited when the pool closes that peer. ``settings`` says
    how long idle peers are kept and how many (:class:`PoolSettings`); ``idle_seconds`` and
    ``max_peers``, if given, replace those of ``settings``. ``clock`` and ``rng``: where the
    wait before dialling a failed peer again sleeps and draws its jitter (tests pass theirs)."""

    def __init__(
        self,
        open_peer: Callable[[K], AbstractAsyncContextManager[T]],
        settings: PoolSettings | None = None,
        *,
        idle_seconds: float | None = None,
        max_peers: int | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        given: dict[str, Any] = {
            k: v for k, v in (("idle_seconds", idle_seconds), ("max_peers", max_peers)) if v is not None
        }
        self._open_peer = open_peer
        self.settings = dataclasses.replace(settings or PoolSettings(), **given)
        """Read at every use: a new one applies to the peers held too."""
        self._peers: dict[K, _Peer[T]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._leaving: set[_Peer[T]] = set()  # going away, closed once their leases end
        self._closing_all = False  # aclose runs: nothing waits for leases
        self._clock = clock or Clock()
        self._rng = rng or random.Random()
        self._failed: dict[K, int] = {}  # failed openings in a row, by key (bounded: see _enter)

    def __len__(self) -> int:
        return len(self._peers)

    def held(self, key: K) -> T | None:
        """What the pool holds for ``key`` once opened (dead or alive); None if nothing is."""
        peer = self._peers.get(key)
        if peer is None or not peer.opening.done() or peer.opening.cancelled():
            return None
        return None if peer.opening.exception() is not None else peer.opening.result()

    def keys(self) -> list[K]:
        """The keys of the peers held now."""
        return list(self._peers)

    @contextlib.asynccontextmanager
    async def lease(self, key: K) -> AsyncIterator[T]:
        """The connection to ``key``, opened if there is none (or the one held is dead), shared with
        every other lease of ``key``. The opener's error propagates; nothing is kept from it."""
        loop = asyncio.get_running_loop()
        peer = self._peers.get(key)
        if peer is not None and not peer.alive():
            self._forget(key, peer)
            peer = None
        if peer is None:
            self._trim(self.settings.max_peers - 1)  # room for this one
            stack = AsyncExitStack()
            peer = _Peer(loop.create_task(self._enter(stack, key), name=f"peer-pool-open-{key!r}"), stack)
            self._peers[key] = peer
        peer.users += 1
        peer.left.clear()
        try:
            value = await asyncio.shield(peer.opening)  # a caller that gives up does not stop it
        except BaseException:
            self._release(peer, loop.time())
            if peer.opening.done() and not peer.alive() and self._peers.get(key) is peer:
                self._forget(key, peer)
            raise
        try:
            yield value
        finally:
            self._release(peer, loop.time())
            self._reap_later()

    @staticmethod
    def _release(peer: _Peer[T], now: float) -> None:
        peer.users -= 1
        peer.last_used = now
        if not peer.users:
            peer.left.set()

    async def _enter(self, stack: AsyncExitStack, key: K) -> T:
        failed = self._failed.get(key, 0)
        if failed:
            settings = self.settings
            base, cap = settings.reopen_backoff_base, settings.reopen_backoff_cap
            await self._clock.sleep(full_jitter(failed, base, cap, self._rng.random()))
        try:
            value = await stack.enter_async_context(self._open_peer(key))
        except asyncio.CancelledError:
            raise  # closed while opening: no word on the peer
        except BaseException:
            self._failed.pop(key, None)  # re-inserted last: the oldest failures are dropped first
            self._failed[key] = failed + 1
            while len(self._failed) > 4 * self.settings.max_peers:
                del self._failed[next(iter(self._failed))]
            raise
        self._failed.pop(key, None)
        return value

    def _trim(self, limit: int) -> None:
        """Close the least recently used peers nobody uses until ``limit`` are held; if every one
        is in use, hold more for now (the reaper trims them once they are not)."""
        while len(self._peers) > limit:
            idle = [(p.last_used, k) for k, p in self._peers.items() if p.users == 0 and p.opening.done()]
            if not idle:
                return
            _, key = min(idle)
            self._forget(key, self._peers[key])

    def _forget(self, key: K, peer: _Peer[T]) -> None:
        """Stop lending ``peer`` and close it in the background (a lease still using it keeps it
        until its call ends or fails)."""
        if self._peers.get(key) is peer:
            del self._peers[key]
        task = asyncio.get_running_loop().create_task(self._close(key, peer), name=f"peer-pool-close-{key!r}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, key: K, peer: _Peer[T]) -> None:
        if not peer.opening.done():
            peer.opening.cancel()
        with contextlib.suppress(BaseException):
            await peer.opening
        if peer.going_away() and not self._closing_all:  # its server drains: its leases' calls run on
            self._leaving.add(peer)
            try:
                async with asyncio.timeout(self.settings.going_away_seconds):
                    await peer.left.wait()
            except TimeoutError:
                log.info("closing the pooled connection to %r under the leases still using it", key)
            finally:
                self._leaving.discard(peer)
        try:
            async with asyncio.timeout(self.settings.close_seconds):
                await peer.stack.aclose()
        except Exception as exc:  # closing a dead peer may fail: it is gone either way
            log.info("closing the pooled connection to %r: %s: %s", key, type(exc).__name__, exc)

    def _reap_later(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="peer-pool-reaper")

    async def _reap(self) -> None:
        """Close peers idle for ``idle_seconds``; runs while the pool holds any."""
        loop = asyncio.get_running_loop()
        while self._peers:
            await asyncio.sleep(self.settings.idle_seconds / 2)
            since = loop.time() - self.settings.idle_seconds
            for key, peer in list(self._peers.items()):
                idle = peer.users == 0 and peer.opening.done() and peer.last_used <= since
                if idle or not peer.alive():
                    self._forget(key, peer)
            self._trim(self.settings.max_peers)

    async def aclose(self) -> None:
        """Close every peer (calls still running on one end with its connection's error). The pool
        stays usable: a later lease opens its peer again."""
        if self._reaper is not None:
            self._reaper.cancel()
        self._closing_all = True
        try:
            for key, peer in list(self._peers.items()):
                self._forget(key, peer)
            for peer in list(self._leaving):  # those waiting for their leases close now
                peer.left.set()
            closing: list[Any] = list(self._closing)
            if closing:
                await asyncio.wait(closing, timeout=self.settings.close_seconds * 2)
        finally:
            self._closing_all = False
        if self._reaper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
