"""What a client presents: :class:`Credentials`, turned into headers as an agent's card asks.

A card declares its schemes (``securitySchemes``) and the combinations that suffice
(``securityRequirements``: a list of alternatives, each naming schemes that must all be met,
spec 4.4). :meth:`Credentials.headers` picks the first alternative these credentials can meet,
so one planner holding an API key for some peers and a token for others calls each as its card
asks. Mutual TLS is met by the channel (a client certificate), not by a header.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from a2a_grpc import types

__all__ = ["Credentials", "credential_headers"]


def credential_headers(card: types.AgentCard) -> tuple[str, ...]:
    """The (lower-case) headers that carry the credentials ``card``'s schemes ask for: what a
    bridge in front of that agent must pass on for its callers to be recognised."""
    names = []
    for scheme in card.security_schemes.values():
        kind = scheme.WhichOneof("scheme")
        if kind == "api_key_security_scheme":
            if scheme.api_key_security_scheme.location.lower() == "header":
                names.append(scheme.api_key_security_scheme.name.lower())
        elif kind in (
            "http_auth_security_scheme",
            "oauth2_security_scheme",
            "open_id_connect_security_scheme",
        ):
            names.append("authorization")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key and/or a bearer token (a JWT, or an OAuth 2.0 / OpenID Connect access token).

    Without a card, every credential held is sent: the API key in ``api_key_header``, the token
    as ``Authorization: Bearer``. With a card, only what its requirements ask for.
    """

    api_key: str | None = field(default=None, repr=False)
    bearer_token: str | None = field(default=None, repr=False)
    api_key_header: str = "x-api-key"
    """Where the key goes when no card says (a card's APIKeySecurityScheme names its own header)."""
    client_certificate: bool = False
    """Whether the channel presents a client certificate (mutual TLS requirements are met by it)."""

    def headers(self, card: types.AgentCard | None = None) -> tuple[tuple[str, str], ...]:
        """The headers to send to the agent of ``card`` (None: every credential held).

        ValueError, naming what the card asks, when these credentials meet none of its requirements.
        """
        if card is None:
            found: list[tuple[str, str]] = []
            if self.api_key:
                found.append((self.api_key_header.lower(), self.api_key))
            if self.bearer_token:
                found.append(("authorization", f"Bearer {self.bearer_token}"))
            return tuple(found)
        if not card.security_requirements:
            return ()
        asked = []
        for requirement in card.security_requirements:
            headers = self._meet(card, list(requirement.schemes))
            if headers is not None:
                return headers
            described = [self._describe(card, name) for name in requirement.schemes]
            asked.append(" and ".join(described) or "nothing")
        raise ValueError(
            f"agent {card.name!r} asks for {' or '.join(asked)}; these credentials meet none of it"
        )

    def _meet(self, card: types.AgentCard, names: list[str]) -> tuple[tuple[str, str], ...] | None:
        out: list[tuple[str, str]] = []
        for name in names:
            scheme = card.security_schemes.get(name)
            kind = scheme.WhichOneof("scheme") if scheme is not None else None
            if kind == "api_key_security_scheme" and self.api_key:
                assert scheme is not None
                declared = scheme.api_key_security_scheme
                if declared.location.lower() != "header":
                    return None  # a key in a query or cookie: not something gRPC metadata carries
                out.append((declared.name.lower(), self.api_key))
            elif kind == "http_auth_security_scheme" and self.bearer_token:
                assert scheme is not None
                if scheme.http_auth_security_scheme.scheme.lower() != "bearer":
                    return None
                out.append(("authorization", f"Bearer {self.bearer_token}"))
            elif kind in ("oauth2_security_scheme", "open_id_connect_security_scheme") and self.bearer_token:
                out.append(("authorization", f"Bearer {self.bearer_token}"))
            elif kind == "mtls_security_scheme" and self.client_certificate:
                continue
            else:
                return None
        return tuple(out)

    @staticmethod
    def _describe(card: types.AgentCard, name: str) -> str:
        scheme = card.security_schemes.get(name)
        kind = scheme.WhichOneof("scheme") if scheme is not None else None
        return {
            "api_key_security_scheme": f"an API key ({name})",
            "http_auth_security_scheme": f"an HTTP {name} credential",
            "oauth2_security_scheme": f"an OAuth 2.0 token ({name})",
            "open_id_connect_security_scheme": f"an OpenID Connect token ({name})",
            "mtls_security_scheme": f"a client certificate ({name})",
        }.get(kind or "", f"the undeclared scheme {name!r}")
