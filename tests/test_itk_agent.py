"""The ITK agent (examples/itk-agent) in the chains the A2A Integration Test Kit's runner builds.

Two processes per pairing: two instances of our agent, and ours with an official-SDK agent
(tests/itk_sdk_agent.py, the kit's Python v1.0 agent's behaviour on a2a-sdk 1.3.0). The first hop
is what the kit's runner sends (a JSON-RPC SendMessage or SendStreamingMessage at the card URI
with ``A2A-Version: 1.0``); each chain is, per transport, the Euler circuit a -> b -> a with the
runner's hop markers; the checks are the runner's (every expected token in the answer, in the
SSE status updates, or, for push, every intermediate state in some notification). The hold is
``--holdSeconds 2`` here (10 s in the kit) to keep the file short.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "itk-agent"
sys.path.insert(0, str(EXAMPLE))
import instruction_pb2 as itk  # noqa: E402
from layout import strip  # noqa: E402

from a2a_grpc.bridge.httpserver import HttpServer  # noqa: E402

TRANSPORTS = ("jsonrpc", "http_json", "grpc")
HOLD_SECONDS = "2"
READY_WAIT = 30.0
V10 = {"A2A-Version": "1.0"}


# --- the agents, as processes -------------------------------------------------------------------


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[str]
    http_port: int
    grpc_port: int

    def uri(self, jsonrpc_layout: bool = True) -> str:
        """The card URI the runner gives agents: ``/jsonrpc`` (older runners) or the root (newer)."""
        base = f"http://127.0.0.1:{self.http_port}"
        return base + "/jsonrpc" if jsonrpc_layout else base


def _start(name: str, script: Path) -> Running:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ITK_LOG_LEVEL": "WARNING"}
    return start_agent(name, [sys.executable, str(script)], script.parent, env)


def start_agent(
    name: str, command: list[str], cwd: Path, env: dict[str, str], wait: float = READY_WAIT
) -> Running:
    """``command --httpPort 0 --grpcPort 0 --holdSeconds ..`` started in ``cwd``, once it says
    which ports it bound (stopped by PID if it does not within ``wait`` seconds)."""
    args = [*command, "--httpPort", "0", "--grpcPort", "0", "--holdSeconds", HOLD_SECONDS]
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else ""
        if line.startswith("ITK agent ready"):
            ports = dict(item.split("=") for item in line.split()[3:])
            return Running(name, proc, int(ports["http"]), int(ports["grpc"]))
        if proc.poll() is not None:
            break
    _stop(proc)
    raise AssertionError(f"{name} ({' '.join(command)}) did not start within {wait} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def agents() -> Iterator[dict[str, Running]]:
    started: list[Running] = []
    try:
        started.append(_start("a2a_grpc", EXAMPLE / "main.py"))
        started.append(_start("a2a_grpc_2", EXAMPLE / "main.py"))
        started.append(_start("python_v10", ROOT / "tests" / "itk_sdk_agent.py"))
        yield {r.name: r for r in started}
    finally:
        for running in started:
            _stop(running.proc)


# --- the runner's chains ------------------------------------------------------------------------


def hop_chain(
    circuit: list[Running], transport: str, behavior: str, streaming: bool, notify_url: str = ""
) -> tuple[itk.Instruction, list[str]]:
    """The runner's instruction for one circuit: innermost "traversal-completed:<t>", each hop
    a CONCAT of its marker "[u -> v (<t>)]" and a call of v with what is inside."""
    hold = behavior == "resubscribe"
    inner = itk.Instruction()
    inner.return_response.response = f"traversal-completed:{transport}"
    inner.return_response.hold_task = hold
    tokens: list[str] = []
    for u, v in reversed(list(itertools.pairwise(circuit))):
        hop = itk.Instruction()
        hop.steps.response_generator = itk.SeriesOfSteps.RESPONSE_GENERATOR_CONCAT
        marker = f"[{u.name} -> {v.name} ({transport})]"
        tokens.append(marker)
        trace = hop.steps.instructions.add().return_response
        trace.response, trace.hold_task = marker, hold
        call = hop.steps.instructions.add().call_agent
        # ours at the root layout when the caller is ours too; the SDK agent only under /jsonrpc
        call.agent_card_uri = v.uri(jsonrpc_layout=v.name == "python_v10" or transport == "grpc")
        call.transport, call.streaming = transport, streaming
        call.instruction.CopyFrom(inner)
        if behavior == "push_notification":
            call.push_notification.url = notify_url
        elif behavior == "resubscribe":
            call.resubscribe.SetInParent()
        else:
            call.send_message.SetInParent()
        inner = hop
    return inner, [*tokens, f"traversal-completed:{transport}"]


def suite(
    a: Running, b: Running, behavior: str, streaming: bool, notify_url: str = ""
) -> tuple[itk.Instruction, list[str]]:
    top = itk.Instruction()
    top.steps.response_generator = itk.SeriesOfSteps.RESPONSE_GENERATOR_CONCAT
    expected: list[str] = []
    for transport in TRANSPORTS:
        chain, tokens = hop_chain([a, b, a], transport, behavior, streaming, notify_url)
        top.steps.instructions.add().CopyFrom(chain)
        expected.extend(tokens)
    return top, expected


def payload(
    instruction: itk.Instruction | bytes, streaming: bool, push: dict[str, str] | None = None
) -> dict[str, Any]:
    raw = instruction if isinstance(instruction, bytes) else instruction.SerializeToString()
    params: dict[str, Any] = {
        "message": {
            "role": "ROLE_USER",
            "messageId": str(uuid.uuid4()),
            "parts": [
                {
                    "raw": base64.b64encode(raw).decode(),
                    "mediaType": "application/x-protobuf",
                    "filename": "instruction.bin",
                }
            ],
        }
    }
    if push is not None:
        params["configuration"] = {"taskPushNotificationConfig": push}
    method = "SendStreamingMessage" if streaming else "SendMessage"
    return {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}


def parts_text(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message.get("parts", []) if p.get("text")]


def response_text(result: dict[str, Any]) -> str:
    """The runner's reading of a SendMessage result: the status message and agent history."""
    task = result.get("task", result)
    texts = parts_text(result["message"]) if "message" in result else []
    texts += parts_text(task.get("status", {}).get("message", {}))
    for message in task.get("history", []):
        if message.get("role") in ("agent", "ROLE_AGENT"):
            texts += parts_text(message)
    return "".join(texts)


