"""Which IP addresses a server may be made to reach, and how resolvers spell IPv4 addresses.

Used by the webhook policy (:mod:`a2a_grpc.security.webhooks`): :func:`forbidden` says why an
address is off limits (loopback, private, link-local, ... and IPv6 forms embedding such an IPv4
address), :func:`literal_address` reads a URL host the way ``inet_aton`` and ``getaddrinfo`` do,
so ``2130706433``, ``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

__all__ = ["IPAddress", "forbidden", "literal_address", "looks_numeric"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# First match names the reason; anything else that is not global is refused by is_global below.
# Written out because is_global alone misjudges some ranges on older Pythons (100.64/10, 192.0.0/24).
_V4: Final = tuple(
    (ipaddress.IPv4Network(net), what)
    for net, what in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_V6: Final = tuple(
    (ipaddress.IPv6Network(net), what)
    for net, what in (
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible address (deprecated)"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address"),
        ("2001:db8::/32", "a documentation address"),
        ("2001::/23", "an IETF protocol assignment address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address (deprecated)"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_NUMERIC_LABEL: Final = re.compile(r"0x[0-9a-f]*|[0-9]+")


def looks_numeric(host: str) -> bool:
    """Whether resolvers read ``host`` as an IPv4 address: its last label is a number (WHATWG URL)."""
    last = host.rstrip(".").rpartition(".")[2].lower()
    return bool(_NUMERIC_LABEL.fullmatch(last))


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, the way ``inet_aton`` reads IPv4 (decimal, octal, hex, 1-4 parts)."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    if not looks_numeric(host):
        return None
    parts = host.rstrip(".").split(".")
    values: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                values.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                values.append(int(part, 8))
            else:
                values.append(int(part, 10))
        except ValueError:
            return None
    if (
        not 1 <= len(values) <= 4
        or any(v > 255 for v in values[:-1])
        or values[-1] >= 256 ** (5 - len(values))
    ):
        return None
    number = 0
    for v in values[:-1]:
        number = number << 8 | v
    number = number << 8 * (5 - len(values)) | values[-1]
    return ipaddress.IPv4Address(number)


def forbidden(address: IPAddress) -> str | None:
    """Why no webhook may target ``address`` (e.g. "a private address 10.0.0.1 (10.0.0.0/8)"), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        kind = "IPv4-mapped" if address.ipv4_mapped else "6to4"
        if embedded is None and address in _NAT64:
            embedded, kind = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
        if embedded is not None:
            inner = forbidden(embedded)
            return None if inner is None else f"{inner} inside the {kind} address {address}"
        table: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = _V6
    else:
        table = _V4
    for net, what in table:
        if address in net:
            return f"{what} {address} ({net})"
    if not address.is_global:
        return f"a non-global address {address}"
    return None
