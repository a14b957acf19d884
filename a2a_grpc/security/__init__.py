"""Security: who calls (authentication schemes, principals), what they may reach (task ownership,
tenants), and where the server may send what it knows (webhook policy).

    from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication

    settings = ServerSettings(authentication=Authentication([ApiKeyScheme([ApiKey("planner", key=KEY)])]))

See docs/security.md.
"""

from a2a_grpc.security.authentication import Authentication, Unprotected
from a2a_grpc.security.bearer import BearerJwtScheme
from a2a_grpc.security.credentials import Credentials
from a2a_grpc.security.delegation import DelegationMinter, DelegationTokenScheme
from a2a_grpc.security.identity import ClientCertificate, Principal
from a2a_grpc.security.schemes import ApiKey, ApiKeyScheme, MutualTlsScheme, Scheme
from a2a_grpc.security.webhooks import WebhookPolicy, verify_signature

__all__ = [
    "ApiKey",
    "ApiKeyScheme",
    "Authentication",
    "BearerJwtScheme",
    "ClientCertificate",
    "Credentials",
    "DelegationMinter",
    "DelegationTokenScheme",
    "MutualTlsScheme",
    "Principal",
    "Scheme",
    "Unprotected",
    "WebhookPolicy",
    "verify_signature",
]