def status_update_texts(event: dict[str, Any]) -> list[str]:
    """The runner's reading of a v1.0 stream event or notification: only a status update's agent message."""
    update = event.get("statusUpdate") or {}
    message = update.get("status", {}).get("message") or {}
    return parts_text(message) if message.get("role") == "ROLE_AGENT" else []


async def first_hop_sync(http: httpx.AsyncClient, target: Running, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(target.uri().rstrip("/") + "/", json=body, headers=V10)
    response.raise_for_status()
    answer = response.json()
    assert "error" not in answer, answer
    return dict(answer["result"])


async def first_hop_stream(
    http: httpx.AsyncClient, target: Running, body: dict[str, Any], expected: list[str]
) -> str:
    collected: list[str] = []
    url = target.uri().rstrip("/") + "/"
    async with http.stream("POST", url, json=body, headers=V10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            assert "error" not in event, event
            collected.extend(status_update_texts(event["result"]))
            if all(token in "\n".join(collected) for token in expected):
                break  # as the runner does: it stops reading once every token has arrived
    return "\n".join(collected)


# --- the notification server --------------------------------------------------------------------


def is_notification(event: dict[str, Any]) -> bool:
    """What the kit's notification server keeps: a v1.0 StreamResponse, or a v0.3 body (a Task or
    a status or artifact update, by ``kind``: the official 0.3 SDK posts the Task)."""
    if event.get("kind") == "task":
        return bool(event.get("id"))
    if event.get("kind") in ("status-update", "artifact-update"):
        return bool(event.get("taskId"))
    return bool(
        event.get("task", {}).get("id")
        or event.get("statusUpdate", {}).get("taskId")
        or event.get("artifactUpdate", {}).get("taskId")
    )


def push_texts(event: dict[str, Any]) -> list[str]:
    """The runner's reading of a notification: a v1.0 status update's agent message, or a v0.3
    body's ``status.message`` with role ``agent``."""
    if "kind" not in event:
        return status_update_texts(event)
    message = event.get("status", {}).get("message") or {}
    return parts_text(message) if message.get("role") == "agent" else []


class Notifications:
    """The kit's notification server: POST /notifications keeps a StreamResponse or a v0.3 body
    (400 for what is neither), GET /notifications lists them with their tokens."""

    def __init__(self) -> None:
        self.kept: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            chunk = await receive()
            body += chunk.get("body", b"")
            if not chunk.get("more_body"):
                break
        status, answer = 404, {}
        if scope["path"] == "/notifications" and scope["method"] == "POST":
            try:
                event = json.loads(body)
                ok = isinstance(event, dict) and is_notification(event)
            except ValueError:
                ok = False
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            if ok:
                self.kept.append({"event": event, "token": headers.get("x-a2a-notification-token")})
            status = 200 if ok else 400
        elif scope["path"] == "/notifications" and scope["method"] == "GET":
            status, answer = 200, {"notifications": self.kept}
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


async def notification_server() -> AsyncIterator[tuple[str, Notifications]]:
    app = Notifications()
    async with HttpServer(app, "127.0.0.1", 0) as server:
        yield server.url, app


def push_states(expected: list[str]) -> list[str]:
    """The runner's intermediate states: per chain, "traversal-completed:<t>", then each marker
    (innermost first) prefixed with a newline to what is below it."""
    states: list[str] = []
    chain: list[str] = []
    for token in expected:
        chain.append(token)
        if token.startswith("traversal-completed:"):
            state = token
            states.append(state)
            for marker in chain[:-1]:  # innermost first, as the runner lists them
                state = f"{marker}\n{state}"
                states.append(state)
            chain = []
    return states


# --- the chains ---------------------------------------------------------------------------------

PAIRS = [("a2a_grpc", "a2a_grpc_2"), ("a2a_grpc", "python_v10")]


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.asyncio
async def test_send_chains(agents: dict[str, Running], first: str, second: str) -> None:
    a, b = agents[first], agents[second]
    instruction, expected = suite(a, b, "send_message", streaming=False)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=120)) as http:
        result = await first_hop_sync(http, a, payload(instruction, streaming=False))
    assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    text = response_text(result)
    assert [t for t in expected if t not in text] == []
    # the hops in the order they ran (the runner only checks presence; we check the shape too)
    ran = [f"[{x} -> {y} ({t})]" for t in TRANSPORTS for x, y in ((first, second), (second, first))]
    ran = [
        line for t in TRANSPORTS for line in [*(r for r in ran if f"({t})" in r), f"traversal-completed:{t}"]
    ]
    assert result["task"]["status"]["message"]["parts"][0]["text"].split("\n") == ran


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.asyncio
async def test_stream_chains(agents: dict[str, Running], first: str, second: str) -> None:
    a, b = agents[first], agents[second]
    instruction, expected = suite(a, b, "send_message", streaming=True)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=120)) as http:
        text = await first_hop_stream(http, a, payload(instruction, streaming=True), expected)
    assert [t for t in expected if t not in text] == []


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.asyncio
async def test_push_chains(agents: dict[str, Running], first: str, second: str) -> None:
    a, b = agents[first], agents[second]
    async for url, _ in notification_server():
        instruction, expected = suite(a, b, "push_notification", streaming=False, notify_url=url)
        token = str(uuid.uuid4())
        body = payload(instruction, streaming=False, push={"url": f"{url}/notifications", "token": token})
        async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=120)) as http:
            result = await first_hop_sync(http, a, body)
            assert result["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
            states = push_states(expected)
            deadline = time.monotonic() + 15  # deliveries run in the background: bounded wait
            while True:
                listed = (await http.get(f"{url}/notifications")).json()["notifications"]
                texts = [t for n in listed for t in push_texts(n["event"])]
                missing = [s for s in states if not any(s in t for t in texts)]
                if not missing or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert missing == []
        tokens = {n["token"] for n in listed}
        assert token in tokens  # the runner's config, on the first hop
        assert "itk-token" in tokens  # the configs the agents registered on their calls


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.asyncio
async def test_resubscribe_chains(agents: dict[str, Running], first: str, second: str) -> None:
    a, b = agents[first], agents[second]
    instruction, expected = suite(a, b, "resubscribe", streaming=True)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=120)) as http:
        text = await first_hop_stream(http, a, payload(instruction, streaming=True), expected)
    assert [t for t in expected if t not in text] == []
    assert "task-finished" in text  # the first hop holds too: the marker ends its result


