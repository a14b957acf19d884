"""An async gRPC client for any A2A v1.0 agent: one method per RPC.

    async with A2AClient("127.0.0.1:50051") as client:
        reply = await client.send_message(A2AClient.text_request("hello"))
        async for event in client.send_streaming_message(A2AClient.text_request("stream 3")):
            ...

Every call has a deadline (``timeout`` per call, else the client's default).
Streams are async iterators that cancel the underlying call when the loop
exits early, raises, or is cancelled. Failures arrive as one typed exception
per A2A error (``a2a_grpc.errors``), decoded from the gRPC status details.

A client made from an agent card (:meth:`A2AClient.from_card`) talks to the card's
first gRPC interface and puts that interface's ``tenant`` into every request, as the
specification asks of clients (a request that names its own tenant keeps it); when that
interface is unavailable it falls back to the card's next gRPC interface. An agent whose card
offers only A2A v0.3 gRPC interfaces (or a client made with ``v03=True``) is called over the v0.3
service ``a2a.v1.A2AService``, every request and answer translated (:mod:`a2a_grpc.v03.grpc_client`).

Failed calls that may be repeated are tried again with backoff, within the call's deadline, and a
circuit breaker per interface stops calling a peer that keeps failing (:mod:`a2a_grpc.resilience`,
``ClientSettings.resilience``).

TLS: ``tls=True`` verifies the server against the system's root certificates;
``tls=ClientTls(ca_file=..., cert_file=..., key_file=...)`` (:mod:`a2a_grpc.security.tls`) against
the given CA, presenting a client certificate for mutual TLS.

    async with A2AClient("agent.internal:50051", tls=ClientTls(ca_file="ca.pem")) as client:
        ...
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._operations import ClientOperations
from a2a_grpc.discovery import GET_AGENT_CARD, GetAgentCardRequest, GetAgentCardResponse
from a2a_grpc.observability import trace
from a2a_grpc.resilience import CircuitBreaker, Clock, ResiliencePolicy, retry_advice, retry_delay
from a2a_grpc.security.credentials import Credentials
from a2a_grpc.security.tls import ClientTls
from a2a_grpc.service import METHODS, SUPPORTED_VERSIONS
from a2a_grpc.status import from_rpc_error
from a2a_grpc.v03.card import V03_VERSION, is_v03_version
from a2a_grpc.v03.errors import from_grpc_error_v03
from a2a_grpc.v03.grpc_client import v03_calls

if TYPE_CHECKING:  # imported when used: the session client builds on this module
    from a2a_grpc.live import LiveStream
    from a2a_grpc.mesh.drift import CardBook
    from a2a_grpc.session.client import Session, SessionOptions

__all__ = [
    "A2AClient",
    "ClientSettings",
    "ClientTls",
    "channel_calls",
    "grpc_target",
    "open_channel",
    "with_tenant",
]

R = TypeVar("R", bound=Message)
MiB = 1024 * 1024
log = logging.getLogger("a2a_grpc.client")

SERVER_MIN_PING_INTERVAL_MS = 300_000
"""How often a gRPC server lets a client ping, unless configured otherwise (grpc's default
``grpc.http2.min_ping_interval_without_data_ms``; a2a-grpc's server keeps it): a client that
pings more often collects strikes, and after two the server ends the connection with GOAWAY
``too_many_pings``, failing the calls on it."""


LOAD_BALANCING = ("round_robin", "pick_first")
"""The load-balancing policies of :attr:`ClientSettings.load_balancing` (gRPC's own)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    """How the client side calls agents (:class:`A2AClient`, the bridge's ``GrpcUpstream``, the
    JSON upstreams' card fetch). Defaults suit one machine."""

    timeout: float | None = 30.0
    """Default deadline of a unary call, in seconds; None: no deadline. Streams have none unless given."""
    connect_timeout: float = 10.0
    """How long to wait for an agent to be reachable (``wait_ready``) or to give its card at start."""
    max_receive_message_bytes: int = 64 * MiB
    """Larger answers fail with RESOURCE_EXHAUSTED (as large as our server sends)."""
    max_send_message_bytes: int = 64 * MiB
    """Larger requests fail here rather than at the server (ours takes 16 MiB)."""
    keepalive_time_ms: int | None = SERVER_MIN_PING_INTERVAL_MS
    """While a call is open (a long, quiet stream above all), ping the server this often to notice
    a dead peer or a dropped connection; None: no pings. The default is as often as a gRPC server
    allows by default (:data:`SERVER_MIN_PING_INTERVAL_MS`, a2a-grpc's included): a smaller value
    gets the connection closed with ``too_many_pings`` by such a server. An idle connection is not
    pinged (the server pings it, every ``ServerSettings.keepalive_time_ms``)."""
    keepalive_timeout_ms: int = 20_000
    """How long a ping may wait for its answer before the connection is declared dead."""
    resilience: ResiliencePolicy = dataclasses.field(default_factory=ResiliencePolicy)
    """Retries (which calls, how often, how long apart) and circuit breakers
    (:class:`a2a_grpc.resilience.ResiliencePolicy`)."""
    load_balancing: str | None = None
    """How a channel whose target names several servers spreads its calls: ``round_robin`` (every
    address the resolver gives: a ``dns:///agent.example:50051`` target of a headless Service, or
    ``ipv4:10.0.0.1:50051,10.0.0.2:50051``), ``pick_first`` (one at a time, gRPC's default), or
    None (gRPC's default, or what the resolver's service config says: xDS)."""

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, not {self.timeout!r}")
        for name in ("connect_timeout", "max_receive_message_bytes", "max_send_message_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.keepalive_time_ms is not None and self.keepalive_time_ms <= 0:
            raise ValueError(f"keepalive_time_ms must be positive or None, not {self.keepalive_time_ms}")
        if self.keepalive_timeout_ms <= 0:
            raise ValueError(f"keepalive_timeout_ms must be positive, not {self.keepalive_timeout_ms}")
        if self.load_balancing not in (None, *LOAD_BALANCING):
            raise ValueError(
                f"load_balancing must be one of {', '.join(LOAD_BALANCING)} or None, "
                f"not {self.load_balancing!r}"
            )

    def grpc_options(self) -> list[tuple[str, int | str]]:
        """The channel options these settings stand for."""
        options: list[tuple[str, int | str]] = [
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
        ]
        if self.load_balancing is not None:
            options.append(("grpc.lb_policy_name", self.load_balancing))
        if self.keepalive_time_ms is not None:
            options += [
                ("grpc.keepalive_time_ms", self.keepalive_time_ms),
                ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
                # Pings only while a call is open: a server not configured to take pings on an idle
                # connection counts them as strikes (and the server pings idle clients itself).
                ("grpc.keepalive_permit_without_calls", 0),
                # As many pings as a quiet stream needs (grpc stops after 2 without data by default,
                # which leaves an hour-long quiet stream unwatched): the interval keeps them legal.
                ("grpc.http2.max_pings_without_data", 0),
            ]
        return options


_METADATA_KEY = re.compile(r"^[0-9a-z_.-]{1,256}$")
_METADATA_VALUE = re.compile(r"^[\x20-\x7e]*$")


def check_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> None:
    """Refuse, as InvalidParamsError naming the header, metadata gRPC cannot carry: a key that is
    not lower-case letters, digits, ``-``, ``_`` or ``.``; a text value that is not printable
    ASCII; bytes under a key that does not end in ``-bin`` (gRPC would fail the call with an
    untyped error instead)."""
    for key, value in metadata:
        if not isinstance(key, str) or not _METADATA_KEY.match(key):
            raise errors.InvalidParamsError(
                f"metadata key {errors.echo(str(key), 64)} is not one gRPC can carry "
                "(lower-case letters, digits, '-', '_', '.')"
            )
        if isinstance(value, bytes):
            if not key.endswith("-bin"):
                raise errors.InvalidParamsError(f"metadata {key!r} holds bytes: its key must end in -bin")
        elif not _METADATA_VALUE.match(value):
            raise errors.InvalidParamsError(
                f"metadata {key!r} must be printable ASCII text (bytes go under a key ending in -bin)"
            )


def open_channel(target: str, settings: ClientSettings, tls: bool | ClientTls = False) -> grpc.aio.Channel:
    """A grpc.aio channel to ``target`` with ``settings``' options: plaintext (``tls`` False), TLS
    with the system's roots (True), or as a :class:`ClientTls` says."""
    options = settings.grpc_options()
    if isinstance(tls, ClientTls):
        return tls.secure_channel(target, options)
    if tls:
        return grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
    return grpc.aio.insecure_channel(target, options=options)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def channel_calls(channel: grpc.aio.Channel) -> dict[str, Any]:
    """A multi-callable per A2A RPC on ``channel`` (unary-unary or unary-stream), by RPC name, from
    the method table (:data:`a2a_grpc.service.METHODS`)."""
    calls: dict[str, Any] = {}
    for name, method in METHODS.items():
        make = channel.unary_stream if method.streaming else channel.unary_unary
        calls[name] = make(
            method.path, request_serializer=_serialize, response_deserializer=method.response.FromString
        )
    return calls


_PLAIN_SCHEMES = {"grpc": False, "http": False, "grpcs": True, "https": True}


def grpc_target(url: str) -> tuple[str, bool]:
    """The gRPC target of an agent card's GRPC interface URL, and whether it takes TLS.

    ``host:port`` and ``[v6]:port`` are plaintext targets as they are; ``grpc://`` and ``http://``
    URLs are plaintext, ``grpcs://`` and ``https://`` TLS. ValueError for anything else.
    """
    if "://" not in url:
        host, sep, port = url.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"a GRPC interface URL must be HOST:PORT or a URL with a port, not {url!r}")
        return url, False
    parts = urlsplit(url)
    tls = _PLAIN_SCHEMES.get(parts.scheme)
    try:
        number = parts.port
    except ValueError:  # not a number, or out of range
        number = None
    if tls is None or not parts.hostname or number is None:
        raise ValueError(
            f"a GRPC interface URL must be grpc://, grpcs://, http:// or https:// with a host and a port, "
            f"not {url!r}"
        )
    host = parts.hostname
    return (f"[{host}]:{number}" if ":" in host else f"{host}:{number}"), tls


def with_tenant(request: R, tenant: str) -> R:
    """``request`` with ``tenant`` if it names none (a copy: the caller's is not changed).

    What a client does with its interface's tenant (spec: a client MUST put the selected
    interface's tenant into every request); a request that names a tenant of its own keeps it.
    """
    if not tenant or getattr(request, "tenant", None) != "":
        return request
    copy = type(request)()
    copy.CopyFrom(request)
    copy.tenant = tenant  # type: ignore[attr-defined]  # every A2A request has one
    return copy


def _advice(failure: grpc.RpcError, error: errors.A2AError) -> float | None:
    """The RetryInfo wait of a failed call, read only where it counts (RESOURCE_EXHAUSTED: see
    :func:`a2a_grpc.resilience.retry_delay`); every other failure skips parsing the trailer again."""
    return retry_advice(failure) if error.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED else None


def _grpc_major(interface: types.AgentInterface) -> str:
    """The major A2A version of a GRPC interface ("0" for v0.3 and older; no version is 1.x);
    "" for another binding."""
    if interface.protocol_binding.upper() != "GRPC":
        return ""
    version = interface.protocol_version.strip() or SUPPORTED_VERSIONS[-1]
    return "0" if is_v03_version(version) else version.split(".")[0]


class _Default:
    """The type of :data:`DEFAULT`."""


DEFAULT = _Default()
"""An argument left to the client's settings."""


@dataclasses.dataclass(eq=False)
class _Route:
    """One interface of the agent the client may call: its channel, calls and breaker."""

    target: str
    tenant: str
    channel: grpc.aio.Channel
    own_channel: bool
    calls: dict[str, Any]
    breaker: CircuitBreaker
    decode: Callable[[grpc.RpcError], errors.A2AError] = from_rpc_error
    """Reads a failed call (the v0.3 service's errors have forms of their own)."""


class A2AClient(ClientOperations):
    """A client of one agent at ``target`` (``host:port``).

    ``settings`` holds the channel limits, keepalive, default deadline, retries and breakers
    (:class:`ClientSettings`); ``timeout`` and ``max_message_bytes`` override the settings'
    deadline and both message limits. ``tls``: False for plaintext, True for TLS verified against
    the system's root certificates, a :class:`~a2a_grpc.security.tls.ClientTls` for a CA of your
    own and a client certificate. ``clock`` and ``rng`` are where retries and breakers read time
    and chance (tests pass their own).
    """

    def __init__(
        self,
        target: str,
        *,
        tenant: str = "",
        settings: ClientSettings | None = None,
        timeout: float | _Default | None = DEFAULT,
        metadata: Sequence[tuple[str, str | bytes]] = (),
        extensions: Iterable[str] = (),
        version: str = SUPPORTED_VERSIONS[-1],
        channel: grpc.aio.Channel | None = None,
        tls: bool | ClientTls = False,
        max_message_bytes: int | None = None,
        credentials: Credentials | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        cards: CardBook | None = None,
        v03: bool = False,
    ) -> None:
        settings = settings or ClientSettings()
        if not isinstance(timeout, _Default):  # shortcuts for the settings everyone sets
            settings = dataclasses.replace(settings, timeout=timeout)
        if max_message_bytes is not None:
            settings = dataclasses.replace(
                settings,
                max_receive_message_bytes=max_message_bytes,
                max_send_message_bytes=max_message_bytes,
            )
        self.settings = settings
        self.timeout = settings.timeout
        self._v03 = v03
        if v03:
            version = V03_VERSION
        self.protocol_version = version
        """The A2A version this client speaks: with ``v03`` it calls the v0.3 gRPC service
        ``a2a.v1.A2AService`` (:mod:`a2a_grpc.v03.grpc_client`) as ``a2a-version: 0.3``, else
        ``lf.a2a.v1.A2AService``, sending ``version``."""
        # Credentials first: explicit metadata may override them.
        presented = credentials.headers() if credentials is not None else ()
        check_metadata(metadata)
        base = [("a2a-version", version), *presented, *metadata]
        ext = ",".join(extensions)
        if ext:
            base.append(("a2a-extensions", ext))
        self._metadata = tuple(base)
        self._clock = clock or Clock()
        self._rng = rng or random.Random()
        self.cards = cards
        """Shown every card :meth:`get_agent_card` fetches, for card drift (a2a_grpc.mesh.drift)."""
        self._routes: list[_Route] = []
        self._add_route(target, tenant, channel, tls)
        self._use(0)

    def _add_route(
        self, target: str, tenant: str, channel: grpc.aio.Channel | None, tls: bool | ClientTls
    ) -> None:
        own = channel is None
        if channel is None:
            channel = open_channel(target, self.settings, tls)
        calls = v03_calls(channel) if self._v03 else channel_calls(channel)
        calls["GetAgentCard"] = channel.unary_unary(
            GET_AGENT_CARD,
            request_serializer=GetAgentCardRequest.SerializeToString,
            response_deserializer=GetAgentCardResponse.FromString,
        )
        breaker = CircuitBreaker(target, self.settings.resilience, self._clock)
        decode = from_grpc_error_v03 if self._v03 else from_rpc_error
        self._routes.append(_Route(target, tenant, channel, own, calls, breaker, decode))

    def _use(self, index: int) -> None:
        """Make the interface at ``index`` the one calls go to."""
        route = self._routes[index]
        self._active = index
        self.target = route.target
        """The address calls go to now: the card's first gRPC interface, or the one fallen back to."""
        self.tenant = route.tenant
        """Put into every request that names no tenant (the selected interface's ``tenant``)."""
        self._channel = route.channel

    @property
    def targets(self) -> list[str]:
        """Every interface this client may call, in the order it tries them."""
        return [route.target for route in self._routes]

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        """The circuit breaker of each interface, by address (its ``state`` says how it stands).
        Each client has its own: two clients of one agent judge it apart."""
        return {route.target: route.breaker for route in self._routes}

    @classmethod
    def from_card(cls, card: types.AgentCard, **options: Any) -> A2AClient:
        """A client of the GRPC interfaces of ``card`` that speak A2A 1.x, in card order (the
        agent's preference), each with its own tenant. ``options`` are the constructor's; with
        ``cards`` (a :class:`~a2a_grpc.mesh.drift.CardBook`) ``card`` is the first it holds of the agent.

        Calls go to the first; when it is unavailable (UNAVAILABLE, or its circuit breaker is
        open) the client falls back to the next, and so on round the list, staying on whichever
        answers; :attr:`target` says which one it uses, and each move is logged (logger
        ``a2a_grpc.client``, WARNING). Other bindings on the card (JSON-RPC, HTTP+JSON, the
        session binding) are not fallen back to: this client speaks gRPC.

        ``credentials`` (:class:`a2a_grpc.security.credentials.Credentials`) are presented as the
        card's ``securityRequirements`` ask (ValueError if they meet none of them).

        The interface's URL may be ``host:port`` or ``grpc://``, ``http://`` (plaintext),
        ``grpcs://`` or ``https://`` (TLS, with the system's root certificates) plus ``host:port``.
        A ``tls`` option that asks for TLS (True or a ClientTls) is used whatever the URL says: a
        card names a TLS gRPC interface as plain ``host:port`` (see
        :func:`a2a_grpc.server.grpc_interface`); a TLS URL is never called in plaintext.
        :class:`errors.UnavailableError` names what the card offers when it has no such interface;
        ValueError says what is wrong with an interface URL that is not one of those.

        A2A v0.3 agents (a v0.3 card read by :func:`a2a_grpc.v03.card.parse_card_json`, or GRPC
        interfaces whose ``protocol_version`` is 0.x): when the card offers no GRPC interface for
        1.x, the client talks to its 0.x ones over the v0.3 service (``a2a.v1.A2AService``,
        :mod:`a2a_grpc.v03.grpc_client`); a 1.x interface is always preferred when there is one
        (spec 3.6.3: no silent downgrade). ``v03=True`` asks for the 0.x interfaces whatever else
        the card offers; ``v03=False`` refuses them.
        """
        asked = options.get("v03")
        if asked is None:
            offered_v10 = any(_grpc_major(i) == "1" for i in card.supported_interfaces)
            options["v03"] = not offered_v10
        wanted = "0" if options["v03"] else "1"
        chosen: list[tuple[str, bool, str]] = []
        for interface in card.supported_interfaces:
            if _grpc_major(interface) == wanted:
                try:
                    target, tls = grpc_target(interface.url)
                except ValueError:
                    if not chosen:
                        raise
                    log.warning("agent %r: skipping the fallback interface %r", card.name, interface.url)
                    continue
                chosen.append((target, tls, interface.tenant))
        if not chosen:
            offered = ", ".join(
                f"{i.protocol_binding} {i.protocol_version or '(no version)'} at {i.url}"
                for i in card.supported_interfaces
            )
            which = "1.x or 0.x" if asked is None else f"{wanted}.x"
            raise errors.UnavailableError(
                f"agent {card.name!r} has no GRPC interface for A2A {which}; "
                f"its card offers {offered or 'nothing'}"
            )
        credentials = options.pop("credentials", None)
        if credentials is not None:  # what the card asks for, nothing more
            presented = credentials.headers(card)
            options["metadata"] = (*presented, *options.get("metadata", ()))
        tls_asked = options.pop("tls", False)
        if options.get("channel") is not None and len(chosen) > 1:
            raise ValueError("a client given its own channel has one interface: pass no channel to fall back")
        (target, tls, tenant), *others = chosen
        client = cls(target, tenant=tenant, tls=tls_asked or tls, **options)
        for target, tls, tenant in others:
            client._add_route(target, tenant, None, tls_asked or tls)
        if client.cards is not None:  # the card the client was made from is the one negotiated
            client.cards.observe(card)
        return client

    async def close(self) -> None:
        for route in self._routes:
            if route.own_channel:
                await route.channel.close()

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def session(self, options: SessionOptions | None = None, **choices: Any) -> Session:
        """A session (the session binding) on this client's channel: ``async with client.session()
        as s:``, then the same methods as this client's, many calls at once over one stream.
        ``options`` (or its fields as keywords) say what the Hello asks for; the client's service
        parameters and credentials go into the Hello and hold for every call."""
        from a2a_grpc.session.client import Session, SessionOptions

        self._not_v03("a session")
        chosen = options or SessionOptions(**choices)
        carried = {k: v for k, v in self._metadata if isinstance(v, str)}
        metadata = {**carried, **chosen.metadata}
        return Session(
            self._channel,
            dataclasses.replace(chosen, metadata=metadata),
            tenant=self.tenant,
            fallback=self,
            clock=self._clock,
            rng=self._rng,
        )

    def live(self, first: types.Message | str | None = None, *, task_id: str = "") -> LiveStream:
        """A live stream (:mod:`a2a_grpc.live`) on this client's channel, bound to one task:
        ``async with client.live(message) as live:``, iterate it for the events of every turn, and
        ``await live.send(...)`` the next message when the task asks for input. ``first``: the
        first message (a new task, or a turn of ``task_id``); None with ``task_id``: reattach to
        that task (after a dropped connection; it takes over from the earlier stream)."""
        from a2a_grpc.live import LiveRequest, LiveStream

        self._not_v03("a live stream")
        request = LiveRequest(task_id=task_id, tenant=self.tenant)
        if isinstance(first, str):
            request.message.CopyFrom(A2AClient.text_request(first).message)
        elif first is not None:
            request.message.CopyFrom(first)
        elif not task_id:
            raise ValueError("a live stream starts with a message, or reattaches to a task_id")
        carried = [(k, v) for k, v in self._metadata if isinstance(v, str)]
        carried += [(k, v) for k, v in trace.carry((), trace.outgoing()) if isinstance(v, str)]
        return LiveStream(self._channel, request, carried)

    def _not_v03(self, what: str) -> None:
        if self._v03:
            raise errors.UnsupportedOperationError(
                f"{what} is a2a-grpc's own binding (A2A 1.x); this client talks A2A v0.3 to {self.target}"
            )

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the channel is connected (useful right after starting a server); ``timeout``
        defaults to the settings' ``connect_timeout``. A client of several interfaces waits for
        any of them, and moves to the first that connects unless the one in use does."""
        wait = self.settings.connect_timeout if timeout is None else timeout
        if len(self._routes) == 1:
            await asyncio.wait_for(self._channel.channel_ready(), wait)
            return
        waits = {
            asyncio.ensure_future(route.channel.channel_ready()): i for i, route in enumerate(self._routes)
        }
        try:
            done, _ = await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if not done:
            raise TimeoutError(f"no interface of {', '.join(self.targets)} connected within {wait:g} s")
        connected = sorted(waits[d] for d in done)
        if self._active not in connected:
            self._fall_back(connected[0], "not connected")

    # -- plumbing ------------------------------------------------------------------------------
    #
    # Retries are our own loop, not a gRPC retryPolicy in the channel's service config: gRPC's
    # cannot see which SendMessage carries a message id, wait what a RateLimitedError's
    # retry_after says, tell a circuit breaker of each failed attempt, move to another interface of
    # the card, or be driven by an injected clock. gRPC's transparent retries (an attempt that never
    # left the client) stay on underneath: they are always safe. No retryPolicy is configured, so
    # the attempts of the two never multiply.

    def _md(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> tuple[tuple[str, str | bytes], ...]:
        if not metadata:
            return self._metadata
        given = tuple(metadata)
        check_metadata(given)
        return self._metadata + given

    def _tenanted(self, request: R) -> R:
        return with_tenant(request, self.tenant)

    def _deadline(self, timeout: float | None) -> float | None:
        return None if timeout is None else self._clock.now() + timeout

    def _remaining(self, deadline: float | None, name: str) -> float | None:
        if deadline is None:
            return None
        left = deadline - self._clock.now()
        if left <= 0:
            raise errors.DeadlineExceededError(f"{name}: the deadline passed before the call could be made")
        return left

    def _route(self) -> _Route:
        """The interface to call: the active one, else (its breaker open) the next that admits a
        call, which becomes the active one (so :attr:`tenant` is always the returned one's)."""
        first = self._routes[self._active]
        try:
            first.breaker.admit()
            return first
        except errors.UnavailableError as refused:
            for step in range(1, len(self._routes)):
                index = (self._active + step) % len(self._routes)
                try:
                    self._routes[index].breaker.admit()
                except errors.UnavailableError:
                    continue
                self._fall_back(index, refused.message)
                return self._routes[index]
            raise

    def _fall_back(self, index: int, why: str) -> None:
        log.warning(
            "interface %s failed (%s): falling back to %s", self.target, why, self._routes[index].target
        )
        self._use(index)

    def _failed(self, route: _Route, error: errors.A2AError) -> None:
        """Judge ``route`` by ``error``; an unavailable interface hands over to the next one."""
        route.breaker.record(error)
        if (
            isinstance(error, errors.UnavailableError)
            and len(self._routes) > 1
            and route is self._routes[self._active]
        ):
            self._fall_back((self._active + 1) % len(self._routes), error.message)

    async def _pause(
        self,
        name: str,
        request: Message,
        error: errors.A2AError,
        attempts: int,
        deadline: float | None,
        advised: float | None,
    ) -> None:
        """Wait before the next attempt, or raise: ``error`` when the call is not tried again, or
        when the wait would outlast the call's deadline (its message then says so: the deadline has
        not passed, the peer's failure is the news). ``advised``: the wait the server's RetryInfo
        asked for."""
        policy, chance = self.settings.resilience, self._rng.random()
        delay = retry_delay(name, request, error, attempts, policy, chance, advised)
        if delay is None:
            raise error
        if deadline is not None and self._clock.now() + delay >= deadline:
            last = copy.copy(error)  # the same class, code and details
            last.message = (
                f"{error.message} ({name}: {attempts} attempts; the next, in {delay:.3f} s, would come "
                "after the call's deadline)"
            )
            last.args = (last.message,)
            raise last from error
        await self._clock.sleep(delay)

    def _trace_peer(self) -> str:
        return self.target

    async def _call_unary(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> Any:
        md = self._md(metadata)
        deadline = self._deadline(self.timeout if timeout is None else timeout)
        attempts = 0
        while True:
            attempts += 1
            left = self._remaining(deadline, name)
            route = self._route()
            try:
                response = await route.calls[name](self._tenanted(request), timeout=left, metadata=md)
            except grpc.RpcError as exc:
                error = route.decode(exc)
                self._failed(route, error)
                if attempts > 1 and name == "CancelTask" and isinstance(error, errors.TaskNotCancelableError):
                    return await self._canceled_already(request, error, deadline, md)
                await self._pause(name, request, error, attempts, deadline, _advice(exc, error))
                continue
            except BaseException:
                route.breaker.release()
                raise
            route.breaker.record(None)
            return response

    async def _canceled_already(
        self,
        request: Message,
        error: errors.A2AError,
        deadline: float | None,
        md: Sequence[tuple[str, str | bytes]],
    ) -> types.Task:
        """A retried CancelTask found the task not cancelable: the attempt whose answer was lost
        may have canceled it. Then the call did what it was asked, and answers the task."""
        ask = types.GetTaskRequest(id=request.id, tenant=request.tenant)  # type: ignore[attr-defined]
        try:
            task: types.Task = await self._unary("GetTask", ask, self._remaining(deadline, "CancelTask"), md)
        except errors.A2AError:
            raise error from None
        if task.status.state != types.TASK_STATE_CANCELED:
            raise error
        return task

    async def _call_stream(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> AsyncIterator[types.StreamResponse]:
        md = self._md(metadata)
        deadline = self._deadline(timeout)
        attempts = 0
        while True:
            attempts += 1
            left = self._remaining(deadline, name)
            route = self._route()
            call = route.calls[name](self._tenanted(request), timeout=left, metadata=md)
            started = False  # once an event is out, the call is judged and never tried again
            try:
                async for item in call:
                    if not started:
                        started = True
                        route.breaker.record(None)
                    yield item
                if not started:
                    route.breaker.record(None)
                return
            except grpc.RpcError as exc:
                error = route.decode(exc)
                if started:
                    raise error from None
                self._failed(route, error)
                advised = _advice(exc, error)
            except BaseException:
                if not started:
                    route.breaker.release()
                raise
            finally:
                call.cancel()  # a no-op once the stream has ended; stops the server side otherwise
            await self._pause(name, request, error, attempts, deadline, advised)

    async def get_agent_card(
        self,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.AgentCard:
        """The agent's public card, from a2a-grpc's ``a2a_grpc.discovery.v1.AgentCardService``.

        Not part of A2A (which publishes the public card over HTTP): agents served by other
        implementations answer :class:`errors.MethodNotFoundError` (UNIMPLEMENTED). A client given
        ``cards`` (a :class:`~a2a_grpc.mesh.drift.CardBook`) shows it the card, which reports drift.
        """
        response: GetAgentCardResponse = await self._unary(
            "GetAgentCard", GetAgentCardRequest(tenant=tenant), timeout, metadata
        )
        card: types.AgentCard = response.card
        if self.cards is not None:
            self.cards.observe(card)
        return card
