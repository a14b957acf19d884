"""examples/go-client against our server: built from the Go stubs tools/stubs.py generates (GOPATH
mode, Debian's Go packages), run as a process against an in-process server, its answers checked.

The client prints one JSON line per step (unary, stream, session) and exits 0 only if every step
succeeded; any failure is a message on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from a2a_grpc import types
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security import ApiKey, ApiKeyScheme, Authentication
from tests.conftest import Served, serve, shutdown, stop_process
from tests.tools import load_tool

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "./examples/go-client"
MISSING = "run `make stubs-tools` (it installs Go and Debian's Go packages)"
API_KEY = "go-client-key-0123456789"


def _run(args: list[str], what: str, **kwargs: Any) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="session")
def go_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client binary: the Go stubs generated into a fresh GOPATH, then `go build` (the build
    cache is build/go-cache, shared with `make stubs-go`, so only the first build is slow)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail(f"go is not installed: {MISSING}")
    gopath = tmp_path_factory.mktemp("gopath")
    _run(
        [sys.executable, str(ROOT / "tools" / "stubs.py"), "generate", "go", "--out", str(gopath)],
        "generating the Go stubs",
        cwd=ROOT,
        timeout=120,
    )
    env = load_tool("stubs").go_env(gopath)
    # grpc-go marshals through github.com/golang/protobuf: its 1.3 runtime (Debian's
    # golang-github-golang-protobuf-1-3-dev) builds, then panics on protoc-gen-go 1.28's messages.
    imports = _run(
        [go, "list", "-f", '{{join .Imports " "}}', "github.com/golang/protobuf/proto"],
        "go list",
        env=env,
        timeout=60,
    )
    if "google.golang.org/protobuf/proto" not in imports.split():
        pytest.fail(
            "github.com/golang/protobuf is the 1.3 runtime, which cannot marshal the generated "
            f"messages: install golang-github-golang-protobuf-1-5-dev ({MISSING})"
        )
    binary = gopath / "go-client"
    build = [go, "build", "-o", str(binary), EXAMPLE]
    _run(build, "go build of examples/go-client", cwd=ROOT, env=env, timeout=240)
    return binary


@dataclass
class Run:
    code: int
    lines: list[dict[str, Any]]
    stderr: str

    def step(self, name: str) -> dict[str, Any]:
        found = [line for line in self.lines if line["step"] == name]
        assert len(found) == 1, self
        return found[0]


async def run_client(binary: Path, *args: str, wait: float = 30.0) -> Run:
    """Run the client to its end (stopped by PID if it outlives ``wait``)."""
    proc = await asyncio.create_subprocess_exec(
        str(binary), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(wait):
            out, err = await proc.communicate()
    finally:
        await stop_process(proc)
    assert proc.returncode is not None
    return Run(proc.returncode, [json.loads(line) for line in out.decode().splitlines()], err.decode())


async def sessions_ended(served: Served) -> None:
    """Every session the server opened has ended (a client that leaves without a Goodbye leaves its
    session detached, waiting 30 s to be resumed)."""
    host = served.server.sessions
    assert host is not None
    held = list(host.sessions.values())
    try:
        async with asyncio.timeout(5):
            for session in held:
                await session.ended.wait()
    except TimeoutError:
        pytest.fail("a session is still held by the server: the client left without a Goodbye")


@pytest_asyncio.fixture
async def guarded() -> AsyncIterator[Served]:
    """The reference agent behind an API key (X-API-Key)."""
    authentication = Authentication([ApiKeyScheme([ApiKey("go-client", key=API_KEY)])])
    served = await serve(ReferenceAgent(), authentication=authentication)
    try:
        yield served
    finally:
        await shutdown(served)


def stream_events(task_id: str, n: int) -> list[dict[str, Any]]:
    """What the reference agent streams for "stream N", as the client sums it up."""
    chunks = [
        {"kind": "artifact", "task_id": task_id, "artifact": "stream", "text": f"chunk {i}"}
        | ({"append": True} if i > 0 else {})
        | ({"last_chunk": True} if i == n - 1 else {})
        for i in range(n)
    ]
    return [
        {"kind": "task", "task_id": task_id, "state": "TASK_STATE_SUBMITTED"},
        {"kind": "status", "task_id": task_id, "state": "TASK_STATE_WORKING"},
        *chunks,
        {"kind": "status", "task_id": task_id, "state": "TASK_STATE_COMPLETED"},
    ]


def check_answers(run: Run) -> dict[str, Any]:
    """The three steps' answers, as the reference agent gives them; the session line, returned."""
    assert run.code == 0, run.stderr
    assert [line["step"] for line in run.lines] == ["unary", "stream", "session"]

    unary = run.step("unary")
    assert unary["state"] == "TASK_STATE_COMPLETED"
    assert unary["artifacts"] == [{"kind": "artifact", "artifact": "echo", "text": "echo hello from Go"}]

    events = run.step("stream")["events"]
    task_id = events[0]["task_id"]
    assert task_id
    assert task_id != unary["task_id"]
    assert events == stream_events(task_id, 3)

    session = run.step("session")
    assert session["protocol_version"] == "1.0"
    assert session["agent"] == "a2a-grpc reference agent"
    assert session["closed"] is True
    calls = session["calls"]
    assert set(calls) == {"1", "2"}
    for call in calls.values():
        assert call["code"] == "OK"
        # Numbered by the task's event log: the snapshot that opens the stream (0: no event
        # yet), then every event, with no gap.
        assert [e["seq"] for e in call["events"]] == list(range(len(call["events"])))
        assert len({e["task_id"] for e in call["events"]}) == 1
    one, two = calls["1"], calls["2"]
    assert one["text"] == "stream 4"
    one_task = one["events"][0]["task_id"]
    assert [{k: v for k, v in e.items() if k != "seq"} for e in one["events"]] == stream_events(one_task, 4)
    assert two["text"] == "slow 0.5"
    two_task = two["events"][0]["task_id"]
    assert two_task not in (one_task, task_id, unary["task_id"])
    progress = [(e["kind"], e["state"], e.get("text")) for e in two["events"]]
    assert progress[0] == ("task", "TASK_STATE_SUBMITTED", None)
    assert progress[1] == ("status", "TASK_STATE_WORKING", "starting")
    assert progress[-1] == ("status", "TASK_STATE_COMPLETED", "done")
    middle = progress[2:-1]
    assert middle  # "0.4s left" ... "0.0s left": how many depends on the clock
    assert all(p[:2] == ("status", "TASK_STATE_WORKING") and p[2].endswith("s left") for p in middle)
    # Every frame of both calls reached its own call: its events and its CallEnd.
    arrival = session["arrival"]
    assert sorted(arrival) == [1] * (len(one["events"]) + 1) + [2] * (len(two["events"]) + 1)
    return session


