"""One replica's place in the capability registry, kept fresh: :class:`Registration`.

``start`` registers the card (a refusal or an unreachable Redis is raised: a server started with
``--registry`` that cannot register says so at once); then a heartbeat every
``heartbeat_seconds``, each a little early or late at random (up to 10 %), the first at a random
point of the first interval, so that replicas started together do not beat together. A heartbeat
carries the card's ETag only; when the registry no longer holds that card for this replica (the
card changed with :meth:`Registration.update`, the entry lapsed while Redis was away, Redis lost
its data) the card is uploaded again. A heartbeat
that fails is logged (once per outage, and when Redis is back) and counted; the replica keeps
serving, and the next beats come sooner, after a random wait below ``retry_base_seconds`` doubling
with each failure up to ``retry_cap_seconds`` (full jitter, as every retry of the library:
:func:`a2a_grpc.resilience.full_jitter`), so that the entry is back before its TTL lapses when Redis
is, and 10,000 replicas that lost Redis together do not come back at once. ``stop`` ends the
heartbeats and removes the entry, so that callers stop routing to a replica that drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from types import TracebackType

from a2a_grpc import types
from a2a_grpc.mesh.drift import card_etag
from a2a_grpc.mesh.registry import Entry, Registry, RegistryUnavailableError
from a2a_grpc.resilience import full_jitter

__all__ = ["Registration"]

log = logging.getLogger("a2a_grpc.mesh")

_JITTER = 0.1


class Registration:
    """Registers ``card`` at ``addresses`` in ``registry`` and keeps the entry alive (see the module
    doc). ``replica``: this replica's id among its agent's (default: the first address)."""

    def __init__(
        self,
        registry: Registry,
        card: types.AgentCard,
        addresses: Sequence[str],
        *,
        replica: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        registry.check(card, addresses, replica)  # refused now rather than at start
        self.registry = registry
        self.card = card
        self.addresses = tuple(addresses)
        self.replica = replica or addresses[0]
        self.entry: Entry | None = None
        """The entry as last registered (None before ``start``)."""
        self._registered_as: tuple[str, tuple[str, ...]] | None = None  # (etag, skills) in Redis
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing = False
        self._failures = 0  # heartbeats failed in a row

    async def __aenter__(self) -> Registration:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Register, then heartbeat in the background. CardTooLargeError, RegistryUnavailableError."""
        await self.register()
        self.keep_alive()

    async def register(self) -> None:
        """Register the card now (no heartbeats). CardTooLargeError, RegistryUnavailableError."""
        await self._register()

    def keep_alive(self) -> None:
        """Heartbeat in the background from now on, until :meth:`stop` (once started, a no-op)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._beat_forever(), name="registry-heartbeat"
            )

    @property
    def beating(self) -> bool:
        """Whether the heartbeats run (they outlive a Redis outage; :meth:`stop` ends them)."""
        return self._task is not None and not self._task.done()

    def update(self, card: types.AgentCard) -> None:
        """Register ``card`` instead from the next heartbeat on (CardTooLargeError now if refused)."""
        self.registry.check(card, self.addresses, self.replica)
        self.card = card

    async def beat(self) -> str:
        """One heartbeat now: ``refreshed``, or ``uploaded`` when the card had to be registered again.
        RegistryUnavailableError."""
        etag = card_etag(self.card)
        skills = tuple(dict.fromkeys(s.id for s in self.card.skills))
        if self._registered_as == (etag, skills):
            deadline = await self.registry.heartbeat(self.card.name, self.replica, etag, skills)
            if deadline is not None:
                if self.entry is not None:
                    self.entry = _with_deadline(self.entry, deadline)
                return "refreshed"
        await self._register(upload=True)
        return "uploaded"

    async def _register(self, *, upload: bool = False) -> None:
        previous = self.entry
        self.entry = await self.registry.register(self.card, self.addresses, self.replica, upload=upload)
        self._registered_as = (self.entry.etag, self.entry.skills)
        if previous is not None and previous.name != self.entry.name:  # renamed: the old entry goes
            with contextlib.suppress(RegistryUnavailableError):
                await self.registry.deregister(previous.name, self.replica, previous.skills)

    def _interval(self) -> float:
        s = self.registry.settings
        if self._failures:
            cap = min(s.retry_cap_seconds, s.heartbeat_seconds)
            return full_jitter(self._failures, min(s.retry_base_seconds, cap), cap, self._rng.random())
        return s.heartbeat_seconds * (1 + self._rng.uniform(-_JITTER, _JITTER))

    async def _beat_forever(self) -> None:
        me = asyncio.current_task()
        # The first beat at a random point of the first interval: replicas started together (a
        # deploy, a restart of many) spread their heartbeats over the interval from the start.
        wait = self._rng.uniform(0, self.registry.settings.heartbeat_seconds)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)
            if self._stopping.is_set():
                return
            try:
                await self.beat()
            except RegistryUnavailableError as exc:
                if not self._failing:
                    log.warning("registry heartbeat of %r failed (will retry): %s", self.card.name, exc)
                self._failing = True
                self._failures += 1
            except Exception:  # a bug must not end the heartbeats silently: logged, then tried again
                log.exception("registry heartbeat of %r failed", self.card.name)
                self._failing = True
                self._failures += 1
            else:
                if self._failing:
                    log.warning("registry heartbeat of %r succeeded again", self.card.name)
                    self._failing = False
                self._failures = 0
            if me is not None and me.cancelling():
                # redis-py may swallow a cancellation that lands mid-command (it answers or fails
                # the command instead): stop asked, so stop.
                raise asyncio.CancelledError
            wait = self._interval()

    async def stop(self, *, deregister: bool = True) -> None:
        """End the heartbeats and (``deregister``) remove the entry; a registry that does not answer
        is logged, and the entry lapses by its TTL."""
        if self._task is not None:
            # Asked, not cancelled: a heartbeat under way ends first (redis-py may lose a pooled
            # connection to a command cancelled midway); cancelled only if it outlasts its timeout.
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.registry.settings.timeout_seconds * 2)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if deregister and self.entry is not None:
            try:
                await self.registry.deregister(self.entry.name, self.replica, self.entry.skills)
            except RegistryUnavailableError as exc:
                log.warning("registry: %r left to lapse by its TTL: %s", self.card.name, exc)
            self.entry = None
            self._registered_as = None


def _with_deadline(entry: Entry, deadline: float) -> Entry:
    return Entry(entry.name, entry.replica, entry.addresses, entry.etag, entry.skills, entry.card, deadline)
