"""Security: who calls (authentication schemes, principals), what they may reach (task ownership,
tenants), and where the server may send what it knows (webhook policy).

See docs/security.md.
"""

from a2a_grpc.security.identity import ClientCertificate, Principal

__all__ = ["ClientCertificate", "Principal"]
