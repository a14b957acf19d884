"""Benchmarks for a2a-grpc: our servers against the official a2a-sdk's, in one run.

``python -m benchmarks`` (or ``make bench``) starts every server in its own
process pinned to core 0, drives it from one shared asyncio load generator
pinned to core 1, and prints throughput, latency, server CPU and peak memory
next to the baselines measured in the same run. ``--help`` explains the rest;
``docs/performance.md`` explains the method and the results.

Only :func:`main` is public. It is imported lazily so that the server
processes, which import ``benchmarks.agents`` and ``benchmarks.serve``, do
not pay for the runner's imports.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks with command-line arguments ``argv`` (default: ``sys.argv[1:]``)."""
    from benchmarks.runner import main as run

    return run(argv)
