"""PeerPool: one shared connection per peer, opened once, reopened when dead, closed when idle,
bounded in number; a failing or slow opener and a caller that gives up never break it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from a2a_grpc.session.pool import PeerPool, PoolSettings
from tests.webhook import until

ASYNC = pytest.mark.asyncio
WAIT = 5.0


@dataclass
class Conn:
    key: str
    number: int
    alive: bool = True
    closed: bool = False
    going_away: bool = False


@dataclass
class Opener:
    """Opens a Conn per call, counting; fails for keys in ``failing``; waits ``delay`` seconds."""

    opened: list[Conn] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    delay: float = 0.0

    @contextlib.asynccontextmanager
    async def __call__(self, key: str) -> AsyncIterator[Conn]:
        await asyncio.sleep(self.delay)
        if key in self.failing:
            raise ConnectionError(f"{key} is down")
        conn = Conn(key, len(self.opened) + 1)
        self.opened.append(conn)
        try:
            yield conn
        finally:
            conn.closed = True


@ASYNC
async def test_concurrent_leases_of_one_peer_share_one_opening() -> None:
    opener = Opener(delay=0.05)
    pool: PeerPool[str, Conn] = PeerPool(opener)

    async def use(key: str) -> int:
        async with pool.lease(key) as conn:
            return conn.number

    numbers = await asyncio.gather(*(use("a") for _ in range(20)), use("b"))
    assert set(numbers[:20]) == {1} or set(numbers[:20]) == {2}  # a and b opened in either order
    assert len(opener.opened) == 2
    assert sorted(pool.keys()) == ["a", "b"]
    await pool.aclose()
    assert all(conn.closed for conn in opener.opened)
    assert len(pool) == 0


@ASYNC
async def test_a_failed_opening_is_not_kept_and_the_next_lease_tries_again() -> None:
    opener = Opener(failing={"a"})
    pool: PeerPool[str, Conn] = PeerPool(opener)
    for _ in range(2):
        with pytest.raises(ConnectionError, match="a is down"):
            async with pool.lease("a"):
                raise AssertionError("no connection to lend")
    assert pool.held("a") is None
    opener.failing.clear()
    async with pool.lease("a") as conn:
        assert conn.number == 1
    await pool.aclose()


@ASYNC
async def test_a_dead_connection_is_closed_and_opened_again() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener)
    async with pool.lease("a") as first:
        pass
    first.alive = False  # its stream failed
    async with pool.lease("a") as second:
        assert second is not first
    await until(lambda: first.closed)
    assert pool.held("a") is second
    await pool.aclose()


@ASYNC
async def test_a_caller_that_gives_up_does_not_stop_the_opening_for_the_others() -> None:
    opener = Opener(delay=0.2)
    pool: PeerPool[str, Conn] = PeerPool(opener)

    async def lease_number() -> int:
        async with pool.lease("a") as conn:
            return conn.number

    impatient = asyncio.ensure_future(lease_number())
    patient = asyncio.ensure_future(lease_number())
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient == 1
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert len(opener.opened) == 1
    await pool.aclose()


@ASYNC
async def test_idle_connections_close_and_busy_ones_stay() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener, idle_seconds=0.2)
    async with pool.lease("idle") as idle:
        pass
    async with pool.lease("busy") as busy:
        await until(lambda: idle.closed)  # idle for 0.2 s: closed by the reaper
        assert not busy.closed  # in use all along
        assert pool.keys() == ["busy"]
    await until(lambda: busy.closed)
    assert len(pool) == 0
    await pool.aclose()


@ASYNC
async def test_past_max_peers_the_least_recently_used_idle_peer_is_closed() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener, max_peers=2)
    for key in ("a", "b"):
        async with pool.lease(key):
            pass
    async with pool.lease("a"):  # a is now the more recently used
        pass
    async with pool.lease("c"):
        pass
    await until(lambda: opener.opened[1].closed)  # b went
    assert sorted(pool.keys()) == ["a", "c"]
    assert not opener.opened[0].closed
    await pool.aclose()


@ASYNC
async def test_a_full_pool_of_busy_peers_still_lends_a_new_one_then_trims_back() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener, max_peers=1, idle_seconds=0.2)
    async with pool.lease("a") as a, pool.lease("b") as b:
        assert (a.number, b.number) == (1, 2)
        assert not a.closed
        assert len(pool) == 2
    await until(lambda: len(pool) <= 1)  # back to max_peers once they are free
    await pool.aclose()


@ASYNC
async def test_the_pool_keeps_peers_as_its_settings_say_and_keywords_replace_them() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener, PoolSettings(idle_seconds=0.1, max_peers=5))
    async with pool.lease("a") as a:
        pass
    await until(lambda: a.closed)  # idle for 0.1 s (the default keeps it a minute)
    assert len(pool) == 0
    await pool.aclose()
    both = PeerPool(opener, PoolSettings(idle_seconds=0.1, max_peers=5), max_peers=2)
    assert both.settings == PoolSettings(idle_seconds=0.1, max_peers=2)


@ASYNC
async def test_a_peer_going_away_is_closed_under_its_lease_after_going_away_seconds() -> None:
    opener = Opener()
    pool: PeerPool[str, Conn] = PeerPool(opener, PoolSettings(going_away_seconds=0.1))
    try:
        async with pool.lease("replica") as old:
            old.going_away, old.alive = True, False  # its server drains; this lease never ends
            async with pool.lease("replica") as new:
                assert new is not old
            await until(lambda: old.closed)  # after 0.1 s (the default waits two minutes)
    finally:
        await pool.aclose()


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="idle_seconds"):
        PeerPool(Opener(), idle_seconds=0)
    with pytest.raises(ValueError, match="max_peers"):
        PeerPool(Opener(), max_peers=0)
    for name in ("idle_seconds", "close_seconds", "going_away_seconds"):
        for bad in (0.0, -1.0, float("inf"), float("nan")):
            with pytest.raises(ValueError, match=name):
                PoolSettings(**{name: bad})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_peers"):
        PoolSettings(max_peers=True)
