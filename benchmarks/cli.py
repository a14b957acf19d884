"""The command line of ``python -m benchmarks``: options, defaults, ``--smoke``, and their checks."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES
from benchmarks.report import NOISE_CPU
from benchmarks.servers import REPO_ROOT

__all__ = ["IDLE_PROBES", "IDLE_PROBE_SECONDS", "Settings", "UsageError", "list_cases", "parser", "settings"]

IDLE_PROBE_SECONDS = 0.5
IDLE_PROBES = 2
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "latest.json"
DEFAULTS = {
    "concurrency": "1,16,64",
    "duration": 5.0,
    "warmup": 1.5,
    "stream_events": 20,
    "artifact_mib": 256,
}
SMOKE = {"concurrency": "1,4", "duration": 0.3, "warmup": 0.2, "stream_events": 10, "artifact_mib": 4}
SMOKE_CASES = ["sdk-grpc", "grpc-bare", "grpc-unary", "grpc-stream", "sdk-jsonrpc", "artifact-256mib",
               "jsonrpc-inproc", "rest-inproc", "session-unary", "grpc-unary-redis",
               "subscribe-fanout-redis"]  # fmt: skip

DESCRIPTION = """\
Measure our A2A servers side by side with the official a2a-sdk's and with a bare gRPC server
(the ceiling nothing built on grpc.aio can beat), in one run, and print the results as tables.

Every server runs in its own process pinned to CPU core 0; this process is the one load
generator, pinned to core 1. For each case the harness starts its server(s), checks one answer
in full, then for each --concurrency level runs that many callers, each sending its next request
as soon as the last one is answered: --warmup seconds unmeasured, then --duration seconds
measured. It reports requests per second, p50/p99 latency, server and client CPU, and server
peak memory. Every request is the same SendMessage carrying a 100-byte text; the agent answers
with a completed task holding one artifact with that text. A failed or wrong answer counts as an
error and flags the case; skipped and failed cases are reported by name, never as a number.

