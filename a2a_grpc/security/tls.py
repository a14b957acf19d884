"""TLS for every listener and every client: what to serve (:class:`TlsSettings`) and what to trust
and present when calling out (:class:`ClientTls`).

Both read and check their files when constructed, so a bad path, a file that is not PEM, or a key
that does not belong to its certificate fails at start with a message that names the file, not
with a handshake error at the first call. Nothing here is read again per call.

Versions: HTTP listeners and clients accept TLS 1.2 and 1.3 (1.3 is negotiated whenever both ends
have it; OpenSSL prefers the highest). Specification 13.4 asks to disable SSLv3, TLS 1.0 and 1.1 and
recommends 1.3; TLS 1.2 stays allowed because load balancers, service meshes and older runtimes
(Java 8, some curl builds) in front of or behind agents still speak only 1.2, and 1.2 with the
default cipher list (forward-secret AEAD suites only) is not weak. gRPC listeners and channels use
grpc's own TLS stack, whose bounds are the same (minimum 1.2, maximum 1.3) and which Python cannot
change.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = ["MINIMUM_VERSION", "ClientTls", "TlsSettings"]

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
"""The lowest TLS version our HTTP listeners and clients accept (see the module docstring)."""


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{what} {path!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path!r} is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path!r}: {(exc.strerror or str(exc)).lower()}") from None
    if not data.strip():
        raise ValueError(f"{what} {path!r} is empty")
    return data


def _certificates(data: bytes, path: str, what: str) -> list[Certificate]:
    from cryptography import x509

    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError:
        found = []
    if not found:
        raise ValueError(f"{what} {path!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return found


def _check_pair(cert_path: str, key_path: str, cert_what: str, key_what: str) -> tuple[bytes, bytes]:
    """The PEM bytes of a certificate chain and its private key, checked to belong together."""
    from cryptography.hazmat.primitives import serialization

    chain = _read(cert_path, cert_what)
    leaf = _certificates(chain, cert_path, cert_what)[0]
    key_pem = _read(key_path, key_what)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # the key is encrypted: neither grpc nor a server started unattended can ask
        raise ValueError(
            f"{key_what} {key_path!r} is encrypted: give an unencrypted PEM key "
            "(and protect it with file permissions)"
        ) from None
    except (ValueError, NotImplementedError):
        raise ValueError(
            f"{key_what} {key_path!r} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)"
        ) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise ValueError(
            f"{key_what} {key_path!r} does not match the certificate in {cert_path!r} "
            f"({leaf.subject.rfc4514_string() or 'no subject'}): the first certificate of the file must be "
            "the one the key belongs to"
        )
    return chain, key_pem


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """What a listener serves TLS with (gRPC: ``ServerSettings.tls``; HTTP: ``HttpServer(tls=...)``).

    ``cert_file`` is PEM: this server's certificate first, then any intermediate certificates;
    ``key_file`` its unencrypted PEM private key. With ``client_ca_file`` (PEM, one or more CA
    certificates) and ``require_client_cert`` the listener is mutual TLS: a client must present a
    certificate issued by one of those CAs or the handshake fails, and every call's
    :attr:`a2a_grpc.service.CallContext.client_certificate` names the certificate it presented.

    ``client_ca_file`` without ``require_client_cert`` makes a client certificate optional: asked
    for and verified when sent, the connection accepted without one. Only HTTP listeners can do
    that: grpc's Python API can only require client certificates or not ask for them, so a gRPC
    listener refuses these settings rather than silently not asking.

    Files are read and checked when the settings are made (ValueError names the file and what is
    wrong); a listener started later reads them again, so a renewed certificate is picked up by a
    restart.
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    require_client_cert: bool = False
    _chain: bytes = field(default=b"", init=False, repr=False, compare=False)
    _key: bytes = field(default=b"", init=False, repr=False, compare=False)
    _client_ca: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cert_file", "key_file"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"TlsSettings.{name} must be a file path, not {getattr(self, name)!r}")
        if not isinstance(self.require_client_cert, bool):
            raise ValueError(f"require_client_cert must be True or False, not {self.require_client_cert!r}")
        if self.require_client_cert and not self.client_ca_file:
            raise ValueError(
                "require_client_cert needs client_ca_file: the CA certificates that client certificates "
                "must be issued by"
            )
        chain, key = _check_pair(self.cert_file, self.key_file, "TLS certificate file", "TLS key file")
        object.__setattr__(self, "_chain", chain)
        object.__setattr__(self, "_key", key)
        if self.client_ca_file:
            roots = _read(self.client_ca_file, "TLS client CA file")
            _certificates(roots, self.client_ca_file, "TLS client CA file")
            object.__setattr__(self, "_client_ca", roots)

    def check_grpc(self) -> None:
        """ValueError if a gRPC listener cannot serve these settings as they say (see the class)."""
        if self.client_ca_file and not self.require_client_cert:
            raise ValueError(
                "a gRPC listener cannot make client certificates optional (grpc's Python API can only "
                "require them or not ask): with client_ca_file set require_client_cert=True "
                "(--tls-require-client-cert)"
            )

    def server_credentials(self) -> grpc.ServerCredentials:
        """grpc's credentials for ``add_secure_port``."""
        self.check_grpc()
        return grpc.ssl_server_credentials(
            [(self._key, self._chain)],
            root_certificates=self._client_ca,
            require_client_auth=self.require_client_cert,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context for HTTP listeners: TLS 1.2 or later, HTTP/1.1 by ALPN, client
        certificates required, optional or not asked for as the settings say."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = MINIMUM_VERSION
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            context.load_verify_locations(cadata=(self._client_ca or b"").decode("ascii"))
            context.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        else:
            context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])  # our HTTP servers speak HTTP/1.1 only
        return context


