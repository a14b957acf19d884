"""The capability registry on the command line: ``serve --registry URL`` and ``a2a-grpc registry list``.

``serve --registry redis://...`` registers the served agent at its advertised gRPC address
(``--registry-address``, else ``--public-address``, else the address it is bound to), heartbeats
while it runs and deregisters when it stops (before it drains). ``registry list URL`` prints the
live replicas, all or those offering ``--skill``, as a table or (``--json``) one JSON document.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from a2a_grpc.cli.args import grpc_address
from a2a_grpc.cli.common import CliError

if TYPE_CHECKING:
    from a2a_grpc.mesh.registration import Registration
    from a2a_grpc.mesh.registry import Entry
    from a2a_grpc.settings import Configuration

__all__ = ["registry_args", "registry_command", "registry_list", "start_registration", "stop_registration"]

COLUMNS = ("AGENT", "REPLICA", "ADDRESS", "ETAG", "EXPIRES", "SKILLS")


def registry_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``serve`` that register the agent (section ``registry``)."""
    p.add_argument(
        "--registry",
        metavar="URL",
        help="register the agent in the capability registry at this Redis URL (redis://, rediss://, "
        "unix://; ?prefix=NAME, ?cluster=true), heartbeat while serving, deregister on stop "
        "(docs/registry.md; default: no registry)",
    )
    p.add_argument(
        "--registry-address",
        metavar="HOST:PORT",
        type=grpc_address,
        help="the gRPC address registered (default: --public-address, else the address bound)",
    )


def registry_command(sub: Any, command: Any, timeout_arg: Any) -> None:
    """``a2a-grpc registry list``: add it to the parser's subcommands ``sub``."""
    p = sub.add_parser(
        "registry",
        help="read the capability registry",
        description="Read the capability registry agents register in (docs/registry.md).",
    )
    rsub = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    ls = command(
        rsub,
        "list",
        help="list the live agent replicas",
        description="List the agent replicas registered and alive (heartbeating within their TTL), "
        "freshest first: all of them, or those offering --skill. Exit status 1 when Redis does not answer.",
    )
    ls.add_argument("url", metavar="URL", help="the registry's Redis URL (as serve --registry)")
    ls.add_argument("--skill", metavar="ID", help="only the replicas offering this skill id")
    ls.add_argument("--json", action="store_true", help="one JSON array of entries instead of a table")
    timeout_arg(ls)
    ls.set_defaults(func=registry_list)


def _json(entry: Entry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "replica": entry.replica,
        "addresses": list(entry.addresses),
        "etag": entry.etag,
        "skills": list(entry.skills),
        "expires": round(entry.deadline, 3),
        "version": entry.card.version,
    }


def _table(entries: list[Entry], now: float) -> str:
    rows = [COLUMNS]
    for e in entries:
        left = f"{max(0.0, e.deadline - now):.0f}s"
        rows.append((e.name, e.replica, e.address, e.etag[:12], left, ",".join(e.skills)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


async def registry_list(args: argparse.Namespace) -> int:
    from a2a_grpc.mesh.registry import Registry, RegistryError, RegistrySettings

    try:
        settings = RegistrySettings(
            url=args.url, cache_seconds=0, stale_seconds=0, timeout_seconds=args.timeout
        )
    except ValueError as exc:
        raise CliError(f"registry list: {exc}") from None
    registry = Registry(settings)
    try:
        entries = await (registry.replicas(args.skill) if args.skill else registry.entries())
    except RegistryError as exc:
        raise CliError(str(exc)) from None
    finally:
        await registry.aclose()
    if args.json:
        print(json.dumps([_json(e) for e in entries], indent=2))
    else:
        print(_table(entries, time.time()))
    return 0


async def start_registration(config: Configuration, card: Any, bound: str) -> Registration | None:
    """``serve``: register ``card`` if ``registry.url`` is set (at ``registry.address``, else
    ``server.public_address``, else ``bound``), heartbeating from now on; None otherwise."""
    settings = config.built["registry"]
    if settings.url is None:
        return None
    from a2a_grpc.mesh.registration import Registration
    from a2a_grpc.mesh.registry import Registry, RegistryError

    address = settings.address or config.value("server.public_address") or bound
    registry = Registry(settings)
    try:
        registration = Registration(registry, card, [address])
        await registration.start()
    except RegistryError as exc:
        await registry.aclose()
        raise CliError(str(exc)) from None
    shown = registry.target.shown
    print(f"a2a-grpc: registered {card.name!r} at {address} in the registry {shown}", flush=True)
    return registration


async def stop_registration(registration: Registration | None) -> None:
    """``serve`` stops: deregister (before the drain, so callers route elsewhere) and disconnect."""
    if registration is not None:
        await registration.stop()
        await registration.registry.aclose()
