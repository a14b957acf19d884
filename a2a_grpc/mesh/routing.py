"""Which replica of an agent serves a call: :class:`Router`, (skill, context) to an address.

The replicas that offer a skill come from a :class:`ReplicaSource` (the capability registry, or
:class:`StaticReplicas`: a fixed list). Each replica set gets a consistent-hash ring
(:class:`~a2a_grpc.mesh.ring.HashRing`), built again only when the set changes, so the calls of
one context go to one replica for as long as it stays (its session, its caches, its tasks), and a
replica coming or going moves about 1/N of the contexts::

    router = Router(StaticReplicas(["10.0.0.7:50051", "10.0.0.8:50051"]))
    address = await router.route("summarize", context_id)
    async with router.lease(pool, "summarize", context_id) as (address, peer):  # a PeerPool
        reply = await peer.send_message(...)

A replica whose circuit breaker is open is skipped for the next one on the ring that offers the
skill (the same one for every call of the context, so the context sticks there), and gets its
contexts back once its breaker closes. The router keeps a breaker per replica
(:class:`~a2a_grpc.resilience.CircuitBreaker`, as ``policy`` says): :meth:`Router.lease` feeds it
the outcome of opening the connection and of the calls made under the lease, and
:meth:`Router.breaker` lets anything else feed or read it. ``health`` may add what is known
elsewhere: :func:`client_breakers` reads the breakers an :class:`~a2a_grpc.client.A2AClient` held
by a pool keeps for its own calls. When every replica of a skill is unwell, or none offers it, the
answer is :class:`NoReplicaError` at once, never a wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from a2a_grpc import errors
from a2a_grpc.mesh.ring import DEFAULT_VNODES, MAX_WEIGHT, HashRing, route_key
from a2a_grpc.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    Clock,
    ResiliencePolicy,
    counts_against_peer,
)
from a2a_grpc.session.pool import PeerPool

__all__ = [
    "NoReplicaError",
    "Replica",
    "ReplicaEntry",
    "ReplicaSource",
    "Router",
    "StaticReplicas",
    "client_breakers",
]

T = TypeVar("T")

log = logging.getLogger("a2a_grpc.mesh")


class NoReplicaError(errors.UnavailableError):
    """No replica can take a call of the skill: none offers it, or every one that does is unwell
    (its circuit breaker open). ``metadata``: ``skill``, and ``replicas`` (how many offer it).
    Raised at once; try again later (an open breaker lets a probe call through after its
    cool-down)."""


class ReplicaEntry(Protocol):
    """What the router reads from a replica a source lists: its address (a gRPC target), and
    optionally a ``weight`` attribute (a positive number, 1 when absent)."""

    @property
    def address(self) -> str: ...


@runtime_checkable
class ReplicaSource(Protocol):
    """Where the replicas of a skill come from (the capability registry's lookups are one)."""

    async def replicas(self, skill: str) -> Sequence[ReplicaEntry]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Replica:
    """A replica of an agent: its address and its weight on the ring (a replica of weight 2 gets
    about twice the contexts)."""

    address: str
    weight: float = 1.0


class StaticReplicas:
    """A fixed source: the same replicas for every skill (a list of addresses or
    :class:`Replica`), or per skill (a mapping of skill to such a list; a skill it does not name
    has none). :meth:`set` replaces a skill's replicas (or all of them), as a registry would."""

    def __init__(self, replicas: Iterable[str | Replica] | Mapping[str, Iterable[str | Replica]]) -> None:
        self._every: tuple[Replica, ...] | None = None
        self._by_skill: dict[str, tuple[Replica, ...]] = {}
        if isinstance(replicas, Mapping):
            for skill, listed in replicas.items():
                self.set(listed, skill=skill)
        else:
            self.set(replicas)

    def set(self, replicas: Iterable[str | Replica], *, skill: str | None = None) -> None:
        listed = tuple(r if isinstance(r, Replica) else Replica(r) for r in replicas)
        if skill is None:
            self._every, self._by_skill = listed, {}
        else:
            self._by_skill[skill] = listed

    async def replicas(self, skill: str) -> Sequence[Replica]:
        if skill in self._by_skill:
            return self._by_skill[skill]
        return self._every or ()


SourceFunction = Callable[[str], Awaitable[Sequence[ReplicaEntry]]]


def client_breakers(pool: PeerPool[str, Any]) -> Callable[[str], BreakerState | None]:
    """A ``health`` for :class:`Router`: the state of the circuit breaker that the value ``pool``
    holds for an address keeps for it, when that value is an :class:`~a2a_grpc.client.A2AClient`
    (or has its ``breakers()``); None (no word) when the pool holds nothing for it."""

    def health(address: str) -> BreakerState | None:
        held = pool.held(address)
        breakers = getattr(held, "breakers", None)
        if not callable(breakers):
            return None
        breaker = breakers().get(address)
        return breaker.state if isinstance(breaker, CircuitBreaker) else None

    return health


@dataclasses.dataclass(slots=True)
class _Ring:
    listed: list[ReplicaEntry]  # the source's answer the ring was built from (a cheap equality check)
    members: frozenset[tuple[str, float]]
    ring: HashRing


class Router:
    """Routes (skill, context id) to a replica's address (see the module doc). ``source``: a
    :class:`ReplicaSource`, or an ``async def replicas(skill)`` function. ``vnodes``: ring points
    per replica (:data:`~a2a_grpc.mesh.ring.DEFAULT_VNODES`). ``policy`` and ``clock``: the
    breakers' (:class:`~a2a_grpc.resilience.ResiliencePolicy`). ``health``: another word on a
    replica's health (an open breaker skips it), as :func:`client_breakers` gives.
    ``source_timeout``: seconds to wait for the source before NoReplicaError (its own errors
    propagate). ``max_skills``: skills whose ring is remembered; past it the oldest is forgotten
    (looked up again at its next call), so that made-up skill names cannot grow the router."""

    def __init__(
        self,
        source: ReplicaSource | SourceFunction,
        *,
        vnodes: int = DEFAULT_VNODES,
        policy: ResiliencePolicy | None = None,
        clock: Clock | None = None,
        health: Callable[[str], BreakerState | None] | None = None,
        source_timeout: float = 10.0,
        max_skills: int = 4096,
    ) -> None:
        if not 0 < source_timeout < math.inf:
            raise ValueError(f"source_timeout must be positive seconds, not {source_timeout!r}")
        HashRing((), vnodes=vnodes)  # checks vnodes now, not at the first call
        self._source: SourceFunction = source.replicas if isinstance(source, ReplicaSource) else source
        if not callable(self._source):
            raise TypeError("source must have an async replicas(skill), or be such a function")
        self.vnodes = vnodes
        self.policy = policy or ResiliencePolicy()
        self.clock = clock or Clock()
        self._health = health
        self._source_timeout = source_timeout
        if isinstance(max_skills, bool) or not isinstance(max_skills, int) or max_skills < 1:
            raise ValueError(f"max_skills must be a positive integer, not {max_skills!r}")
        self._max_skills = max_skills
        self._rings: dict[str, _Ring] = {}
        self._shared: dict[frozenset[tuple[str, float]], HashRing] = {}  # one ring per replica set
        self._breakers: dict[str, CircuitBreaker] = {}
        self.rebuilds = 0
        """Rings built so far (a replica set seen before for another skill reuses its ring)."""

    # -- rings -------------------------------------------------------------------------------------

    async def ring(self, skill: str) -> HashRing:
        """The ring of ``skill``'s replicas as the source lists them now (empty if none); rebuilt
        only when that set changed."""
        try:
            async with asyncio.timeout(self._source_timeout):
                listed = list(await self._source(skill))
        except TimeoutError:
            raise NoReplicaError(
                f"the replica source did not answer within {self._source_timeout:g} s for skill {skill!r}",
                metadata={"skill": skill},
            ) from None
        held = self._rings.get(skill)
        if held is not None and held.listed == listed:
            return held.ring
        found = [_member(entry) for entry in listed]
        members = frozenset(member for member in found if member is not None)
        if None in found:
            log.warning(
                "skill %r: %d listed replicas left off the ring (no address, or a weight that is not a "
                "positive number)",
                skill,
                found.count(None),
            )
        if held is not None and held.members == members:
            held.listed = listed
            return held.ring
        ring = self._shared.get(members)
        if ring is None:
            weights: dict[str, float] = {}
            for address, weight in members:  # an address listed twice counts once, at its largest weight
                weights[address] = max(weight, weights.get(address, 0.0))
            ring = HashRing(weights, vnodes=self.vnodes)
            self.rebuilds += 1
        dropped = held is not None  # its former set may have lost its last skill
        if members:
            self._shared[members] = ring
            self._rings[skill] = _Ring(listed, members, ring)
            while len(self._rings) > self._max_skills:  # skills a caller made up: the oldest go
                del self._rings[next(iter(self._rings))]
                dropped = True
        else:
            self._rings.pop(skill, None)
        if dropped:
            self._forget_unused()
        return ring

    def _forget_unused(self) -> None:
        """Drop the rings no skill uses and the breakers of replicas no ring holds (a replica that
        comes back starts with a closed breaker)."""
        used = {held.members for held in self._rings.values()}
        for members in [m for m in self._shared if m not in used]:
            del self._shared[members]
        present = {address for ring in self._shared.values() for address in ring.nodes}
        for address in [a for a in self._breakers if a not in present]:
            del self._breakers[address]

    # -- health ------------------------------------------------------------------------------------

    def breaker(self, address: str) -> CircuitBreaker:
        """The router's circuit breaker of ``address`` (made on first use)."""
        breaker = self._breakers.get(address)
        if breaker is None:
            breaker = self._breakers[address] = CircuitBreaker(address, self.policy, self.clock)
        return breaker

    def healthy(self, address: str) -> bool:
        """Neither the router's breaker of ``address`` nor ``health`` says it is open."""
        if self.breaker(address).state is BreakerState.OPEN:
            return False
        return self._health is None or self._health(address) is not BreakerState.OPEN

    # -- routing -----------------------------------------------------------------------------------

    async def preference(self, skill: str, context_id: str, n: int) -> list[str]:
        """Up to ``n`` replicas of ``skill`` in ring order for ``context_id``, healthy or not: its
        owner first, then where it goes when those before are skipped."""
        ring = await self.ring(skill)
        return ring.preference(route_key(skill, context_id), n) if len(ring) else []

    async def route(self, skill: str, context_id: str) -> str:
        """The address of the replica for (``skill``, ``context_id``): the first healthy one in
        ring order. NoReplicaError when none offers the skill or none is healthy."""
        ring = await self.ring(skill)
        if len(ring):
            for address in ring.walk(route_key(skill, context_id)):
                if self.healthy(address):
                    return address
        raise self._none(skill, len(ring))

    @contextlib.asynccontextmanager
    async def lease(
        self, pool: PeerPool[str, T], skill: str, context_id: str
    ) -> AsyncIterator[tuple[str, T]]:
        """``(address, connection)``: ``pool``'s connection to the replica for (``skill``,
        ``context_id``), keyed by address. A replica whose breaker refuses, or whose connection
        cannot be opened (an UnavailableError or InternalError from the pool's opener: it counts
        against it), is skipped for the next in ring order; NoReplicaError when none is left.
        The outcome of the calls made under the lease feeds the replica's breaker (an A2A answer
        is a success; a call that failed is not tried elsewhere: the caller knows whether it may
        be repeated)."""
        ring = await self.ring(skill)
        order = ring.walk(route_key(skill, context_id)) if len(ring) else iter(())
        last: errors.A2AError | None = None
        for address in order:
            if self._health is not None and self._health(address) is BreakerState.OPEN:
                continue
            breaker = self.breaker(address)
            try:
                breaker.admit()
            except CircuitOpenError:
                continue
            async with contextlib.AsyncExitStack() as stack:
                try:
                    value = await stack.enter_async_context(pool.lease(address))
                except errors.A2AError as exc:
                    breaker.record(exc)
                    if not counts_against_peer(exc):
                        raise
                    last = exc
                    continue
                except BaseException:
                    breaker.release()
                    raise
                try:
                    yield address, value
                except CircuitOpenError:
                    breaker.release()  # refused on this side (the client's own breaker): no verdict
                    raise
                except errors.A2AError as exc:
                    breaker.record(exc)
                    raise
                except BaseException:
                    breaker.release()  # cancelled, or not the peer's word: no verdict
                    raise
                breaker.record(None)
                return
        raise self._none(skill, len(ring), last)

    @staticmethod
    def _none(skill: str, offered: int, last: errors.A2AError | None = None) -> NoReplicaError:
        if not offered:
            return NoReplicaError(
                f"no replica offers skill {skill!r}", metadata={"skill": skill, "replicas": 0}
            )
        why = f"; the last: {last.message}" if last is not None else ""
        return NoReplicaError(
            f"no healthy replica offers skill {skill!r}: the {offered} that do are unwell "
            f"(circuit breakers open){why}",
            metadata={"skill": skill, "replicas": offered},
        )


def _member(entry: ReplicaEntry) -> tuple[str, float] | None:
    """(address, weight) of a listed replica; None for one the ring cannot hold (no address, or a
    weight that is not a positive number). A weight past MAX_WEIGHT counts as MAX_WEIGHT."""
    address, weight = getattr(entry, "address", None), getattr(entry, "weight", 1.0)
    if not isinstance(address, str) or not address:
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
        return None
    return address, min(float(weight), MAX_WEIGHT)
