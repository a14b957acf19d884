"""The router: (skill, context) sticks to one replica, moves little when replicas come and go, skips
a replica whose breaker is open for the next one offering the skill, and answers a typed error at
once when none can take the call."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from a2a_grpc import errors
from a2a_grpc.mesh.routing import (
    NoReplicaError,
    Replica,
    ReplicaEntry,
    Router,
    StaticReplicas,
    client_breakers,
)
from a2a_grpc.resilience import BreakerState, CircuitBreaker, CircuitOpenError, Clock, ResiliencePolicy
from a2a_grpc.session.pool import PeerPool

ASYNC = pytest.mark.asyncio
REPLICAS = [f"10.0.0.{i}:50051" for i in range(1, 6)]
POLICY = ResiliencePolicy(breaker_failures=2, breaker_cooldown=5.0)


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 1_000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def open_breaker(router: Router, address: str) -> None:
    breaker = router.breaker(address)
    for _ in range(POLICY.breaker_failures):
        breaker.admit()
        breaker.record(errors.UnavailableError("down"))
    assert breaker.state is BreakerState.OPEN


@ASYNC
async def test_a_context_sticks_to_one_replica_and_contexts_spread() -> None:
    router = Router(StaticReplicas(REPLICAS))
    first = {f"ctx-{i}": await router.route("summarize", f"ctx-{i}") for i in range(500)}
    for _ in range(3):
        for context, address in first.items():
            assert await router.route("summarize", context) == address
    assert set(first.values()) == set(REPLICAS)
    assert router.rebuilds == 1  # one ring, built once for all those calls
    # Another skill with the same replicas shares the ring, and routes its own way.
    others = [await router.route("translate", f"ctx-{i}") for i in range(500)]
    assert router.rebuilds == 1
    assert others != list(first.values())


@ASYNC
async def test_the_ring_is_rebuilt_only_when_the_replica_set_changes() -> None:
    source = StaticReplicas(REPLICAS)
    router = Router(source)
    await router.route("s", "c")
    source.set(list(reversed(REPLICAS)))  # another order, another list: the same set
    await router.route("s", "c")
    source.set([Replica(a) for a in REPLICAS])
    await router.route("s", "c")
    assert router.rebuilds == 1
    source.set([*REPLICAS[:4], Replica(REPLICAS[4], weight=2)])  # a weight changed
    await router.route("s", "c")
    assert router.rebuilds == 2


@ASYNC
async def test_replica_churn_moves_few_contexts_and_only_to_or_from_the_one_that_changed() -> None:
    source = StaticReplicas(REPLICAS)
    router = Router(source)
    contexts = [f"ctx-{i}" for i in range(5000)]
    before = [await router.route("s", c) for c in contexts]
    newcomer = "10.0.0.6:50051"
    source.set([*REPLICAS, newcomer])
    after = [await router.route("s", c) for c in contexts]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert {a for _, a in moved} == {newcomer}
    assert 0.6 / 6 < len(moved) / len(contexts) < 1.4 / 6
    source.set([*REPLICAS[1:], newcomer])  # one leaves
    left = [await router.route("s", c) for c in contexts]
    for b, a in zip(after, left, strict=True):
        assert (a == b) == (b != REPLICAS[0])
    source.set([])
    with pytest.raises(NoReplicaError, match="no replica offers skill 's'"):
        await router.route("s", "ctx-1")


@ASYNC
async def test_an_open_breaker_is_skipped_for_the_next_replica_offering_the_skill_and_back() -> None:
    clock = FakeClock()
    # Skill "a" is offered by three replicas; "b" by others: a skipped replica of "a" is never
    # replaced by one that does not offer "a".
    offered = {"a": REPLICAS[:3], "b": REPLICAS[3:]}
    router = Router(StaticReplicas(offered), policy=POLICY, clock=clock)
    context = "ctx-42"
    order = await router.preference("a", context, 3)
    assert order[0] == await router.route("a", context)
    others = {f"c{i}": await router.route("a", f"c{i}") for i in range(200)}
    open_breaker(router, order[0])
    assert await router.route("a", context) == order[1]
    assert await router.route("a", context) == order[1]  # sticks to the fallback while it is open
    for c, owner in others.items():  # only the contexts of the unwell replica moved
        now = await router.route("a", c)
        assert now == owner if owner != order[0] else now in offered["a"] and now != order[0]
    open_breaker(router, order[1])
    assert await router.route("a", context) == order[2]
    # The cool-down passes: half-open lets a probe through, and the context goes home.
    clock.t += POLICY.breaker_cooldown
    assert router.breaker(order[0]).state is BreakerState.HALF_OPEN
    assert await router.route("a", context) == order[0]
    router.breaker(order[0]).admit()
    router.breaker(order[0]).record(None)
    assert router.breaker(order[0]).state is BreakerState.CLOSED
    assert await router.route("a", context) == order[0]


@ASYNC
async def test_every_breaker_open_is_a_typed_error_at_once() -> None:
    router = Router(StaticReplicas({"a": REPLICAS[:2], "b": REPLICAS[2:]}), policy=POLICY, clock=FakeClock())
    for address in REPLICAS[:2]:
        open_breaker(router, address)
    async with asyncio.timeout(5):  # at once: a hang would fail here, not stall the suite
        with pytest.raises(NoReplicaError, match="no healthy replica offers skill 'a': the 2") as caught:
            await router.route("a", "ctx")
    assert isinstance(caught.value, errors.UnavailableError)
    assert caught.value.metadata == {"skill": "a", "replicas": "2"}
    assert await router.route("b", "ctx") in REPLICAS[2:]
    with pytest.raises(NoReplicaError, match="no replica offers skill 'c'") as none:
        await router.route("c", "ctx")
    assert none.value.metadata["replicas"] == "0"


@ASYNC
async def test_a_source_that_does_not_answer_is_a_typed_error_not_a_hang() -> None:
    async def stuck(skill: str) -> Sequence[ReplicaEntry]:
        await asyncio.Event().wait()
        return []

    router = Router(stuck, source_timeout=0.05)
    async with asyncio.timeout(10):
        with pytest.raises(NoReplicaError, match=r"did not answer within 0\.05 s for skill 'x'"):
            await router.route("x", "ctx")
    with pytest.raises(ValueError, match="source_timeout"):
        Router(stuck, source_timeout=0)
    with pytest.raises(ValueError, match="vnodes"):
        Router(stuck, vnodes=0)


@dataclasses.dataclass
class Entry:
    address: Any
    weight: Any = 1


@ASYNC
async def test_hostile_entries_are_left_off_the_ring_and_said(caplog: pytest.LogCaptureFixture) -> None:
    listed: list[Any] = [
        Entry("good:1"),
        Entry(""),
        Entry(None),
        Entry(b"bytes:1"),
        Entry("nan:1", float("nan")),
        Entry("neg:1", -1),
        Entry("bool:1", True),
        Entry("huge:1", 10**9),  # kept, at the largest weight a ring takes
        Entry("good:1", 3),  # listed twice: once, at its largest weight
        object(),
    ]

    async def source(skill: str) -> Sequence[ReplicaEntry]:
        return listed

    router = Router(source, vnodes=4)
    with caplog.at_level(logging.WARNING, "a2a_grpc.mesh"):
        ring = await router.ring("s")
    assert ring.nodes == ("good:1", "huge:1")
    assert ring.weight("good:1") == 3
    assert ring.weight("huge:1") == 64
    assert "7 listed replicas left off the ring" in caplog.text
    for skill, context in [("", ""), ("a:b", ":c"), ("\ud800", "\U0001f916"), ("s" * 100_000, "c" * 100_000)]:
        assert await router.route(skill, context) in ("good:1", "huge:1")


class Peer:
    def __init__(self, address: str) -> None:
        self.address = address
        self.closed = False


class Opener:
    """A pool's opener that fails for the addresses in ``down``."""

    def __init__(self) -> None:
        self.down: dict[str, BaseException] = {}
        self.opened: list[str] = []

    @contextlib.asynccontextmanager
    async def __call__(self, address: str) -> AsyncIterator[Peer]:
        if address in self.down:
            raise self.down[address]
        self.opened.append(address)
        peer = Peer(address)
        try:
            yield peer
        finally:
            peer.closed = True


