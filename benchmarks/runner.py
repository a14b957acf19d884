"""One benchmark run, from the first server to the last table (``main`` is ``python -m benchmarks``)."""

from __future__ import annotations

import asyncio
import datetime
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import cli, machine, procstat
from benchmarks.artifact import measure_artifact
from benchmarks.cases import CASES, Case, Options
from benchmarks.cli import IDLE_PROBE_SECONDS, IDLE_PROBES, Settings
from benchmarks.load import measure
from benchmarks.report import NOISE_CPU, CaseResult, as_dict, noisy_runs, ratios, render, targets, write_json
from benchmarks.serve import pin_to_cpu
from benchmarks.servers import CLIENT_CPU, SERVER_CPU, ServerError, ServerSet

__all__ = ["main"]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _run_line(case: str, run: dict[str, Any], unit: str) -> str:
    cpu = run["server_cpu_per_s"]
    return (
        f"  {case:<22} c={run['concurrency']:<3} {run['units_per_s']:>10.1f} {unit:<8} "
        f"p50 {run['p50_ms']:7.2f} ms  p99 {run['p99_ms']:7.2f} ms  "
        f"srv cpu {_cpu(cpu)}  other cpu {_cpu(run['other_cpu_per_s'])}  errors {run['errors']}"
    )


async def _wait_idle(limit: float) -> None:
    """Wait (at most ``limit`` seconds) until other processes leave the machine nearly idle."""
    if limit <= 0:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    quiet = 0
    told = False
    while quiet < IDLE_PROBES and loop.time() < deadline:
        before = procstat.busy_cpu_seconds()
        await asyncio.sleep(IDLE_PROBE_SECONDS)
        after = procstat.busy_cpu_seconds()
        if before is None or after is None:
            return
        busy = (after - before) / IDLE_PROBE_SECONDS
        quiet = quiet + 1 if busy < NOISE_CPU else 0
        if quiet == 0 and not told:
            _progress(f"  waiting up to {limit:g} s for the machine to go idle ({busy:.2f} cores busy)")
            told = True
    if quiet < IDLE_PROBES:
        _progress("  the machine stayed busy; measuring anyway (see the 'other CPU' column)")


def _artifact_line(case: str, a: dict[str, Any]) -> str:
    if "cuts" in a:  # session-resume
        return (
            f"  {case:<22} {a['cuts']} cuts: drop to first resumed frame p50 {a['p50_ms']:.1f} ms  "
            f"p99 {a['p99_ms']:.1f} ms  max {a['max_ms']:.1f} ms  errors {a['errors']}"
        )
    if "sessions" in a:  # session-idle
        return (
            f"  {case:<22} {a['sessions']} sessions open in {a['open_seconds']:.1f} s  "
            f"server RSS {a['idle_rss_mib']:.0f} -> {a['rss_with_sessions_mib']:.0f} MiB  "
            f"heartbeats seen {a['server_heartbeats_seen']}  errors {a['errors']}"
        )
    growth = a["rss_growth_mib"]
    return (
        f"  {case:<22} {a['mb_per_s']:.1f} MB/s in {a['seconds']:.2f} s  "
        f"idle RSS {a['idle_rss_mib']:.0f} MiB  "
        f"peak RSS growth {'n/a' if growth is None else f'{growth:.0f}'} MiB  errors {a['errors']}"
    )


