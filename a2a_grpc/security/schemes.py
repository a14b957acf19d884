"""Authentication schemes: API keys, bearer JWTs, mutual TLS.

A scheme reads the credential a call carries (a header, or the client certificate the TLS front
verified), checks it, and names the :class:`~a2a_grpc.security.identity.Principal` behind it.
Each scheme also says how the card declares it (``securitySchemes``, spec 4.5) and what an HTTP
front sends in ``WWW-Authenticate`` when a call is refused (RFC 9110 11.6.1).

Credentials travel as headers on every binding (gRPC metadata, HTTP headers, later the session
handshake), so an API key is read from a header only: a key in a query string ends up in access
logs and proxies' caches, and gRPC has no query string.

The JWT checks are PyJWT's (signature, ``exp``/``nbf`` with a leeway, ``iss``, ``aud``); what is
ours is choosing the key (by ``kid`` from a JWKS file or URL, refetched at most once per
``refresh_seconds`` when an unknown ``kid`` shows up) and refusing what PyJWT would otherwise
accept when misconfigured (``alg: none``, HMAC algorithms against public keys).
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from a2a_grpc import errors, types
from a2a_grpc.security.identity import Principal
from a2a_grpc.service import CallContext

__all__ = [
    "ApiKey",
    "ApiKeyScheme",
    "BearerJwtScheme",
    "MutualTlsScheme",
    "Scheme",
    "check_principal_id",
]

log = logging.getLogger("a2a_grpc.security")

MAX_PRINCIPAL_CHARS = 256
"""Longest principal id accepted (and tenant bound to a credential)."""
_NAME = re.compile(r"^[!-~]{1,64}$")  # an HTTP token-ish scheme name / header name, printable ASCII
_HEADER = re.compile(r"^[0-9a-z_.-]{1,64}$")  # what gRPC metadata keys allow, lower-case
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


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


def _refused(scheme: Scheme, reason: str) -> errors.UnauthenticatedError:
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
        if not _NAME.fullmatch(name):
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
            raise _refused(self, f"the key in {self.header} is not valid")
        return Principal(found.principal, self.name, found.tenant)

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            api_key_security_scheme=types.APIKeySecurityScheme(
                location="header", name=self.header, description="an API key issued by the agent's operator"
            )
        )

    def challenge(self, refused: bool = False) -> str:
        return f'ApiKey realm="a2a", header="{self.header}"'


# -- bearer JWTs -----------------------------------------------------------------------------


def _bearer_token(call: CallContext) -> str | None:
    value = call.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class BearerJwtScheme(Scheme):
    """``Authorization: Bearer <JWT>``, verified against keys from a JWKS (file, URL or given).

    Checked on every call: the signature (by the key the token's ``kid`` names; a JWKS of one key
    serves tokens without ``kid``), an algorithm of ``algorithms`` and of that key, ``exp``
    (required) and ``nbf`` with ``leeway_seconds``, ``iss`` equal to ``issuer``, ``aud`` containing
    ``audience``, and a ``principal_claim`` (default ``sub``) that can name a principal. With
    ``tenant_claim``, a token naming a tenant binds its caller to it.

    A JWKS URL is fetched at start, again after ``cache_seconds``, and at most once per
    ``refresh_seconds`` when a token names a key the cached set lacks (a key rotation), so that
    tokens with made-up ``kid`` s cannot make the server hammer the key server.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: Mapping[str, Any] | None = None,
        jwks_file: str | Path | None = None,
        jwks_url: str | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256", "EdDSA"),
        leeway_seconds: float = 30.0,
        principal_claim: str = "sub",
        tenant_claim: str | None = None,
        cache_seconds: float = 300.0,
        refresh_seconds: float = 30.0,
        fetch_timeout: float = 5.0,
        name: str = "bearer",
        http: Any = None,
    ) -> None:
        if sum(x is not None for x in (jwks, jwks_file, jwks_url)) != 1:
            raise ValueError("give exactly one of jwks, jwks_file, jwks_url")
        if not issuer or not audience:
            raise ValueError("a bearer JWT scheme needs an issuer and an audience")
        unknown = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(
                f"algorithms must be among {', '.join(ASYMMETRIC_ALGORITHMS)} (public-key algorithms: "
                f"a JWKS publishes verification keys), not {unknown or 'none'}"
            )
        if jwks_url is not None and not (
            jwks_url.startswith("https://") or re.match(r"^http://(127\.|localhost[:/]|\[::1\])", jwks_url)
        ):
            raise ValueError("jwks_url must be https:// (plain http only for a loopback key server)")
        if not _NAME.fullmatch(name):
            raise ValueError(f"scheme name {name!r} must be 1..64 printable ASCII characters")
        self.name = name
        self.headers = ("authorization",)
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.leeway_seconds = leeway_seconds
        self.principal_claim = principal_claim
        self.tenant_claim = tenant_claim
        self.cache_seconds = cache_seconds
        self.refresh_seconds = refresh_seconds
        self.fetch_timeout = fetch_timeout
        self.jwks_url = jwks_url
        self._jwks_file = Path(jwks_file) if jwks_file is not None else None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched = -float("inf")
        self._lock = asyncio.Lock()
        self._http = http
        self._own_http = False
        if jwks is not None:
            self._keys = self._parse(jwks)

    # -- keys -------------------------------------------------------------------------------------

    def _parse(self, jwks: Mapping[str, Any]) -> dict[str | None, jwt.PyJWK]:
        try:
            found = jwt.PyJWKSet.from_dict(dict(jwks)).keys
        except jwt.PyJWTError as exc:
            raise ValueError(f"not a usable JWKS: {exc}") from None
        keys: dict[str | None, jwt.PyJWK] = {}
        for key in found:
            if key.key_type == "oct":  # a shared secret has no place in a published key set
                continue
            keys[key.key_id] = key
        if not keys:
            raise ValueError("the JWKS holds no public key")
        return keys

    async def start(self) -> None:
        if self._jwks_file is not None:
            self._keys = self._parse(json.loads(self._jwks_file.read_text(encoding="utf-8")))
        elif self.jwks_url is not None:
            await self._fetch(force=True)

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _fetch(self, *, force: bool = False) -> None:
        """Refetch the JWKS URL if it is stale (or ``force`` and not fetched within refresh_seconds)."""
        if self.jwks_url is None:
            return
        async with self._lock:
            age = time.monotonic() - self._fetched
            if age < (self.refresh_seconds if force else self.cache_seconds):
                return
            if self._http is None:
                import httpx

                self._http = httpx.AsyncClient(timeout=self.fetch_timeout, follow_redirects=False)
                self._own_http = True
            self._fetched = time.monotonic()  # a failed fetch waits too: no retry storm
            try:
                response = await self._http.get(self.jwks_url, timeout=self.fetch_timeout)
                response.raise_for_status()
                self._keys = self._parse(response.json())
            except Exception as exc:
                # Keep the keys we have; a call whose key we lack is refused as "unknown key".
                log.warning("fetching the JWKS of scheme %s failed: %s", self.name, type(exc).__name__)
                if not self._keys and force and age == float("inf"):
                    raise ValueError(
                        f"cannot fetch the JWKS of scheme {self.name}: {type(exc).__name__}"
                    ) from None

    async def _key(self, kid: str | None) -> jwt.PyJWK | None:
        await self._fetch()
        key = self._pick(kid)
        if key is None and self.jwks_url is not None:
            await self._fetch(force=True)  # a rotation, perhaps; bounded by refresh_seconds
            key = self._pick(kid)
        return key

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    # -- calls ------------------------------------------------------------------------------------

    def carries(self, call: CallContext) -> bool:
        return _bearer_token(call) is not None

    async def authenticate(self, call: CallContext) -> Principal:
        token = _bearer_token(call)
        if not token:
            raise _refused(self, "no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused(self, "the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in self.algorithms:
            raise _refused(self, f"tokens signed with {errors.echo(str(algorithm), 16)} are not accepted")
        if kid is not None and not isinstance(kid, str):
            raise _refused(self, "the token's kid is not a string")
        key = await self._key(kid)
        if key is None:
            raise _refused(self, "the token is signed with a key this agent does not know")
        if key.algorithm_name not in (algorithm, None) and not (
            key.key_type == "OKP" and algorithm == "EdDSA"
        ):
            raise _refused(self, "the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud", self.principal_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise _refused(self, "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _refused(self, "the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _refused(self, "the token is not meant for this agent (audience)") from None
        except jwt.InvalidIssuerError:
            raise _refused(self, "the token comes from an issuer this agent does not trust") from None
        except jwt.InvalidSignatureError:
            raise _refused(self, "the token's signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refused(self, f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise _refused(self, "the token is not valid") from None
        subject = claims.get(self.principal_claim)
        tenant = claims.get(self.tenant_claim, "") if self.tenant_claim else ""
        if not isinstance(subject, str) or not isinstance(tenant, str):
            raise _refused(self, f"the token's {self.principal_claim} or tenant claim is not a string")
        try:
            check_principal_id(subject)
            if tenant:
                check_principal_id(tenant, "tenant")
        except ValueError:
            what = f"the token's {self.principal_claim} or tenant claim cannot name a caller"
            raise _refused(self, what) from None
        return Principal(subject, self.name, tenant, claims)

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            http_auth_security_scheme=types.HTTPAuthSecurityScheme(
                scheme="Bearer", bearer_format="JWT", description=f"a JWT issued by {self.issuer}"
            )
        )

    def challenge(self, refused: bool = False) -> str:
        # RFC 6750 3: error="invalid_token" when a token was sent and refused.
        return 'Bearer realm="a2a", error="invalid_token"' if refused else 'Bearer realm="a2a"'


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
            raise _refused(self, "no client certificate (connect over mutual TLS)")
        who = self._identity(call)
        if not who:
            raise _refused(self, f"the client certificate has no {self.identity.replace('_', ' ')}")
        if self.principals is None:
            try:
                return Principal(check_principal_id(who), self.name)
            except ValueError:
                raise _refused(self, "the client certificate's identity cannot name a caller") from None
        found = self.principals.get(who)
        if found is None:
            raise _refused(self, "the client certificate is not one this agent accepts")
        return Principal(found[0], self.name, found[1])

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            mtls_security_scheme=types.MutualTlsSecurityScheme(
                description="a client certificate issued by the agent's client CA"
            )
        )

    def challenge(self, refused: bool = False) -> str:
        return 'MutualTLS realm="a2a"'
