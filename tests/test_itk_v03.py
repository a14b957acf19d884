"""The ITK agent (examples/itk-agent) in chains with a v0.3 agent, as the kit's matrix runs them.

The peer is the kit's Python v0.3 agent's behaviour on the official a2a-sdk 0.3
(tests/sdk03/itk_agent.py, in the 0.3 virtualenv): a v0.3 card, JSON-RPC under /jsonrpc/, HTTP+JSON
under /rest (/rest/v1/...), gRPC ``a2a.v1.A2AService``. Our agent reads its card as v0.3 and speaks
v0.3 to it on each binding; it calls ours through our card's 0.3 interfaces (the merged card's
``url``, ``preferredTransport``, ``additionalInterfaces``). Each chain is the runner's: per
transport the circuit ours -> sdk03 -> ours, first hop to ours as the runner sends it to a v1.0
SUT (JSON-RPC SendMessage / SendStreamingMessage, ``A2A-Version: 1.0``), checked as the runner
checks; one chain's first hop is the v0.3 form (``message/send`` with the instruction as a FilePart,
as the runner sends it to a v0.3 SUT). Holds are 2 s (the kit: 10).
"""

from __future__ import annotations

import asyncio
import base64
import json
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from a2a_grpc import types
from tests.sdk03.bootstrap import clean_env
from tests.test_itk_agent import (
    EXAMPLE,
    HOLD_SECONDS,
    READY_WAIT,
    TRANSPORTS,
    Running,
    _start,
    _stop,
    first_hop_stream,
    first_hop_sync,
    notification_server,
    parts_text,
    payload,
    push_states,
    push_texts,
    response_text,
    suite,
)

sys.path.insert(0, str(EXAMPLE))
import instruction_pb2 as itk
from agent import extract_instruction
from peer import open_peer

from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream
from a2a_grpc.bridge.outbound03 import JsonRpc03Upstream, Rest03Upstream

SDK03_AGENT = Path(__file__).resolve().parent / "sdk03" / "itk_agent.py"
OURS, THEIRS = "a2a_grpc", "python_v03"
TIMEOUT = httpx.Timeout(15, read=120)

pytestmark = pytest.mark.timeout(180)


