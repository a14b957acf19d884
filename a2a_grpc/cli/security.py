"""The authentication options of ``a2a-grpc``: the schemes a server checks, the credentials a client presents.

A secret never goes on the command line, where ``ps`` shows it to every user of the machine:
servers read API keys from a file (keys or their SHA-256), clients from the environment
(``A2A_GRPC_API_KEY``, ``A2A_GRPC_BEARER_TOKEN``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from a2a_grpc.cli.common import CliError

__all__ = ["API_KEY_ENV", "BEARER_TOKEN_ENV", "auth_args", "authentication_from", "credentials_from"]

API_KEY_ENV = "A2A_GRPC_API_KEY"
BEARER_TOKEN_ENV = "A2A_GRPC_BEARER_TOKEN"


def auth_args(p: argparse.ArgumentParser) -> None:
    """The server's authentication options (docs/security.md)."""
    g = p.add_argument_group(
        "authentication",
        "every call must carry a credential one of these schemes accepts (the card declares them). "
        "Without any, only a loopback address is served, unless --allow-unauthenticated",
    )
    g.add_argument(
        "--api-keys-file",
        metavar="PATH",
        help="API keys: lines of 'PRINCIPAL KEY [TENANT]' or 'PRINCIPAL sha256:HEX [TENANT]' ('#' comments)",
    )
    g.add_argument(
        "--api-key-header",
        metavar="NAME",
        default="X-API-Key",
        help="header of the API key (default: X-API-Key)",
    )
    g.add_argument("--jwt-issuer", metavar="ISS", help="bearer JWTs: trust tokens whose iss is ISS")
    g.add_argument("--jwt-audience", metavar="AUD", help="bearer JWTs: this agent's audience (aud)")
    keys = g.add_mutually_exclusive_group()
    keys.add_argument(
        "--jwks-url", metavar="URL", help="bearer JWTs: the JWKS (https://) of their keys, cached"
    )
    keys.add_argument("--jwks-file", metavar="PATH", help="bearer JWTs: a JWKS file")
    g.add_argument(
        "--jwt-tenant-claim",
        metavar="CLAIM",
        help="bearer JWTs: a claim that binds the caller to a tenant (default: none)",
    )
    g.add_argument(
        "--mtls-identity",
        choices=("common_name", "uri", "dns", "sha256"),
        help="mutual TLS: the client certificate names the principal by this part (needs a TLS "
        "listener that requires client certificates)",
    )
    g.add_argument(
        "--trust-delegations",
        metavar="ISSUER=JWKS",
        action="append",
        default=[],
        help="accept task-scoped delegation tokens minted by ISSUER, verified with its public keys "
        "(JWKS: a file, or the URL the minting server publishes at /.well-known/jwks.json); "
        "repeatable (docs/security.md)",
    )
    g.add_argument(
        "--delegation-audience",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="the names delegators reach this agent by, which their tokens' aud must be (default: "
        "the address it listens on); repeatable",
    )
    g.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve without authentication on an address other than loopback: every caller is the "
        "same anonymous principal and reaches every task",
    )


def authentication_from(args: argparse.Namespace) -> Any:
    """The Authentication the options ask for, or None."""
    from a2a_grpc.security import ApiKeyScheme, Authentication, BearerJwtScheme, MutualTlsScheme, Scheme

    schemes: list[Scheme] = []
    try:
        if args.api_keys_file:
            schemes.append(ApiKeyScheme.from_file(args.api_keys_file, header=args.api_key_header))
        wants_jwt = args.jwt_issuer or args.jwt_audience or args.jwks_url or args.jwks_file
        if wants_jwt:
            if not (args.jwt_issuer and args.jwt_audience and (args.jwks_url or args.jwks_file)):
                raise CliError("bearer JWTs need --jwt-issuer, --jwt-audience and --jwks-url or --jwks-file")
            schemes.append(
                BearerJwtScheme(
                    issuer=args.jwt_issuer,
                    audience=args.jwt_audience,
                    jwks_url=args.jwks_url,
                    jwks_file=args.jwks_file,
                    tenant_claim=args.jwt_tenant_claim,
                )
            )
        if args.mtls_identity:
            schemes.append(MutualTlsScheme(identity=args.mtls_identity))
        schemes += delegation_schemes(args)
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return Authentication(schemes) if schemes else None


def delegation_schemes(args: argparse.Namespace) -> list[Any]:
    """One DelegationTokenScheme per --trust-delegations ISSUER=JWKS. Their audiences are
    --delegation-audience, or filled in with the listening address once the port is bound
    (:func:`listening_audience`)."""
    from a2a_grpc.security import DelegationTokenScheme

    trusted = getattr(args, "trust_delegations", [])
    if getattr(args, "delegation_audience", []) and not trusted:
        raise CliError("--delegation-audience names this agent for --trust-delegations: give that too")
    schemes = []
    for i, entry in enumerate(trusted):
        issuer, sep, source = entry.partition("=")
        if not sep or not issuer or not source:
            raise CliError(f"--trust-delegations takes ISSUER=JWKS (a file or an http(s) URL), not {entry!r}")
        where = {"jwks_url": source} if source.startswith(("http://", "https://")) else {"jwks_file": source}
        name = "delegation" if len(trusted) == 1 else f"delegation-{i + 1}"
        audiences = list(args.delegation_audience) or ["(this agent's address, once bound)"]
        schemes.append(DelegationTokenScheme(issuer=issuer, audience=audiences, name=name, **where))
    return schemes


def listening_audience(authentication: Any, address: str, args: argparse.Namespace) -> None:
    """Without --delegation-audience, the delegation schemes take the bound address as audience."""
    from a2a_grpc.security import DelegationTokenScheme

    if authentication is None or args.delegation_audience:
        return
    for scheme in authentication.schemes:
        if isinstance(scheme, DelegationTokenScheme):
            scheme.audience[:] = [address]


def credentials_from(environ: Any = os.environ) -> Any:
    """The client's credentials, from the environment (None if it holds none)."""
    from a2a_grpc.security import Credentials

    api_key = environ.get(API_KEY_ENV) or None
    token = environ.get(BEARER_TOKEN_ENV) or None
    return Credentials(api_key=api_key, bearer_token=token) if api_key or token else None
