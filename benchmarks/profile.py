"""Where a benchmark server spends its time: ``python -m benchmarks.profile [options]``.

It starts one ``benchmarks.serve`` server (default: ours, memory store) pinned to
core 0, drives it with the benchmarks' own load generator (SendMessage echo, or
the streaming request with ``--stream``; every worker's calls over ONE session
with ``--session``) from core 1, and profiles the server:

* ``--tool py-spy`` samples the running server from outside (``py-spy record
  --nonblocking``: the server is never paused) and reports, per function, the
  share of samples in which it was the innermost frame ("own time"), plus the
  share per area (grpc, asyncio, protobuf, a2a_grpc, ...). Needs the ``py-spy``
  binary (``pip install py-spy``; ``--py-spy PATH`` if it is not on PATH).
* ``--tool cprofile`` runs the server under cProfile (exact call counts, but it
  slows the server down several times) and reports own time per function and
  per request.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.load import measure
from benchmarks.payload import grpc_send_request
from benchmarks.serve import pin_to_cpu
from benchmarks.servers import CLIENT_CPU, SERVER_CPU, Endpoint, ServerSet, python_module
from benchmarks.workload import stream_text
from benchmarks.workloads import GrpcStream, GrpcUnary, SessionStream, SessionUnary

__all__ = ["main"]

HOST = "127.0.0.1"
SAMPLE_RATE = 250
PER_REQUEST_FUNCTION = "call_context"
PROFILED_KINDS = ["ours", "sdk-grpc", "grpc-bare"]
"""The gRPC servers that answer SendMessage (the HTTP ones are driven through their own cases)."""
IDLE_FRAMES = {"epoll_wait", "epoll_pwait", "poll", "select", "pthread_cond_wait", "pthread_cond_timedwait"}
PY_SPY_GRACE_SECONDS = 30.0
AREAS = [
    ("a2a_grpc (ours)", ("a2a_grpc/",)),
    ("benchmarks agent", ("benchmarks/",)),
    ("a2a-sdk", ("a2a/",)),
    ("protobuf", ("google/protobuf", "_message", "upb", "protobuf")),
    ("grpc core (C)", ("libgrpc", "grpc_core", "grpc_", "cygrpc.cpython", "absl", "gpr_")),
    ("grpc python / cython", ("grpc/", ".pyx", ".pxi")),
    ("asyncio", ("asyncio/", "selectors.py")),
    ("python interpreter (C)", ("libpython", "python3.11", "_PyEval", "Py", "_Py")),
    ("kernel / libc", ("libc.so", "libc-", "epoll", "syscall", "__", "clone")),
    ("uuid", ("uuid.py",)),
    ("threading", ("threading.py",)),
]


def _area(frame: str) -> str:
    for name, needles in AREAS:
        if any(n in frame for n in needles):
            return name
    return "other"


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file.py)``: one row per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})" if short else name


def report_py_spy(raw: Path, top: int, requests: int) -> str:
    """Own-time shares from py-spy's raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.partition(" ")[0] in IDLE_FRAMES:
            continue  # a thread waiting for work (native stacks only): not CPU time
        n = int(count)
        total += n
        own[_function(leaf)] += n
        areas[_area(leaf)] += n
    if not total:
        return "py-spy recorded no samples"
    lines = [f"{total} samples of a busy server ({requests} operations in the measured window)", ""]
    lines.append("| area (innermost frame) | share of samples |")
    lines.append("|---|---:|")
    lines += [f"| {name} | {n / total:.1%} |" for name, n in areas.most_common()]
    lines += ["", "| function (own time) | share of samples |", "|---|---:|"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in own.most_common(top)]
    return "\n".join(lines)


def report_cprofile(path: Path, top: int) -> str:
    """Own time per function from cProfile, per request where SendMessage calls can be counted."""
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    # call_context runs once per RPC of our server and is a plain function (a coroutine's calls are
    # counted once per resumption), so its call count is the number of requests.
    requests = sum(
        v[1] for k, v in table.items() if k[2] == PER_REQUEST_FUNCTION and k[0].endswith("server.py")
    )
    total = sum(v[2] for v in table.values())
    rows = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    lines = [
        f"{requests} requests profiled (calls of {PER_REQUEST_FUNCTION}); own time {total:.2f} s in total",
        "",
    ]
    lines.append("| function | calls/request | own µs/request | share of own time |")
    lines.append("|---|---:|---:|---:|")
    for (file, line, name), (_, calls, tottime, _, _) in rows:
        where = "/".join(Path(file).parts[-2:]) if file != "~" else "built-in"
        per = max(requests, 1)
        share = tottime / total
        lines.append(
            f"| `{name}` ({where}:{line}) | {calls / per:.1f} | {tottime / per * 1e6:.1f} | {share:.1%} |"
        )
    return "\n".join(lines)


