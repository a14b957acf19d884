"""Bearer JWTs: ``Authorization: Bearer <JWT>`` verified against the keys of a JWKS.

The JWT checks are PyJWT's (signature, ``exp``/``nbf`` with a leeway, ``iss``, ``aud``); what is
ours is choosing the key (by ``kid`` from a JWKS file or URL, refetched at most once per
``refresh_seconds`` when an unknown ``kid`` shows up) and refusing what PyJWT would otherwise
accept when misconfigured (``alg: none``, HMAC algorithms against public keys).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt

from a2a_grpc import errors, types
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.schemes import SCHEME_NAME, Scheme, check_principal_id, refused
from a2a_grpc.service import CallContext

__all__ = ["ASYMMETRIC_ALGORITHMS", "BearerJwtScheme"]

log = logging.getLogger("a2a_grpc.security")

MAX_JWKS_BYTES = 1024 * 1024
"""Largest JWKS document read from ``jwks_url``, after decompression (a key set is a few KiB)."""

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
"""What a JWKS publishes keys for: public-key signatures (a shared secret is never published)."""


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
        required_claims: Sequence[str] = (),
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
        if not SCHEME_NAME.fullmatch(name):
            raise ValueError(f"scheme name {name!r} must be 1..64 printable ASCII characters")
        self.name = name
        self.headers = ("authorization",)
        self.required_claims = tuple(required_claims)
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
                # The whole fetch within fetch_timeout and its body (inflated) within
                # MAX_JWKS_BYTES: a key server that drips or sends a bomb costs a bounded wait.
                async with asyncio.timeout(self.fetch_timeout):
                    from a2a_grpc._bodies import ACCEPT_ENCODING, read_body

                    headers = {"accept": "application/json", "accept-encoding": ACCEPT_ENCODING}
                    request = self._http.build_request("GET", self.jwks_url, headers=headers)
                    response = await self._http.send(request, stream=True)
                    try:
                        response.raise_for_status()
                        body = await read_body(response, MAX_JWKS_BYTES, "MAX_JWKS_BYTES")
                    finally:
                        await response.aclose()
                self._keys = self._parse(json.loads(body))
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

    def token(self, call: CallContext) -> str | None:
        """The JWT the call carries for this scheme, if any (``Authorization: Bearer``)."""
        return _bearer_token(call)

    def carries(self, call: CallContext) -> bool:
        return self.token(call) is not None

    async def authenticate(self, call: CallContext) -> Principal:
        token = self.token(call)
        if not token:
            raise refused(self, "no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused(self, "the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        if algorithm not in self.algorithms:
            raise refused(self, f"tokens signed with {errors.echo(str(algorithm), 16)} are not accepted")
        if kid is not None and not isinstance(kid, str):
            raise refused(self, "the token's kid is not a string")
        key = await self._key(kid)
        if key is None:
            raise refused(self, "the token is signed with a key this agent does not know (header kid)")
        if key.algorithm_name not in (algorithm, None) and not (
            key.key_type == "OKP" and algorithm == "EdDSA"
        ):
            raise refused(self, "the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "iss", "aud", self.principal_claim, *self.required_claims]},
            )
        except jwt.ExpiredSignatureError:
            raise refused(self, "the token has expired (claim exp)") from None
        except jwt.ImmatureSignatureError:
            raise refused(self, "the token is not valid yet (claim nbf)") from None
        except jwt.InvalidAudienceError:
            raise refused(self, "the token is not meant for this agent (audience, claim aud)") from None
        except jwt.InvalidIssuerError:
            raise refused(
                self, "the token comes from an issuer this agent does not trust (claim iss)"
            ) from None
        except jwt.InvalidSignatureError:
            raise refused(self, "the token's signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise refused(self, f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise refused(self, "the token is not valid") from None
        subject = claims.get(self.principal_claim)
        tenant = claims.get(self.tenant_claim, "") if self.tenant_claim else ""
        if not isinstance(subject, str) or not isinstance(tenant, str):
            raise refused(self, f"the token's {self.principal_claim} or tenant claim is not a string")
        try:
            check_principal_id(subject)
            if tenant:
                check_principal_id(tenant, "tenant")
        except ValueError:
            what = f"the token's {self.principal_claim} or tenant claim cannot name a caller"
            raise refused(self, what) from None
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
