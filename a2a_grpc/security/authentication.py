"""Authentication in the call seam, and the ownership key every task is stored under.

:class:`Authentication` is the first link of a server's chain (:mod:`a2a_grpc.service`): every
call of every front (gRPC, the in-process JSON bridge, later the session binding) passes it, so
credentials are checked once, in one place, identically. It tries the configured schemes in
order: the first that finds its kind of credential in the call and accepts it names the
:class:`~a2a_grpc.security.identity.Principal`, which it puts on the call's context; a call with
no credential, or none that a scheme accepts, is refused with
:class:`~a2a_grpc.errors.UnauthenticatedError` (gRPC UNAUTHENTICATED, HTTP 401 with
``WWW-Authenticate`` naming every accepted scheme).

Ownership (:func:`owner_key`): a task is stored under its tenant *and* its creator's principal,
so that every lookup of the task core (get, list, cancel, subscribe, continue, push configs) is
scoped to the caller by construction, and another principal's task is simply not there
("not found", spec 3.3.2: no existence leak). The tenant comes from the request's route (gRPC and
JSON-RPC: its ``tenant`` field; HTTP+JSON: the path) or from the credential; a credential bound to
a tenant refuses any other (PermissionDeniedError).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.security.identity import Principal
from a2a_grpc.security.schemes import Scheme
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = [
    "OWNER_SEPARATOR",
    "Authentication",
    "Unprotected",
    "check_exposure",
    "is_loopback",
    "owner_key",
    "request_tenant",
    "tenant_of",
]

log = logging.getLogger("a2a_grpc.security")

OWNER_SEPARATOR = "\x1f"
"""Between tenant and principal in an owner key. A control character: neither a tenant nor a
principal id may contain one, so no pair of them can spell another's key."""


