"""``python -m benchmarks.registry`` end to end at a small scale: it starts its own redis-server,
registers and heartbeats the simulated replicas, measures lookups, reports every figure and stops
its server. Only structure is asserted, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_registry_benchmark_runs_and_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "registry.json"
    args = ["--agents", "40", "--skills", "8", "--beat-interval", "0.5", "--beat-seconds", "1.5"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.registry", *args, "--lookups", "40", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lookup by skill" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["agents"] == 40
    for name in (
        "registrations_per_second",
        "redis_cpu_us_per_registration",
        "redis_bytes_per_replica",
        "heartbeats_per_second_max",
        "redis_cpu_us_per_heartbeat",
        "heartbeats_per_second_at_60s",
        "live_heartbeats_per_second",
        "live_redis_commands_per_second",
        "lookup_quiet_uncached_p99_ms",
        "lookup_live_uncached_p99_ms",
        "lookup_live_cached_p50_ms",
        "lookup_live_cached_p99_ms",
    ):
        assert isinstance(figures[name], int | float), name
        assert figures[name] > 0, name
    # Every heartbeat of the measured round refreshed its entry with the ETag alone.
    assert figures["heartbeats_refreshed"] == 40
    assert figures["heartbeats_uploaded"] == 0
    assert figures["redis_commands_per_heartbeat_sent"] == 1.0
    assert figures["live_heartbeats_failed"] == 0
    assert 0 < figures["lookup_live_cached_hit_ratio"] <= 1


def test_the_registry_benchmark_has_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.registry", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "--agents" in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.registry", "--agents", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "--agents must be at least 1" in bad.stderr
