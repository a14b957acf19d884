"""The waits before dialling again, with full jitter (base 100 ms, cap 10 s): their bounds, how a
herd of 10,000 agents spreads, and that a session's resume and a pool's reopening wait them."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from a2a_grpc import errors
from a2a_grpc.client import A2AClient
from a2a_grpc.resilience import Clock, ResiliencePolicy, full_jitter
from a2a_grpc.session.client import SessionOptions
from a2a_grpc.session.frames import Welcome
from a2a_grpc.session.pool import PeerPool, PoolSettings

ASYNC = pytest.mark.asyncio
BASE, CAP = 0.1, 10.0
AGENTS = 10_000


class FakeClock(Clock):
    """Time that moves only when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_full_jitter_is_never_negative_never_past_the_cap_and_its_ceiling_doubles() -> None:
    rng = random.Random(1)
    for retry in range(1, 40):
        ceiling = min(CAP, BASE * 2 ** (retry - 1))
        waits = [full_jitter(retry, BASE, CAP, rng.random()) for _ in range(200)]
        assert all(0 <= w < ceiling for w in waits)
        assert max(waits) > 0.9 * ceiling  # the whole window is used ...
        assert min(waits) < 0.1 * ceiling  # ... from its start
    assert full_jitter(10**9, BASE, CAP, 0.999) < CAP  # no overflow, still capped
    # Hostile inputs stay in bounds: a retry number below 1 is the first; a chance outside [0, 1].
    assert full_jitter(0, BASE, CAP, 0.5) == full_jitter(-3, BASE, CAP, 0.5) == 0.05
    assert full_jitter(3, BASE, CAP, -2.0) == 0.0
    assert full_jitter(3, BASE, CAP, 7.0) == pytest.approx(0.4)
    assert ResiliencePolicy().backoff(4, 0.5) == full_jitter(4, BASE, CAP, 0.5)


@pytest.mark.parametrize("retry", [1, 4, 8, 12])
def test_10000_agents_spread_their_retry_over_its_whole_window(retry: int) -> None:
    # Each agent's wait is uniform over the window: 100 equal slices expect 1% of the agents each,
    # with a spread of sqrt(100)/10000 = 0.1%. No slice past 1.6% (6 spreads) nor below 0.4%:
    # a wait bunched anywhere (no jitter, half jitter, a cap hit early) fails.
    window = min(CAP, BASE * 2 ** (retry - 1))
    rng = random.Random(retry)
    waits = [full_jitter(retry, BASE, CAP, rng.random()) for _ in range(AGENTS)]
    assert all(0 <= w < window for w in waits)
    slices = collections.Counter(int(w / window * 100) for w in waits)
    assert len(slices) == 100
    assert max(slices.values()) <= 0.016 * AGENTS
    assert min(slices.values()) >= 0.004 * AGENTS
    if window == CAP:  # at the cap: no 100 ms of the 10 s gets more than 1.6% of the herd
        assert max(collections.Counter(int(w / 0.1) for w in waits).values()) <= 0.016 * AGENTS


def herd(jitter: bool, capacity: int = 1000, seed: int = 7) -> tuple[collections.Counter[int], float]:
    """10,000 agents restart at once and dial one server (the registry, a peer) that takes at most
    ``capacity`` handshakes in each 100 ms; a refused agent waits its backoff and dials again.
    (dials per 100 ms slice, when the last agent got in)."""
    rng = random.Random(seed)
    dials: list[tuple[float, int, int]] = [(0.0, agent, 0) for agent in range(AGENTS)]
    load: collections.Counter[int] = collections.Counter()
    taken: collections.Counter[int] = collections.Counter()
    last = 0.0
    while dials:
        at, agent, failed = heapq.heappop(dials)
        assert at < 600, "the herd never got in"
        moment = int(at / 0.1)
        load[moment] += 1
        if taken[moment] < capacity:
            taken[moment] += 1
            last = max(last, at)
            continue
        wait = full_jitter(failed + 1, BASE, CAP, rng.random() if jitter else 1.0)
        heapq.heappush(dials, (at + wait, agent, failed + 1))
    return load, last


def test_a_restarting_herd_with_full_jitter_does_not_stampede() -> None:
    load, last = herd(jitter=True)
    # After the first second no 100 ms slice gets more dials than the server takes: every dial
    # from then on is answered, and the whole herd is in within the cap's 10 s.
    assert max(n for moment, n in load.items() if moment >= 10) <= 1000
    assert last < CAP
    # The same herd without jitter comes back in waves of thousands, and takes far longer.
    waves, slow = herd(jitter=False)
    assert max(n for moment, n in waves.items() if moment >= 10) >= 5000
    assert slow > 3 * last
    assert sum(waves.values()) > sum(load.values())


