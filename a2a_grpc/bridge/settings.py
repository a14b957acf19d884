"""How the bridge behaves: one validated settings object per direction, every default written here.

:class:`BridgeSettings` is read by each piece of the HTTP front (:mod:`a2a_grpc.bridge.app` and the
bindings, :mod:`a2a_grpc.bridge.sse`, :mod:`a2a_grpc.bridge.card`) and by the ``a2a-grpc`` command
line for its defaults. :class:`OutboundSettings` bounds what the reverse bridge reads from a JSON
upstream agent (:mod:`a2a_grpc.bridge.outbound`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a_grpc.security.limits import Limits

__all__ = ["BridgeSettings", "MiB", "OutboundSettings"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """How the HTTP front behaves. The defaults suit one machine."""

    max_body_bytes: int = 16 * MiB
    """Larger request bodies are refused with 413 (LimitExceededError, limit ``max_body_bytes``)
    before they are read in full."""
    limits: Limits | None = None
    """What one request may hold (parts, JSON and metadata nesting), checked on the parsed JSON
    before it is transcoded (:mod:`a2a_grpc.security.shape`); an in-process server does not walk
    the nesting of these requests again. None: the in-process server's (``AgentStack``,
    ``a2a-grpc serve --http-port``), else the defaults of :class:`a2a_grpc.security.limits.Limits`."""
    offload_bytes: int = 1 * MiB
    """Request bodies and streamed artifact updates larger than this are parsed or encoded in a
    worker thread, in a way that lets other callers be served meanwhile
    (:func:`a2a_grpc.bridge.transcoding.parse_body`); smaller ones at once (faster, and short
    enough not to hold others up)."""
    header_timeout_seconds: float = 10.0
    """A connection that has not sent a whole request head (request line and headers) this long
    after it opened, or after its previous response, is closed."""
    max_connections: int = 1024
    """Open HTTP connections served at once; a request arriving on one more is answered 503."""
    shutdown_grace_seconds: float = 5.0
    """On stop, once the port takes no new connections: how long the requests in flight get to
    finish before their connections are closed (whole seconds, rounded down, at least 1)."""
    heartbeat_seconds: float = 15.0
    """An SSE stream idle this long gets a comment line, so proxies and clients keep it open."""
    first_event_wait: float = 1.0
    """How long a stream waits for its first event before sending headers (see :mod:`a2a_grpc.bridge.sse`)."""
    card_max_age: int = 300
    """``Cache-Control: max-age`` of the agent card, in seconds."""
    public_url: str | None = None
    """The base URL this bridge is reached at, for the card; default: the address it listens on."""
    jwks: Mapping[str, Any] | None = None
    """A public key set to publish at ``/.well-known/jwks.json``: the keys of this agent's
    delegation tokens (``DelegationMinter.jwks()``), for the agents it delegates to. None: not served."""
    forward_headers: tuple[str, ...] = ()
    """Headers to pass upstream besides the standard allowlist (lower-case names)."""
    max_jsonrpc_id_chars: int = 256
    """Longest JSON-RPC string ``id`` read; every answer repeats it, so a longer one is refused."""
    serve_v03: bool = True
    """Serve A2A v0.3 clients beside v1.0: the v0.3 JSON-RPC method names at ``/``, the v0.3
    HTTP+JSON routes (``/v1/...`` without ``A2A-Version`` 1.x), and the card's v0.3 members and
    interfaces (:mod:`a2a_grpc.bridge.v03front`). False: v1.0 only."""
    log_requests: bool = False
    """Log one line per request (verb, path, status, A2A method, duration, peer) to ``a2a_grpc.access``."""
    max_forwarded_header_bytes: int = 7 * 1024
    """The headers passed upstream may take this much, counted as gRPC counts metadata (name, value
    and 32 bytes each); more is refused with 431. gRPC servers refuse calls whose metadata passes
    8 KiB (their default soft limit, which includes gRPC's own headers) at random, and all above
    16 KiB: better one clear refusal here than a flaky one there."""

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, not {self.max_body_bytes}")
        if self.limits is not None and not isinstance(self.limits, Limits):
            raise ValueError(f"limits must be a2a_grpc.security.limits.Limits or None, not {self.limits!r}")
        if not self.header_timeout_seconds > 0:
            raise ValueError(f"header_timeout_seconds must be positive, not {self.header_timeout_seconds}")
        grace = self.shutdown_grace_seconds
        if not 0 < grace < math.inf:
            raise ValueError(f"shutdown_grace_seconds must be a finite number of seconds > 0, not {grace}")
        if isinstance(self.max_connections, bool) or self.max_connections <= 0:
            raise ValueError(f"max_connections must be positive, not {self.max_connections}")
        if self.offload_bytes < 0:
            raise ValueError(f"offload_bytes must not be negative, not {self.offload_bytes}")
        if self.max_forwarded_header_bytes <= 0:
            raise ValueError(
                f"max_forwarded_header_bytes must be positive, not {self.max_forwarded_header_bytes}"
            )
        if self.heartbeat_seconds <= 0 or self.first_event_wait < 0:
            raise ValueError("heartbeat_seconds must be positive and first_event_wait not negative")


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    """What the reverse bridge reads from a JSON upstream agent, and how long it waits for it.

    Every answer is read within these bounds, whatever the agent sends: passing a size is an
    :class:`InvalidAgentResponseError` whose ``metadata["limit"]`` names the setting, passing a time
    a :class:`DeadlineExceededError` (a unary call) or :class:`UnavailableError` (connecting, a
    silent stream) naming it in its message; the connection is closed either way. A gRPC caller's
    own deadline bounds every call too, whichever comes first.
    """

    max_response_bytes: int = 16 * MiB
    """Largest answer body of a unary call (and an error body, and the agent card), counted after
    decompression as it is read: a compressed answer is inflated piece by piece and the read stops
    at the bound. As large as the HTTP front's ``max_body_bytes``."""
    max_sse_line_bytes: int = 16 * MiB
    """Longest line of an event stream. A JSON event is sent as one ``data:`` line, so this is
    about the largest event too; a stream that sends more without a line end is cut here."""
    max_sse_event_bytes: int = 16 * MiB
    """Largest event of an event stream: the bytes of all its lines (a ``data:`` line each, or many)."""
    unary_timeout: float = 300.0
    """Seconds a unary call may take from sending the request to the last byte of the answer. A
    blocking SendMessage waits for the task, so this is minutes; callers wanting less set a deadline."""
    stream_idle_timeout: float = 60.0
    """Seconds a stream may go without completing a line (an event's line or a ``: keep-alive``
    comment; agents send one every 15 s or so), from the request until the stream ends. Also how
    long a stream may wait for the agent's response headers. A stream has no total bound but the
    caller's deadline: a task may work for hours."""
    connect_timeout: float = 10.0
    """Seconds to open a connection to the agent (each of the TCP connection and the TLS handshake)."""

    def __post_init__(self) -> None:
        for name in ("max_response_bytes", "max_sse_line_bytes", "max_sse_event_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(f"{name} must be a positive number of bytes, not {value!r}")
        for name in ("unary_timeout", "stream_idle_timeout", "connect_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
