"""Where this process may call out to when a caller names the address: a strict ``HOST:PORT``
parser and an allowlist of peers (the reference agent's ``delegate`` uses both).

An address named in a request is untrusted text. :func:`parse_peer_address` takes exactly
``HOST:PORT``: an IPv4 address, a bracketed IPv6 address or a DNS name, and a port 1..65535;
nothing else (no scheme, user, path, spaces, empty labels, or names that are really numbers such as
``127.1``). :meth:`PeerAllowlist.resolve` then resolves a name once and says which address to dial,
if any: the caller connects to that address, so the name cannot point elsewhere between the check
and the connection.

Allowlist entries:

* ``10.1.0.0/16``, ``fd00::/8``: any port of any address in the network;
* ``127.0.0.1``, ``::1``: any port of that address; ``127.0.0.1:50052``, ``[::1]:50052``: that port;
* ``peer.internal``: any port of that name; ``peer.internal:50051``: that port. A name entry trusts
  what the name resolves to (your DNS); a name that is not listed is allowed only if the address it
  resolves to is.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["PeerAllowlist", "parse_peer_address"]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def _name(text: str) -> str | None:
    """``text`` as a lower-case DNS name, None if it is not one (RFC 1123; the last label not all
    digits, so that ``127.1`` or ``2130706433`` are never read as names)."""
    name = text.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        return None
    return name


def _ip(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 address written as IPv6 (::ffff:10.0.0.1) is that IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _split(text: str) -> tuple[str, str | None]:
    """``host`` and ``port`` text of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("a bracketed IPv6 address must look like [::1]:PORT")
        return host, rest[1:] if rest else None
    if text.count(":") > 1:  # a bare IPv6 address (an allowlist entry)
        return text, None
    host, sep, port = text.partition(":")
    return host, port if sep else None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def parse_peer_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of a strict ``HOST:PORT`` (host: IPv4, ``[IPv6]`` or a DNS name, returned
    lower-case and without brackets); ValueError saying what is wrong."""
    if not text or len(text) > 300 or not text.isascii() or not text.isprintable() or " " in text:
        raise ValueError("the address must be HOST:PORT")
    bracketed = text.startswith("[")
    host, port = _split(text)
    if port is None or (not bracketed and ":" in host):
        raise ValueError("the address must be HOST:PORT (an IPv6 address in brackets: [::1]:PORT)")
    number = _port(port)
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
        return str(_ip(host)), number
    address = _ip(host)
    if address is not None:
        return str(address), number
    name = _name(host)
    if name is None:
        raise ValueError(f"{host!r} is neither an IP address nor a host name")
    return name, number


@dataclass(frozen=True, slots=True)
class PeerAllowlist:
    """The peers a caller may make this process call (see the module docstring for the entries).

    Empty (the default) allows nothing. ValueError names an entry that is none of the forms.
    """

    entries: tuple[str, ...] = ()
    _networks: tuple[tuple[IpNetwork, int | None], ...] = field(default=(), init=False, repr=False)
    _names: tuple[tuple[str, int | None], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        entries = (self.entries,) if isinstance(self.entries, str) else tuple(self.entries)
        object.__setattr__(self, "entries", entries)
        networks: list[tuple[IpNetwork, int | None]] = []
        names: list[tuple[str, int | None]] = []
        for entry in entries:
            try:
                kind, port = self._entry(entry.strip())
            except ValueError as exc:
                raise ValueError(f"allowlist entry {entry!r}: {exc}") from None
            if isinstance(kind, str):
                names.append((kind, port))
            else:
                networks.append((kind, port))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", tuple(names))

    @staticmethod
    def _entry(text: str) -> tuple[IpNetwork | str, int | None]:
        if "/" in text:
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                raise ValueError(f"not a network ({exc})") from None
            return network, None
        host, port = _split(text)
        number = None if port is None else _port(port)
        address = _ip(host)
        if address is not None:
            return ipaddress.ip_network(address), number
        name = _name(host)
        if name is None:
            raise ValueError(
                "use an address, a network (10.0.0.0/8), or a host name, each with an optional :PORT"
            )
        return name, number

    @classmethod
    def of(cls, entries: Iterable[str]) -> PeerAllowlist:
        """The allowlist of ``entries``; an entry may hold several, comma-separated (as a flag gives them)."""
        return cls(tuple(part.strip() for entry in entries for part in entry.split(",") if part.strip()))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def allows_name(self, name: str, port: int) -> bool:
        return any(name == allowed and wanted in (None, port) for allowed, wanted in self._names)

    def allows_address(self, address: IpAddress, port: int) -> bool:
        return any(
            address.version == network.version and address in network and wanted in (None, port)
            for network, wanted in self._networks
        )

    async def resolve(self, host: str, port: int) -> str | None:
        """The address to dial for ``host:port`` (as :func:`parse_peer_address` returns them) if the
        allowlist allows it, else None. A name is resolved once, here (OSError if it cannot be)."""
        if not self.entries:
            return None
        address = _ip(host)
        if address is None:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            if not found:
                raise OSError(f"{host} has no address")
            address = _ip(str(found[0][4][0]))
            if address is None:
                return None
            if self.allows_name(host, port):
                return str(address)
        return str(address) if self.allows_address(address, port) else None
