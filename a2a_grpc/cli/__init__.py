"""The ``a2a-grpc`` command: serve an agent, run the bridge, talk to an agent, run the benchmarks.

One module per kind of command: :mod:`~a2a_grpc.cli.serving` (``serve``, ``bridge``),
:mod:`~a2a_grpc.cli.calls` (``send``, ``card``, ``tasks``, ``bench``), with the argument types in
:mod:`~a2a_grpc.cli.args` and every option and help text in :mod:`~a2a_grpc.cli.parser`. The
command line is the composition root: it imports everything, and nothing imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from a2a_grpc import errors
from a2a_grpc.cli.calls import bench
from a2a_grpc.cli.common import CliError, set_speaker, speaker
from a2a_grpc.cli.config import LOG_LEVELS, command_of, configuration, given_flags
from a2a_grpc.cli.parser import parser
from a2a_grpc.cli.workers import WorkerRole
from a2a_grpc.observability.logs import configure_logging

__all__ = ["main", "parse", "parser"]


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line, or SystemExit(2) with the usage of the (sub)command that was given it."""
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown:
        getattr(args, "usage_parser", top).error(f"unrecognized arguments: {' '.join(unknown)}")
    args.argv = list(argv)  # serve --workers runs each worker with the same command line
    if command_of(args) is not None:  # which flags set configuration keys (the others leave them)
        args.given_flags = given_flags(list(argv), parser(explicit=True))
    return args


def require_otel() -> None:
    """Spans are asked for: the OpenTelemetry SDK and its OTLP exporter must be installed (the
    ``otel`` extra), said before anything starts."""
    from a2a_grpc.observability.spans import OTEL_MISSING

    try:
        import opentelemetry.exporter.otlp.proto.grpc.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise CliError(OTEL_MISSING) from None


def _run(argv: list[str]) -> int:
    # `bench` hands everything after it to the harness, which parses its own options (and --help).
    first = 0
    while first < len(argv) and argv[first].startswith("--log-level"):
        first += 1 if "=" in argv[first] else 2
    if argv[first : first + 1] == ["bench"]:
        before = argparse.ArgumentParser(prog="a2a-grpc")
        before.add_argument("--log-level", choices=LOG_LEVELS, default="warning")
        configure_logging(before.parse_args(argv[:first]).log_level)
        return bench(argv[first + 1 :])
    args = parse(argv)
    if command_of(args) is None:  # a client command: its flags are its whole configuration
        configure_logging(args.log_level)
        return int(asyncio.run(args.func(args)))
    # serve and bridge: defaults < the --config file < A2A_* variables < flags (a2a_grpc.settings).
    from a2a_grpc.settings import ConfigError

    try:
        worker = args.worker = WorkerRole.from_env() if args.command == "serve" else None
        if worker is not None:
            set_speaker(f"a2a-grpc[worker {worker.index}]")
        args.config = config = configuration(args)
        observability = config.built["observability"]
        configure_logging(
            config.value("log.level"),
            observability.log_format,
            debug=observability.debug,
            worker=None if worker is None else worker.index,
        )
        if observability.spans:
            require_otel()
        logs_requests = (config.values.get(f"{s}.log_requests") for s in ("server", "bridge"))
        if any(logs_requests):  # one line per call, whatever the level
            logging.getLogger("a2a_grpc.access").setLevel(logging.INFO)
        return int(asyncio.run(args.func(args)))
    except ConfigError as exc:  # a value the settings refuse when the command builds them
        raise CliError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except CliError as exc:
        print(f"{speaker()}: error: {exc}", file=sys.stderr)
        return 1
    except errors.A2AError as exc:
        print(f"{speaker()}: error: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`a2a-grpc ... | head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
