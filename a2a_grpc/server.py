"""The gRPC server: A2AService over a RequestHandler, plus health checking and reflection.

``A2AServer`` binds (port 0 picks a free port and :attr:`A2AServer.port` tells
which), fills the card's ``supported_interfaces`` with the address it serves,
and stops gracefully. The servicer is a front of the call seam
(:mod:`a2a_grpc.service`): each RPC of the method table builds the call's
:class:`~a2a_grpc.service.CallContext` from the gRPC metadata and deadline and
calls the seam's chain (``ServerSettings.interceptors``, then the operation);
every exception is turned into a gRPC status in one place
(:func:`a2a_grpc.status.abort`).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import collections
import contextlib
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from a2a_grpc import _pool, errors, types
from a2a_grpc._accesslog import AccessLog
from a2a_grpc._drain import DrainGate
from a2a_grpc._handler import RequestHandler
from a2a_grpc.agent import Agent
from a2a_grpc.discovery import CARD_SERVICE
from a2a_grpc.live import LIVE_EXTENSION, LiveHost, LiveRequest, live_extension
from a2a_grpc.observability import spans
from a2a_grpc.observability.debuglog import DebugLog
from a2a_grpc.observability.logs import CallIds, open_debug_logger
from a2a_grpc.observability.metrics import Metrics, counting_deserializer, counting_serializer
from a2a_grpc.observability.settings import ObservabilitySettings
from a2a_grpc.observability.trace import TraceLink
from a2a_grpc.redisconn import RedisTarget
from a2a_grpc.security.authentication import Authentication, check_exposure
from a2a_grpc.security.identity import ClientCertificate
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.quota import Quotas
from a2a_grpc.security.shared import store_redis
from a2a_grpc.security.tls import TlsSettings
from a2a_grpc.service import (
    METHODS,
    SUPPORTED_VERSIONS,
    CallContext,
    EventStream,
    Interceptor,
    Method,
    Service,
    UnaryCall,
    deadline_after,
    method_table,
)
from a2a_grpc.session.directory import Home, RedisSessionDirectory, SessionDirectory
from a2a_grpc.session.forward import Forwarder
from a2a_grpc.session.frames import BINDING_URI, SESSION_SERVICE
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.session.server import SessionHost
from a2a_grpc.status import abort
from a2a_grpc.tasks.eventlog import (
    DEFAULT_BACKPRESSURE,
    DEFAULT_RETENTION,
    Backpressure,
    InMemoryEventLog,
    Retention,
)
from a2a_grpc.tasks.run import DEFAULT_RETAIN_BYTES
from a2a_grpc.v03 import V03_SERVICE, V03_VERSION
from a2a_grpc.v03.grpc_service import V03GrpcFront

__all__ = [
    "A2AServer",
    "GrpcService",
    "ServerSettings",
    "Undecodable",
    "a2a_service_handler",
    "call_context",
    "card_service",
    "check_decoded",
    "grpc_interface",
    "peer_certificate",
    "session_interface",
]

log = logging.getLogger("a2a_grpc.server")
SERVICE = types.A2A_SERVICE.full_name
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the gRPC server listens and what it accepts. Defaults suit one machine."""

    host: str = "127.0.0.1"
    """The address to listen on (``0.0.0.0`` or ``::`` for every interface)."""
    port: int = 0
    """0 picks a free port; read it back from ``A2AServer.port``."""
    max_receive_message_bytes: int = 16 * MiB
    """Larger requests fail with RESOURCE_EXHAUSTED (LimitExceededError naming this setting)
    before they are decoded; grpc itself drops messages over twice this size unread."""
    max_send_message_bytes: int = 64 * MiB
    """The largest message sent; an agent's artifact update larger than this is refused when the
    agent reports it (LimitExceededError naming this setting; the agent sends big content in
    chunks), as no gRPC reader could receive it."""
    max_concurrent_streams: int = 1024
    """Calls open at once on one client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a
    client's further calls wait in its own channel until one ends. A session or a stream holds one
    for its whole life."""
    max_connection_age_ms: int | None = None
    """Close a client connection this long after it opened (gracefully: GOAWAY, then
    ``max_connection_age_grace_ms`` for its calls to finish), so clients spread over new servers
    behind a load balancer. None (default): connections live as long as their clients want;
    sessions and SubscribeToTask streams may run for hours."""
    max_connection_age_grace_ms: int | None = None
    """With ``max_connection_age_ms``: how long the calls of an aged connection may still run
    before they are cut off. None: as long as they run. A session cut off resumes on a new
    connection (``docs/session-binding.md``); a plain stream ends with UNAVAILABLE."""
    keepalive_time_ms: int = 30_000
    """Ping an idle client this often, to notice dead peers and keep middleboxes open."""
    keepalive_timeout_ms: int = 10_000
    """How long such a ping may wait for its answer before the connection is declared dead."""
    stream_window: int = DEFAULT_BACKPRESSURE.events
    """Unread events the caller's own stream may hold before the agent's next report waits (until
    half are read): the only backpressure on an agent (other readers never hold it; see
    ``a2a_grpc.tasks.eventlog``)."""
    stream_window_bytes: int = DEFAULT_BACKPRESSURE.bytes
    """The same bound in bytes: large artifact chunks fill the window sooner."""
    retained_events: int = DEFAULT_RETENTION.events
    """A task's latest events kept for readers (subscribers, resumed streams), whoever reads; a
    reader that falls further behind is ended with EventsNotRetainedError."""
    retained_event_bytes: int = DEFAULT_RETENTION.bytes
    """The same bound in bytes (the newest event is always kept)."""
    retained_seconds: float = DEFAULT_RETENTION.terminal_seconds
    """How long a task's events stay once no run uses them (the task ended, or waits unwatched)."""
    max_retained_artifact_bytes: int = DEFAULT_RETAIN_BYTES
    """Artifact content kept per task; beyond it content is streamed, not kept (``a2a_grpc.tasks.run``)."""
    grace_seconds: float = 5.0
    """On stop (SIGTERM): how long running calls and executions may finish while the server drains
    (``docs/shutdown.md``); then tasks still running get their truthful end and the server stops."""
    drain_retry_after_seconds: float = 1.0
    """While the server drains, the calls and session handshakes it refuses advise trying again
    after this long (gRPC RetryInfo, HTTP Retry-After, the session Goodbye's ``retry_delay``); whole
    seconds, rounded up, at least 1. Behind a load balancer another replica answers at once."""
    drain_cut_seconds: float = 0.5
    """At the end of a drain's grace: how long executions still running get to take their
    cancellation before the task core records their end; shortened to ``grace_seconds`` if that is
    shorter."""
    drain_send_seconds: float = 1.0
    """After the task core's stop: how long open calls get to send their final events before the
    gRPC server cuts them; shortened to ``grace_seconds`` if that is shorter."""
    live_first_request_seconds: float = 10.0
    """How long a new live stream (``a2a_grpc.live``) may take to send its first request; then it
    ends with InvalidRequestError."""
    public_address: str | None = None
    """``HOST:PORT`` clients use to reach this server (a load balancer, a container's published
    port), for the card's GRPC interface; default: the address the server is bound to."""
    advertise_address: str | None = None
    """``HOST:PORT`` the other replicas of this agent reach this server at (not through the load
    balancer): a session resumed on another replica is forwarded here, where it lives
    (``docs/session-binding.md``, "Resuming on another replica"); default: the address the server
    is bound to (a wildcard bind: this machine's host name). With ``reuse_port`` (``serve
    --workers``) the shared port names no one process: the server also listens on a port of its
    own, picked by the system on the same host, and that is the default here."""
    log_requests: bool = False
    """Log one line per call (method, status, duration, peer) to the ``a2a_grpc.access`` logger at INFO."""
    reuse_port: bool = False
    """Share the port with other processes that also ask to (SO_REUSEPORT: the kernel spreads new
    connections among them). Off by default, so a port already in use fails start instead of
    silently splitting the calls with whoever holds it (grpc on its own would share)."""
    interceptors: Iterable[Interceptor] = ()
    """The call seam's chain (:class:`a2a_grpc.service.Interceptor`), first = outermost. Every call
    passes it whichever front took it: this server's gRPC, and the bridge in the same process."""
    authentication: Authentication | None = None
    """The schemes every call must satisfy (:class:`a2a_grpc.security.Authentication`), checked
    in the call seam before ``interceptors`` and declared in the card; None: no authentication,
    which a server listening beyond loopback refuses unless ``allow_unauthenticated``."""
    allow_unauthenticated: bool = False
    """Serve without authentication on an address other than loopback (every caller is the same
    anonymous nobody and sees every task). Off: such a server refuses to start."""
    session: SessionSettings = field(default_factory=SessionSettings)
    """How sessions (the session binding, ``a2a_grpc.session``) are run: handshake timeout,
    heartbeats, frame size, windows, calls per session."""
    limits: Limits = field(default_factory=Limits)
    """What one request may hold, one principal may hold at once, and how often it may ask
    (:class:`a2a_grpc.security.limits.Limits`); every front enforces the same."""
    tls: TlsSettings | None = None
    """Serve TLS (and with ``require_client_cert`` mutual TLS, each call's
    ``CallContext.client_certificate`` filled in); None: plaintext. ``AgentStack`` serves its HTTP
    port with the same settings."""
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    """Metrics, trace context and spans, logs and debug endpoints (docs/operations.md)."""
    serve_v03: bool = True
    """Also serve A2A v0.3 clients: the v0.3 gRPC service ``a2a.v1.A2AService`` beside
    ``lf.a2a.v1.A2AService`` on the same port, translated to and from the same v1.0 core
    (``a2a_grpc.v03.grpc_service``), and a GRPC interface with ``protocol_version`` 0.3 in the card
    (after the 1.0 one, which v1.0 clients pick). Off: neither (calls to ``a2a.v1`` are
    UNIMPLEMENTED). The reverse bridge's gRPC front (``bridge grpc-to-http``) follows the same setting."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        for name in ("public_address", "advertise_address"):
            address = getattr(self, name)
            if address is None:
                continue
            host, sep, port = address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
                raise ValueError(f"{name} must look like HOST:PORT, not {address!r}")
        for name in (
            "max_receive_message_bytes",
            "max_send_message_bytes",
            "stream_window",
            "stream_window_bytes",
            "retained_events",
            "retained_event_bytes",
            "max_retained_artifact_bytes",
            "max_concurrent_streams",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("max_connection_age_ms", "max_connection_age_grace_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive number of milliseconds or None, not {value!r}")
        if self.max_connection_age_grace_ms is not None and self.max_connection_age_ms is None:
            raise ValueError("max_connection_age_grace_ms needs max_connection_age_ms")
        if not 0 <= self.grace_seconds < math.inf:
            raise ValueError(f"grace_seconds must be a finite number >= 0, not {self.grace_seconds}")
        for name in ("drain_cut_seconds", "drain_send_seconds", "live_first_request_seconds"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds > 0, not {value}")
        if not 0 < self.drain_retry_after_seconds <= 86400:
            raise ValueError(
                "drain_retry_after_seconds must be more than 0 and at most 86400 (a day), "
                f"not {self.drain_retry_after_seconds}"
            )
        self.backpressure.check_within(self.retention)
        for name in ("reuse_port", "serve_v03"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.tls is not None:
            if not isinstance(self.tls, TlsSettings):
                raise ValueError(f"tls must be a2a_grpc.security.tls.TlsSettings or None, not {self.tls!r}")
            self.tls.check_grpc()
        chain = tuple(self.interceptors)  # a list given is kept as a tuple: settings stay immutable
        for link in chain:
            if not isinstance(link, Interceptor):
                raise ValueError(f"interceptors must be a2a_grpc.service.Interceptor objects, not {link!r}")
        object.__setattr__(self, "interceptors", chain)
        if not isinstance(self.observability, ObservabilitySettings):
            raise ValueError(f"observability must be an ObservabilitySettings, not {self.observability!r}")
        if not isinstance(self.limits, Limits):
            raise ValueError(f"limits must be a2a_grpc.security.limits.Limits, not {self.limits!r}")
        if self.authentication is not None and not isinstance(self.authentication, Authentication):
            raise ValueError(
                f"authentication must be an a2a_grpc.security.Authentication, not {self.authentication!r}"
            )

    @property
    def chain(self) -> tuple[Interceptor, ...]:
        """What every call passes before the operation: authentication, then ``interceptors`` (a
        server puts its quotas between them: ``GrpcService.seam_chain``)."""
        auth = (self.authentication,) if self.authentication is not None else ()
        return (*auth, *self.interceptors)

    @property
    def retention(self) -> Retention:
        return Retention(self.retained_events, self.retained_event_bytes, self.retained_seconds)

    @property
    def backpressure(self) -> Backpressure:
        return Backpressure(self.stream_window, self.stream_window_bytes)

    def grpc_options(self) -> list[tuple[str, int]]:
        options = [
            # grpc's own bound is twice ours: a request just over ours reaches the deserializer,
            # which refuses it naming max_receive_message_bytes (grpc's refusal names nothing).
            ("grpc.max_receive_message_length", min(2 * self.max_receive_message_bytes, 2**31 - 1)),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.so_reuseport", int(self.reuse_port)),
        ]
        if self.max_connection_age_ms is not None:
            options.append(("grpc.max_connection_age_ms", self.max_connection_age_ms))
            if self.max_connection_age_grace_ms is not None:
                options.append(("grpc.max_connection_age_grace_ms", self.max_connection_age_grace_ms))
        return options


def call_context(
    context: grpc.aio.ServicerContext,
    request: object,
    *,
    client_certificates: bool = False,
    front: str = "grpc",
) -> CallContext:
    """The context of a call: its metadata, a ``-bin`` value (bytes) as unpadded base64 (the form
    it has on the HTTP/2 wire and in the bridge's headers, so an agent sees the same text whichever
    binding the call came by); its deadline, peer and tenant. Of a key sent more than once the last
    value counts: clients put their defaults first and the caller's values after them (the
    official SDK sends ``a2a-version`` twice that way).

    With ``client_certificates`` (a mutual-TLS listener) the certificate the client presented, as
    grpc verified it (:func:`peer_certificate`). ``front`` names the front (``live`` for the live stream)."""
    headers: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii").rstrip("=")
        headers[key] = value
    return CallContext.from_headers(
        headers,
        tenant=getattr(request, "tenant", ""),
        deadline=deadline_after(context.time_remaining()),
        peer=context.peer(),
        front=front,
        client_certificate=peer_certificate(context) if client_certificates else None,
    )


# An OrderedDict: a dict used as a queue finds its oldest item by skipping every one removed before it.
_CERTIFICATES: collections.OrderedDict[bytes, ClientCertificate] = collections.OrderedDict()
_CERTIFICATES_KEPT = 1024


def peer_certificate(context: grpc.aio.ServicerContext) -> ClientCertificate | None:
    """The client certificate of a call on a TLS listener, None if the client presented none.

    grpc puts the certificate it verified into the call's auth context (``x509_pem_cert``); reading
    the auth context costs about 2.5 µs, parsing the certificate about 70 µs, so parsed
    certificates are kept by their PEM text (not by peer address: a new connection from the same
    address and port may present another certificate).
    """
    pem = context.auth_context().get("x509_pem_cert")
    if not pem:
        return None
    text = pem[0]
    found = _CERTIFICATES.get(text)
    if found is None:
        if len(_CERTIFICATES) >= _CERTIFICATES_KEPT:  # bounded: forget the oldest
            _CERTIFICATES.popitem(last=False)
        found = _CERTIFICATES[text] = ClientCertificate.from_pem(text)
    return found


class Undecodable:
    """What the deserializer hands on for bytes that are not the method's request message.

    grpc would answer a deserializer's exception with UNKNOWN and a Python class name; the
    servicer raises :meth:`error` instead, an INVALID_ARGUMENT that says what was wrong.
    """

    __slots__ = ("problem", "too_large", "type_name")

    def __init__(self, type_name: str, problem: str, too_large: int | None = None) -> None:
        self.type_name = type_name
        self.problem = problem
        self.too_large = too_large
        """The limit (``max_receive_message_bytes``) a request too large to decode passed."""

    def error(self) -> errors.A2AError:
        if self.too_large is not None:
            return errors.LimitExceededError(
                f"the request {self.problem}: at most {self.too_large} are read (max_receive_message_bytes)",
                limit="max_receive_message_bytes",
                value=self.too_large,
            )
        return errors.InvalidRequestError(
            f"the request is not a valid {self.type_name} message ({self.problem})",
            metadata={"message_type": self.type_name},
        )


def check_decoded(request: object) -> None:
    """Raise the InvalidRequestError of a request whose bytes did not decode (see Undecodable)."""
    if type(request) is Undecodable:
        raise request.error()


def _deserializer(cls: type[Message], most: int | None = None) -> Callable[[bytes], Message | Undecodable]:
    parse = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Message | Undecodable:
        if most is not None and len(data) > most:  # refused undecoded (grpc's own bound is 2x, above)
            return Undecodable(name, f"is {len(data)} bytes", too_large=most)
        try:
            return parse(data)
        except DecodeError:
            return Undecodable(name, "protobuf could not decode its bytes")

    return deserialize


def _unary_rpc(
    call: UnaryCall, certificates: bool = False
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]:
    async def rpc(request: Any, context: grpc.aio.ServicerContext) -> Message:
        try:
            check_decoded(request)
            return await call(request, call_context(context, request, client_certificates=certificates))
        except Exception as exc:
            await abort(context, exc)

    return rpc


def _stream_rpc(
    call: Callable[[Message, CallContext], EventStream], certificates: bool = False
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]:
    async def rpc(request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            check_decoded(request)
            # context.write rather than yield: one generator hop less per event.
            # aclosing: a client that leaves closes the event stream (every link of the chain) at once.
            calling = call_context(context, request, client_certificates=certificates)
            async with contextlib.aclosing(call(request, calling)) as events:
                write = context.write
                async for event in events:
                    await write(event)
        except Exception as exc:
            await abort(context, exc)

    return rpc


def _generic_handler(
    service: Service,
    methods: Mapping[str, Method],
    certificates: bool = False,
    most: int | None = None,
    count_bytes: bool = False,
) -> grpc.GenericRpcHandler:
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    service_name = ""
    for name, method in methods.items():
        service_name = method.descriptor.containing_service.full_name
        deserialize: Callable[[bytes], Any] = _deserializer(method.request, most)
        serialize: Callable[[Any], bytes] = method.response.SerializeToString
        if count_bytes:  # a2a_received_bytes_total / a2a_sent_bytes_total, where the bytes are
            deserialize = counting_deserializer("grpc", deserialize)
            serialize = counting_serializer("grpc", serialize)
        if method.streaming:
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                _stream_rpc(service.stream(name), certificates),
                request_deserializer=deserialize,
                response_serializer=serialize,
            )
        else:
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                _unary_rpc(service.unary(name), certificates),
                request_deserializer=deserialize,
                response_serializer=serialize,
            )
    return grpc.method_handlers_generic_handler(service_name, handlers)


def a2a_service_handler(
    service: Service,
    *,
    client_certificates: bool = False,
    max_receive_message_bytes: int | None = None,
    count_bytes: bool = False,
) -> grpc.GenericRpcHandler:
    """lf.a2a.v1.A2AService, every RPC of the method table served by ``service``'s chain. Bytes
    that do not decode, or more than ``max_receive_message_bytes`` of them, are refused before the
    chain (:func:`check_decoded`). With ``client_certificates`` (a mutual-TLS listener) each call's
    context names the client's certificate. With ``count_bytes`` the bytes of every request and
    answer count in the ``grpc`` binding's metrics (:mod:`a2a_grpc.observability.metrics`)."""
    return _generic_handler(service, METHODS, client_certificates, max_receive_message_bytes, count_bytes)


