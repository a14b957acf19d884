"""The card commands and the serving options that shape the card: ``card`` (public card over gRPC,
``--extended``, other implementations), ``bridge http-to-grpc`` without ``--card``,
``--public-address`` and ``--log-requests``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from a2a_grpc import types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from tests.bridge_peers import bridge_process
from tests.conftest import serve, shutdown
from tests.sdk_peers import sdk_server
from tests.test_cli_first_hour import CLI, run, run_async

ASYNC = pytest.mark.asyncio


class Plain(Agent):
    card = types.AgentCard(name="plain", description="no extended card", version="1.0.0")

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.reply("hi")


@ASYNC
async def test_card_prints_the_public_card_of_an_agent_without_an_extended_one() -> None:
    served = await serve(Plain())
    try:
        result = await run_async("card", served.server.address)
        assert result.returncode == 0, result.stderr
        card = json.loads(result.stdout)
        assert card["name"] == "plain"
        assert card["capabilities"]["streaming"] is True
        extended = await run_async("card", served.server.address, "--extended")
        assert extended.returncode == 1
        assert "UnsupportedOperationError" in extended.stderr
    finally:
        await shutdown(served)


@ASYNC
async def test_card_of_another_implementation_falls_back_to_its_extended_card() -> None:
    async with sdk_server() as address:
        result = await run_async("card", address)
    assert result.returncode == 0, result.stderr
    assert "serves no public card over gRPC" in result.stderr
    assert json.loads(result.stdout)["name"] == "a2a-sdk peer"


@ASYNC
async def test_the_bridge_publishes_the_public_card_of_a_grpc_only_agent() -> None:
    served = await serve(Plain())
    try:
        async with bridge_process(served.server.address) as url, httpx.AsyncClient() as http:
            card = (await http.get(url + "/.well-known/agent-card.json")).json()
        assert card["name"] == "plain"
        bindings = [i["protocolBinding"] for i in card["supportedInterfaces"]]
        # The bridge's two JSON interfaces, for v1.0 and again for v0.3 (BridgeSettings.serve_v03).
        assert bindings == ["GRPC", "GRPC", "urn:a2a-grpc:binding:session:v1", *["JSONRPC", "HTTP+JSON"] * 2]
        assert card["protocolVersion"] == "0.3"  # the merged card's v0.3 members
    finally:
        await shutdown(served)


def start_serving(command: list[str], output: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` (a ``serve``) with its output in ``output``; return once it serves."""
    with output.open("w") as sink:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    try:
        while "Ctrl-C" not in output.read_text():
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait(timeout=15)
        raise
    return proc


def test_serve_public_address_names_the_card_and_log_requests_logs(tmp_path: Path) -> None:
    output = tmp_path / "serve.log"
    proc = start_serving(
        [*CLI, "serve", "--grpc-port", "0", "--http-port", "0", "--store", "memory",
         "--public-address", "agents.example:443", "--log-requests"],
        output,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        text = output.read_text()
        named = (
            "GRPC agents.example:443, GRPC agents.example:443 (A2A 0.3), "
            "urn:a2a-grpc:binding:session:v1 agents.example:443, JSONRPC"
        )
        assert f"the card names {named}" in text
        grpc_at = re.search(r"over gRPC at (\S+)", text)
        http_at = re.search(r"HTTP\+JSON at (\S+)", text)
        assert grpc_at, text
        assert http_at, text
        sent = run("send", grpc_at.group(1), "echo hi")
        assert sent.returncode == 0, sent.stderr
        card = httpx.get(http_at.group(1) + "/.well-known/agent-card.json", timeout=10).json()
        assert card["supportedInterfaces"][0]["url"] == "agents.example:443"
        while "GET /.well-known" not in output.read_text():  # logged once the answer is sent
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    logged = output.read_text()
    assert re.search(r"grpc SendMessage OK [\d.]+ ms peer=", logged), logged
    assert "http GET /.well-known/agent-card.json 200 - " in logged


def test_a_bad_public_address_is_one_line() -> None:
    result = run("serve", "--grpc-port", "0", "--store", "memory", "--public-address", "nowhere")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "a2a-grpc: error: public_address must look like HOST:PORT, not 'nowhere'"
    )


WITHOUT_HTTP = (
    "import sys; sys.modules['uvicorn'] = None; sys.modules['orjson'] = None\n"
    "from a2a_grpc.cli import main\n"
    "sys.exit(main(sys.argv[1:]))"
)
"""The command line in an install without the ``http`` extra (its modules cannot be imported)."""


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["serve", "--grpc-port", "0", "--http-port", "0", "--store", "memory"], "--http-port"),
        (["bridge", "http-to-grpc", "--upstream", "127.0.0.1:1"], "a2a-grpc bridge"),
        (["bridge", "grpc-to-http", "--upstream", "http://127.0.0.1:1"], "a2a-grpc bridge"),
        (["send", "http://127.0.0.1:1", "hi"], "reading an agent card from a URL"),
    ],
)
def test_the_json_commands_say_how_to_install_what_they_need(args: list[str], what: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_HTTP, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"a2a-grpc: error: {what} needs the JSON bridge's dependencies (orjson is missing): "
        "pip install 'a2a-grpc[http]'"
    )


def test_grpc_alone_serves_without_the_http_extra(tmp_path: Path) -> None:
    output = tmp_path / "serve.log"
    proc = start_serving(
        [sys.executable, "-c", WITHOUT_HTTP, "serve", "--grpc-port", "0", "--store", "memory"], output
    )
    try:
        address = re.search(r"over gRPC at (\S+)", output.read_text())
        assert address
        sent = run("send", address.group(1), "echo hi")
        assert sent.returncode == 0, sent.stderr
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
