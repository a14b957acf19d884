"""The debug endpoints (``/debug/a2a/sessions``) and ``a2a-grpc sessions``, against real servers.

One agent behind API keys (alice, bob) with the HTTP port: session clients open sessions, start
calls the agent holds until released, and the endpoints show them as their principal sees them:
peer, age, negotiated values, calls in flight, credit, last heartbeat, the handshake (credentials
hidden). Then what must be refused: no credentials, another principal's session, hostile paths
and verbs. Last, the command line against a server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from a2a_grpc import types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.cli.security import API_KEY_ENV, BEARER_TOKEN_ENV
from a2a_grpc.client import A2AClient
from a2a_grpc.observability import ObservabilitySettings
from a2a_grpc.security import Credentials
from a2a_grpc.server import ServerSettings
from a2a_grpc.session.negotiation import SessionSettings
from a2a_grpc.testing import CuttingProxy
from tests.test_auth import KEYS, authentication
from tests.test_cli_card import start_serving
from tests.test_cli_first_hour import CLI, run_async

ASYNC = pytest.mark.asyncio(loop_scope="module")
WAIT = 10.0
SESSIONS = "/debug/a2a/sessions"


class Gate(Agent):
    """Holds every ``wait`` message until :attr:`release` is set; answers anything else at once."""

    card = types.AgentCard(name="gate", description="holds calls until released", version="1.0.0")

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        if context.text == "wait":
            self.waiting += 1
            try:
                await self.release.wait()
            finally:
                self.waiting -= 1
        await updater.reply("done")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[AgentStack]:
    settings = ServerSettings(
        authentication=authentication(),
        session=SessionSettings(heartbeat_interval=1.0),
        grace_seconds=0.5,
    )
    async with AgentStack(Gate(), grpc=settings, host="127.0.0.1", grpc_port=0, http_port=0) as served:
        yield served


def key(name: str) -> dict[str, str]:
    return {"x-api-key": KEYS[name]}


def client(stack: AgentStack, name: str) -> A2AClient:
    return A2AClient(stack.grpc_address, credentials=Credentials(api_key=KEYS[name]), timeout=WAIT)


async def get(stack: AgentStack, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    assert stack.http_url is not None
    async with httpx.AsyncClient(base_url=stack.http_url, timeout=WAIT) as http:
        return await http.get(path, headers=headers or {})


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """``await check()`` again until it returns something true (at most WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def mine(stack: AgentStack, name: str) -> list[dict[str, Any]]:
    answer = await get(stack, SESSIONS, key(name))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    listed: list[dict[str, Any]] = answer.json()
    return listed


def gate(stack: AgentStack) -> Gate:
    agent = stack.agent
    assert isinstance(agent, Gate)
    return agent


@ASYNC
async def test_the_list_shows_a_live_session_with_its_calls_credit_and_heartbeat(stack: AgentStack) -> None:
    agent = gate(stack)
    agent.release = asyncio.Event()
    options = {"agent_name": "lister", "heartbeat_interval": 1.0}
    async with client(stack, "alice") as alice, alice.session(**options) as s:
        session_id = s.welcome.session_id
        calls = [asyncio.create_task(s.send_message(A2AClient.text_request("wait"))) for _ in range(2)]
        try:

            async def both_running() -> dict[str, Any] | None:
                for view in await mine(stack, "alice"):
                    if view["session_id"] == session_id and view["calls"]["count"] == 2:
                        return view
                return None

            view = await until(both_running, "two calls in flight")
            assert view["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
            assert view["principal"] == {"id": "alice", "scheme": view["principal"]["scheme"], "tenant": ""}
            assert view["client_agent"] == "lister"
            assert view["attached"] is True
            assert view["ending"] is False
            assert view["age_seconds"] >= 0
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", view["opened_at"])
            negotiated = view["negotiated"]
            assert negotiated["protocol_version"] == "1.0"
            assert negotiated["heartbeat_seconds"] == 1.0
            assert negotiated["max_frame_bytes"] == s.welcome.max_frame_bytes
            assert negotiated["max_concurrent_calls"] == s.welcome.max_concurrent_calls
            window = s.welcome.window
            assert negotiated["window"] == {
                "call_frames": window.call_frames,
                "call_bytes": window.call_bytes,
                "session_frames": window.session_frames,
                "session_bytes": window.session_bytes,
            }
            running = view["calls"]["running"]
            assert [c["method"] for c in running] == ["SendMessage", "SendMessage"]
            assert all(c["age_seconds"] >= 0 and isinstance(c["call_id"], int) for c in running)
            assert "request" not in json.dumps(running)  # no payloads
            credit = view["credit"]
            # Nothing sent yet but the Welcome: each call's and the session's windows are whole.
            assert credit["server_may_send"]["session"] == {
                "frames": window.session_frames,
                "bytes": window.session_bytes,
            }
            assert sorted(credit["server_may_send"]["calls"]) == sorted(str(c["call_id"]) for c in running)
            for call_credit in credit["server_may_send"]["calls"].values():
                assert call_credit == {"frames": window.call_frames, "bytes": window.call_bytes}
            assert credit["client_may_start_calls"] == s.welcome.max_concurrent_calls - 2

            async def heartbeat_seen() -> dict[str, Any] | None:
                views = [v for v in await mine(stack, "alice") if v["session_id"] == session_id]
                return views[0] if views and views[0]["last_heartbeat_seconds_ago"] is not None else None

            beating = await until(heartbeat_seen, "a heartbeat from the client")
            assert 0 <= beating["last_heartbeat_seconds_ago"] < 10
            assert beating["last_frame_seconds_ago"] is not None
        finally:
            agent.release.set()
            answers = await asyncio.gather(*calls)
        assert [a.message.parts[0].text for a in answers] == ["done", "done"]

        async def drained() -> bool:
            views = await mine(stack, "alice")
            return any(v["session_id"] == session_id and v["calls"]["count"] == 0 for v in views)

        await until(drained, "the calls ended")

    async def gone() -> bool:
        return all(v["session_id"] != session_id for v in await mine(stack, "alice"))

    await until(gone, "the closed session leaves the list")


@ASYNC
async def test_one_session_shows_its_handshake_with_credentials_hidden(stack: AgentStack) -> None:
    async with client(stack, "alice") as alice, alice.session(agent_name="shaker") as s:
        answer = await get(stack, f"{SESSIONS}/{s.welcome.session_id}", key("alice"))
        assert answer.status_code == 200, answer.text
        view = answer.json()
        assert view["session_id"] == s.welcome.session_id
        handshake = view["handshake"]
        assert handshake["hello"]["agentName"] == "shaker"
        assert handshake["hello"]["protocolVersions"] == ["1.0"]
        assert handshake["hello"]["metadata"]["x-api-key"] == "(hidden)"
        assert handshake["welcome"]["sessionId"] == s.welcome.session_id
        assert handshake["welcome"]["protocolVersion"] == "1.0"
        assert handshake["welcome"]["resumeToken"] == "(hidden)"
        assert handshake["resumes"] == []
        assert KEYS["alice"] not in answer.text
        assert s.welcome.resume_token not in answer.text


@ASYNC
async def test_the_endpoints_require_credentials(stack: AgentStack) -> None:
    for path in (SESSIONS, f"{SESSIONS}/0123456789abcdef"):
        for headers in ({}, {"x-api-key": "not-a-key-0123456789"}, {"authorization": "Bearer nonsense"}):
            answer = await get(stack, path, headers)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert "www-authenticate" in answer.headers
            assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


@ASYNC
async def test_another_principals_sessions_are_not_there(stack: AgentStack) -> None:
    async with client(stack, "alice") as alice, alice.session() as s:
        theirs = s.welcome.session_id
        assert any(v["session_id"] == theirs for v in await mine(stack, "alice"))
        assert all(v["session_id"] != theirs for v in await mine(stack, "bob"))
        answer = await get(stack, f"{SESSIONS}/{theirs}", key("bob"))
        assert answer.status_code == 404
        assert answer.json()["error"]["status"] == "NOT_FOUND"
        unknown = await get(stack, f"{SESSIONS}/{'0' * 32}", key("bob"))
        assert unknown.status_code == 404
        # The same answer for both: nothing tells bob that alice's session exists.
        assert answer.json()["error"]["message"].replace(theirs, "X") == unknown.json()["error"][
            "message"
        ].replace("0" * 32, "X")


async def raw_request(stack: AgentStack, verb: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand (httpx would normalise ``..`` away), its status and body."""
    assert stack.http_url is not None
    host, port = stack.http_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"{verb} {path} HTTP/1.1", f"host: {host}", "connection: close", "content-length: 0"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "path",
    [
        f"{SESSIONS}/{'a' * 20_000}",
        f"{SESSIONS}/%00%0a%ff%2e%2e",
        f"{SESSIONS}/../../.well-known/agent-card.json",
        f"{SESSIONS}/..%2f..%2fetc%2fpasswd",
        f"{SESSIONS}/x/y",
        "/debug/a2a/sessionsx",
        "/debug/a2a/",
        "/debug/a2a/other",
    ],
)
@ASYNC
async def test_hostile_paths_are_404(stack: AgentStack, path: str) -> None:
    status, body = await raw_request(stack, "GET", path, key("alice"))
    assert status == 404, body[:300]
    assert len(body) < 2_000  # a huge id is not echoed whole
    assert b"supportedInterfaces" not in body  # not the card a traversal would reach


@pytest.mark.parametrize("verb", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
@ASYNC
async def test_verbs_other_than_get_are_405(stack: AgentStack, verb: str) -> None:
    for path in (SESSIONS, f"{SESSIONS}/0123"):
        status, body = await raw_request(stack, verb, path, key("alice"))
        assert status == 405, (verb, path, body[:200])


@ASYNC
async def test_the_server_keeps_serving_after_hostile_requests(stack: AgentStack) -> None:
    await raw_request(stack, "GET", f"{SESSIONS}/{'%ff' * 5000}", {})
    assert isinstance(await mine(stack, "alice"), list)


@pytest.mark.asyncio
async def test_debug_endpoints_off_are_not_served() -> None:
    settings = ServerSettings(observability=ObservabilitySettings(debug_endpoints=False))
    async with AgentStack(Gate(), grpc=settings, host="127.0.0.1", grpc_port=0, http_port=0) as served:
        answer = await get(served, SESSIONS)
        assert answer.status_code == 404
        assert (await get(served, "/healthz")).status_code == 200


@pytest.mark.asyncio
async def test_without_authentication_every_session_is_listed() -> None:
    async with (
        AgentStack(Gate(), host="127.0.0.1", grpc_port=0, http_port=0) as served,
        A2AClient(served.grpc_address, timeout=WAIT) as anonymous,
        anonymous.session() as s,
    ):
        views = (await get(served, SESSIONS)).json()
        assert [v["session_id"] for v in views] == [s.welcome.session_id]
        assert views[0]["principal"] is None


@pytest.mark.asyncio
async def test_a_dropped_session_shows_detached_then_its_resume_handshake() -> None:
    async with (
        AgentStack(Gate(), host="127.0.0.1", grpc_port=0, http_port=0) as served,
        CuttingProxy(int(served.grpc_address.rsplit(":", 1)[1])) as proxy,
        A2AClient(f"127.0.0.1:{proxy.port}", timeout=WAIT) as caller,
        caller.session(resume_timeout=WAIT) as s,
    ):
        session_id = s.welcome.session_id
        path = f"{SESSIONS}/{session_id}"

        def view_when(check: Callable[[dict[str, Any]], bool]) -> Callable[[], Awaitable[Any]]:
            async def seen() -> dict[str, Any] | None:
                view: dict[str, Any] = (await get(served, path)).json()
                return view if check(view) else None

            return seen

        proxy.down = True  # the client cannot reconnect: the session waits, detached
        proxy.cut()
        detached = await until(view_when(lambda v: v["attached"] is False), "detached")
        assert detached["resumes"] == 0
        proxy.down = False
        answer = await s.send_message(A2AClient.text_request("hi"))  # resumes first
        assert answer.message.parts[0].text == "done"
        resumed = await until(view_when(lambda v: v["resumes"] == 1 and v["attached"]), "resumed")
        (again,) = resumed["handshake"]["resumes"]
        assert again["welcome"]["resumed"] is True
        assert again["welcome"]["sessionId"] == session_id
        assert again["welcome"]["resumeToken"] == "(hidden)"
        assert again["hello"]["resume"]["sessionId"] == session_id
        assert again["hello"]["resume"]["resumeToken"] == "(hidden)"
        assert s.welcome.resume_token not in json.dumps(resumed)


# -- the command line ---------------------------------------------------------------------------


async def sessions_cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """``a2a-grpc sessions ARGS`` with ``key`` (if any) in the environment, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k not in (API_KEY_ENV, BEARER_TOKEN_ENV)}
    if key is not None:
        env[API_KEY_ENV] = key
    proc = await asyncio.create_subprocess_exec(
        *CLI, "sessions", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


@pytest.mark.asyncio
async def test_the_sessions_command_against_a_server_process(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"alice {KEYS['alice']}\nbob {KEYS['bob']}\n")
    output = tmp_path / "serve.log"
    command = [*CLI, "serve", "--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0"]
    command += ["--store", "memory"]
    proc = await asyncio.to_thread(start_serving, [*command, "--api-keys-file", str(keys)], output)
    try:
        text = output.read_text()
        grpc_at = re.search(r"over gRPC at (\S+)", text)
        http_at = re.search(r"HTTP\+JSON at (\S+)", text)
        assert grpc_at, text
        assert http_at, text
        url = http_at.group(1)
        credentials = Credentials(api_key=KEYS["alice"])
        async with (
            A2AClient(grpc_at.group(1), credentials=credentials, timeout=WAIT) as caller,
            caller.session(agent_name="cli") as s,
        ):
            session_id = s.welcome.session_id
            refused = await sessions_cli(url)
            assert refused.returncode == 1
            assert "answered 401" in refused.stderr
            assert "requires credentials" in refused.stderr
            table = await sessions_cli(url, key=KEYS["alice"])
            assert table.returncode == 0, table.stderr
            header, *rows = table.stdout.splitlines()
            assert header.split()[:4] == ["SESSION", "PEER", "PRINCIPAL", "AGE"]
            assert len(rows) == 1
            assert rows[0].split()[:3] == [session_id, rows[0].split()[1], "alice"]
            others = await sessions_cli(url, key=KEYS["bob"])
            assert others.returncode == 0, others.stderr
            assert others.stdout.splitlines()[1:] == []  # bob has none, and sees none of alice's
            as_json = await sessions_cli(url, "--json", key=KEYS["alice"])
            assert as_json.returncode == 0, as_json.stderr
            assert [v["session_id"] for v in json.loads(as_json.stdout)] == [session_id]
            one = await sessions_cli(url, "--id", session_id, "--json", key=KEYS["alice"])
            assert one.returncode == 0, one.stderr
            assert json.loads(one.stdout)["handshake"]["hello"]["agentName"] == "cli"
            shown = await sessions_cli(url, "--id", session_id, key=KEYS["alice"])
            assert shown.returncode == 0, shown.stderr
            assert "hello:" in shown.stdout
            assert "welcome:" in shown.stdout
            assert session_id in shown.stdout
            assert KEYS["alice"] not in shown.stdout
            theirs = await sessions_cli(url, "--id", session_id, key=KEYS["bob"])
            assert theirs.returncode == 1
            assert "answered 404" in theirs.stderr
            missing = await sessions_cli(url, "--id", "../nope", key=KEYS["alice"])
            assert missing.returncode == 1
            assert "answered 404" in missing.stderr
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 15)


@pytest.mark.asyncio
async def test_the_sessions_command_wants_a_url() -> None:
    result = await run_async("sessions", "127.0.0.1:50051")
    assert result.returncode == 2
    assert "must be an http(s):// URL" in result.stderr


@pytest.mark.asyncio
async def test_the_sessions_command_says_when_nothing_listens() -> None:
    result = await run_async("sessions", "http://127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr.startswith("a2a-grpc: error: cannot read the sessions at http://127.0.0.1:1")
