"""Task-scoped delegation tokens: what an agent gives a sub-agent's caller instead of its own
credentials, useless for anything but the one delegated piece of work.

The delegating agent holds a :class:`DelegationMinter` (an Ed25519 or P-256 key, its key id, and
its issuer name) and mints, per delegation, a JWS (PyJWT) whose claims bind it to

* ``aud``: the sub-agent, as the delegator reaches it (the ``HOST:PORT`` it dials);
* ``a2a_task``: the delegator's own task, on whose behalf the sub-agent works;
* ``a2a_skill``: the one skill of the sub-agent it may invoke;
* ``exp``: a short lifetime (5 minutes by default), with ``iat`` and a ``jti``.

It travels in the ``a2a-grpc-delegation`` service parameter (gRPC metadata, an HTTP header, a
session's Hello or one call's metadata). The sub-agent's server verifies it with a
:class:`DelegationTokenScheme` against the delegator's public keys (its JWKS: ``minter.jwks()``,
which the delegator's HTTP front publishes at ``/.well-known/jwks.json``), on every call:
signature, key id, algorithm, issuer, audience, expiry, then the scope. A call acts as principal
``ISSUER/TASK``, so the tasks it creates belong to that delegation alone: a request naming any
other task is refused with PERMISSION_DENIED naming ``a2a_task`` (whether that task exists or
not: nothing leaks), and a message that does not declare the token's skill in the
``a2a-grpc-skill`` service parameter is refused naming ``a2a_skill``. The agent sees the declared
skill and must do only that skill's work (the reference agent checks it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from a2a_grpc import errors, types
from a2a_grpc.security.bearer import BearerJwtScheme
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.schemes import refused
from a2a_grpc.service import CallContext, Method

__all__ = [
    "DELEGATION_HEADER",
    "SKILL_CLAIM",
    "SKILL_HEADER",
    "TASK_CLAIM",
    "DelegationMinter",
    "DelegationTokenScheme",
]

DELEGATION_HEADER = "a2a-grpc-delegation"
"""The service parameter (metadata key, HTTP header) that carries a delegation token."""
SKILL_HEADER = "a2a-grpc-skill"
"""The service parameter in which a message declares the skill it invokes (by the card's id)."""
TASK_CLAIM = "a2a_task"
SKILL_CLAIM = "a2a_skill"
ALGORITHMS = ("EdDSA", "ES256")
DEFAULT_LIFETIME = 300.0
MESSAGE_METHODS = frozenset({"SendMessage", "SendStreamingMessage"})

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638: the SHA-256 of the key's required members, sorted, without whitespace."""
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class DelegationMinter:
    """Mints delegation tokens with one private key (Ed25519: ``EdDSA``; P-256: ``ES256``).

    ``issuer`` names the delegating agent (the ``iss`` the sub-agents trust); ``kid`` defaults to
    the key's RFC 7638 thumbprint; ``lifetime`` (seconds) is how long a token lives unless
    :meth:`mint` says otherwise.
    """

    def __init__(
        self, key: PrivateKey, *, issuer: str, kid: str | None = None, lifetime: float = DEFAULT_LIFETIME
    ) -> None:
        if isinstance(key, ed25519.Ed25519PrivateKey):
            self.algorithm = "EdDSA"
            public = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            self.algorithm = "ES256"
            public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            raise ValueError("a delegation key is Ed25519 (EdDSA) or P-256 (ES256)")
        if not issuer:
            raise ValueError("a delegation minter needs an issuer")
        if not lifetime > 0:
            raise ValueError(f"lifetime must be positive seconds, not {lifetime!r}")
        self._key = key
        self.issuer = issuer
        self.lifetime = lifetime
        self.kid = kid or _thumbprint(public)
        self._public = {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    @classmethod
    def generate(
        cls, *, issuer: str, algorithm: str = "EdDSA", lifetime: float = DEFAULT_LIFETIME
    ) -> DelegationMinter:
        """A minter with a new key (held in memory only: tokens die with the process's key)."""
        if algorithm == "EdDSA":
            key: PrivateKey = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
        return cls(key, issuer=issuer, lifetime=lifetime)

    @classmethod
    def from_pem(
        cls,
        pem: bytes | str | Path,
        *,
        issuer: str,
        kid: str | None = None,
        lifetime: float = DEFAULT_LIFETIME,
    ) -> DelegationMinter:
        """A minter with a PKCS#8 PEM private key (bytes, or a file path)."""
        data = Path(pem).read_bytes() if isinstance(pem, Path) else pem
        raw = data.encode() if isinstance(data, str) else data
        try:
            key = serialization.load_pem_private_key(raw, password=None)
        except TypeError:  # an encrypted key: the minter has no passphrase to give
            raise ValueError("the delegation key is encrypted; give it unencrypted (PKCS#8 PEM)") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("a delegation key is Ed25519 (EdDSA) or P-256 (ES256)")
        return cls(key, issuer=issuer, kid=kid, lifetime=lifetime)

    def jwks(self) -> dict[str, Any]:
        """The public key set to publish (``/.well-known/jwks.json``) for sub-agents to verify with."""
        return {"keys": [dict(self._public)]}

    def mint(
        self, *, audience: str, task_id: str, skill: str, subject: str = "", lifetime: float | None = None
    ) -> str:
        """A token for ``audience`` (the sub-agent) to do ``skill`` for task ``task_id``, living
        ``lifetime`` seconds (default: the minter's). ``subject`` names who the work is for
        (default: the issuer)."""
        if not audience or not task_id or not skill:
            raise ValueError("a delegation token needs an audience, a task id and a skill")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject or self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime if lifetime is not None else self.lifetime),
            "jti": uuid.uuid4().hex,
            TASK_CLAIM: task_id,
            SKILL_CLAIM: skill,
        }
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.kid})