class Unprotected(ValueError):
    """A server configured to listen beyond loopback without authentication, and not told that
    this is meant (``allow_unauthenticated``)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listening address) is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name (or a wildcard spelled some other way): may be anything


def check_exposure(
    host: str, authentication: Authentication | None, allow_unauthenticated: bool, listener: str
) -> None:
    """Refuse to serve without authentication beyond loopback (as Redis's protected mode does),
    unless told to; log the "no authentication" mode whenever it is in force."""
    if authentication is not None:
        return
    if is_loopback(host):
        log.info(
            "%s on %s: no authentication (loopback only): every local caller is the same anonymous "
            "principal and reaches every task",
            listener,
            host,
        )
        return
    if not allow_unauthenticated:
        raise Unprotected(
            f"refusing to serve {listener} on {host} without authentication: anyone who reaches it "
            "could read and cancel every task. Configure a scheme (API keys, bearer JWTs or mutual "
            "TLS; see docs/security.md), listen on 127.0.0.1, or allow it explicitly "
            "(--allow-unauthenticated / allow_unauthenticated=True)"
        )
    log.warning(
        "%s on %s: no authentication, allowed explicitly: every caller is the same anonymous "
        "principal and reaches every task",
        listener,
        host,
    )


def request_tenant(principal: Principal | None, requested: str) -> str:
    """The tenant a call acts in: the one requested (route or request field), which a credential
    bound to a tenant must match; an empty request takes the credential's."""
    if principal is None or not principal.tenant:
        return requested
    if requested and requested != principal.tenant:
        raise errors.PermissionDeniedError(
            f"the credential of {errors.echo(principal.id)} is for another tenant than "
            f"{errors.echo(requested)}",
            metadata={"tenant": requested},
        )
    return principal.tenant


def owner_key(principal: Principal | None, tenant: str) -> str:
    """The key a task is stored under: the tenant alone without authentication (every caller is
    the same nobody), else tenant and principal."""
    if principal is None:
        return tenant
    return f"{tenant}{OWNER_SEPARATOR}{principal.id}"


def tenant_of(key: str) -> str:
    """The tenant of an owner key."""
    return key.partition(OWNER_SEPARATOR)[0]


class Authentication(Interceptor):
    """Checks every call's credentials against ``schemes`` (in order; at least one).

    Verified bearer tokens are remembered (up to ``cache_size`` of them, each until its ``exp``
    and at most ``cache_seconds``): a caller that sends the same token thousands of times a
    second pays for one signature check, not thousands. A cached token is still refused once it
    expires.
    """

    def __init__(
        self, schemes: Sequence[Scheme], *, cache_size: int = 4096, cache_seconds: float = 60.0
    ) -> None:
        self.schemes = tuple(schemes)
        if not self.schemes:
            raise ValueError("Authentication needs at least one scheme")
        names = [s.name for s in self.schemes]
        if len(set(names)) != len(names):
            raise ValueError(f"scheme names must differ: {names}")
        self._scoped = {s.name: s for s in self.schemes if s.scoped}
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[tuple[str, str], tuple[float, Principal]] = OrderedDict()
        self.headers = tuple(dict.fromkeys(h for s in self.schemes for h in s.headers))
        """The headers the schemes read, which an HTTP front passes on to the seam."""
        self.challenge = ", ".join(s.challenge() for s in self.schemes)
        """``WWW-Authenticate`` of a call that sent no credential: every scheme this agent accepts."""

    async def start(self) -> None:
        for scheme in self.schemes:
            await scheme.start()

    async def aclose(self) -> None:
        for scheme in self.schemes:
            await scheme.aclose()

    def declare(self, card: types.AgentCard) -> None:
        """Declare the schemes in ``card`` (``securitySchemes``, and one ``securityRequirements``
        entry per scheme: any one of them suffices), unless the card declares its own."""
        if card.security_schemes or card.security_requirements:
            return
        for scheme in self.schemes:
            card.security_schemes[scheme.name].CopyFrom(scheme.declaration())
            requirement = card.security_requirements.add()
            requirement.schemes[scheme.name].SetInParent()

    # -- checking a call ----------------------------------------------------------------------

    def _cached(self, scheme: Scheme, call: CallContext) -> Principal | None:
        token = call.headers.get("authorization")
        if not token or not self._cache:
            return None
        entry = self._cache.get((scheme.name, token))
        if entry is None:
            return None
        if entry[0] <= time.time():
            self._cache.pop((scheme.name, token), None)
            return None
        return entry[1]

    def _remember(self, scheme: Scheme, call: CallContext, principal: Principal) -> None:
        expires = principal.claims.get("exp") if principal.claims else None
        token = call.headers.get("authorization")
        if not isinstance(expires, (int, float)) or not token or self.cache_size <= 0:
            return
        self._cache[(scheme.name, token)] = (min(float(expires), time.time() + self.cache_seconds), principal)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def authenticate(self, call: CallContext) -> CallContext:
        """``call`` with its principal; UnauthenticatedError if no scheme proves one."""
        refused: errors.UnauthenticatedError | None = None
        for scheme in self.schemes:
            if not scheme.carries(call):
                continue
            principal = self._cached(scheme, call)
            if principal is None:
                try:
                    principal = await scheme.authenticate(call)
                except errors.UnauthenticatedError as exc:
                    refused = refused or exc
                    continue
                self._remember(scheme, call, principal)
            return dataclasses.replace(call, principal=principal)
        if refused is not None:
            log.info("refused credentials from %s: %s", call.peer or "an unknown peer", refused.message)
            raise refused
        log.info("refused a call without credentials from %s", call.peer or "an unknown peer")
        names = ", ".join(s.name for s in self.schemes)
        raise errors.UnauthenticatedError(
            f"this agent requires credentials ({names}; see its card's securitySchemes)",
            challenge=self.challenge,
        )

    def _scope(self, method: Method, request: Message, context: CallContext) -> Scheme | None:
        """The scoped scheme that accepted the call's credential, once it allowed the call."""
        principal = context.principal
        scheme = self._scoped.get(principal.scheme) if principal is not None and self._scoped else None
        if scheme is not None:
            scheme.authorize(method, request, context)
        return scheme

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        context = await self.authenticate(context)
        scheme = self._scope(method, request, context)
        if scheme is None:
            return await call_next(request, context)
        try:
            return await call_next(request, context)
        except errors.TaskNotFoundError as exc:
            raise scheme.out_of_scope(context, exc) from None

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        context = await self.authenticate(context)
        scheme = self._scope(method, request, context)
        events = call_next(request, context)
        try:
            async for event in events:
                yield event
        except errors.TaskNotFoundError as exc:
            if scheme is None:
                raise
            raise scheme.out_of_scope(context, exc) from None
