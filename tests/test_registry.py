"""The capability registry against a real redis-server: registration, ETag heartbeats, a card
uploaded again when it changes, replicas that vanish within their TTL, the caller's cache (hits,
misses, invalidation, stale answers while Redis is away), hostile entries in Redis, refused cards,
names with colons and braces, and ``serve --registry`` with ``a2a-grpc registry list``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio
from prometheus_client import REGISTRY

from a2a_grpc import types
from a2a_grpc.mesh.drift import card_etag
from a2a_grpc.mesh.registration import Registration
from a2a_grpc.mesh.registry import (
    CardTooLargeError,
    Registry,
    RegistrySettings,
    RegistryUnavailableError,
)
from a2a_grpc.redisconn import key, tag
from tests.conftest import CLI, cli_server
from tests.redisserver import start_redis

pytestmark = pytest.mark.asyncio


def card(
    name: str = "planner", skills: tuple[str, ...] = ("plan", "echo"), version: str = "1"
) -> types.AgentCard:
    return types.AgentCard(
        name=name,
        description="a test agent",
        version=version,
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[types.AgentSkill(id=s, name=s, description=f"does {s}", tags=["t"]) for s in skills],
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def registry(redis_url: str) -> AsyncIterator[Registry]:
    reg = Registry(RegistrySettings(url=redis_url, heartbeat_seconds=1.0, cache_seconds=5.0))
    try:
        yield reg
    finally:
        await reg.aclose()


async def until(check: Callable[[], object], seconds: float = 15.0) -> None:
    """Poll ``check`` (an async callable's truthy answer) until true; fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- registering, looking up, heartbeating ---------------------------------------------------------


async def test_a_registered_replica_is_found_by_skill_by_name_and_in_all(registry: Registry) -> None:
    before = sample("a2a_registry_registrations_total", outcome="registered")
    entry = await registry.register(card(), ["10.0.0.1:50051", "10.0.0.2:50051"])
    await registry.register(card("coder", ("code",)), ["10.0.0.3:50051"])
    assert sample("a2a_registry_registrations_total", outcome="registered") == before + 2
    (found,) = await registry.replicas("plan")
    assert (found.name, found.replica, found.address) == ("planner", "10.0.0.1:50051", "10.0.0.1:50051")
    assert found.addresses == ("10.0.0.1:50051", "10.0.0.2:50051")
    assert found.etag == card_etag(card()) == entry.etag
    assert found.skills == ("plan", "echo")
    assert found.card == card()
    assert [e.name for e in await registry.agent("coder")] == ["coder"]
    assert sorted(e.name for e in await registry.entries()) == ["coder", "planner"]
    assert await registry.replicas("nobody-offers-this") == []
    assert await registry.agent("nobody") == []


async def test_replicas_of_one_agent_are_each_an_entry(registry: Registry) -> None:
    for i in range(3):
        await registry.register(card(), [f"10.0.0.{i}:50051"])
    found = await registry.replicas("echo")
    assert sorted(e.replica for e in found) == [f"10.0.0.{i}:50051" for i in range(3)]
    assert len({e.etag for e in found}) == 1


async def test_a_heartbeat_sends_the_etag_and_pushes_the_deadline(redis_url: str, registry: Registry) -> None:
    entry = await registry.register(card(), ["h:1"])
    await registry.heartbeat("planner", "h:1", entry.etag, entry.skills)  # loads the script into Redis
    direct = redis.asyncio.Redis.from_url(redis_url)
    try:
        commands_before = await direct.info("commandstats")
        deadline = await registry.heartbeat("planner", "h:1", entry.etag, entry.skills)
        after = await direct.info("commandstats")
    finally:
        await direct.aclose()
    assert deadline is not None
    assert deadline >= entry.deadline
    # One script call, no card upload: SET is the upload's command, and the heartbeat made none.
    assert after.get("cmdstat_set", {}).get("calls") == commands_before.get("cmdstat_set", {}).get("calls")
    assert after["cmdstat_evalsha"]["calls"] == commands_before["cmdstat_evalsha"]["calls"] + 1
    # A heartbeat for a card the registry does not hold asks for the upload.
    assert await registry.heartbeat("planner", "h:1", "0" * 32, entry.skills) is None
    assert await registry.heartbeat("someone-else", "h:1", entry.etag, entry.skills) is None


async def test_a_changed_card_is_uploaded_by_the_next_heartbeat(registry: Registry) -> None:
    registration = Registration(registry, card(), ["10.0.0.1:1"])
    await registration.start()
    try:
        uploaded = sample("a2a_registry_heartbeats_total", outcome="uploaded")
        assert await registration.beat() == "refreshed"
        registration.update(card(skills=("plan", "review"), version="2"))
        assert await registration.beat() == "uploaded"
        assert sample("a2a_registry_heartbeats_total", outcome="uploaded") == uploaded + 1
        assert await registration.beat() == "refreshed"
        registry.invalidate()
        (found,) = await registry.replicas("review")
        assert found.card.version == "2"
        # The skill it dropped is no longer answered, though its index entry waits for its deadline.
        assert await registry.replicas("echo") == []
        assert [e.card.version for e in await registry.replicas("plan")] == ["2"]
    finally:
        await registration.stop()
    registry.invalidate()
    assert await registry.entries() == []


async def test_a_heartbeat_registers_again_after_the_entry_was_lost(
    redis_url: str, registry: Registry
) -> None:
    registration = Registration(registry, card(), ["10.0.0.1:1"])
    await registration.start()
    try:
        direct = redis.asyncio.Redis.from_url(redis_url)
        try:
            await direct.flushall()  # Redis lost its data (a failover without persistence)
        finally:
            await direct.aclose()
        assert await registration.beat() == "uploaded"
        registry.invalidate()
        assert [e.name for e in await registry.replicas("plan")] == ["planner"]
    finally:
        await registration.stop()


async def test_a_vanished_replica_is_gone_within_its_ttl(redis_url: str) -> None:
    settings = RegistrySettings(url=redis_url, heartbeat_seconds=0.2, ttl_seconds=0.6, cache_seconds=0)
    registry = Registry(settings)
    try:
        alive = Registration(registry, card(), ["10.0.0.1:1"])
        vanishing = Registration(registry, card(), ["10.0.0.2:1"])
        await alive.start()
        await vanishing.start()
        await until(lambda: _replicas_are(registry, {"10.0.0.1:1", "10.0.0.2:1"}))
        expired = sample("a2a_registry_entries_expired_total")
        await vanishing.stop(deregister=False)  # killed: no goodbye, its heartbeats stop
        await until(lambda: _replicas_are(registry, {"10.0.0.1:1"}))
        # The live one heartbeats on well past the TTL; the lapsed one is pruned by its heartbeats.
        await asyncio.sleep(1.0)
        assert await _replicas_are(registry, {"10.0.0.1:1"})
        await until(lambda: sample("a2a_registry_entries_expired_total") >= expired + 1)
        direct = redis.asyncio.Redis.from_url(redis_url)
        try:
            members = await direct.zrange(key("a2a", "registry", tag("registry"), "all"), 0, -1)
        finally:
            await direct.aclose()
        assert len(members) == 1
        await alive.stop()
    finally:
        await registry.aclose()


async def _replicas_are(registry: Registry, wanted: set[str]) -> bool:
    return {e.replica for e in await registry.replicas("plan")} == wanted


# -- the caller's cache ----------------------------------------------------------------------------


async def test_lookups_are_cached_for_cache_seconds_and_invalidated(redis_url: str) -> None:
    clock = Clock()
    writer = Registry(RegistrySettings(url=redis_url))
    reader = Registry(RegistrySettings(url=redis_url, cache_seconds=5.0, cache_size=2))
    reader.clock = clock
    try:
        await writer.register(card(), ["a:1"])
        hits, misses = (sample("a2a_registry_lookups_total", kind="skill", result=r) for r in ("hit", "miss"))
        assert len(await reader.replicas("plan")) == 1
        await writer.register(card(), ["b:1"])  # another process: this reader does not know yet
        assert len(await reader.replicas("plan")) == 1
        assert sample("a2a_registry_lookups_total", kind="skill", result="hit") == hits + 1
        assert sample("a2a_registry_lookups_total", kind="skill", result="miss") == misses + 1
        clock.now += 5.0  # the answer is too old: asked again
        assert len(await reader.replicas("plan")) == 2
        # forget: a replica found unreachable is dropped from the cached answers at once.
        reader.forget("planner", "a:1")
        assert [e.replica for e in await reader.replicas("plan")] == ["b:1"]
        reader.invalidate()
        assert len(await reader.replicas("plan")) == 2
        # Bounded: two answers kept; the least recently used goes.
        await reader.replicas("echo")
        await reader.agent("planner")
        misses = sample("a2a_registry_lookups_total", kind="skill", result="miss")
        await reader.replicas("plan")
        assert sample("a2a_registry_lookups_total", kind="skill", result="miss") == misses + 1
        # The caller's own registration empties its cache: it sees itself at once.
        await reader.replicas("plan")
        await reader.register(card(), ["c:1"])
        assert len(await reader.replicas("plan")) == 3
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_redis_gone_gives_a_typed_error_after_a_bounded_stale_answer(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    clock = Clock()
    try:
        url = server.url
        stale = Registry(
            RegistrySettings(url=url, cache_seconds=5.0, stale_seconds=10.0, timeout_seconds=2.0)
        )
        strict = Registry(RegistrySettings(url=url, cache_seconds=5.0, stale_seconds=0, timeout_seconds=2.0))
        stale.clock = strict.clock = clock
        registration = Registration(stale, card(), ["a:1"])
        await registration.start()
        assert len(await stale.replicas("plan")) == 1
        assert len(await strict.replicas("plan")) == 1
    finally:
        server.stop()
    try:
        clock.now += 1
        assert len(await strict.replicas("plan")) == 1  # fresh enough: not asked
        clock.now += 5
        with pytest.raises(RegistryUnavailableError, match="cannot connect"):
            await strict.replicas("plan")
        stale_count = sample("a2a_registry_lookups_total", kind="skill", result="stale")
        assert len(await stale.replicas("plan")) == 1  # within cache_seconds + stale_seconds
        assert sample("a2a_registry_lookups_total", kind="skill", result="stale") == stale_count + 1
        clock.now += 10
        with pytest.raises(RegistryUnavailableError):
            await stale.replicas("plan")
        with pytest.raises(RegistryUnavailableError):
            await stale.replicas("never-asked")
        with pytest.raises(RegistryUnavailableError):
            await registration.beat()
        with pytest.raises(RegistryUnavailableError):
            await stale.register(card(), ["b:1"])
        # The heartbeat loop outlives the outage; stop leaves the entry to its TTL.
        assert registration.beating
        await registration.stop()
    finally:
        await stale.aclose()
        await strict.aclose()


async def test_registering_with_redis_gone_is_a_typed_error(redis_url: str) -> None:
    registry = Registry(RegistrySettings(url="redis://127.0.0.1:1/0", timeout_seconds=1.0))
    try:
        failed = sample("a2a_registry_registrations_total", outcome="failed")
        with pytest.raises(
            RegistryUnavailableError, match=r"^registry redis://127\.0\.0\.1:1/0: registering"
        ):
            await Registration(registry, card(), ["a:1"]).start()
        assert sample("a2a_registry_registrations_total", outcome="failed") == failed + 1
    finally:
        await registry.aclose()


# -- hostile input ---------------------------------------------------------------------------------


async def _plant(
    redis_url: str, name: str, replica: str, etag: str, record: bytes, body: bytes | None
) -> None:
    """Write an entry (and its card) straight into Redis, indexed under skill ``plan``."""
    t = tag("registry")
    entry = key("a2a", "registry", t, "entry", name, replica)
    direct = redis.asyncio.Redis.from_url(redis_url)
    try:
        await direct.hset(entry, mapping={"etag": etag, "record": record})
        if body is not None:
            await direct.set(key("a2a", "registry", t, "card", etag), body)
        far = 9_999_999_999_999
        for index in (key("a2a", "registry", t, "all"), key("a2a", "registry", t, "skill", "plan")):
            await direct.zadd(index, {entry: far})
    finally:
        await direct.aclose()


def _record(name: str, replica: str) -> bytes:
    return json.dumps({"name": name, "replica": replica, "addresses": ["x:1"], "skills": ["plan"]}).encode()


async def test_hostile_entries_are_skipped_and_the_others_answered(
    redis_url: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    await registry.register(card(), ["good:1"])
    garbage = b"\xff\xff\xff\xff\x0f not a card"
    garbage_etag = hashlib.sha256(garbage).hexdigest()[:32]
    await _plant(redis_url, "bad-card", "r", garbage_etag, _record("bad-card", "r"), garbage)
    await _plant(
        redis_url,
        "wrong-etag",
        "r",
        "0" * 32,
        _record("wrong-etag", "r"),
        card("wrong-etag").SerializeToString(),
    )
    await _plant(redis_url, "not-json", "r", "1" * 32, b"{not json", b"")
    await _plant(
        redis_url,
        "mistyped",
        "r",
        "2" * 32,
        b'{"name": 1, "replica": [], "addresses": "x", "skills": 3}',
        b"",
    )
    await _plant(redis_url, "moved", "r", "3" * 32, _record("elsewhere", "r"), b"")  # filed under another key
    impostor = card("impostor-card")
    impostor_etag = card_etag(impostor)
    await _plant(
        redis_url,
        "named",
        "r",
        impostor_etag,
        _record("named", "r"),
        impostor.SerializeToString(deterministic=True),
    )
    huge = b"\x00" * (registry.settings.max_card_bytes + 1)
    await _plant(redis_url, "huge", "r", "4" * 32, _record("huge", "r"), huge)
    skipped = sample("a2a_registry_entries_skipped_total")
    with caplog.at_level(logging.WARNING, "a2a_grpc.mesh"):
        found = await registry.replicas("plan")
    assert [e.replica for e in found] == ["good:1"]
    assert sample("a2a_registry_entries_skipped_total") == skipped + 7
    text = caplog.text
    whys = ("does not parse", "does not match its ETag", "malformed", "another key", "names another agent")
    for why in (*whys, "more than max_card_bytes"):
        assert why in text


async def test_oversized_cards_and_names_are_refused_at_registration(registry: Registry) -> None:
    big = card()
    big.description = "x" * (registry.settings.max_card_bytes + 1)
    refused = sample("a2a_registry_registrations_total", outcome="refused")
    with pytest.raises(CardTooLargeError, match="max_card_bytes"):
        await registry.register(big, ["a:1"])
    many = card(skills=tuple(f"s{i}" for i in range(registry.settings.max_skills + 1)))
    with pytest.raises(CardTooLargeError, match="max_skills"):
        await registry.register(many, ["a:1"])
    with pytest.raises(CardTooLargeError, match="name"):
        await registry.register(card(name=""), ["a:1"])
    with pytest.raises(CardTooLargeError, match="addresses"):
        await registry.register(card(), [])
    with pytest.raises(CardTooLargeError, match="skill id"):
        await registry.register(card(skills=("",)), ["a:1"])
    with pytest.raises(CardTooLargeError):
        Registration(registry, big, ["a:1"])
    assert sample("a2a_registry_registrations_total", outcome="refused") == refused + 6
    assert await registry.entries() == []


async def test_names_with_colons_and_braces_stay_apart(registry: Registry) -> None:
    # Unescaped, "a:b" replica "c" and "a" replica "b:c" would share a key; "{x}" would move its slot.
    await registry.register(card("a:b", ("s:1",)), ["c"])
    await registry.register(card("a", ("s:1",)), ["b:c"])
    await registry.register(card("{x}}{", ("{s}",)), ["h:1"], replica="{r}")
    assert sorted((e.name, e.replica) for e in await registry.replicas("s:1")) == [("a", "b:c"), ("a:b", "c")]
    assert [(e.name, e.replica) for e in await registry.replicas("{s}")] == [("{x}}{", "{r}")]
    assert [e.replica for e in await registry.agent("a:b")] == ["c"]
    await registry.deregister("a:b", "c", ["s:1"])
    assert [(e.name, e.replica) for e in await registry.replicas("s:1")] == [("a", "b:c")]


async def test_settings_are_validated() -> None:
    assert RegistrySettings().ttl == 180.0
    assert RegistrySettings(heartbeat_seconds=2, ttl_seconds=5).ttl == 5
    for bad, why in (
        ({"url": "http://x"}, "scheme"),
        ({"heartbeat_seconds": 0}, "heartbeat_seconds"),
        ({"heartbeat_seconds": 10, "ttl_seconds": 5}, "ttl_seconds"),
        ({"cache_seconds": -1}, "cache_seconds"),
        ({"cache_size": 0}, "cache_size"),
        ({"max_card_bytes": True}, "max_card_bytes"),
        ({"address": "no-port"}, "HOST:PORT"),
    ):
        with pytest.raises(ValueError, match=why):
            RegistrySettings(**bad)  # type: ignore[arg-type]


# -- the command line ------------------------------------------------------------------------------


async def test_serve_registers_and_registry_list_shows_it_until_it_stops(redis_url: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "registry", "list", *args], capture_output=True, text=True, timeout=60)

    with cli_server("--registry", redis_url, "--registry-address", "agent.internal:7000") as address:
        listed = await asyncio.to_thread(run, redis_url)
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()
        assert header.split()[:3] == ["AGENT", "REPLICA", "ADDRESS"]
        assert "agent.internal:7000" in row
        assert "echo" in row
        as_json = await asyncio.to_thread(run, redis_url, "--skill", "echo", "--json")
        (entry,) = json.loads(as_json.stdout)
        assert entry["addresses"] == ["agent.internal:7000"]
        assert "echo" in entry["skills"]
        none = await asyncio.to_thread(run, redis_url, "--skill", "nothing", "--json")
        assert json.loads(none.stdout) == []
        assert address.startswith("127.0.0.1:")
    after = await asyncio.to_thread(run, redis_url, "--json")
    assert json.loads(after.stdout) == []  # deregistered when it stopped


async def test_registry_list_with_redis_unreachable_is_one_line_and_fails() -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "registry", "list", "redis://:secret@127.0.0.1:1/0", "--timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("a2a-grpc: error: registry redis://:***@127.0.0.1:1/0: lookup: cannot connect")
    bad = await asyncio.to_thread(
        subprocess.run, [*CLI, "registry", "list", "http://x"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "scheme" in bad.stderr


# -- cancellation, and a Redis that accepts but never answers --------------------------------------


async def test_a_cancelled_lookup_is_cancelled_and_stop_is_bounded_when_redis_hangs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    registry = Registry(RegistrySettings(url=f"redis://127.0.0.1:{port}/0", timeout_seconds=1.0))
    try:
        lookup = asyncio.get_running_loop().create_task(registry.replicas("plan"))
        await asyncio.sleep(0.3)  # connected, the command sent, its answer awaited
        assert held
        lookup.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lookup
        # No answer within timeout_seconds: a typed error, not a hang.
        with pytest.raises(RegistryUnavailableError, match="timeout"):
            await registry.replicas("plan")
        registration = Registration(registry, card(), ["a:1"])
        with pytest.raises(RegistryUnavailableError, match="registering"):
            await registration.start()
        assert not registration.beating
    finally:
        await registry.aclose()
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_stop_during_a_heartbeat_ends_the_loop(redis_url: str) -> None:
    registry = Registry(RegistrySettings(url=redis_url, heartbeat_seconds=0.05, ttl_seconds=5))
    try:
        registrations = [Registration(registry, card(), [f"r:{i}"]) for i in range(30)]
        for registration in registrations:
            await registration.start()
        await asyncio.sleep(0.3)  # many beats under way at any moment
        await asyncio.wait_for(asyncio.gather(*(r.stop() for r in registrations)), 30)
        assert not any(r.beating for r in registrations)
        registry.invalidate()
        assert await registry.entries() == []
    finally:
        await registry.aclose()


async def test_serve_with_an_unreachable_registry_says_so_and_exits() -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "serve", "--grpc-port", "0", "--store", "memory", "--registry", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("a2a-grpc: error: registry redis://127.0.0.1:1/0: registering: cannot connect")
    assert "a2a-grpc: stopped" in result.stdout


async def test_concurrent_misses_share_one_read_and_a_burst_does_not_exhaust_the_pool(
    redis_url: str, registry: Registry
) -> None:
    for i in range(5):
        await registry.register(card(skills=tuple(f"s{j}" for j in range(i, i + 60))), [f"r:{i}"])
    registry.invalidate()
    direct = redis.asyncio.Redis.from_url(redis_url)
    try:
        await registry.replicas("warm-the-script")
        before = (await direct.info("commandstats"))["cmdstat_evalsha"]["calls"]
        answers = await asyncio.gather(*(registry.replicas("s4") for _ in range(200)))
        after = (await direct.info("commandstats"))["cmdstat_evalsha"]["calls"]
    finally:
        await direct.aclose()
    assert after == before + 1
    assert all(len(a) == 5 for a in answers)
    # 300 distinct queries at once: more than redis-py's pool of 100 connections holds.
    registry.invalidate()
    many = await asyncio.gather(*(registry.replicas(f"s{j}") for j in range(300)))
    assert [len(a) for a in many[:6]] == [1, 2, 3, 4, 5, 5]
    assert sum(len(a) for a in many) == 5 * 60
    # A caller that gives up does not cancel the read the others wait for.
    registry.invalidate()
    first = asyncio.get_running_loop().create_task(registry.replicas("s10"))
    second = asyncio.get_running_loop().create_task(registry.replicas("s10"))
    await asyncio.sleep(0)
    first.cancel()
    assert len(await second) == 5
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_the_registry_works_on_a_redis_cluster(tmp_path: Path) -> None:
    # A one-node cluster holding every slot: cluster mode's rules (one slot per script and per
    # multi-key command, MOVED redirections) apply as on many nodes.
    server = start_redis(
        tmp_path / "cluster", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"
    )
    try:
        admin = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
        try:
            await admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            await until(lambda: _cluster_ok(admin))
        finally:
            await admin.aclose()
        registry = Registry(
            RegistrySettings(url=f"redis://127.0.0.1:{server.port}?cluster=true", cache_seconds=0)
        )
        try:
            registration = Registration(registry, card("{a}:b", ("plan", "x{y}")), ["10.0.0.1:1"])
            await registration.start()
            await registry.register(card("coder", ("code",)), ["10.0.0.2:1"])
            assert await registration.beat() == "refreshed"
            assert [e.name for e in await registry.replicas("x{y}")] == ["{a}:b"]
            assert sorted(e.name for e in await registry.entries()) == ["coder", "{a}:b"]
            registration.update(card("{a}:b", ("plan",), version="2"))
            assert await registration.beat() == "uploaded"
            assert [e.card.version for e in await registry.agent("{a}:b")] == ["2"]
            await registration.stop()
            assert [e.name for e in await registry.entries()] == ["coder"]
        finally:
            await registry.aclose()
    finally:
        server.stop()


async def _cluster_ok(admin: redis.asyncio.Redis) -> bool:
    info = await admin.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


# -- retries after a failed heartbeat --------------------------------------------------------------


class _FailingRegistry(Registry):
    """A registry whose heartbeats fail as if Redis were gone, then answer again."""

    def __init__(self, settings: RegistrySettings) -> None:
        super().__init__(settings)
        self.failing = True
        self.beats: list[float] = []

    async def heartbeat(self, name: str, replica: str, etag: str, skills: tuple[str, ...]) -> float | None:
        self.beats.append(asyncio.get_running_loop().time())
        if self.failing:
            raise RegistryUnavailableError("the registry does not answer (test)")
        return 1e12


async def test_failed_heartbeats_are_retried_after_full_jitter_waits_that_double_to_the_cap() -> None:
    import random

    settings = RegistrySettings(
        url="redis://127.0.0.1:1/0", heartbeat_seconds=60, retry_base_seconds=0.1, retry_cap_seconds=10
    )
    registry = _FailingRegistry(settings)
    registration = Registration(registry, card(), ["10.0.0.1:50051"], rng=random.Random(7))
    registration._registered_as = (card_etag(card()), ("plan", "echo"))  # registered: beats are heartbeats
    ceilings = []
    for failures in range(1, 10):
        with pytest.raises(RegistryUnavailableError):
            await registration.beat()
        registration._failures = failures
        waits = [registration._interval() for _ in range(200)]
        assert all(0 <= w <= min(10, 0.1 * 2 ** (failures - 1)) for w in waits)
        ceilings.append(max(waits))
    # The window doubles (0.1, 0.2, ... s) until the cap: a herd spreads over it, never past 10 s.
    assert ceilings[0] < 0.1 < ceilings[1] < 0.2 < ceilings[2]
    assert 5 < ceilings[-1] <= 10
    registration._failures = 0  # a beat that succeeds: back to the heartbeat interval
    assert all(54 <= registration._interval() <= 66 for _ in range(50))
    await registry.aclose()


async def test_retry_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="retry_cap_seconds"):
        RegistrySettings(retry_base_seconds=2, retry_cap_seconds=1)
    with pytest.raises(ValueError, match="retry_base_seconds"):
        RegistrySettings(retry_base_seconds=0)