CARD_METHODS = method_table(CARD_SERVICE)
"""``a2a_grpc.discovery.v1.AgentCardService``: GetAgentCard."""


def card_service(
    card: Callable[[], Awaitable[types.AgentCard]], interceptors: Iterable[Interceptor] = ()
) -> Service:
    """``a2a_grpc.discovery.v1.AgentCardService`` behind ``interceptors``: GetAgentCard answers
    ``await card()``."""
    response = CARD_METHODS["GetAgentCard"].response

    async def get_agent_card(request: Message, context: CallContext) -> Message:
        return response(card=await card())

    return Service({"GetAgentCard": get_agent_card}, interceptors, methods=CARD_METHODS)


def session_interface(address: str) -> types.AgentInterface:
    """The card entry of the session binding at ``address`` (``HOST:PORT``, the gRPC port)."""
    return types.AgentInterface(
        url=address, protocol_binding=BINDING_URI, protocol_version=SUPPORTED_VERSIONS[-1]
    )


def grpc_interface(address: str, version: str = SUPPORTED_VERSIONS[-1]) -> types.AgentInterface:
    """The card entry of an A2A gRPC endpoint at ``address`` (``HOST:PORT``), TLS or not, speaking
    A2A ``version`` (``"0.3"``: the v0.3 service ``a2a.v1.A2AService``).

    Plain ``HOST:PORT`` with TLS too: the official SDK hands the URL unchanged to its channel
    factory (``grpc.aio.secure_channel(url, ...)``), and grpc cannot resolve ``https://`` or
    ``grpcs://`` targets; whether to use TLS is the client's configuration (specification 7.1:
    production deployments use TLS)."""
    return types.AgentInterface(url=address, protocol_binding="GRPC", protocol_version=version)


