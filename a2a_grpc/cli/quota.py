"""``a2a-grpc serve``'s fair-sharing flags: the rates and the main per-principal quotas of
:class:`a2a_grpc.security.limits.Limits` (docs/rate-limits.md)."""

from __future__ import annotations

import argparse

from limits import parse_many

from a2a_grpc.cli.args import positive_int
from a2a_grpc.security.limits import Limits

__all__ = ["quota_args"]

_DEFAULTS = Limits()
_COUNTS = {
    "max_running_tasks_per_principal": "tasks one principal may have running at once",
    "max_streams_per_principal": "streams (SendStreamingMessage, SubscribeToTask, live turns) one principal "
    "may have open at once, on every binding together",
    "max_sessions_per_principal": "sessions (the session binding) one principal may have open, "
    "detached ones included",
}


def rate(text: str) -> str:
    """A rate in the ``limits`` library's notation: ``100/second``, ``20/second;1000/minute``."""
    try:
        parse_many(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a rate like 100/second or 20/second;1000/minute, not {text!r}"
        ) from None
    return text


def quota_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rate-per-principal",
        metavar="RATE",
        type=rate,
        help="calls one principal may make, e.g. 100/second or 20/second;1000/minute; a call over it "
        "is refused (gRPC RESOURCE_EXHAUSTED, HTTP 429 with Retry-After) (default: no rate)",
    )
    p.add_argument(
        "--rate-per-tenant",
        metavar="RATE",
        type=rate,
        help="calls all principals of one tenant may make together, same notation (default: no rate)",
    )
    for name, what in _COUNTS.items():
        p.add_argument(
            "--" + name.replace("_", "-"),
            metavar="N",
            type=positive_int,
            help=f"{what} (default: {getattr(_DEFAULTS, name)})",
        )