After the results come two more tables, both computed from this run's figures only. Ratios:
each of our cases divided by the baseline it is compared with (e.g. grpc-unary / sdk-grpc).
Targets: the project's speed goals, each a ratio to a baseline or a bound (e.g. "grpc-unary
throughput >= 5x sdk-grpc", "artifact-256mib peak RSS growth < 64 MiB"), read at concurrency 16
(or the highest level measured) and marked PASS or MISS.
"""

EPILOG = """\
cases (see --list): baselines sdk-grpc, sdk-grpc-stream, sdk-jsonrpc, sdk-jsonrpc-stream,
sdk-rest, grpc-bare, grpc-bare-bidi; ours grpc-unary, grpc-unary-sqlite, grpc-unary-apikey,
grpc-unary-jwt, grpc-unary-redis, grpc-stream, grpc-stream-sqlite, grpc-stream-redis,
subscribe-fanout (N subscribers on ONE task; -sqlite and -redis on those stores; the -redis cases
start a redis-server of their own), session-unary and session-stream (every
worker's calls over ONE session), session-handshake (open and close a session per operation),
session-artifact-256mib (the large artifact over one session, 4 MiB frames; once),
session-idle (10,000 idle sessions held with heartbeats: server RSS; once),
artifact-256mib (once, not per concurrency: MB/s and server peak RSS growth); our JSON
bindings jsonrpc-inproc, rest-inproc, jsonrpc-stream-inproc (a2a-grpc serve --http-port)
and jsonrpc-bridge, rest-bridge (a2a-grpc bridge http-to-grpc in front of our gRPC server),
reported as skipped when the bridge package is not importable; trace context
grpc-unary-untraced, grpc-unary-propagate, grpc-unary-spans, grpc-unary-observed and the same
four for session-unary (every call sends a traceparent; the server has no instrumentation, trace
context only, trace context and spans it exports over OTLP to a dummy collector process, or the
defaults: metrics and trace context), skipped without the OpenTelemetry SDK.

columns: rate = requests (events, messages) per second in the measured window; p50/p99 =
latency of one request (one whole stream); srv CPU = server CPU seconds per second (1.00 =
core 0 saturated); client CPU = the same for this load generator (near 1.00 means the
client, not the server, set the pace); other CPU = cores used by the rest of the machine
(above {noise} the run is listed as unreliable); srv RSS = server peak RSS (VmHWM, reset
before each run where the kernel allows).

--smoke: a quick run that checks everything works, not a measurement: concurrency 1,4,
--duration 0.3, --warmup 0.2, 10 stream events, a 4 MiB artifact, and the cases {smoke};
options given explicitly still win.

exit status: 0 when every selected case was measured without errors (skipped cases are
fine; a missed target is reported, not fatal), 1 when a case failed or had errors, 2 for bad
arguments, 130 when interrupted (the servers are stopped and partial results written).

examples:
  python -m benchmarks                              # the full suite, several minutes
  python -m benchmarks --cases sdk-grpc,grpc-unary --concurrency 16 --duration 10
  python -m benchmarks --smoke --json /tmp/smoke.json
  python -m benchmarks.profile --help               # where the server's time goes
""".format(smoke=", ".join(SMOKE_CASES), noise=NOISE_CPU)


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="list the cases (what each measures, against which baseline) and exit",
    )
    p.add_argument(
        "--cases",
        metavar="NAMES",
        help="comma-separated names of the cases to run; --list shows them "
        "(default: all; with --smoke: the smoke set)",
    )
    p.add_argument(
        "--concurrency",
        metavar="N,N,...",
        help="comma-separated numbers of simultaneous callers; each case runs once per number "
        f"(default: {DEFAULTS['concurrency']})",
    )
    p.add_argument(
        "--duration",
        metavar="SECONDS",
        type=float,
        help=f"seconds measured per run (default: {DEFAULTS['duration']})",
    )
    p.add_argument(
        "--warmup",
        metavar="SECONDS",
        type=float,
        help=f"seconds of load before each measured run, not counted (default: {DEFAULTS['warmup']})",
    )
    p.add_argument(
        "--stream-events",
        metavar="N",
        type=int,
        help=f"artifact events the agent sends per streaming call (default: {DEFAULTS['stream_events']})",
    )
    p.add_argument(
        "--artifact-mib",
        metavar="MIB",
        type=int,
        help="size in MiB of the one large artifact that artifact-256mib streams "
        f"(default: {DEFAULTS['artifact_mib']})",
    )
    p.add_argument(
        "--artifact-chunk-kib",
        metavar="KIB",
        type=int,
        default=1024,
        help="size in KiB of the chunks that artifact is streamed in (default: 1024)",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where to write every figure, error sample and machine detail (default: {DEFAULT_JSON})",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the rest of the machine to go idle "
        f"(under {NOISE_CPU} cores busy for {IDLE_PROBES * IDLE_PROBE_SECONDS:g} s); default 0: do not wait",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a quick, small run that checks everything works; its figures mean little (see below)",
    )
    return p


@dataclass(frozen=True, slots=True)
class Settings:
    """The run, as the command line asked for it (after --smoke and the defaults are applied)."""

    cases: list[str]
    concurrency: list[int]
    duration: float
    warmup: float
    stream_events: int
    artifact_mib: int
    artifact_chunk_kib: int
    smoke: bool
    wait_idle: float


def settings(args: argparse.Namespace) -> Settings:
    base = SMOKE if args.smoke else DEFAULTS

    def pick(key: str) -> Any:
        value = getattr(args, key)
        return base[key] if value is None else value

    try:
        levels = sorted({int(x) for x in str(pick("concurrency")).split(",") if x.strip()})
    except ValueError:
        raise UsageError(
            f"--concurrency must be comma-separated integers, not {pick('concurrency')!r}"
        ) from None
    if not levels or levels[0] < 1:
        raise UsageError("--concurrency needs at least one level, each >= 1")
    names = [n.strip() for n in args.cases.split(",") if n.strip()] if args.cases else None
    if names is None:
        names = SMOKE_CASES if args.smoke else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise UsageError(f"unknown case(s) {', '.join(unknown)}; --list shows them")
    chosen = Settings(
        cases=list(dict.fromkeys(names)),
        concurrency=levels,
        duration=float(pick("duration")),
        warmup=float(pick("warmup")),
        stream_events=int(pick("stream_events")),
        artifact_mib=int(pick("artifact_mib")),
        artifact_chunk_kib=int(args.artifact_chunk_kib),
        smoke=bool(args.smoke),
        wait_idle=max(0.0, float(args.wait_idle)),
    )
    if chosen.duration <= 0 or chosen.warmup < 0:
        raise UsageError("--duration must be positive and --warmup must not be negative")
    if min(chosen.stream_events, chosen.artifact_mib, chosen.artifact_chunk_kib) < 1:
        raise UsageError("--stream-events, --artifact-mib and --artifact-chunk-kib must be at least 1")
    return chosen


def list_cases() -> str:
    width = max(len(n) for n in CASES)
    lines = []
    for case in CASES.values():
        skip = case.requires()
        note = f"  [skipped now: {skip}]" if skip else ""
        vs = f" (vs {', '.join(case.baselines)})" if case.baselines else ""
        lines.append(f"{case.name:<{width}}  {case.group:<8}  {case.unit:<8}  {case.summary}{vs}{note}")
    return "\n".join(lines)