@ASYNC
async def test_a_session_resume_waits_the_backoff_between_attempts() -> None:
    clock, options = FakeClock(), SessionOptions(resume_timeout=30.0, handshake_timeout=1.0)
    client = A2AClient("127.0.0.1:9", clock=clock, rng=random.Random(11))
    try:
        session = client.session(options)  # the client's clock and randomness, handed over
        session.welcome = Welcome(session_id="s-1", resume_token="t-1")
        dials: list[float] = []

        async def refused(hello: Any, timeout: float, *, wait: bool = False) -> Any:
            assert hello.resume.session_id == "s-1"
            assert wait
            dials.append(clock.now())
            raise errors.UnavailableError("connection refused")

        session._handshake = refused  # type: ignore[method-assign]
        assert not await session._resume(errors.UnavailableError("the connection broke"))
    finally:
        await client.close()
    draws = random.Random(11)
    expected, spent = [], 0.0
    for attempt in range(1, len(clock.slept) + 1):
        wait = min(30.0 - spent, full_jitter(attempt, BASE, CAP, draws.random()))
        expected.append(wait)
        spent += wait
    assert clock.slept == pytest.approx(expected)
    assert len(dials) == len(clock.slept) + 1  # a wait between each two dials, none after the last
    assert math.isclose(sum(clock.slept), 30.0)  # it gave up at resume_timeout, not before
    assert all(0 <= w < CAP for w in clock.slept)
    assert [b - a for a, b in itertools.pairwise(dials)] == pytest.approx(clock.slept)
    failure = session._failure  # what every waiting call ends with
    assert isinstance(failure, errors.UnavailableError)
    assert f"could not be resumed within 30 s ({len(dials)} attempts" in failure.message


class Opener:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.dials = 0

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[str]:
        self.dials += 1
        if self.dials <= self.failures:
            raise errors.UnavailableError(f"refused (dial {self.dials})")
        yield f"connection to {key}"


@ASYNC
async def test_a_pool_waits_the_backoff_before_dialling_a_failed_peer_again() -> None:
    clock, opener = FakeClock(), Opener(failures=4)
    pool: PeerPool[str, str] = PeerPool(opener, clock=clock, rng=random.Random(5))
    try:
        for dial in range(1, 5):
            with pytest.raises(errors.UnavailableError, match=f"dial {dial}"):
                async with pool.lease("peer:1"):
                    pass
        async with pool.lease("peer:1") as value:
            assert value == "connection to peer:1"
        draws = random.Random(5)
        assert clock.slept == pytest.approx([full_jitter(n, BASE, CAP, draws.random()) for n in range(1, 5)])
        # A success starts afresh: the next failure waits from the base again.
        assert opener.dials == 5
    finally:
        await pool.aclose()


@ASYNC
async def test_concurrent_leases_of_a_failed_peer_share_one_wait_and_one_dial() -> None:
    clock, opener = FakeClock(), Opener(failures=1)
    pool: PeerPool[str, str] = PeerPool(opener, clock=clock, rng=random.Random(2))
    try:
        with pytest.raises(errors.UnavailableError):
            async with pool.lease("peer:1"):
                pass

        async def use() -> str:
            async with pool.lease("peer:1") as value:
                await asyncio.sleep(0)
                return value

        async with asyncio.timeout(10):
            values = await asyncio.gather(*(use() for _ in range(50)))
        assert set(values) == {"connection to peer:1"}
        assert opener.dials == 2
        assert len(clock.slept) == 1
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    "bad",
    [
        {"reopen_backoff_base": 0},
        {"reopen_backoff_cap": math.inf},
        {"reopen_backoff_base": math.nan},
        {"reopen_backoff_base": 2.0, "reopen_backoff_cap": 1.0},
    ],
)
def test_the_reopen_backoff_settings_are_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="reopen_backoff"):
        PoolSettings(**bad)
    defaults = PoolSettings()
    assert (defaults.reopen_backoff_base, defaults.reopen_backoff_cap) == (BASE, CAP)
    assert (SessionOptions().resume_backoff_base, SessionOptions().resume_backoff_cap) == (BASE, CAP)