async def test_the_go_client_gets_every_answer(go_client: Path, reference: Served) -> None:
    run = await run_client(go_client, "-addr", reference.server.address, "-timeout", "20s")
    session = check_answers(run)
    for call in session["calls"].values():  # the tasks are the server's, and done
        task = await reference.client.get_task(call["events"][0]["task_id"])
        assert task.status.state == types.TASK_STATE_COMPLETED
    await sessions_ended(reference)  # the client said Goodbye: its session ended, not detached


async def test_the_session_carries_the_credentials_and_bad_ones_are_refused(
    go_client: Path, guarded: Served
) -> None:
    address = guarded.server.address
    check_answers(await run_client(go_client, "-addr", address, "-header", f"X-API-Key={API_KEY}"))

    wrong = await run_client(
        go_client, "-addr", address, "-steps", "session", "-header", "X-API-Key=not-the-key-0123456789"
    )
    assert wrong.code == 1
    assert wrong.lines == []
    assert wrong.stderr.startswith("go-client: session: the server refused the session: UNAUTHENTICATED")

    anonymous = await run_client(go_client, "-addr", address, "-steps", "unary")
    assert anonymous.code == 1
    assert anonymous.stderr.startswith("go-client: unary: UNAUTHENTICATED")
    await sessions_ended(guarded)


async def test_a_session_asking_for_a_missing_skill_is_refused(go_client: Path, reference: Served) -> None:
    address = reference.server.address
    asking = ["-addr", address, "-steps", "session", "-require-skills", "translate"]
    refused = await run_client(go_client, *asking)
    assert refused.code == 1
    assert refused.lines == []
    assert "go-client: session: the server refused the session: FAILED_PRECONDITION" in refused.stderr
    assert "reason CAPABILITY_MISMATCH" in refused.stderr
    assert "missing_skills=translate" in refused.stderr
    # The server goes on serving: the next session, and a plain call.
    again = await run_client(go_client, "-addr", address, "-steps", "session,unary")
    assert again.code == 0, again.stderr
    assert [line["step"] for line in again.lines] == ["session", "unary"]
    assert all(call["code"] == "OK" for call in again.step("session")["calls"].values())


async def test_nothing_listening_fails_with_the_reason(go_client: Path) -> None:
    with socket.socket() as bound:  # bound, not listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        run = await run_client(go_client, "-addr", f"127.0.0.1:{port}", "-timeout", "5s")
    assert run.code == 1
    assert run.lines == []
    assert run.stderr.startswith("go-client: unary: UNAVAILABLE")
    assert "connection refused" in run.stderr
