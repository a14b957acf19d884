"""Authentication schemes: the :class:`Scheme` base, API keys and mutual TLS (bearer JWTs:
:mod:`a2a_grpc.security.bearer`).

A scheme reads the credential a call carries (a header, or the client certificate the TLS front
verified), checks it, and names the :class:`~a2a_grpc.security.identity.Principal` behind it.
Each scheme also says how the card declares it (``securitySchemes``, spec 4.5) and what an HTTP
front sends in ``WWW-Authenticate`` when a call is refused (RFC 9110 11.6.1).

Credentials travel as headers on every binding (gRPC metadata, HTTP headers, later the session
handshake), so an API key is read from a header only: a key in a query string ends up in access
logs and proxies' caches, and gRPC has no query string.
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2a_grpc import errors, types
from a2a_grpc.security.identity import Principal
from a2a_grpc.service import CallContext, Method

__all__ = [
    "ApiKey",
    "ApiKeyScheme",
    "MutualTlsScheme",
    "Scheme",
    "check_principal_id",
]


MAX_PRINCIPAL_CHARS = 256
"""Longest principal id accepted (and tenant bound to a credential)."""
SCHEME_NAME = re.compile(r"^[!-~]{1,64}$")  # an HTTP token-ish scheme name / header name, printable ASCII
_HEADER = re.compile(r"^[0-9a-z_.-]{1,64}$")  # what gRPC metadata keys allow, lower-case
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_principal_id(value: str, what: str = "principal id") -> str:
    """``value`` if it can name a principal or tenant: 1..256 characters, no control characters.
    Principals key the tasks they own, so an id that could forge a key or a log line is refused."""
    if not value or len(value) > MAX_PRINCIPAL_CHARS or _CONTROL.search(value):
        raise ValueError(
            f"{what} must be 1..{MAX_PRINCIPAL_CHARS} characters without control characters, "
            f"not {errors.echo(value)}"
        )
    return value


class Scheme(abc.ABC):
    """One way of proving who calls. ``name`` is its key in the card's ``securitySchemes``."""

    name: str
    headers: tuple[str, ...] = ()
    """The (lower-case) headers this scheme reads: an HTTP front must pass them to the seam."""

    @abc.abstractmethod
    def carries(self, call: CallContext) -> bool:
        """Whether the call presents this scheme's kind of credential (right or wrong)."""

    @abc.abstractmethod
    async def authenticate(self, call: CallContext) -> Principal:
        """The principal behind the call's credential; :class:`UnauthenticatedError` saying what is
        wrong (never echoing the credential) if it does not prove one."""

    scoped: bool = False
    """Whether a credential of this scheme allows only some calls (:meth:`authorize`), as a
    task-scoped delegation token does; False: an accepted credential allows every call."""

    def authorize(self, method: Method, request: Any, call: CallContext) -> None:
        """For a ``scoped`` scheme: refuse (PermissionDeniedError naming what does not match) a
        call its accepted credential does not cover. Called after :meth:`authenticate`."""
        return None

    def out_of_scope(self, call: CallContext, exc: errors.TaskNotFoundError) -> errors.A2AError:
        """For a ``scoped`` scheme: the error for a task its credential does not cover (the call
        named a task that is not its principal's, or none at all: the same answer either way)."""
        return exc

    @abc.abstractmethod
    def declaration(self) -> types.SecurityScheme:
        """The card's ``securitySchemes`` entry."""

    @abc.abstractmethod
    def challenge(self, refused: bool = False) -> str:
        """This scheme's ``WWW-Authenticate`` challenge (``refused``: a credential was sent and refused)."""

    async def start(self) -> None:
        """Load what the scheme needs before the first call (keys); the default has nothing to load."""
        return None

    async def aclose(self) -> None:
        """Release what :meth:`start` opened."""
        return None


def refused(scheme: Scheme, reason: str) -> errors.UnauthenticatedError:
    return errors.UnauthenticatedError(
        f"{scheme.name}: {reason}", challenge=scheme.challenge(refused=True), metadata={"scheme": scheme.name}
    )