async def _run_case(case: Case, settings: Settings, options: Options) -> CaseResult:
    result = CaseResult(case.name, case.group, case.summary, case.unit, single_shot=case.load is None)
    if reason := case.requires():
        result.status, result.reason = "skipped", reason
        return result
    async with ServerSet(options.workdir) as servers:
        try:
            endpoint = await case.launch(servers, options)
        except (ServerError, OSError, KeyError, ValueError) as exc:
            result.status, result.reason = "error", f"server did not start: {exc}"
            return result
        result.server = {
            "pids": endpoint.pids,
            "pinned": endpoint.pinned,
            "cpu": SERVER_CPU,
            "info": [s.info for s in endpoint.servers],
        }
        try:
            if case.load is None:
                await _wait_idle(settings.wait_idle)
                if case.shot is not None:
                    result.artifact = await case.shot(endpoint, options)
                else:
                    result.artifact = await measure_artifact(
                        endpoint, options.artifact_bytes, options.artifact_chunk_bytes
                    )
                _progress(_artifact_line(case.name, result.artifact))
            else:
                assert case.request is not None
                request = case.request(endpoint, options)
                for level in settings.concurrency:
                    await _wait_idle(settings.wait_idle)
                    workload = case.load(endpoint, request, options)
                    await workload.open()
                    try:
                        stats = await measure(
                            workload, level, settings.warmup, settings.duration, endpoint.pids
                        )
                    finally:
                        await workload.close()
                    run = stats.summary()
                    result.runs.append(run)
                    _progress(_run_line(case.name, run, case.unit))
                    dead = [s.name for s in endpoint.servers if s.process.returncode is not None]
                    if dead:
                        raise ServerError(f"server {', '.join(dead)} exited during the run")
        except Exception as exc:  # one broken case must not lose the others' results
            result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
            tails = [s.log_tail() for s in endpoint.servers if s.log_tail()]
            if tails:
                result.reason += "\n" + "\n".join(tails)
    result.finish()
    return result


async def _run_all(settings: Settings, options: Options, results: list[CaseResult]) -> None:
    # SIGTERM stops the run like Ctrl-C: the running case's servers are stopped on the way out.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    names = settings.cases
    for i, name in enumerate(names, 1):
        case = CASES[name]
        _progress(f"[{i}/{len(names)}] {name}: {case.summary}")
        result = await _run_case(case, settings, options)
        results.append(result)
        if result.status != "ok":
            _progress(f"  {name}: {result.status.upper()}: {result.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = cli.parser().parse_args(argv)
    if args.list:
        print(cli.list_cases())
        return 0
    try:
        settings = cli.settings(args)
    except cli.UsageError as exc:
        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
        return 2
    client_pinned = pin_to_cpu(CLIENT_CPU)
    if not client_pinned:
        _progress(f"note: could not pin the load generator to core {CLIENT_CPU}; figures are less stable")
    results: list[CaseResult] = []
    interrupted = False
    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    source = machine.source_state()
    with tempfile.TemporaryDirectory(prefix="a2a-bench-") as workdir:
        options = Options(
            workdir=Path(workdir),
            stream_events=settings.stream_events,
            artifact_bytes=settings.artifact_mib * 2**20,
            artifact_chunk_bytes=settings.artifact_chunk_kib * 1024,
        )
        try:
            asyncio.run(_run_all(settings, options, results))
        except (KeyboardInterrupt, asyncio.CancelledError):
            interrupted = True
            _progress("interrupted: servers stopped; reporting what was measured")
    baselines = {name: case.baselines for name, case in CASES.items()}
    ratio_rows = ratios(results, baselines)
    target_rows = targets(results)
    meta = {
        "started": started_at,
        **source,
        **machine.describe(),
        "argv": argv,
        "server_cpu": SERVER_CPU,
        "client_cpu": CLIENT_CPU,
        "client_pinned": client_pinned,
        **asdict(settings),
    }
    noisy = noisy_runs(results)
    meta.update(seconds=round(time.monotonic() - started, 1), interrupted=interrupted, noisy_runs=noisy)
    document = {
        "meta": meta,
        "cases": [as_dict(r) for r in results],
        "ratios": ratio_rows,
        "targets": target_rows,
    }
    write_json(args.json, document)
    pinned = client_pinned and all(r.server.get("pinned", True) for r in results)
    print(
        f"\nA2A benchmarks {meta['started']}, commit {meta['commit']}"
        f"{' + uncommitted runtime changes' if meta['runtime_changed'] else ''}: "
        f"python {meta['python']}, grpcio {meta['packages']['grpcio']}, "
        f"a2a-sdk {meta['packages']['a2a-sdk']}; servers on core {SERVER_CPU}, load generator on core "
        f"{CLIENT_CPU} ({'pinned' if pinned else 'NOT all pinned'}); warm-up {settings.warmup} s, "
        f"{settings.duration} s measured per run\n"
    )
    print(render(results, ratio_rows, target_rows))
    if noisy:
        print(
            f"\nWARNING: other processes used more than {NOISE_CPU} cores during {len(noisy)} run(s): "
            + ", ".join(noisy)
            + ". Those figures are unreliable; rerun on an idle machine."
        )
    print(f"\nresults: {args.json}")
    if interrupted:
        return 130
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1
