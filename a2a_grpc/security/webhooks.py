"""Where the server may send what it knows: the webhook policy (A2A spec §13.2).

A push notification config names a URL that the server POSTs task updates to, credentials
included. Unchecked, any caller could make the server reach its own loopback, the cloud metadata
service (169.254.169.254) or the private network behind it: server-side request forgery.
:class:`WebhookPolicy` decides which URLs are acceptable, in two steps:

* :meth:`WebhookPolicy.check`, when a config is accepted: the URL's shape (http or https, a host,
  no user info, a valid port, no fragment, bounded length), and hosts written as IP addresses
  in any spelling a resolver accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``,
  ``[::ffff:127.0.0.1]``) are judged at once. Refusals are ``InvalidParamsError`` naming the field.
* :meth:`WebhookPolicy.resolve`, before every delivery: the host name is resolved once, the
  delivery is refused if *any* address is forbidden, and the :class:`PinnedTarget` returned names
  the checked address, which the notifier connects to: a name cannot resolve to a public address
  for the check and to a private one for the connection (DNS rebinding).

Forbidden: every address that is not globally reachable (loopback, RFC 1918 and unique-local,
link-local, shared/CGNAT, unspecified, multicast, broadcast, reserved, documentation and
benchmarking ranges, site-local, Teredo, IPv4-compatible), and IPv6 addresses that embed a
forbidden IPv4 address (IPv4-mapped, 6to4, NAT64). ``allow`` lets chosen networks or host
names through, for tests and internal meshes.

Deliveries may be signed (:func:`sign`, checked by receivers with :func:`verify_signature`):
``A2A-Grpc-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``. See docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from a2a_grpc import errors
from a2a_grpc.security.addresses import IPAddress, forbidden, literal_address, looks_numeric
from a2a_grpc.security.redact import redact_url
from a2a_grpc.security.signatures import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "DEFAULT_MAX_URL_LENGTH",
    "DEFAULT_RESOLVE_TIMEOUT",
    "SIGNATURE_HEADER",
    "PinnedTarget",
    "Resolver",
    "WebhookPolicy",
    "WebhookRefusedError",
    "WebhookResolveError",
    "forbidden",
    "sign",
    "system_resolver",
    "verify_signature",
]

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``: how a policy resolves names (default: :func:`system_resolver`)."""

DEFAULT_MAX_URL_LENGTH: Final = 2048
DEFAULT_RESOLVE_TIMEOUT: Final = 5.0
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

_HOST_NAME: Final = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