# -- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One accepted key: the principal it names and, optionally, the tenant it binds to.

    ``sha256`` is the hex SHA-256 of the key: a key file need not hold keys in clear
    (``printf %s "$KEY" | sha256sum``). Give ``key`` or ``sha256``, not both.
    """

    principal: str
    key: str = field(default="", repr=False)
    sha256: str = field(default="", repr=False)
    tenant: str = ""

    def __post_init__(self) -> None:
        check_principal_id(self.principal)
        if self.tenant:
            check_principal_id(self.tenant, "tenant")
        if bool(self.key) == bool(self.sha256):
            raise ValueError(f"API key of {self.principal!r}: give the key or its sha256, exactly one")
        if self.key and len(self.key) < 16:
            raise ValueError(f"API key of {self.principal!r} is too short: use at least 16 characters")
        if self.sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"API key of {self.principal!r}: sha256 must be 64 lower-case hex digits")

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.sha256) if self.sha256 else hashlib.sha256(self.key.encode()).digest()


class ApiKeyScheme(Scheme):
    """A key in a header (default ``X-API-Key``), looked up by its SHA-256.

    Keys are held as digests only, and looked up in a dict of digests: the time a lookup takes
    depends on the digest of what was sent, which tells an attacker nothing about a valid key.
    """

    def __init__(self, keys: Iterable[ApiKey], *, header: str = "X-API-Key", name: str = "apiKey") -> None:
        self.name = name
        self.header = header
        self._header = header.lower()
        self.headers = (self._header,)
        if not _HEADER.fullmatch(self._header) or self._header.endswith("-bin"):
            raise ValueError(f"API key header {header!r} cannot travel as gRPC metadata")
        if not SCHEME_NAME.fullmatch(name):
            raise ValueError(f"scheme name {name!r} must be 1..64 printable ASCII characters")
        self._keys: dict[bytes, ApiKey] = {}
        for key in keys:
            if key.digest in self._keys:
                raise ValueError(
                    f"API keys of {self._keys[key.digest].principal!r} and {key.principal!r} are the same"
                )
            self._keys[key.digest] = key
        if not self._keys:
            raise ValueError("an API key scheme needs at least one key")

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> ApiKeyScheme:
        """Keys from a file of lines ``PRINCIPAL KEY [TENANT]`` or ``PRINCIPAL sha256:HEX [TENANT]``
        (``#`` starts a comment)."""
        keys = []
        text = Path(path).read_text(encoding="utf-8")
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if len(words) not in (2, 3):
                raise ValueError(f"{path}:{number}: expected 'PRINCIPAL KEY [TENANT]'")
            principal, secret, *tenant = words
            try:
                if secret.startswith("sha256:"):
                    keys.append(ApiKey(principal, sha256=secret[7:].lower(), tenant="".join(tenant)))
                else:
                    keys.append(ApiKey(principal, key=secret, tenant="".join(tenant)))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
        return cls(keys, **options)

    def carries(self, call: CallContext) -> bool:
        return self._header in call.headers

    async def authenticate(self, call: CallContext) -> Principal:
        sent = call.headers.get(self._header, "")
        found = self._keys.get(hashlib.sha256(sent.encode()).digest()) if sent else None
        if found is None:
            raise refused(self, f"the key in {self.header} is not valid")
        return Principal(found.principal, self.name, found.tenant)

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            api_key_security_scheme=types.APIKeySecurityScheme(
                location="header", name=self.header, description="an API key issued by the agent's operator"
            )
        )

    def challenge(self, refused: bool = False) -> str:
        return f'ApiKey realm="a2a", header="{self.header}"'


# -- mutual TLS --------------------------------------------------------------------------------


class MutualTlsScheme(Scheme):
    """The client certificate a mutual-TLS listener verified names the principal.

    ``identity`` says which part of the certificate: ``"common_name"`` (default), ``"uri"`` (the
    first URI SAN, e.g. a SPIFFE id), ``"dns"`` (the first DNS SAN) or ``"sha256"`` (the
    fingerprint). With ``principals``, only the identities it lists are accepted, each mapped to a
    principal id (and optionally a tenant: ``{"spiffe://mesh/planner": ("planner", "acme")}``).
    The certificate itself was verified by TLS against the listener's client CA.
    """

    IDENTITIES = ("common_name", "uri", "dns", "sha256")

    def __init__(
        self,
        *,
        identity: str = "common_name",
        principals: Mapping[str, str | tuple[str, str]] | None = None,
        name: str = "mtls",
    ) -> None:
        if identity not in self.IDENTITIES:
            raise ValueError(f"identity must be one of {', '.join(self.IDENTITIES)}, not {identity!r}")
        self.name = name
        self.identity = identity
        self.principals: dict[str, tuple[str, str]] | None = None
        if principals is not None:
            self.principals = {}
            for who, named in principals.items():
                pid, tenant = (named, "") if isinstance(named, str) else named
                self.principals[who] = (
                    check_principal_id(pid),
                    check_principal_id(tenant, "tenant") if tenant else "",
                )

    def carries(self, call: CallContext) -> bool:
        return call.client_certificate is not None

    def _identity(self, call: CallContext) -> str:
        cert = call.client_certificate
        if cert is None:
            return ""
        if self.identity == "common_name":
            return cert.common_name
        if self.identity == "sha256":
            return cert.sha256
        prefix = "URI:" if self.identity == "uri" else "DNS:"
        return next((san[len(prefix) :] for san in cert.sans if san.startswith(prefix)), "")

    async def authenticate(self, call: CallContext) -> Principal:
        if call.client_certificate is None:
            raise refused(self, "no client certificate (connect over mutual TLS)")
        who = self._identity(call)
        if not who:
            raise refused(self, f"the client certificate has no {self.identity.replace('_', ' ')}")
        if self.principals is None:
            try:
                return Principal(check_principal_id(who), self.name)
            except ValueError:
                raise refused(self, "the client certificate's identity cannot name a caller") from None
        found = self.principals.get(who)
        if found is None:
            raise refused(self, "the client certificate is not one this agent accepts")
        return Principal(found[0], self.name, found[1])

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            mtls_security_scheme=types.MutualTlsSecurityScheme(
                description="a client certificate issued by the agent's client CA"
            )
        )

    def challenge(self, refused: bool = False) -> str:
        return 'MutualTLS realm="a2a"'
