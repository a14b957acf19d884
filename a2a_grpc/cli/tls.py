"""The TLS options of every command: what a listener serves (``--tls-cert`` ...) and what a caller
trusts and presents (``--tls-ca`` ...), with the settings they make."""

from __future__ import annotations

import argparse
from typing import Any

from a2a_grpc.cli.common import CliError

__all__ = ["caller_args", "caller_tls", "listener_args", "listener_tls"]


def listener_args(p: argparse.ArgumentParser, listeners: str) -> None:
    g = p.add_argument_group(f"TLS of {listeners} (default: plaintext)")
    g.add_argument(
        "--tls-cert", metavar="PATH", help="serve TLS with this PEM certificate (chain: ours first)"
    )
    g.add_argument("--tls-key", metavar="PATH", help="the unencrypted PEM private key of --tls-cert")
    g.add_argument(
        "--tls-client-ca",
        metavar="PATH",
        help="PEM CA certificate(s) that client certificates must be issued by (mutual TLS)",
    )
    g.add_argument(
        "--tls-require-client-cert",
        action="store_true",
        help="mutual TLS: refuse clients without a certificate from --tls-client-ca",
    )


def caller_args(p: argparse.ArgumentParser, calls: str, urls: bool = False) -> None:
    default = "plaintext, or TLS to an https:// URL" if urls else "plaintext"
    g = p.add_argument_group(f"TLS of {calls} (default: {default})")
    g.add_argument(
        "--tls",
        action="store_true",
        help="call over TLS, verifying the server against the system's root certificates "
        "(implied by the other --tls-* options)",
    )
    g.add_argument("--tls-ca", metavar="PATH", help="verify the server against these PEM CA certificate(s)")
    g.add_argument("--tls-client-cert", metavar="PATH", help="present this PEM certificate (mutual TLS)")
    g.add_argument(
        "--tls-client-key", metavar="PATH", help="the unencrypted PEM private key of --tls-client-cert"
    )


def listener_tls(args: argparse.Namespace) -> Any:
    """The ``TlsSettings`` the listener options ask for, None for plaintext; CliError naming the
    option or file that is wrong."""
    from a2a_grpc.security.tls import TlsSettings

    if not (args.tls_cert or args.tls_key):
        if args.tls_client_ca or args.tls_require_client_cert:
            raise CliError("--tls-client-ca and --tls-require-client-cert need --tls-cert and --tls-key")
        return None
    if not (args.tls_cert and args.tls_key):
        raise CliError("--tls-cert and --tls-key go together")
    if args.tls_require_client_cert and not args.tls_client_ca:
        raise CliError("--tls-require-client-cert needs --tls-client-ca (the CA of the client certificates)")
    try:
        return TlsSettings(args.tls_cert, args.tls_key, args.tls_client_ca, args.tls_require_client_cert)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def caller_tls(args: argparse.Namespace) -> Any:
    """The ``ClientTls`` the caller options ask for, None when none is given."""
    from a2a_grpc.security.tls import ClientTls

    if not (args.tls or args.tls_ca or args.tls_client_cert or args.tls_client_key):
        return None
    if bool(args.tls_client_cert) != bool(args.tls_client_key):
        raise CliError("--tls-client-cert and --tls-client-key go together")
    try:
        return ClientTls(args.tls_ca, args.tls_client_cert, args.tls_client_key)
    except ValueError as exc:
        raise CliError(str(exc)) from None