# --- the layout, the proto, hostile input -------------------------------------------------------


def test_layout_strips_the_kit_prefixes() -> None:
    assert strip("/jsonrpc") == "/"
    assert strip("/jsonrpc/") == "/"
    assert strip("/rest/message:send") == "/message:send"
    assert strip("/rest/.well-known/agent-card.json") == "/.well-known/agent-card.json"
    assert strip("/restless/message:send") == "/restless/message:send"  # a tenant, untouched
    assert strip("/message:send") == "/message:send"


def test_instruction_module_is_fresh() -> None:
    check = subprocess.run(
        [sys.executable, str(EXAMPLE / "gen_instruction.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.asyncio
async def test_card_and_rest_layout(agents: dict[str, Running]) -> None:
    a = agents["a2a_grpc"]
    base = a.uri(jsonrpc_layout=False)
    ret = itk.Instruction()
    ret.return_response.response = "over rest"
    message = payload(ret, streaming=False)["params"]
    async with httpx.AsyncClient(timeout=30) as http:
        cards = [
            (await http.get(base + p + "/.well-known/agent-card.json")).json()
            for p in ("", "/jsonrpc", "/rest")
        ]
        assert cards[0] == cards[1] == cards[2]
        interfaces = [(i["protocolBinding"], i["url"]) for i in cards[0]["supportedInterfaces"]]
        assert ("GRPC", f"127.0.0.1:{a.grpc_port}") in interfaces
        assert ("JSONRPC", f"{base}/jsonrpc/") in interfaces
        assert ("HTTP+JSON", f"{base}/rest/") in interfaces
        assert cards[0]["capabilities"]["pushNotifications"] is True
        for prefix in ("/rest", ""):
            task = (await http.post(base + prefix + "/message:send", json=message, headers=V10)).json()[
                "task"
            ]
            assert task["status"]["state"] == "TASK_STATE_COMPLETED"
            assert task["status"]["message"]["parts"][0]["text"] == "over rest"


async def _send_one(http: httpx.AsyncClient, target: Running, body: dict[str, Any]) -> dict[str, Any]:
    return (await first_hop_sync(http, target, body))["task"]


@pytest.mark.asyncio
async def test_hostile_instructions_fail_the_task_and_the_agent_serves_on(agents: dict[str, Running]) -> None:
    a = agents["a2a_grpc"]
    unknown = itk.Instruction()
    call = unknown.call_agent
    call.transport, call.agent_card_uri = "carrier-pigeon", agents["a2a_grpc_2"].uri()
    call.instruction.return_response.response = "never"
    ok = itk.Instruction()
    ok.return_response.response = "still serving"
    async with httpx.AsyncClient(timeout=30) as http:
        for garbage in (b"\xff\xff\xff\xff", b"", b"\x0a\x05\x0a\x03"):  # no proto; empty; truncated
            task = await _send_one(http, a, payload(garbage, streaming=False))
            assert task["status"]["state"] == "TASK_STATE_FAILED"
            assert parts_text(task["status"]["message"]) == ["No valid instruction found in request"]
        text_part = payload(ok, streaming=False)
        text_part["params"]["message"]["parts"] = [{"text": "not base64 at all!"}]
        task = await _send_one(http, a, text_part)
        assert parts_text(task["status"]["message"]) == ["No valid instruction found in request"]
        task = await _send_one(http, a, payload(unknown, streaming=False))
        assert task["status"]["state"] == "TASK_STATE_FAILED"
        assert "unsupported transport" in parts_text(task["status"]["message"])[0]
        # an unreachable next agent fails the task saying so
        call.transport, call.agent_card_uri = "grpc", "http://127.0.0.1:9"
        task = await _send_one(http, a, payload(unknown, streaming=False))
        assert task["status"]["state"] == "TASK_STATE_FAILED"
        assert "127.0.0.1:9" in parts_text(task["status"]["message"])[0]
        task = await _send_one(http, a, payload(ok, streaming=False))
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert parts_text(task["status"]["message"]) == ["still serving"]
        # the instruction as base64 text in a plain text part is read too (as the kit's agents do)
        plain = payload(ok, streaming=False)
        plain["params"]["message"]["parts"] = [{"text": base64.b64encode(ok.SerializeToString()).decode()}]
        task = await _send_one(http, a, plain)
        assert parts_text(task["status"]["message"]) == ["still serving"]
    assert a.proc.poll() is None


@pytest.mark.asyncio
async def test_a_held_task_is_canceled_on_request(agents: dict[str, Running]) -> None:
    a = agents["a2a_grpc"]
    held = itk.Instruction()
    held.return_response.response, held.return_response.hold_task = "holding", True
    body = payload(held, streaming=False)
    body["params"]["configuration"] = {"returnImmediately": True}
    async with httpx.AsyncClient(timeout=30) as http:
        task = await _send_one(http, a, body)
        deadline = time.monotonic() + 15
        while "task-finished" not in json.dumps(task.get("status", {})) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            get = {"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": task["id"]}}
            task = (await http.post(a.uri() + "/", json=get, headers=V10)).json()["result"]
        # held: WORKING, the marker in the status message a late subscriber's snapshot shows
        assert task["status"]["state"] == "TASK_STATE_WORKING"
        assert parts_text(task["status"]["message"]) == ["holding\ntask-finished"]
        kept = [t for m in task.get("history", []) if m["role"] == "ROLE_AGENT" for t in parts_text(m)]
        assert "holding\ntask-finished" in kept  # in the history too, where the SDK's agent looks
        cancel = {"jsonrpc": "2.0", "id": 3, "method": "CancelTask", "params": {"id": task["id"]}}
        canceled = (await http.post(a.uri() + "/", json=cancel, headers=V10)).json()["result"]
    assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
