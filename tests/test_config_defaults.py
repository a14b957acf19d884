"""Client and server defaults agree: what one side sends by default, the other takes by default, and
neither side's defaults make the other refuse or cut it off."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from a2a_grpc import types
from a2a_grpc.bridge.settings import BridgeSettings, OutboundSettings
from a2a_grpc.client import SERVER_MIN_PING_INTERVAL_MS, ClientSettings
from a2a_grpc.push import PushNotifier, PushSettings
from a2a_grpc.server import ServerSettings
from a2a_grpc.session.client import SessionOptions
from a2a_grpc.session.negotiation import SessionSettings, negotiate
from a2a_grpc.session.pool import PoolSettings

SERVER = ServerSettings()
CLIENT = ClientSettings()


def test_message_sizes_agree() -> None:
    # The client receives whatever the server may send ...
    assert CLIENT.max_receive_message_bytes >= SERVER.max_send_message_bytes
    # ... and sends what the server takes, so that a request too large for the server meets the
    # server's refusal (a typed LimitExceededError naming max_receive_message_bytes), not a bare
    # client-side RESOURCE_EXHAUSTED for a request the server would have taken.
    assert CLIENT.max_send_message_bytes >= SERVER.max_receive_message_bytes
    # The HTTP front takes no body whose message the gRPC server would refuse for its size ...
    assert BridgeSettings().max_body_bytes <= SERVER.max_receive_message_bytes
    # ... and the reverse bridge reads answers as large as the HTTP front takes requests.
    assert OutboundSettings().max_response_bytes == BridgeSettings().max_body_bytes


def test_the_client_never_pings_more_often_than_the_server_allows() -> None:
    options = dict(SERVER.grpc_options())
    # The server keeps grpc's ping policy (a client pinging more often than every
    # SERVER_MIN_PING_INTERVAL_MS without data collects strikes and gets GOAWAY too_many_pings) ...
    allowed = options.get("grpc.http2.min_recv_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS)
    assert allowed == SERVER_MIN_PING_INTERVAL_MS
    assert "grpc.http2.max_ping_strikes" not in options
    # ... which the client's keepalive respects; the server pings idle clients itself, more often.
    assert CLIENT.keepalive_time_ms is not None
    assert CLIENT.keepalive_time_ms >= allowed
    assert dict(CLIENT.grpc_options())["grpc.keepalive_permit_without_calls"] == 0
    assert SERVER.keepalive_time_ms < CLIENT.keepalive_time_ms


def test_a_default_session_client_gets_what_it_asks_for_from_a_default_server() -> None:
    options, settings = SessionOptions(), SessionSettings()
    card = types.AgentCard(name="agent", version="1.0.0")
    welcome = negotiate(options.hello(), settings, card)
    negotiated = welcome.heartbeat_interval.ToTimedelta().total_seconds()
    assert negotiated == options.heartbeat_interval == settings.heartbeat_interval
    assert welcome.max_frame_bytes == options.max_frame_bytes == settings.max_frame_bytes
    assert options.handshake_timeout == settings.handshake_timeout
    assert options.max_joined_bytes == settings.max_joined_bytes
    # A client keeps resuming no longer than a server keeps a dropped session waiting for it.
    assert options.resume_timeout <= settings.resume_grace <= settings.max_detached
    # A client closing its session waits for the server to end the stream at least as long as the
    # server's end of a session may take (its calls, then its queued frames).
    assert options.close_flush_seconds >= settings.close_seconds


def test_a_pool_keeps_a_peer_going_away_for_as_long_as_a_default_server_drains() -> None:
    # A pooled session told to go away carries its running calls to their end: the pool closes it
    # under them only after the server's whole drain (grace, the executions' cut twice, the final
    # events' moment), so a default server's drain never has its calls cut by a default client.
    drain = SERVER.grace_seconds + 2 * SERVER.drain_cut_seconds + SERVER.drain_send_seconds
    assert PoolSettings().going_away_seconds > drain


def test_the_notifier_takes_its_defaults_from_push_settings() -> None:
    parameters = inspect.signature(PushNotifier).parameters
    defaults = PushSettings()
    for field in dataclasses.fields(PushSettings):
        assert parameters[field.name].default == getattr(defaults, field.name), field.name


def test_the_session_client_times_are_checked_options() -> None:
    assert SessionOptions().resume_backoff_base <= SessionOptions().resume_backoff_cap
    for bad in (
        {"close_flush_seconds": 0},
        {"resume_backoff_base": float("nan")},
        {"resume_backoff_cap": float("inf")},
        {"resume_backoff_base": 2.0, "resume_backoff_cap": 1.0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad)) if len(bad) == 1 else "resume_backoff_cap"):
            SessionOptions(**bad)  # type: ignore[arg-type]
