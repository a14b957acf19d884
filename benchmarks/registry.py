"""The capability registry at mesh scale: ``python -m benchmarks.registry`` (``--help``).

Simulates ``--agents`` agent replicas (10,000 by default) registering in one Redis and
heartbeating, from this one process with asyncio (one shared connection pool, at most
``--concurrency`` commands in flight), and measures:

1. **registration**: every replica registers its card (about 1.5 KiB, three skills of
   ``--skills``); registrations per second, and Redis's memory per replica;
2. **heartbeat cost**: one heartbeat of every replica, as fast as they go: heartbeats per second,
   Redis commands per heartbeat (the one script call, and the commands it runs) and Redis CPU per
   heartbeat, from ``INFO``. The load at the 60 s default is extrapolated from these: replicas / 60
   heartbeats a second, times the CPU each costs;
3. **live**: every replica runs its real heartbeat loop (:class:`Registration`: the first beat at
   a random point of the interval, then every ``--beat-interval``, 60 s like the default setting,
   with its jitter) for ``--beat-seconds``; heartbeats and Redis commands per second, Redis CPU.
   A caller in a process of its own (the replicas keep this one's event loop busy) looks replicas
   up by skill, before the live phase and during it: without the cache (every lookup asks Redis)
   and with it (a working set of ``--working-set`` skills, ``cache_seconds`` 5); lookup latency
   p50 and p99 of each, and the cache's hit ratio.

The replicas share this process: registrations and heartbeats per second here are this one
Python process's ceiling (the Redis CPU they cost is the figure that scales).

It starts its own redis-server (Debian's package) on a free loopback port, with no persistence,
and stops it by PID; ``--redis URL`` uses a running one instead (its database is flushed). The
whole run is bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import BlockingConnectionPool, Redis

from a2a_grpc import types
from a2a_grpc.mesh.registration import Registration
from a2a_grpc.mesh.registry import Registry, RegistrySettings
from a2a_grpc.redisconn import connect

__all__ = ["main", "run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of our own on a free loopback port, stopped by PID; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: make redis (Debian: apt-get install redis-server)")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args += ["--dir", str(folder), "--daemonize", "no", "--loglevel", "warning", "--maxclients", "10000"]
    log = (folder / "redis.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _ready(url: str) -> None:
    client = connect(url, socket_timeout=1.0, connect_timeout=1.0)
    try:
        for _ in range(500):
            with contextlib.suppress(Exception):
                if await client.ping():
                    return
            await asyncio.sleep(0.02)
        raise SystemExit(f"redis at {url} did not answer")
    finally:
        await client.aclose()


def agent_card(i: int, skills: int, rng: random.Random) -> types.AgentCard:
    """A card shaped like a specialist agent's: three skills, each with tags and examples."""
    chosen = rng.sample(range(skills), min(3, skills))
    card = types.AgentCard(
        name=f"agent-{i:05d}",
        description="A specialist agent of the simulated mesh. " * 4,
        version="1.0.0",
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain"],
    )
    card.supported_interfaces.add(
        url=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:50051", protocol_binding="GRPC"
    )
    for s in chosen:
        card.skills.add(
            id=f"skill-{s:04d}",
            name=f"Skill {s}",
            description=f"Does the work of skill {s}, carefully and quickly. " * 3,
            tags=["simulated", f"group-{s % 17}"],
            examples=[f"please do {s} on this", f"{s} that for me"],
        )
    return card


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _stats(url: str) -> dict[str, float]:
    client = connect(url)
    try:
        info = await client.info("all")
    finally:
        await client.aclose()
    calls = {
        k.removeprefix("cmdstat_"): float(v["calls"]) for k, v in info.items() if k.startswith("cmdstat_")
    }
    return {
        "cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
        "commands": sum(calls.values()),
        "evalsha": calls.get("evalsha", 0.0),
    }