class DelegationTokenScheme(BearerJwtScheme):
    """Verifies delegation tokens of one issuer (see the module doc) on every call, and holds each
    call to the token's task and skill. ``audience``: the names delegators reach this agent by
    (``HOST:PORT``; several allowed). The issuer's keys: ``jwks`` (a dict), ``jwks_file`` or
    ``jwks_url`` (its ``/.well-known/jwks.json``), as for :class:`BearerJwtScheme`."""

    scoped = True

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | list[str],
        jwks: Mapping[str, Any] | None = None,
        jwks_file: str | Path | None = None,
        jwks_url: str | None = None,
        leeway_seconds: float = 5.0,
        name: str = "delegation",
        http: Any = None,
    ) -> None:
        audiences = [audience] if isinstance(audience, str) else list(audience)
        super().__init__(
            issuer=issuer,
            audience=audiences[0] if audiences else "",
            jwks=jwks,
            jwks_file=jwks_file,
            jwks_url=jwks_url,
            algorithms=ALGORITHMS,
            leeway_seconds=leeway_seconds,
            name=name,
            http=http,
            required_claims=("iat", TASK_CLAIM, SKILL_CLAIM),
        )
        self.audience: Any = audiences  # PyJWT accepts a token whose aud is any of these
        self.headers = (DELEGATION_HEADER,)

    def token(self, call: CallContext) -> str | None:
        value = call.headers.get(DELEGATION_HEADER, "").strip()
        return value or None

    async def authenticate(self, call: CallContext) -> Principal:
        principal = await super().authenticate(call)
        task, skill = principal.claims.get(TASK_CLAIM), principal.claims.get(SKILL_CLAIM)
        if not isinstance(task, str) or not isinstance(skill, str) or not task or not skill:
            raise refused(
                self, f"the token's {TASK_CLAIM} and {SKILL_CLAIM} claims must be non-empty strings"
            )
        # The principal is the delegation: ISSUER/TASK. Its tasks are this delegation's alone.
        return Principal(f"{self.issuer}/{task}", self.name, principal.tenant, principal.claims)

    def authorize(self, method: Method, request: Any, call: CallContext) -> None:
        if method.name not in MESSAGE_METHODS:
            return  # the task-reading operations: held to the delegation's tasks by ownership
        assert call.principal is not None
        skill = call.principal.claims[SKILL_CLAIM]
        declared = call.headers.get(SKILL_HEADER, "")
        if declared != skill:
            said = f"declares skill {errors.echo(declared, 64)}" if declared else "declares no skill"
            raise errors.PermissionDeniedError(
                f"{self.name}: the message {said} ({SKILL_HEADER}); the token allows skill "
                f"{errors.echo(skill, 64)} only (claim {SKILL_CLAIM})",
                metadata={"claim": SKILL_CLAIM},
            )

    def out_of_scope(self, call: CallContext, exc: errors.TaskNotFoundError) -> errors.A2AError:
        assert call.principal is not None
        return errors.PermissionDeniedError(
            f"{self.name}: the token covers only the tasks of its delegation (claim {TASK_CLAIM}): "
            "this call names another task",
            metadata={"claim": TASK_CLAIM},
        )

    def declaration(self) -> types.SecurityScheme:
        return types.SecurityScheme(
            api_key_security_scheme=types.APIKeySecurityScheme(
                location="header",
                name=DELEGATION_HEADER,
                description=f"a task-scoped delegation token (JWS, {' or '.join(ALGORITHMS)}) minted by "
                f"{self.issuer}",
            )
        )

    def challenge(self, refused: bool = False) -> str:
        return 'Delegation realm="a2a", error="invalid_token"' if refused else 'Delegation realm="a2a"'