class WebhookRefusedError(Exception):
    """The policy refuses a webhook URL; ``reason`` says why and never quotes its path or user info."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookResolveError(Exception):
    """The webhook's host could not be resolved (now): a delivery may try again later."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host`` (TCP), in its order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """A checked webhook: where to connect (``address``) and what to call it (``host``)."""

    scheme: str
    host: str
    """The host as the URL names it, lower case (an IPv6 address without brackets)."""
    port: int
    address: str
    """The checked IP address the delivery connects to."""
    target: str
    """Path and query, ``/`` at least."""
    explicit_port: bool = False

    @property
    def url(self) -> str:
        """The request URL: the checked address in place of the host name."""
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        """``Host`` as a client resolving the name itself would send it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host

    @property
    def sni_hostname(self) -> str | None:
        """The name TLS must present and verify the certificate against (https to a name only)."""
        if self.scheme != "https" or literal_address(self.host) is not None:
            return None
        return self.host.rstrip(".")

    @property
    def redacted(self) -> str:
        return redact_url(f"{self.scheme}://{self.host_header}{self.target}")


@dataclass(frozen=True, slots=True)
class _Url:
    scheme: str
    host: str
    address: IPAddress | None  # the host is an IP address, in some spelling
    port: int
    explicit_port: bool
    target: str


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Which webhook URLs the server may deliver to; validated on construction.

    The default refuses every target that is not a public (globally reachable) address.
    """

    allow: tuple[str, ...] = ()
    """Networks (``"127.0.0.0/8"``, ``"::1/128"``, ``"10.1.2.3"``) whose addresses are allowed although
    forbidden, and host names (``"hooks.internal"``; ``"*.svc.cluster.local"`` for any name below)
    allowed whatever they resolve to. Default: none."""
    max_url_length: int = DEFAULT_MAX_URL_LENGTH
    """Longest URL accepted, in characters."""
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT
    """Seconds a name resolution may take before the delivery attempt fails (and is retried)."""
    resolver: Resolver | None = field(default=None, compare=False, repr=False)
    """How names are resolved; default :func:`system_resolver` (``getaddrinfo``)."""
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(
        init=False, repr=False, compare=False
    )
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allow, str) or not isinstance(self.allow, Sequence):
            raise ValueError(f"allow must be a sequence of networks or host names, got {self.allow!r}")
        object.__setattr__(self, "allow", tuple(self.allow))
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allow:
            if not isinstance(entry, str) or not entry:
                raise ValueError(f"allow entries must be non-empty strings, got {entry!r}")
            try:
                networks.append(ipaddress.ip_network(entry))
                continue
            except ValueError as exc:
                if any(c in entry for c in ":/") or looks_numeric(entry):
                    raise ValueError(f"allow entry {entry!r} is not a network: {exc}") from None
            name = entry.lower().rstrip(".")
            wildcard = name.startswith("*.")
            if not _HOST_NAME.fullmatch(name[2:] if wildcard else name):
                raise ValueError(f"allow entry {entry!r} is neither a network nor a host name")
            if wildcard:
                suffixes.append(name[1:])
            else:
                names.add(name)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_suffixes", tuple(suffixes))
        length = self.max_url_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 16:
            raise ValueError(f"max_url_length must be an integer >= 16, got {length!r}")
        timeout = self.resolve_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
            raise ValueError(f"resolve_timeout must be a finite number of seconds > 0, got {timeout!r}")

    # -- checks ----------------------------------------------------------------------------------

    def check(self, url: str, field: str = "url") -> None:
        """Refuse ``url`` with :class:`~a2a_grpc.errors.InvalidParamsError` naming ``field``, unless its
        shape is sound and its host, when an IP address, is allowed. Names are resolved later."""
        try:
            self._parse(url)
        except WebhookRefusedError as exc:
            raise errors.InvalidParamsError(
                f"invalid {field}: {exc.reason}", field_violations=[errors.FieldViolation(field, exc.reason)]
            ) from None

    async def resolve(self, url: str) -> PinnedTarget:
        """The address to deliver ``url`` to, its host resolved once and every address judged.

        Raises :class:`WebhookRefusedError` (do not retry) or :class:`WebhookResolveError` (may retry).
        """
        parsed = self._parse(url)
        if parsed.address is not None:
            address = parsed.address
        else:
            addresses = await self._lookup(parsed.host, parsed.port)
            if not self._name_allowed(parsed.host):
                for found in addresses:
                    reason = self._refusal(found)
                    if reason is not None:
                        raise WebhookRefusedError(f"host {parsed.host} resolves to {reason}")
            address = addresses[0]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # connect over IPv4: no dual-stack socket needed
        return PinnedTarget(
            parsed.scheme, parsed.host, parsed.port, str(address), parsed.target, parsed.explicit_port
        )

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        resolver = self.resolver or system_resolver
        try:
            async with asyncio.timeout(self.resolve_timeout):
                found = await resolver(host, port)
        except TimeoutError:
            raise WebhookResolveError(f"resolving {host} timed out after {self.resolve_timeout} s") from None
        except OSError as exc:
            raise WebhookResolveError(
                f"cannot resolve {host}: {exc.strerror or type(exc).__name__}"
            ) from None
        addresses: list[IPAddress] = []
        for text in found:
            try:  # getaddrinfo adds a scope to link-local IPv6 answers: judged without it
                addresses.append(ipaddress.ip_address(text.partition("%")[0]))
            except ValueError:
                raise WebhookRefusedError(f"host {host} resolves to something not an IP address") from None
        if not addresses:
            raise WebhookResolveError(f"host {host} resolves to no address")
        return addresses

    def _name_allowed(self, host: str) -> bool:
        name = host.rstrip(".")
        return name in self._names or any(name.endswith(s) for s in self._suffixes)

    def _refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused, or None when it may be reached."""
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        if any(address in net or (mapped is not None and mapped in net) for net in self._networks):
            return None
        return forbidden(address)

    def _parse(self, url: str) -> _Url:
        if not isinstance(url, str) or not url:
            raise WebhookRefusedError("is required")
        if len(url) > self.max_url_length:
            raise WebhookRefusedError(f"is longer than {self.max_url_length} characters")
        if any(c <= " " or c >= "\x7f" for c in url):
            # Parsers disagree on what to strip or keep; URLs on the wire are printable ASCII.
            raise WebhookRefusedError(
                "contains spaces, control or non-ASCII characters (percent-encode them; "
                "write international host names in punycode)"
            )
        if "\\" in url:  # some parsers read it as "/", others as part of the host: ambiguous
            raise WebhookRefusedError("contains a backslash")
        scheme_match = _SCHEME.match(url)
        scheme = scheme_match.group(1).lower() if scheme_match else ""
        rest = url[len(scheme) + 1 :]
        if scheme not in _DEFAULT_PORTS or not rest.startswith("//"):
            raise WebhookRefusedError("must be an http:// or https:// URL")
        rest = rest[2:]
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, remainder = rest[:end], rest[end:]
        if "#" in remainder:
            raise WebhookRefusedError("carries a fragment (the receiver would never see it)")
        if "@" in authority:
            raise WebhookRefusedError(
                "carries user info: credentials belong in authentication, not in the URL"
            )
        host, port_text = _split_authority(authority)
        if port_text is None:
            port, explicit = _DEFAULT_PORTS[scheme], False
        elif not port_text.isdigit() or len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            shown = (
                f"port {port_text}" if port_text.isdigit() and len(port_text) <= 10 else "a malformed port"
            )
            raise WebhookRefusedError(f"has {shown} (ports are 1 to 65535)")
        else:
            port, explicit = int(port_text), True
        address = literal_address(host)
        if address is None:
            if not _HOST_NAME.fullmatch(host) or len(host) > 254 or any(len(x) > 63 for x in host.split(".")):
                raise WebhookRefusedError("has a malformed host name")
            if looks_numeric(host):
                raise WebhookRefusedError("has a malformed IPv4 address")
            name = host.rstrip(".")
            if (name == "localhost" or name.endswith(".localhost")) and not self._name_allowed(name):
                raise WebhookRefusedError(f"names {name}, a loopback host (RFC 6761)")
        else:
            reason = self._refusal(address)
            if reason is not None:
                raise WebhookRefusedError(f"targets {reason}")
        target = remainder if remainder.startswith("/") else "/" + remainder
        return _Url(scheme, host, address, port, explicit, target)


def _split_authority(authority: str) -> tuple[str, str | None]:
    """``(host, port text or None)``; the host lower case, an IPv6 literal without brackets."""
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise WebhookRefusedError("has a malformed IPv6 address")
        if "%" in inside:  # a zone names an interface of this host: never a remote receiver
            raise WebhookRefusedError("carries an IPv6 zone id")
        try:
            ipaddress.IPv6Address(inside)
        except ValueError:
            raise WebhookRefusedError("has a malformed IPv6 address") from None
        return inside.lower(), after[1:] if after else None
    if authority.count(":") > 1:
        raise WebhookRefusedError("has a malformed host (IPv6 addresses go in brackets)")
    host, colon, port = authority.partition(":")
    if not host:
        raise WebhookRefusedError("has no host")
    return host.lower(), port if colon else None