async def _run(args: argparse.Namespace, workdir: Path) -> str:
    prof = workdir / "server.prof"
    raw = workdir / "py-spy.txt"
    extra = ["--cprofile", str(prof)] if args.tool == "cprofile" else []
    async with ServerSet(workdir) as servers:
        server = await servers.start(
            args.server,
            python_module(
                "benchmarks.serve", args.server, "--cpu", str(SERVER_CPU), "--store", args.store, *extra
            ),
        )
        endpoint = Endpoint(HOST, [server], grpc_port=int(server.info["port"]))
        workload: GrpcUnary | GrpcStream | SessionUnary | SessionStream
        target = endpoint.grpc_target
        if args.stream:
            request = grpc_send_request(stream_text(args.stream))
            if args.session:
                workload = SessionStream(target, request, args.stream)
            else:
                workload = GrpcStream(target, request, args.stream)
        elif args.session:
            workload = SessionUnary(target, grpc_send_request())
        else:
            workload = GrpcUnary(target, grpc_send_request())
        spy: asyncio.Task[int] | None = None
        if args.tool == "py-spy":
            command = [args.py_spy, "record", "--pid", str(server.pid), "--duration", str(int(args.seconds))]
            command += ["--rate", str(SAMPLE_RATE), "--format", "raw", "--output", str(raw)]
            # py-spy reads native stacks only from a paused process: --native slows the server down.
            command += ["--native"] if args.native else ["--nonblocking"]
            spy = asyncio.create_task(_after(args.warmup, command))
        await workload.open()
        try:
            stats = await measure(workload, args.concurrency, args.warmup, args.seconds, endpoint.pids)
        finally:
            await workload.close()
        if spy is not None and await spy != 0:
            raise RuntimeError(f"py-spy failed; see {raw}")
    summary = stats.summary()
    head = (
        f"{args.server} at c={args.concurrency}: {summary['units_per_s']:.0f} {workload.unit}/s, "
        f"server CPU {summary['server_cpu_per_s']:.2f} s/s, other CPU {summary['other_cpu_per_s']:.2f}, "
        f"errors {summary['errors']} ({args.tool})\n"
    )
    if args.tool == "py-spy":
        return head + report_py_spy(raw, args.top, stats.operations)
    return head + report_cprofile(prof, args.top)


async def _after(delay: float, command: Sequence[str]) -> int:
    await asyncio.sleep(delay)
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(process.wait(), PY_SPY_GRACE_SECONDS + float(command[5]))
    except BaseException:
        process.kill()
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server", default="ours", choices=PROFILED_KINDS, help="the server to profile (default: ours)"
    )
    parser.add_argument(
        "--store", default="memory", help="task store URL for --server ours (default: memory)"
    )
    parser.add_argument("--tool", choices=["py-spy", "cprofile"], default="py-spy")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy", help="the py-spy binary")
    parser.add_argument(
        "--native",
        action="store_true",
        help="py-spy: include C/C++/Cython frames (pauses the server per sample)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop workers (default: 16)")
    parser.add_argument("--seconds", type=float, default=15.0, help="profiled seconds (default: 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before profiling (default: 2)")
    parser.add_argument("--stream", type=int, default=0, metavar="N", help="profile streaming with N events")
    parser.add_argument(
        "--session", action="store_true", help="every worker's calls over one session (ours only)"
    )
    parser.add_argument("--top", type=int, default=25, help="functions to list (default: 25)")
    args = parser.parse_args(argv)
    if args.session and args.server != "ours":
        parser.error("--session profiles our server only (the others have no session binding)")
    if args.tool == "py-spy" and shutil.which(args.py_spy) is None:
        print(
            f"python -m benchmarks.profile: error: py-spy not found ({args.py_spy}); pip install py-spy",
            file=sys.stderr,
        )
        return 2
    pin_to_cpu(CLIENT_CPU)
    with tempfile.TemporaryDirectory(prefix="a2a-profile-") as workdir:
        print(asyncio.run(_run(args, Path(workdir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
