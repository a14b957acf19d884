"""Who is calling: the :class:`Principal` an authentication scheme establishes, and the
:class:`ClientCertificate` a TLS front verified.

Kept free of imports from the rest of the package: the call seam (:mod:`a2a_grpc.service`) and
every front read these types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientCertificate", "Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``id`` names the caller within this agent (an API key's configured name, a JWT's ``sub``,
    a client certificate's identity); every task belongs to the principal and tenant that created
    it. ``tenant`` is the tenant the credential binds the caller to ("" when it binds none: the
    caller names its tenant in the request). ``scheme`` is the name of the scheme that accepted
    the credential, as the card declares it. ``claims`` are what the credential said besides (a
    JWT's claims), for agents that authorize on them.
    """

    id: str
    scheme: str
    tenant: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __repr__(self) -> str:  # claims may be large and are not identity: left out
        extra = f", tenant={self.tenant!r}" if self.tenant else ""
        return f"Principal({self.id!r}, scheme={self.scheme!r}{extra})"


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The certificate a client presented and the TLS front verified against its client CA.

    ``subject`` is the RFC 4514 distinguished name, ``common_name`` its CN ("" if none), ``sans``
    the subject alternative names as ``DNS:...``, ``URI:...``, ``email:...``, ``IP:...`` and
    ``sha256`` the hex fingerprint of the DER encoding.
    """

    subject: str
    common_name: str
    sans: tuple[str, ...]
    sha256: str

    @classmethod
    def from_der(cls, der: bytes) -> ClientCertificate:
        """Read a DER-encoded X.509 certificate (what ``ssl`` hands over for a verified peer)."""
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        sans: list[str] = []
        try:
            extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            extension = None
        if extension is not None:
            sans += [f"DNS:{v}" for v in extension.get_values_for_type(x509.DNSName)]
            sans += [f"URI:{v}" for v in extension.get_values_for_type(x509.UniformResourceIdentifier)]
            sans += [f"email:{v}" for v in extension.get_values_for_type(x509.RFC822Name)]
            sans += [f"IP:{v}" for v in extension.get_values_for_type(x509.IPAddress)]
        return cls(cert.subject.rfc4514_string(), common_name, tuple(sans), hashlib.sha256(der).hexdigest())

    @classmethod
    def from_pem(cls, pem: str | bytes) -> ClientCertificate:
        """Read a PEM-encoded certificate (what grpc's auth context holds as ``x509_pem_cert``)."""
        import ssl

        text = pem.decode("ascii") if isinstance(pem, bytes) else pem
        return cls.from_der(ssl.PEM_cert_to_DER_cert(text))
