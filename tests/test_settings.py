"""Settings written once: the client side's one dataclass, and the command line's defaults read from
the settings dataclasses rather than written a second time."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge.settings import BridgeSettings, MiB
from a2a_grpc.bridge.upstream import Call, GrpcUpstream
from a2a_grpc.cli import parse
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import ServerSettings
from tests.conftest import Served, serve, shutdown

SERVER, BRIDGE, CLIENT = ServerSettings(), BridgeSettings(), ClientSettings()


def test_the_cli_defaults_are_the_settings_defaults() -> None:
    served = parse(["serve"])
    assert served.host == SERVER.host
    assert served.max_body_mib * MiB == BRIDGE.max_body_bytes
    assert served.heartbeat == BRIDGE.heartbeat_seconds
    assert parse(["bridge", "http-to-grpc", "--upstream", "127.0.0.1:1"]).timeout == CLIENT.connect_timeout
    assert parse(["send", "127.0.0.1:1", "hi"]).timeout == CLIENT.timeout
    assert parse(["card", "127.0.0.1:1"]).timeout == CLIENT.timeout
    assert parse(["tasks", "get", "127.0.0.1:1", "t"]).timeout == CLIENT.timeout


def help_of(*command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        parse([*command, "--help"])
    return capsys.readouterr().out


def test_the_cli_help_names_the_settings_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    serve_help = " ".join(help_of("serve", capsys=capsys).split())  # argparse wraps lines
    assert f"(default: {BRIDGE.max_body_bytes // MiB})" in serve_help
    assert f"(default: {BRIDGE.heartbeat_seconds:g})" in serve_help
    assert f"(default: {SERVER.host})" in serve_help
    assert f"(default: {CLIENT.timeout:g})" in " ".join(help_of("send", capsys=capsys).split())


@pytest.mark.asyncio
async def test_the_client_takes_its_settings_and_shortcuts() -> None:
    async with A2AClient("127.0.0.1:1") as client:
        assert client.settings == CLIENT
        assert client.timeout == CLIENT.timeout
    async with A2AClient("127.0.0.1:1", timeout=None, max_message_bytes=1024) as tuned:
        assert tuned.timeout is None
        limits = (tuned.settings.max_receive_message_bytes, tuned.settings.max_send_message_bytes)
        assert limits == (1024, 1024)
    async with A2AClient("127.0.0.1:1", settings=ClientSettings(timeout=3.0)) as set_once:
        assert set_once.timeout == 3.0


def test_client_settings_are_checked_and_become_channel_options() -> None:
    for bad in (
        {"timeout": 0},
        {"connect_timeout": -1},
        {"max_send_message_bytes": 0},
        {"keepalive_time_ms": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ClientSettings(**bad)  # type: ignore[arg-type]
    quiet = dict(dataclasses.replace(CLIENT, keepalive_time_ms=None).grpc_options())
    assert quiet == {
        "grpc.max_receive_message_length": CLIENT.max_receive_message_bytes,
        "grpc.max_send_message_length": CLIENT.max_send_message_bytes,
    }
    # By default the client pings during calls as often as a default gRPC server allows, no more.
    pinging = dict(CLIENT.grpc_options())
    assert (pinging["grpc.keepalive_time_ms"], pinging["grpc.keepalive_timeout_ms"]) == (300_000, 20_000)
    assert pinging["grpc.keepalive_permit_without_calls"] == 0


@pytest.mark.asyncio
async def test_the_client_side_settings_reach_the_channel() -> None:
    served: Served = await serve(ReferenceAgent())
    small = ClientSettings(max_receive_message_bytes=1024)
    request = A2AClient.text_request("bytes 4096")
    try:
        async with A2AClient(served.server.address, settings=small) as client:
            with pytest.raises(errors.A2AError) as caught:
                await client.send_message(request)
        assert caught.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        upstream = GrpcUpstream(served.server.address, settings=small)
        try:
            with pytest.raises(errors.A2AError) as relayed:
                await upstream.unary("SendMessage", request, Call({"a2a-version": "1.0"}, 10.0))
            assert relayed.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
            small_answer = A2AClient.text_request("echo small")
            answer = await upstream.unary("SendMessage", small_answer, Call({"a2a-version": "1.0"}, 10.0))
            assert isinstance(answer, types.SendMessageResponse)
        finally:
            await upstream.aclose()
    finally:
        await shutdown(served)