def _start_sdk03(python: Path) -> Running:
    args = [
        str(python),
        str(SDK03_AGENT),
        "--httpPort",
        "0",
        "--grpcPort",
        "0",
        "--holdSeconds",
        HOLD_SECONDS,
    ]
    proc = subprocess.Popen(
        args, env=clean_env(), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_WAIT
    while (left := deadline - time.monotonic()) > 0 and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        line = proc.stdout.readline() if ready else ""
        if line.startswith("ITK agent ready"):
            ports = dict(item.split("=") for item in line.split()[3:])
            return Running(THEIRS, proc, int(ports["http"]), int(ports["grpc"]))
    _stop(proc)
    raise AssertionError(f"the a2a-sdk 0.3 ITK agent did not start within {READY_WAIT} s")


@pytest.fixture(scope="module")
def pair(sdk03_python: Path) -> Iterator[tuple[Running, Running]]:
    started: list[Running] = []
    try:
        started.append(_start(OURS, EXAMPLE / "main.py"))
        started.append(_start_sdk03(sdk03_python))
        yield started[0], started[1]
    finally:
        for running in started:
            _stop(running.proc)


def _ran(transports: tuple[str, ...] = TRANSPORTS) -> list[str]:
    """The answer's lines in the order the hops ran."""
    return [
        line
        for t in transports
        for line in (f"[{OURS} -> {THEIRS} ({t})]", f"[{THEIRS} -> {OURS} ({t})]", f"traversal-completed:{t}")
    ]


# --- the card a v0.3 client reads -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_our_card_reads_right_for_a_v03_client(pair: tuple[Running, Running]) -> None:
    ours, _ = pair
    base = ours.uri(jsonrpc_layout=False)
    async with httpx.AsyncClient(timeout=30) as http:
        cards = [
            (await http.get(f"{base}{p}/.well-known/agent-card.json")).json()
            for p in ("", "/jsonrpc", "/rest")
        ]
    assert cards[0] == cards[1] == cards[2]
    card = cards[0]
    assert card["protocolVersion"].startswith("0.3")
    assert (card["url"], card["preferredTransport"]) == (f"{base}/jsonrpc/", "JSONRPC")  # v0.3's main one
    assert {(i["transport"], i["url"]) for i in card["additionalInterfaces"]} == {
        ("JSONRPC", f"{base}/jsonrpc/"),
        ("HTTP+JSON", f"{base}/rest/"),
        ("GRPC", f"127.0.0.1:{ours.grpc_port}"),
    }
    # v1.0 clients keep reading supportedInterfaces: every 1.0 interface comes before its 0.3 twin
    listed = [(i["protocolBinding"], i["url"], i["protocolVersion"]) for i in card["supportedInterfaces"]]
    for binding, url in (
        ("GRPC", f"127.0.0.1:{ours.grpc_port}"),
        ("JSONRPC", f"{base}/jsonrpc/"),
        ("HTTP+JSON", f"{base}/rest/"),
    ):
        assert listed.index((binding, url, "1.0")) < listed.index((binding, url, "0.3"))


@pytest.mark.asyncio
async def test_peer_speaks_v03_to_the_sdk_agent_and_v10_to_ours(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    for running, v03 in ((theirs, True), (ours, False)):
        for layout in (True, False):
            uri = running.uri(jsonrpc_layout=layout)
            for transport, v10_kind, v03_kind in (
                ("jsonrpc", JsonRpcUpstream, JsonRpc03Upstream),
                ("http_json", RestUpstream, Rest03Upstream),
            ):
                peer = await open_peer(transport, uri, timeout=30)
                try:
                    upstream = peer.upstream  # type: ignore[attr-defined]
                    assert type(upstream) is (v03_kind if v03 else v10_kind)
                finally:
                    await peer.aclose()
            peer = await open_peer("GRPC", uri, timeout=30)
            try:
                assert peer.client.protocol_version == ("0.3" if v03 else "1.0")  # type: ignore[attr-defined]
            finally:
                await peer.aclose()


# --- the runner's chains, ours first --------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_chains(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    instruction, expected = suite(ours, theirs, "send_message", streaming=False)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        result = await first_hop_sync(http, ours, payload(instruction, streaming=False))
    assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED", result["task"]["status"]
    assert [t for t in expected if t not in response_text(result)] == []
    assert result["task"]["status"]["message"]["parts"][0]["text"].split("\n") == _ran()


@pytest.mark.asyncio
async def test_stream_chains(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    instruction, expected = suite(ours, theirs, "send_message", streaming=True)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        text = await first_hop_stream(http, ours, payload(instruction, streaming=True), expected)
    assert [t for t in expected if t not in text] == []


@pytest.mark.asyncio
async def test_push_chains(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    async for url, _ in notification_server():
        instruction, expected = suite(ours, theirs, "push_notification", streaming=False, notify_url=url)
        token = str(uuid.uuid4())
        body = payload(instruction, streaming=False, push={"url": f"{url}/notifications", "token": token})
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            result = await first_hop_sync(http, ours, body)
            assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED", result["task"]["status"]
            states = push_states(expected)
            deadline = time.monotonic() + 20  # deliveries run in the background: bounded wait
            while True:
                listed = (await http.get(f"{url}/notifications")).json()["notifications"]
                texts = [t for n in listed for t in push_texts(n["event"])]
                missing = [s for s in states if not any(s in t for t in texts)]
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert missing == []
        assert token in {n["token"] for n in listed}  # the runner's config, on the first hop
        # The runner's substring check is met by the first hop's own result alone; check that each
        # agent pushed its own result, for the config its caller gave over each binding: the SDK
        # agent a v0.3 Task body, ours a v1.0 StreamResponse.
        theirs_said, ours_said = set(), set()
        for n in (n for n in listed if n["token"] == "itk-token"):
            for text in push_texts(n["event"]):
                (theirs_said if "kind" in n["event"] else ours_said).add(text.split("\n")[0])
        assert {f"[{THEIRS} -> {OURS} ({t})]" for t in TRANSPORTS} <= theirs_said
        assert {f"traversal-completed:{t}" for t in TRANSPORTS} <= ours_said


@pytest.mark.asyncio
async def test_resubscribe_chains(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    instruction, expected = suite(ours, theirs, "resubscribe", streaming=True)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        text = await first_hop_stream(http, ours, payload(instruction, streaming=True), expected)
    assert [t for t in expected if t not in text] == []
    assert "task-finished" in text
    # The SDK agent cancels a task it resubscribed to when it never read "task-finished": none of
    # ours was (each ends COMPLETED once its hold is over).
    listing = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {"pageSize": 100}}
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=30) as http:
        while True:
            answer = (await http.post(ours.uri() + "/", json=listing, headers={"A2A-Version": "1.0"})).json()
            states = [task["status"]["state"] for task in answer["result"]["tasks"]]
            if "TASK_STATE_WORKING" not in states or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert "TASK_STATE_CANCELED" not in states
    assert set(states) == {"TASK_STATE_COMPLETED"}


# --- the first hop in the v0.3 form (the runner to a v0.3 SUT) ------------------------------------


def v03_payload(instruction: itk.Instruction, streaming: bool) -> dict[str, Any]:
    part = {
        "kind": "file",
        "file": {
            "bytes": base64.b64encode(instruction.SerializeToString()).decode(),
            "mimeType": "application/x-protobuf",
            "name": "instruction.bin",
        },
    }
    message = {
        "kind": "message",
        "role": "user",
        "messageId": str(uuid.uuid4()),
        "parts": [part],
        "metadata": {"a2a/protocol_version": "0.3"},
    }
    method = "message/stream" if streaming else "message/send"
    return {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": {"message": message}}


@pytest.mark.asyncio
async def test_a_v03_first_hop_runs_the_chain(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    instruction, expected = suite(ours, theirs, "send_message", streaming=False)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        response = await http.post(
            ours.uri() + "/", json=v03_payload(instruction, False), headers={"A2A-Version": "0.3"}
        )
    answer = response.json()
    assert "error" not in answer, answer
    task = answer["result"]
    assert (task["kind"], task["status"]["state"]) == ("task", "completed")
    assert task["status"]["message"]["role"] == "agent"
    assert parts_text(task["status"]["message"])[0].split("\n") == _ran()
    assert [t for t in expected if t not in response_text(task)] == []  # the runner reads v0.3 too


@pytest.mark.asyncio
async def test_a_v03_first_hop_with_a_push_config_runs_the_push_chain(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    async for url, _ in notification_server():
        instruction, expected = suite(ours, theirs, "push_notification", streaming=False, notify_url=url)
        token = str(uuid.uuid4())
        body = v03_payload(instruction, False)
        body["params"]["configuration"] = {
            "pushNotificationConfig": {"url": f"{url}/notifications", "token": token}
        }
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            answer = (await http.post(ours.uri() + "/", json=body, headers={"A2A-Version": "0.3"})).json()
            assert answer["result"]["status"]["state"] == "completed", answer
            deadline = time.monotonic() + 20  # deliveries run in the background: bounded wait
            while True:
                listed = (await http.get(f"{url}/notifications")).json()["notifications"]
                mine = [t for n in listed if n["token"] == token for t in push_texts(n["event"])]
                if any(t.split("\n") == _ran() for t in mine) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        # the first hop's config (given in the v0.3 form) got the whole result
        assert any(t.split("\n") == _ran() for t in mine), mine
        texts = [t for n in listed for t in push_texts(n["event"])]
        assert [s for s in push_states(expected) if not any(s in t for t in texts)] == []


@pytest.mark.asyncio
async def test_a_v03_streaming_first_hop_runs_the_chain(pair: tuple[Running, Running]) -> None:
    ours, theirs = pair
    instruction, expected = suite(ours, theirs, "send_message", streaming=True)
    collected: list[str] = []
    kinds: list[str] = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        body = v03_payload(instruction, True)
        async with http.stream(
            "POST", ours.uri() + "/", json=body, headers={"A2A-Version": "0.3"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    assert "error" not in event, event
                    result = event["result"]
                    kinds.append(result["kind"])
                    if result["kind"] == "status-update":  # the runner's v0.3 reading
                        message = result["status"].get("message") or {}
                        if message.get("role") == "agent":
                            collected.extend(parts_text(message))
    assert [t for t in expected if t not in "\n".join(collected)] == []
    assert kinds[-1] == "status-update"
    assert result["final"] is True
    assert result["status"]["state"] == "completed"


@pytest.mark.asyncio
async def test_a_v03_first_hop_that_carries_no_instruction_fails_the_task(
    pair: tuple[Running, Running],
) -> None:
    ours, _ = pair
    body = v03_payload(itk.Instruction(), False)
    body["params"]["message"]["parts"][0]["file"]["bytes"] = base64.b64encode(
        b"\xff\xfe not a proto"
    ).decode()
    async with httpx.AsyncClient(timeout=30) as http:
        task = (await http.post(ours.uri() + "/", json=body)).json()["result"]  # no A2A-Version: 0.3
    assert task["status"]["state"] == "failed"
    assert parts_text(task["status"]["message"]) == ["No valid instruction found in request"]
    assert ours.proc.poll() is None


# --- extraction from what v0.3 peers send ----------------------------------------------------------


def test_the_instruction_is_read_from_a_v03_file_part_and_from_undecoded_base64_bytes() -> None:
    instruction = itk.Instruction()
    instruction.return_response.response = "hi"
    raw = instruction.SerializeToString()
    for carried in (raw, base64.b64encode(raw)):  # translated FilePart; the gRPC file_with_bytes quirk kept
        message = types.Message(message_id="m", role=types.ROLE_USER)
        message.parts.add(raw=carried, media_type="application/x-protobuf", filename="instruction.bin")
        assert extract_instruction(message) == instruction
    junk = types.Message(message_id="m", role=types.ROLE_USER)
    junk.parts.add(raw=b"bm90IGFuIGluc3RydWN0aW9u", filename="instruction.bin")  # base64 of no proto
    assert extract_instruction(junk) is None