async def _key_bytes(url: str) -> int:
    """What every key in the database takes (MEMORY USAGE, summed): the registry's own footprint,
    without the connections' buffers that INFO's memory figures include."""
    client = connect(url)
    total = 0
    try:
        batch: list[bytes] = []
        async for name in client.scan_iter(count=1000):
            batch.append(name)
            if len(batch) == 1000:
                total += await _usage(client, batch)
                batch = []
        total += await _usage(client, batch)
    finally:
        await client.aclose()
    return total


async def _usage(client: Any, names: list[bytes]) -> int:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name)
    return sum(int(size or 0) for size in await pipe.execute())


async def _gather_bounded(coros: Any, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(coro: Any) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


async def _lookups(registry: Registry, skills: Sequence[str], count: int, rng: random.Random) -> list[float]:
    took = []
    for _ in range(count):
        skill = rng.choice(skills)
        started = time.perf_counter()
        await registry.replicas(skill)
        took.append(time.perf_counter() - started)
    return took


def lookup_worker(url: str, skills: list[str], working: list[str], count: int) -> dict[str, float]:
    """A caller in a process of its own (the simulated replicas busy the parent's event loop): by
    skill, ``count`` lookups without the cache over every skill, then ``count`` with it over the
    working set. p50/p99 in ms, and the cache's hit ratio."""

    async def measure() -> dict[str, float]:
        rng = random.Random(7)
        out: dict[str, float] = {}
        uncached = Registry(RegistrySettings(url=url, cache_seconds=0, stale_seconds=0))
        cached = Registry(RegistrySettings(url=url, cache_seconds=5.0))
        labels = {"kind": "skill", "result": "miss"}
        missed = REGISTRY.get_sample_value("a2a_registry_lookups_total", labels) or 0.0
        try:
            for name, registry, among in (("uncached", uncached, skills), ("cached", cached, working)):
                samples = await _lookups(registry, among, count, rng)
                out[f"{name}_p50_ms"] = round(_quantile(samples, 0.5) * 1000, 3)
                out[f"{name}_p99_ms"] = round(_quantile(samples, 0.99) * 1000, 3)
            misses = (REGISTRY.get_sample_value("a2a_registry_lookups_total", labels) or 0.0) - missed - count
            out["cached_hit_ratio"] = round(1 - misses / count, 4)
        finally:
            await uncached.aclose()
            await cached.aclose()
        return out

    return asyncio.run(measure())


def _beats() -> dict[str, float]:
    """This process's heartbeats so far, by outcome."""
    return {
        o: REGISTRY.get_sample_value("a2a_registry_heartbeats_total", {"outcome": o}) or 0.0
        for o in ("refreshed", "uploaded", "failed")
    }


async def run(url: str, options: argparse.Namespace) -> dict[str, Any]:
    await _ready(url)
    rng = random.Random(16)
    flush = connect(url)
    try:
        await flush.flushall()
    finally:
        await flush.aclose()
    n, interval = options.agents, options.beat_interval
    settings = RegistrySettings(url=url, heartbeat_seconds=interval, cache_seconds=0, stale_seconds=0)
    # One pool for every simulated replica, waiting for a free connection rather than failing
    # (redis-py's own pool refuses past its size): at most --concurrency commands in flight.
    pool = BlockingConnectionPool.from_url(url, max_connections=options.concurrency, timeout=30)
    agents = Registry(settings, client=Redis(connection_pool=pool))
    cards = [agent_card(i, options.skills, rng) for i in range(n)]
    registrations = [
        Registration(agents, c, [c.supported_interfaces[0].url], rng=random.Random(i))
        for i, c in enumerate(cards)
    ]
    out: dict[str, Any] = {"agents": n, "skills": options.skills, "concurrency": options.concurrency}
    out["card_bytes"] = round(statistics.mean(c.ByteSize() for c in cards))
    try:
        # 1. registration (the first one loads the scripts into Redis, as one replica's start would)
        await registrations[0].register()
        await registrations[0].beat()
        before = await _stats(url)
        started = time.perf_counter()
        await _gather_bounded((r.register() for r in registrations[1:]), options.concurrency)
        took = time.perf_counter() - started
        after = await _stats(url)
        out["registrations_per_second"] = round((n - 1) / took) if n > 1 else 0
        out["redis_cpu_us_per_registration"] = round((after["cpu"] - before["cpu"]) / max(1, n - 1) * 1e6, 1)
        out["redis_bytes_per_replica"] = round(await _key_bytes(url) / n)
        # 2. one heartbeat each, as fast as they go
        before, beats = await _stats(url), _beats()
        started = time.perf_counter()
        await _gather_bounded((r.beat() for r in registrations), options.concurrency)
        took = time.perf_counter() - started
        after = await _stats(url)
        out["heartbeats_refreshed"] = int(_beats()["refreshed"] - beats["refreshed"])
        out["heartbeats_uploaded"] = int(_beats()["uploaded"] - beats["uploaded"])
        cpu_per_beat = (after["cpu"] - before["cpu"]) / n
        out["heartbeats_per_second_max"] = round(n / took)
        out["redis_commands_per_heartbeat_sent"] = round((after["evalsha"] - before["evalsha"]) / n, 2)
        out["redis_commands_per_heartbeat_run"] = round((after["commands"] - before["commands"]) / n, 1)
        out["redis_cpu_us_per_heartbeat"] = round(cpu_per_beat * 1e6, 1)
        at_default = n / RegistrySettings().heartbeat_seconds
        out["heartbeats_per_second_at_60s"] = round(at_default, 1)
        out["redis_core_share_at_60s"] = round(at_default * cpu_per_beat, 4)
        # 3. live: the real loops; a caller in a process of its own looks up, before and meanwhile.
        all_skills = sorted({s.id for c in cards for s in c.skills})
        working = all_skills[: options.working_set]
        args = (url, all_skills, working, options.lookups)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as caller:
            loop = asyncio.get_running_loop()
            quiet = await loop.run_in_executor(caller, lookup_worker, *args)
            before, beats = await _stats(url), _beats()
            for r in registrations:
                r.keep_alive()
            live_started = time.perf_counter()
            try:
                await asyncio.sleep(options.beat_seconds / 4)  # the loops are beating
                loaded = await loop.run_in_executor(caller, lookup_worker, *args)
                rest = options.beat_seconds - (time.perf_counter() - live_started)
                if rest > 0:
                    await asyncio.sleep(rest)
            finally:
                await _gather_bounded((r.stop(deregister=False) for r in registrations), options.concurrency)
            live = time.perf_counter() - live_started
        after = await _stats(url)
        out["live_seconds"] = round(live, 1)
        out["live_heartbeat_interval_seconds"] = interval
        beaten = sum(_beats().values()) - sum(beats.values())
        out["live_heartbeats_per_second"] = round(beaten / live, 1)
        # Redis's own count: the heartbeats, and the caller's lookups made meanwhile.
        out["live_redis_commands_per_second"] = round((after["commands"] - before["commands"]) / live)
        out["live_redis_core_share"] = round((after["cpu"] - before["cpu"]) / live, 3)
        out |= {f"live_heartbeats_{o}": int(count - beats[o]) for o, count in _beats().items()}
        sizes = [len(await agents.replicas(s)) for s in all_skills[:50]]
        out["replicas_per_skill_mean"] = round(statistics.mean(sizes), 1)
        out |= {f"lookup_quiet_{k}": v for k, v in quiet.items()}
        out |= {f"lookup_live_{k}": v for k, v in loaded.items()}
        out["lookup_cached_working_set"] = len(working)
        out["lookups"] = options.lookups
    finally:
        await agents.aclose()
    return out


def report(result: dict[str, Any]) -> str:
    r = result
    return "\n".join(
        [
            f"registry: {r['agents']} simulated replicas, {r['skills']} skills, cards of {r['card_bytes']} B",
            f"  registration: {r['registrations_per_second']}/s from one process; "
            f"{r['redis_cpu_us_per_registration']} us of Redis CPU and {r['redis_bytes_per_replica']} B of "
            "Redis memory per replica",
            f"  heartbeat: up to {r['heartbeats_per_second_max']}/s from one process; "
            f"{r['redis_commands_per_heartbeat_sent']} command sent "
            f"({r['redis_commands_per_heartbeat_run']} run in Redis), "
            f"{r['redis_cpu_us_per_heartbeat']} us of Redis CPU each",
            f"  at the 60 s default: {r['heartbeats_per_second_at_60s']} heartbeats/s, "
            f"{r['redis_core_share_at_60s'] * 100:.2f} % of one Redis core "
            "(extrapolated from the CPU per heartbeat)",
            f"  live, {r['live_heartbeat_interval_seconds']} s interval for {r['live_seconds']} s: "
            f"{r['live_heartbeats_per_second']} heartbeats/s, "
            f"{r['live_redis_commands_per_second']} Redis commands/s (with the caller's lookups), "
            f"{r['live_redis_core_share'] * 100:.1f} % of one Redis core; heartbeats failed: "
            f"{r['live_heartbeats_failed']}, cards uploaded again: {r['live_heartbeats_uploaded']}",
            f"  lookup by skill ({r['replicas_per_skill_mean']} replicas each; {r['lookups']} lookups, "
            f"a caller process of its own; cached: a working set of {r['lookup_cached_working_set']} skills)",
            *(_lookup_line(r, when) for when in ("quiet", "live")),
        ]
    )


def _lookup_line(r: dict[str, Any], when: str) -> str:
    def ms(name: str) -> str:
        return f"{r[f'lookup_{when}_{name}_ms']} ms"

    hits = r[f"lookup_{when}_cached_hit_ratio"]
    return (
        f"    {when}: uncached p50 {ms('uncached_p50')} p99 {ms('uncached_p99')}; "
        f"cached p50 {ms('cached_p50')} p99 {ms('cached_p99')} (hits {hits:.1%})"
    )


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.registry",
        description="Simulate agent replicas registering and heartbeating against one Redis; measure "
        "registration rate, heartbeat cost (extrapolated to the 60 s default) and lookup latency with "
        "and without the caller's cache.",
    )
    p.add_argument("--agents", type=int, default=10_000, help="simulated replicas (default: 10000)")
    p.add_argument(
        "--skills", type=int, default=2_000, help="distinct skill ids; each card has 3 (default: 2000)"
    )
    p.add_argument("--concurrency", type=int, default=256, help="commands in flight at most (default: 256)")
    p.add_argument(
        "--beat-interval",
        type=float,
        default=RegistrySettings().heartbeat_seconds,
        help="heartbeat seconds of the live phase (default: the setting's default, 60)",
    )
    p.add_argument("--beat-seconds", type=float, default=60.0, help="live phase length (default: 60)")
    p.add_argument("--lookups", type=int, default=5_000, help="lookups timed, each way (default: 5000)")
    p.add_argument("--working-set", type=int, default=20, help="skills the cached caller uses (default: 20)")
    p.add_argument("--redis", metavar="URL", help="use this Redis (flushed!) instead of starting one")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    p.add_argument(
        "--max-seconds", type=float, default=300.0, help="abort the run after this long (default: 300)"
    )
    options = p.parse_args(argv)
    for name in ("agents", "skills", "concurrency", "lookups", "working_set"):
        if getattr(options, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if options.beat_interval <= 0 or options.beat_seconds <= 0 or options.max_seconds <= 0:
        p.error("--beat-interval, --beat-seconds and --max-seconds must be above 0")
    return options


async def _bounded(url: str, options: argparse.Namespace) -> dict[str, Any]:
    async with asyncio.timeout(options.max_seconds):
        return await run(url, options)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    try:
        if options.redis:
            result = asyncio.run(_bounded(options.redis, options))
        else:
            with (
                tempfile.TemporaryDirectory(prefix="a2a-registry-bench-") as folder,
                redis_server(Path(folder)) as url,
            ):
                result = asyncio.run(_bounded(url, options))
    except TimeoutError:
        print(f"registry benchmark: not done within --max-seconds {options.max_seconds:g}", file=sys.stderr)
        return 1
    print(report(result), flush=True)
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