class GrpcService(abc.ABC):
    """The life of one grpc.aio server carrying A2AService, health checking and reflection.

    Subclasses say what serves A2AService (:meth:`_service`, a call seam) and may add work to
    :meth:`stop` (``A2AServer`` lets running executions finish; the bridge's ``GrpcFront``
    forwards to another agent and has none). With ``log_requests`` the access log
    (:class:`a2a_grpc._accesslog.AccessLog`) is the outermost link of this front's chain.
    """

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self.port = 0
        """The bound port, once started (``settings.port`` 0 picks a free one)."""
        self.own_port = 0
        """With ``reuse_port`` and no ``advertise_address``: the port only this process listens on
        (for the other replicas, see :attr:`ServerSettings.advertise_address`); else 0."""
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self.sessions: SessionHost | None = None
        """The session binding's sessions, once serving."""
        self.quotas = Quotas(self.settings.limits)
        """Rates and per-principal counts (``settings.limits``), shared by every front."""
        self.drain_gate = DrainGate()
        """The seam's first link: closed by :meth:`drain`, it refuses every new call."""
        self._drained: asyncio.Future[None] | None = None
        self._hurry = asyncio.Event()
        self._span_agent = ""  # the served card's name, for spans: known once started
        self._spans = False

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    @property
    def advertised_address(self) -> str:
        """Where clients reach this server, for the card: ``public_address``, else the bound address
        (a wildcard bind, 0.0.0.0 or ::, is advertised under this machine's host name)."""
        if self.settings.public_address:
            return self.settings.public_address
        if self.settings.host in ("0.0.0.0", "::", ""):
            return f"{socket.gethostname()}:{self.port}"
        return self.address

    @property
    def replica_address(self) -> str:
        """Where the other replicas reach this server: ``advertise_address``, else the bound
        address (a wildcard bind under this machine's host name), on this process's own port when
        the bound one is shared (:attr:`own_port`)."""
        if self.settings.advertise_address:
            return self.settings.advertise_address
        port = self.own_port or self.port
        if self.settings.host in ("0.0.0.0", "::", ""):
            return f"{socket.gethostname()}:{port}"
        return f"{self.settings.host}:{port}"

    def session_directory(self) -> SessionDirectory | None:
        """Where this server writes the homes of its sessions, shared with the other replicas
        (called once, at start); None (here): no other replica, so sessions resume here only and
        nothing is written (``A2AServer`` shares its store's Redis, or the directory it is given)."""
        return None

    def _forwarder(self) -> Forwarder | None:
        # No directory by default: one that no other server reads would only cost each handshake
        # (an entry written and a tombstone, 25 us in memory as measured; a round trip on Redis).
        directory = self.session_directory()
        if directory is None or self.settings.tls is not None:  # forwarding over TLS is not built
            return None
        s = self.settings
        options = [
            ("grpc.max_receive_message_length", s.max_send_message_bytes),
            ("grpc.max_send_message_length", min(2 * s.max_receive_message_bytes, 2**31 - 1)),
        ]
        return Forwarder(
            directory,
            Home(os.urandom(8).hex(), self.replica_address),
            s.session,
            lambda address: grpc.aio.insecure_channel(address, options=options),
            s.authentication,
            quota=self.quotas.sessions,
            debug=s.observability.debug,
        )

    @abc.abstractmethod
    def _service(self) -> Service:
        """The call seam that serves lf.a2a.v1.A2AService (called once, at start)."""

    def grpc_interfaces(self) -> list[types.AgentInterface]:
        """This server's GRPC interfaces for the card, at :attr:`advertised_address`: A2A 1.0,
        then (``serve_v03``) the same address again as A2A 0.3, the v0.3 service it also serves."""
        address = self.advertised_address
        legacy = [grpc_interface(address, V03_VERSION)] if self.settings.serve_v03 else []
        return [grpc_interface(address), *legacy]

    def seam_chain(self) -> tuple[Interceptor, ...]:
        """What every call passes before the operation: the metrics link (with
        ``observability.metrics``), the logs' ids (and with ``observability.debug`` the payload
        log), the trace context (a span, with spans on), the drain gate, authentication, the
        quotas (which count by the principal authentication names), then ``settings.interceptors``."""
        chain = self.settings.chain  # authentication first, if any: the quotas go right after it
        after = 1 if self.settings.authentication is not None else 0
        # Metrics outermost: they count every call, refused ones too, of every binding sharing the seam.
        metrics = (Metrics(),) if self.settings.observability.metrics else ()
        caller = (spans.CallerLink(),) if after and self.settings.observability.spans else ()
        return (
            *metrics,
            *self._log_links(),
            *self._trace_links(),
            self.drain_gate,
            *chain[:after],
            *caller,
            *self.quotas.links(),
            *chain[after:],
        )

    def _log_links(self) -> list[Interceptor]:
        """Each call's ids for the logs, and with ``observability.debug`` its payloads on the debug
        logger (no link at all without it)."""
        seen = self.settings.observability
        links: list[Interceptor] = [CallIds(self._agent_name())]
        if seen.debug:
            open_debug_logger()
            links.append(DebugLog(seen.debug_payload_chars))
        return links

    def _agent_name(self) -> str | None:
        """The name the logs give the agent served (``agent``); None: not known when the seam is built."""
        return None

    def _trace_links(self) -> tuple[Interceptor, ...]:
        # Before the drain gate and authentication: a refused call has its trace (and span) too
        # (docs/tracing.md).
        observe = self.settings.observability
        if not observe.trace_context:
            return ()
        return (spans.SpanLink(lambda: self._span_agent),) if observe.spans else (TraceLink(),)

    def _front_links(self) -> list[Interceptor]:
        """What this front puts in front of the seam's own chain."""
        return [AccessLog()] if self.settings.log_requests else []

    @abc.abstractmethod
    async def public_card(self) -> types.AgentCard:
        """The card GetAgentCard answers (a2a_grpc.discovery.v1)."""

    def _bind(self) -> tuple[grpc.aio.Server, int]:
        s = self.settings
        # grpc only says "failed to bind" (and logs to stderr): a trial bind with the same socket
        # options first names the cause, e.g. "address already in use".
        if s.port:
            try:
                resolved = socket.getaddrinfo(s.host, s.port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise OSError(exc.errno, f"cannot listen on {s.host}:{s.port}: unknown host") from None
            problems: list[OSError] = []
            for family, kind, proto, _, where in resolved:
                with socket.socket(family, kind, proto) as trial:
                    trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if s.reuse_port and hasattr(socket, "SO_REUSEPORT"):
                        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    try:
                        trial.bind(where)
                    except OSError as exc:
                        problems.append(exc)
            if len(problems) == len(resolved):  # grpc listens if any one of them binds
                first = problems[0]
                reason = (first.strerror or str(first)).lower()
                raise OSError(first.errno, f"cannot listen on {s.host}:{s.port}: {reason}")
        server = grpc.aio.server(options=s.grpc_options())
        try:
            if s.tls is not None:
                port = server.add_secure_port(f"{s.host}:{s.port}", s.tls.server_credentials())
            else:
                port = server.add_insecure_port(f"{s.host}:{s.port}")
        except RuntimeError:
            port = 0
        if port == 0:
            raise OSError(f"cannot listen on {s.host}:{s.port}")
        self.port = int(port)
        if s.reuse_port and not s.advertise_address and s.tls is None:
            # The shared port reaches whichever process the kernel picks: a session forwarded to
            # its home must reach this one (sessions are forwarded only without TLS).
            self.own_port = int(server.add_insecure_port(f"{s.host}:0"))
        return server, self.port

    def _sessions(
        self, service: Service, context_of: Callable[[grpc.aio.ServicerContext], CallContext]
    ) -> SessionHost:
        self.sessions = SessionHost(
            service,
            self.public_card,
            self.settings.session,
            self.settings.authentication,
            context_of,
            quota=self.quotas.sessions,
            debug=self.settings.observability.debug,
            forwarder=self._forwarder(),
        )
        return self.sessions

    async def _serve(self, server: grpc.aio.Server) -> int:
        if self.settings.observability.spans:
            try:
                self._span_agent = (await self.public_card()).name
            except errors.A2AError:  # a bridge whose upstream is away: its spans name no agent
                self._span_agent = ""
            spans.setup(self.settings.observability, self._span_agent)
            self._spans = True
        front = self._front_links()
        cards = card_service(self.public_card, [*front, *self.settings.interceptors])
        # Only a mutual-TLS listener reads each call's auth context: plaintext calls pay nothing.
        mutual = self.settings.tls is not None and self.settings.tls.require_client_cert
        service = self._service().with_outer(front)

        def session_context(context: grpc.aio.ServicerContext) -> CallContext:
            certificate = peer_certificate(context) if mutual else None
            return CallContext(peer=context.peer(), front="session", client_certificate=certificate)

        counted = self.settings.observability.metrics
        live_in = _deserializer(LiveRequest, self.settings.max_receive_message_bytes)
        live_out: Callable[[Any], bytes] = types.StreamResponse.SerializeToString
        if counted:
            live_in, live_out = counting_deserializer("live", live_in), counting_serializer("live", live_out)
        server.add_generic_rpc_handlers(
            (
                a2a_service_handler(
                    service,
                    client_certificates=mutual,
                    max_receive_message_bytes=self.settings.max_receive_message_bytes,
                    count_bytes=counted,
                ),
                _generic_handler(cards, CARD_METHODS, mutual, self.settings.max_receive_message_bytes),
                # The session binding: the same seam, many calls over one stream (a2a_grpc.session).
                self._sessions(service, session_context).handler(count_bytes=counted),
                # The live stream: the same seam, one task's turns over one call (a2a_grpc.live).
                LiveHost(
                    service,
                    lambda context, first: call_context(
                        context, first, client_certificates=mutual, front="live"
                    ),
                    first_request_seconds=self.settings.live_first_request_seconds,
                ).handler(live_in, check_decoded, live_out),
            )
        )
        served = [SERVICE]
        if self.settings.serve_v03:
            # The v0.3 service: the same seam (and card service), translated (a2a_grpc.v03.grpc_service).
            most = self.settings.max_receive_message_bytes

            def decoder(cls: type[Message]) -> Callable[[bytes], Any]:
                decode: Callable[[bytes], Any] = _deserializer(cls, most)
                return counting_deserializer("grpc", decode) if counted else decode

            def serializer(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
                return counting_serializer("grpc", serialize) if counted else serialize

            legacy = V03GrpcFront(
                service,
                cards,
                lambda context, request: call_context(context, request, client_certificates=mutual),
                extended=self.settings.authentication is not None,
            )
            server.add_generic_rpc_handlers((legacy.handler(decoder, check_decoded, serializer),))
            served.append(V03_SERVICE.full_name)
        # grpc.health.v1 (A2AService and the server SERVING) and reflection over our descriptor pool.
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in ("", *served):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _pool.include(health_pb2.DESCRIPTOR)
        _pool.include(reflection_pb2.DESCRIPTOR)
        names = (
            *served,
            CARD_SERVICE.full_name,
            SESSION_SERVICE.full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server, pool=_pool.POOL)
        await server.start()
        self._server = server
        return self.port

    async def start(self) -> int:
        """Bind and serve; the bound port."""
        server, _ = self._bind()
        return await self._serve(server)

    async def stop(self, grace: float | None = None) -> None:
        """Drain (:meth:`drain`), giving running calls ``grace`` seconds (default: the settings')."""
        await self.drain(grace)
        await self.quotas.aclose()  # a Redis client, if its limits are shared

    async def drain(self, grace: float | None = None) -> None:
        """Stop gracefully (``docs/shutdown.md``), in this order:

        1. grpc.health.v1 says NOT_SERVING (for "" and every service), so load balancers stop
           sending;
        2. every new call, on every front, is refused with :class:`errors.ServerDrainingError`
           (UNAVAILABLE with a RetryInfo of ``drain_retry_after_seconds``; HTTP 503 and
           Retry-After), and so is a new session's handshake;
        3. every session is told to go away (a Goodbye with ``going_away``): its running calls go
           on, and it ends once they are over;
        4. running calls drain for up to ``grace`` seconds (default ``grace_seconds``), or until
           :meth:`hurry`; then whatever still runs ends as the task core's stop says (a task still
           running is failed, or kept for a resumable agent, and every open stream receives that
           final state), and the gRPC server stops.

        Called again (or by :meth:`stop`) while it runs, it waits for the same drain."""
        if self._drained is None:
            self._drained = asyncio.ensure_future(
                self._drain(self.settings.grace_seconds if grace is None else grace)
            )
        await asyncio.shield(self._drained)

    def hurry(self) -> None:
        """Cut a drain's grace short (a second SIGTERM): calls still running end now, as they
        would at the end of the grace; the stop stays truthful."""
        self._hurry.set()

    async def _drain(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        retry = self.settings.drain_retry_after_seconds
        await self._health.enter_graceful_shutdown()
        self.drain_gate.close(retry)
        if self.sessions is not None:
            self.sessions.go_away(retry)
        log.info("draining: NOT_SERVING, new calls refused; running calls get %g s", grace)
        final_grace = await self._drain_calls(deadline, grace)
        if self.sessions is not None:  # those still open end now (their calls with them, not their tasks)
            await self.sessions.close("the server is stopping", timeout=max(final_grace, 0.1))
        server, self._server = self._server, None
        if server is not None:
            stopping = asyncio.ensure_future(server.stop(final_grace))
            # Hurried before this point, the final events still get their moment (final_grace);
            # hurried during it, grpc cuts the calls left at once.
            if not self._hurry.is_set():
                await self._until(asyncio.shield(stopping), loop.time() + final_grace + 1)
                if not stopping.done():
                    await server.stop(0)
            await stopping
        if self._spans:  # the last spans, flushed (the last server of the process shuts the export)
            self._spans = False
            await asyncio.to_thread(spans.release)  # an export may wait for its collector

    async def _drain_calls(self, deadline: float, grace: float) -> float:
        """Let running calls end until ``deadline`` (the event loop's clock, ``grace`` seconds after
        the drain began) or :meth:`hurry`; the grace the gRPC server then gives the calls still
        open. Here: the sessions' calls (each session ends with its last call); plain calls get
        what is left from grpc itself."""
        if self.sessions is not None:
            await self._until(self.sessions.quiet(), deadline)
        return 0.0 if self._hurry.is_set() else max(deadline - asyncio.get_running_loop().time(), 0.0)

    async def _until(self, waiting: Awaitable[object], deadline: float) -> bool:
        """Wait for ``waiting`` until ``deadline`` or :meth:`hurry`; whether it completed."""
        loop = asyncio.get_running_loop()
        work = asyncio.ensure_future(waiting)
        hurried = asyncio.ensure_future(self._hurry.wait())
        try:
            await asyncio.wait(
                {work, hurried}, timeout=max(deadline - loop.time(), 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (work, hurried):
                task.cancel()
        return work.done() and not work.cancelled()

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class A2AServer(GrpcService):
    """One agent served over gRPC: A2AService, grpc.health.v1 and server reflection."""

    def __init__(
        self,
        agent: Agent,
        store: Any,
        settings: ServerSettings | None = None,
        *,
        notifier: Any = None,
        extra_interfaces: list[types.AgentInterface] | None = None,
        session_directory: SessionDirectory | None = None,
    ) -> None:
        super().__init__(settings)
        self.agent = agent
        self.store = store
        self.quotas = Quotas(self.settings.limits, store_redis(store))  # shared in the store's Redis, if any
        self._directory = session_directory
        self.notifier = notifier
        self.extra_interfaces = list(extra_interfaces or [])
        self.handler: RequestHandler | None = None
        self.service: Service | None = None
        """The call seam of :attr:`handler` (``settings.interceptors``), once started; the bridge in
        the same process calls through it too."""

    def card(self) -> types.AgentCard:
        """The public card as served: the agent's card, completed by the server.

        * ``supported_interfaces``: this server's GRPC interface first (:attr:`advertised_address`),
          then (with ``serve_v03``) the same address as a GRPC interface of A2A 0.3, then the
          session binding at the same address (a custom binding:
          ``a2a_grpc.session.frames.BINDING_URI``), then ``extra_interfaces`` (the bridge's JSON
          ones), then the agent's own, without repeats (same binding, URL, tenant and version).
        * ``capabilities.streaming`` is true unless the agent's card says otherwise: this server
          streams for every agent; ``capabilities.extensions`` declares the live stream
          (``a2a_grpc.live.LIVE_EXTENSION``).
        """
        card = types.AgentCard()
        card.CopyFrom(self.agent.card)
        if not card.capabilities.HasField("streaming"):
            card.capabilities.streaming = True
        if all(e.uri != LIVE_EXTENSION for e in card.capabilities.extensions):
            card.capabilities.extensions.append(live_extension())
        if self.settings.authentication is not None:
            self.settings.authentication.declare(card)
        own = list(card.supported_interfaces)
        del card.supported_interfaces[:]
        seen: set[tuple[str, str, str, str]] = set()
        ours = [*self.grpc_interfaces(), session_interface(self.advertised_address)]
        for interface in [*ours, *self.extra_interfaces, *own]:
            # The version counts: the same address may serve 1.0 and 0.3 (two entries).
            key = (
                interface.protocol_binding.upper(),
                interface.url,
                interface.tenant,
                interface.protocol_version,
            )
            if key not in seen:
                seen.add(key)
                card.supported_interfaces.append(interface)
        return card

    def session_directory(self) -> SessionDirectory | None:
        """The directory given, else the store's Redis when it has one (its ``target``), so that
        the replicas sharing a store find each other's sessions; else None (one process: its
        sessions resume on it only)."""
        if self._directory is not None:
            return self._directory
        target = getattr(self.store, "target", None)
        if isinstance(target, RedisTarget):
            return RedisSessionDirectory(target, self.settings.session.directory_timeout)
        return super().session_directory()

    async def public_card(self) -> types.AgentCard:
        assert self.handler is not None
        return self.handler.card

    def _agent_name(self) -> str | None:
        return self.agent.card.name

    def _service(self) -> Service:
        assert self.handler is not None
        self.service = Service.serving(self.handler, self.seam_chain())
        return self.service

    async def _drain_calls(self, deadline: float, grace: float) -> float:
        """Executions drain until ``deadline`` or :meth:`hurry`; then the task core's truthful stop
        (``RequestHandler.aclose``): the streams have their final events by now, and a moment
        (``drain_send_seconds``) to send them. A grace shorter than those moments shortens them (a stop
        with no grace waits for nothing)."""
        if self.handler is None:
            return 0.0
        jobs = [e.job for e in self.handler.executions.running() if e.job is not None and not e.job.done()]
        if jobs:
            await self._until(asyncio.wait(jobs), deadline)
        await self.handler.aclose(min(self.settings.drain_cut_seconds, grace))
        return min(self.settings.drain_send_seconds, grace)

    async def start(self) -> int:
        s = self.settings
        check_exposure(s.host, s.authentication, s.allow_unauthenticated, "gRPC")
        if s.authentication is not None:
            await s.authentication.start()  # keys first (a JWKS URL that cannot be read fails start)
        server, _ = self._bind()  # first: the card names the bound port
        events = InMemoryEventLog(s.retention, s.backpressure, sink=getattr(self.store, "event_sink", None))
        self.handler = RequestHandler(
            self.agent,
            self.store,
            card=self.card(),
            notifier=self.notifier,
            events=events,
            retain_bytes=s.max_retained_artifact_bytes,
            limits=s.limits,
            quotas=self.quotas,
            max_send_bytes=s.max_send_message_bytes,
            max_artifact_update_bytes=s.max_send_message_bytes,
        )
        # Before the first call: tasks a previous life left running get their truthful end.
        await self.handler.start()
        await self.quotas.start()  # with Redis: the other replicas' counts, before the first call
        port = await self._serve(server)
        log.info("serving %s on %s", self.agent.card.name, self.address)
        if self.settings.host in ("0.0.0.0", "::", "") and not self.settings.public_address:
            log.warning(
                "bound to every interface (%s); the card names %s: set public_address "
                "(--public-address) to the address clients use",
                self.settings.host or "*",
                self.advertised_address,
            )
        return port

    async def stop(self, grace: float | None = None) -> None:
        """Stop gracefully (:meth:`drain`): refuse new calls, let running executions finish for
        ``grace`` seconds, give every task still running a truthful end (which every open stream
        receives before it ends), then stop the gRPC server."""
        await self.drain(grace)
        await self.quotas.aclose()
        if self.handler is not None:
            await self.handler.repeats.aclose()
        if self.settings.authentication is not None:
            await self.settings.authentication.aclose()
