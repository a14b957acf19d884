"""Argument types: a bad value is refused by argparse, with the command's usage, before anything runs."""

from __future__ import annotations

import argparse
import math
from typing import Any
from urllib.parse import urlsplit

from a2a_grpc.cli.common import is_url
from a2a_grpc.tasks.store import MAX_PAGE_SIZE

__all__ = [
    "DEFAULT_GRPC_PORT",
    "EXAMPLE_ADDRESS",
    "agent_address",
    "grpc_address",
    "history_length",
    "http_url",
    "listen_address",
    "page_size",
    "port",
    "positive_int",
    "seconds",
    "workers",
]

DEFAULT_GRPC_PORT = 50051
EXAMPLE_ADDRESS = f"127.0.0.1:{DEFAULT_GRPC_PORT}"


def number(text: str, kind: type[int] | type[float], what: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None


def seconds(text: str) -> float:
    value = float(number(text, float, "a number of seconds"))
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def page_size(text: str) -> int:
    value = int(number(text, int, f"a whole number 1..{MAX_PAGE_SIZE}"))
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_PAGE_SIZE}, not {value}")
    return value


def history_length(text: str) -> int:
    value = int(number(text, int, "a whole number, 0 or more"))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive_int(text: str) -> int:
    value = int(number(text, int, "a whole number"))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def workers(text: str) -> int | str:
    """``--workers``: a whole number, at least 1, or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or auto, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 or auto, not {text!r}")
    return value


def port(text: str) -> int:
    value = int(number(text, int, "a port number 0..65535"))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, not {value}")
    return value


def host_port(text: str, *, listen: bool) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (host 127.0.0.1); ArgumentTypeError says how to fix it."""
    lowest = 0 if listen else 1
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not HOST:PORT; an IPv6 address looks like [::1]:50051"
            )
        port = port[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            if text.isdigit():
                example = f"127.0.0.1:{text}"
            else:
                example = f"{text}:{DEFAULT_GRPC_PORT}" if text and "/" not in text else EXAMPLE_ADDRESS
            raise argparse.ArgumentTypeError(f"{text!r} has no port: give HOST:PORT, e.g. {example}")
        if ":" in host:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not HOST:PORT; put an IPv6 address in brackets, e.g. [::1]:50051"
            )
    if not port:
        raise argparse.ArgumentTypeError(f"{text!r} has no port: give HOST:PORT, e.g. {EXAMPLE_ADDRESS}")
    if not port.isdigit() or not lowest <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"the port in {text!r} must be a number {lowest}..65535")
    return host or "127.0.0.1", int(port)


def listen_address(text: str) -> tuple[str, int]:
    return host_port(text, listen=True)


def grpc_address(text: str) -> str:
    """A gRPC target to dial, ``host:port`` (IPv6 in brackets)."""
    host, port = host_port(text, listen=False)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def agent_address(text: str) -> str:
    """A gRPC ``HOST:PORT``, or an http(s) URL whose agent card says where the gRPC interface is."""
    if is_url(text):
        if not urlsplit(text).hostname:
            raise argparse.ArgumentTypeError(f"{text!r} is not a URL with a host")
        return text
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give HOST:PORT (gRPC) or an http(s):// URL (its agent card)"
        )
    return grpc_address(text)


def http_url(text: str) -> str:
    if not is_url(text) or not urlsplit(text).hostname:
        raise argparse.ArgumentTypeError(f"must be an http(s):// URL, not {text!r}")
    return text