@ASYNC
async def test_a_lease_by_skill_and_context_uses_the_pool_and_feeds_the_breakers() -> None:
    opener = Opener()
    pool: PeerPool[str, Peer] = PeerPool(opener)
    clock = FakeClock()
    router = Router(StaticReplicas(REPLICAS), policy=POLICY, clock=clock)
    order = await router.preference("s", "ctx", 5)
    try:
        async with router.lease(pool, "s", "ctx") as (address, peer):
            assert address == peer.address == order[0]
        async with router.lease(pool, "s", "ctx") as (address, again):
            assert again is peer  # the pool's one connection, shared
        assert opener.opened == [order[0]]

        # Calls under the lease that find the peer unwell open its breaker; the next lease moves on.
        for _ in range(POLICY.breaker_failures):
            with pytest.raises(errors.UnavailableError):
                async with router.lease(pool, "s", "ctx") as (address, _):
                    raise errors.UnavailableError("connection reset")
        assert router.breaker(order[0]).state is BreakerState.OPEN
        async with router.lease(pool, "s", "ctx") as (address, _):
            assert address == order[1]

        # An A2A answer says the peer is well; a cancelled call says nothing.
        with pytest.raises(errors.TaskNotFoundError):
            async with router.lease(pool, "s", "ctx") as (address, _):
                raise errors.TaskNotFoundError("no such task")
        assert router.breaker(order[1]).state is BreakerState.CLOSED
        with pytest.raises(asyncio.CancelledError):
            async with router.lease(pool, "s", "ctx") as (address, _):
                raise asyncio.CancelledError
        # A call its client refused itself (the client's own breaker) says nothing either: the
        # router's half-open breaker of the home replica is not closed by it.
        clock.t += POLICY.breaker_cooldown
        leased: list[str] = []

        async def refused_by_its_client() -> None:
            async with router.lease(pool, "s", "ctx") as (address, _):
                leased.append(address)
                raise CircuitOpenError("the client's breaker is open")

        with pytest.raises(CircuitOpenError):
            await refused_by_its_client()
        assert leased == [order[0]]
        assert router.breaker(order[0]).state is BreakerState.HALF_OPEN
        async with router.lease(pool, "s", "ctx") as (address, _):
            assert address == order[0]  # the probe, and it went well
        assert router.breaker(order[0]).state is BreakerState.CLOSED
        open_breaker(router, order[0])

        # An opener's error that says nothing about the peer's health is the caller's ...
        open_breaker(router, order[1])
        opener.down[order[2]] = PermissionError("not in the allowlist")
        with pytest.raises(PermissionError):
            async with router.lease(pool, "s", "ctx"):
                pass
        opener.down[order[2]] = errors.InvalidParamsError("bad card")
        with pytest.raises(errors.InvalidParamsError):
            async with router.lease(pool, "s", "ctx"):
                pass
        # ... a replica whose connection cannot be opened is skipped for the next, and counted.
        opener.down[order[2]] = errors.UnavailableError("connection refused")
        async with router.lease(pool, "s", "ctx") as (address, _):
            assert address == order[3]
        assert router.breaker(order[2]).state is BreakerState.CLOSED  # one failure of two
        async with router.lease(pool, "s", "ctx") as (address, _):
            assert address == order[3]
        assert router.breaker(order[2]).state is BreakerState.OPEN

        # None left: the typed error, with the last failure said.
        await pool.aclose()
        opener.down[order[3]] = errors.UnavailableError("refused")
        opener.down[order[4]] = errors.UnavailableError("refused too")
        with pytest.raises(NoReplicaError, match="the last: refused too"):
            async with router.lease(pool, "s", "ctx"):
                pass
    finally:
        await pool.aclose()