@dataclass(frozen=True, slots=True)
class ClientTls:
    """How a client calls over TLS: whom it trusts and what it presents.

    ``ca_file``: PEM CA certificates to verify the server with; None trusts the system's roots.
    ``cert_file`` and ``key_file`` (both or neither): the client certificate for mutual TLS.
    ``server_name``: the name the server's certificate must carry instead of the target's host, for
    gRPC channels only (``grpc.ssl_target_name_override``: a test CA's ``localhost`` certificate
    reached at 127.0.0.1); HTTP clients always verify the URL's host.

    Files are read and checked when the settings are made (ValueError names the file).
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    # Compared (and hashed) too: settings read from files that changed since are other settings.
    _roots: bytes | None = field(default=None, init=False, repr=False)
    _chain: bytes | None = field(default=None, init=False, repr=False)
    _key: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file (or neither)")
        if self.server_name is not None and not self.server_name:
            raise ValueError("server_name must not be empty (None: the target's host)")
        if self.ca_file is not None:
            roots = _read(self.ca_file, "TLS CA file")
            _certificates(roots, self.ca_file, "TLS CA file")
            object.__setattr__(self, "_roots", roots)
        if self.cert_file is not None and self.key_file is not None:
            chain, key = _check_pair(
                self.cert_file, self.key_file, "TLS client certificate file", "TLS client key file"
            )
            object.__setattr__(self, "_chain", chain)
            object.__setattr__(self, "_key", key)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """grpc's credentials for ``grpc.aio.secure_channel``."""
        return grpc.ssl_channel_credentials(
            root_certificates=self._roots, private_key=self._key, certificate_chain=self._chain
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        """Channel options these settings add (the server-name override)."""
        return [] if self.server_name is None else [("grpc.ssl_target_name_override", self.server_name)]

    def secure_channel(self, target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        """A grpc.aio channel to ``target`` over TLS with these settings."""
        return grpc.aio.secure_channel(
            target, self.channel_credentials(), options=[*options, *self.channel_options()]
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client-side context for HTTP clients (``httpx.AsyncClient(verify=...)``): the server's
        certificate and host name verified, TLS 1.2 or later, the client certificate if any.

        Built once per settings object and shared: making one costs tens of milliseconds.
        """
        return _client_context(self)


@functools.lru_cache(maxsize=32)
def _client_context(tls: ClientTls) -> ssl.SSLContext:
    if tls._roots is not None:
        context = ssl.create_default_context(cadata=tls._roots.decode("ascii"))
    else:
        context = ssl.create_default_context()
    context.minimum_version = MINIMUM_VERSION
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context