@ASYNC
async def test_client_breakers_read_the_breakers_of_a_pooled_client() -> None:
    clock = FakeClock()

    class Client:
        def __init__(self, address: str) -> None:
            self.breaker = CircuitBreaker(address, POLICY, clock)
            self.address = address

        def breakers(self) -> dict[str, CircuitBreaker]:
            return {self.address: self.breaker}

    @contextlib.asynccontextmanager
    async def open_client(address: str) -> AsyncIterator[Client]:
        yield Client(address)

    pool: PeerPool[str, Client] = PeerPool(open_client)
    router = Router(StaticReplicas(REPLICAS[:2]), health=client_breakers(pool), clock=clock)
    owner, second = await router.preference("s", "ctx", 2)
    health = client_breakers(pool)
    assert health(owner) is None  # nothing held: no word
    try:
        async with pool.lease(owner) as client:
            for _ in range(POLICY.breaker_failures):
                client.breaker.admit()
                client.breaker.record(errors.UnavailableError("down"))
        assert health(owner) is BreakerState.OPEN
        assert await router.route("s", "ctx") == second
        async with router.lease(pool, "s", "ctx") as (address, _):
            assert address == second
        clock.t += POLICY.breaker_cooldown
        assert await router.route("s", "ctx") == owner
    finally:
        await pool.aclose()


@ASYNC
async def test_made_up_skills_cannot_grow_the_router() -> None:
    router = Router(StaticReplicas(REPLICAS), max_skills=8)
    first = await router.route("skill-0", "ctx")
    for i in range(1000):
        assert await router.route(f"skill-{i}", "ctx") in REPLICAS
    assert len(router._rings) == 8
    assert router.rebuilds == 1  # the one ring of the one replica set, kept while skills use it
    assert await router.route("skill-0", "ctx") == first  # forgotten, looked up again: the same
    with pytest.raises(ValueError, match="max_skills"):
        Router(StaticReplicas(REPLICAS), max_skills=0)


@ASYNC
async def test_a_replica_that_leaves_and_comes_back_starts_with_a_closed_breaker() -> None:
    source = StaticReplicas(REPLICAS)
    router = Router(source, policy=POLICY, clock=FakeClock())
    await router.route("s", "ctx")
    open_breaker(router, REPLICAS[0])
    source.set(REPLICAS[1:])
    await router.route("s", "ctx")
    source.set(REPLICAS)
    await router.route("s", "ctx")
    assert router.breaker(REPLICAS[0]).state is BreakerState.CLOSED
    # While it stays, its breaker is kept across ring rebuilds.
    open_breaker(router, REPLICAS[1])
    source.set([*REPLICAS, "10.0.0.9:50051"])
    await router.route("s", "ctx")
    assert router.breaker(REPLICAS[1]).state is BreakerState.OPEN
