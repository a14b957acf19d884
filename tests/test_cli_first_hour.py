"""A new user's first hour with the ``a2a-grpc`` command: every rough edge they met, as a test.

Each server is a real process on 127.0.0.1 port 0 (or on the port a test needs busy), read
through its start-up lines with a bounded wait, and stopped by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge.card import bridge_interfaces
from a2a_grpc.bridge.httpserver import HttpServer
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore, SqliteTaskStore
from tests.bridge_peers import serve_stack

CLI = [sys.executable, "-m", "a2a_grpc.cli"]
SCRIPT = Path(sysconfig.get_path("scripts")) / "a2a-grpc"
"""The installed entry point, as users run it (it puts only its own directory on sys.path)."""
REPO = Path(__file__).resolve().parent.parent
START = 20.0
"""Seconds a server process may take to print its start-up lines."""
BUSY = "address already in use"


def run(
    *args: str, command: Sequence[str] = CLI, timeout: float = 40, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """The command to its end; one still running after ``timeout`` seconds is killed (TimeoutExpired)."""
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def help_text(*command: str) -> str:
    """``a2a-grpc COMMAND --help``, its whitespace folded (argparse wraps at the terminal width)."""
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed: exit status 1, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("a2a-grpc: error: "), lines
    return lines[0]


@dataclass
class Served:
    """A server process and the start-up lines it printed."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def find(self, pattern: str) -> str:
        for line in self.lines:
            if found := re.search(pattern, line):
                return found.group(1)
        raise AssertionError(f"{pattern!r} not in {self.lines}")

    @property
    def grpc(self) -> str:
        return self.find(r"over gRPC at (\S+)")

    @property
    def http(self) -> str:
        return self.find(r"HTTP\+JSON at (http://\S+)")


@contextlib.contextmanager
def serving(
    *args: str, command: Sequence[str] = CLI, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """``a2a-grpc serve ARGS`` until its last start-up line (the "try" hint); stopped by PID."""
    proc = subprocess.Popen(
        [*command, "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    served = Served(proc)
    try:
        deadline = time.monotonic() + START
        while not served.lines or "a2a-grpc: try" not in served.lines[-1]:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no start-up lines within {START:g} s: {served.lines}") from None
            if not line:
                raise AssertionError(f"the server exited ({proc.wait(5)}): {served.lines}")
            served.lines.append(line.rstrip("\n"))
        yield served
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


async def run_async(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a subprocess, without blocking this event loop (for servers running in it)."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())


# --- 1. a busy port is an error unless sharing is asked for -------------------------------------


def test_server_settings_do_not_share_ports_by_default() -> None:
    assert ("grpc.so_reuseport", 0) in ServerSettings().grpc_options()
    assert ("grpc.so_reuseport", 1) in ServerSettings(reuse_port=True).grpc_options()


@pytest.mark.asyncio
async def test_a2a_server_on_a_busy_port_raises_and_the_first_keeps_serving() -> None:
    first = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=0))
    await first.start()
    try:
        second = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=first.port))
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.port}: {BUSY}"):
            await second.start()
        async with A2AClient(first.address, timeout=10) as client:
            reply = await client.send_message(A2AClient.text_request("echo still here"))
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await first.stop(0)


@pytest.mark.asyncio
async def test_a2a_servers_that_both_ask_share_a_port() -> None:
    first = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=0, reuse_port=True))
    await first.start()
    try:
        second = A2AServer(
            ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=first.port, reuse_port=True)
        )
        try:
            assert await second.start() == first.port
        finally:
            await second.stop(0)
    finally:
        await first.stop(0)


def test_http_server_on_a_busy_port_raises() -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: {BUSY}"):
            HttpServer(None, "127.0.0.1", port).bind()


def test_a_second_serve_on_a_busy_port_fails_in_one_line() -> None:
    with serving("--grpc-port", "0", "--http-port", "0", "--store", "memory") as first:
        grpc_port = first.grpc.rpartition(":")[2]
        # A server that started instead would run until killed: TimeoutExpired.
        busy_grpc = run("serve", "--grpc-port", grpc_port, "--store", "memory", timeout=15)
        line = error_line(busy_grpc)
        assert f"cannot listen on 127.0.0.1:{grpc_port}: {BUSY}" in line
        assert "--reuse-port" in line

        http_port = first.http.rpartition(":")[2]
        busy_http = run(
            "serve", "--grpc-port", "0", "--http-port", http_port, "--store", "memory", timeout=15
        )
        assert f"cannot listen on 127.0.0.1:{http_port}: {BUSY}" in error_line(busy_http)

        # The first server never noticed.
        sent = run("send", first.grpc, "echo still serving")
        assert sent.returncode == 0, sent.stderr
        assert "TASK_STATE_COMPLETED" in sent.stdout


def test_serve_with_reuse_port_shares_it() -> None:
    with serving("--grpc-port", "0", "--store", "memory", "--reuse-port") as first:
        port = first.grpc.rpartition(":")[2]
        with serving("--grpc-port", port, "--store", "memory", "--reuse-port") as second:
            assert second.grpc == first.grpc


# --- 2. the agent's module is found from the working directory ----------------------------------

SHOUT = """\
from a2a_grpc import types
from a2a_grpc.agent import Agent


class Shout(Agent):
    card = types.AgentCard(name="shout", description="upper-cases", version="1.0.0")

    async def execute(self, ctx, updater):
        await updater.artifact([types.Part(text=ctx.text.upper())], name="shout")
        await updater.complete()
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    if not SCRIPT.exists():
        pytest.skip(f"no installed entry point at {SCRIPT}")
    (tmp_path / "shout.py").write_text(SHOUT)
    (tmp_path / "broken.py").write_text("import json\n\nx = undefined_name\n")
    (tmp_path / "typo.py").write_text("def f(:\n    pass\n")
    (tmp_path / "needs.py").write_text("import a2a_grpc_no_such_dependency\n")
    return tmp_path


def test_serve_imports_the_agent_from_the_current_directory(app_dir: Path) -> None:
    with serving(
        "--agent", "shout:Shout", "--grpc-port", "0", "--store", "memory", command=[str(SCRIPT)], cwd=app_dir
    ) as s:
        assert "serving 'shout'" in s.lines[0]
        sent = run("send", s.grpc, "hello")
        assert '"text": "HELLO"' in sent.stdout, sent.stderr


def test_serve_imports_the_agent_from_app_dir(app_dir: Path) -> None:
    args = ["--agent", "shout:Shout", "--app-dir", str(app_dir), "--grpc-port", "0", "--store", "memory"]
    with serving(*args, command=[str(SCRIPT)], cwd=REPO / "docs") as s:
        assert "serving 'shout'" in s.lines[0]


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        (
            "broken:X",
            "importing 'broken' failed: NameError: name 'undefined_name' is not defined (broken.py, line 3)",
        ),
        ("typo:X", "importing 'typo' failed: SyntaxError: invalid syntax (typo.py, line 1)"),
        (
            "needs:X",
            "importing 'needs' failed: ModuleNotFoundError: No module named 'a2a_grpc_no_such_dependency' "
            "(needs.py, line 1)",
        ),
        (
            "nosuch:X",
            "cannot import 'nosuch': no module 'nosuch' in the current directory or on the Python path",
        ),
        ("shout:Nope", "module 'shout' has no attribute 'Nope'"),
    ],
)
def test_an_agent_module_that_fails_says_why_and_where(app_dir: Path, agent: str, message: str) -> None:
    result = run(
        "serve", "--agent", agent, "--grpc-port", "0", "--store", "memory", command=[str(SCRIPT)], cwd=app_dir
    )
    assert message in error_line(result)


# --- 3. --version, --log-level, a hint the user can run, make run's ports -------------------------


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"a2a-grpc {metadata.version('a2a-grpc')} (A2A protocol 1.0)"


@pytest.mark.parametrize(
    "args",
    [
        ["--log-level", "debug", "card", "127.0.0.1:1", "--timeout", "0.2"],
        ["card", "127.0.0.1:1", "--timeout", "0.2", "--log-level", "debug"],
    ],
)
def test_log_level_before_or_after_the_command(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert re.search(r"DEBUG asyncio: Using selector", result.stderr), result.stderr


def test_log_level_defaults_to_warning_and_is_checked() -> None:
    quiet = run("card", "127.0.0.1:1", "--timeout", "0.2")
    assert "DEBUG" not in quiet.stderr
    assert "INFO" not in quiet.stderr
    bad = run("--log-level", "loud", "card", "127.0.0.1:1")
    assert bad.returncode == 2
    assert "invalid choice: 'loud'" in bad.stderr
    assert "default: warning" in run("--help").stdout


def test_serve_logs_at_info_when_asked() -> None:
    with serving("--grpc-port", "0", "--store", "memory", "--log-level", "info") as s:
        assert any(re.search(r"INFO a2a_grpc\.server: serving", line) for line in s.lines), s.lines


def test_the_hint_is_a_command_the_user_can_run() -> None:
    if not SCRIPT.exists():
        pytest.skip(f"no installed entry point at {SCRIPT}")
    # Not on PATH (the usual .venv case): the hint names the script, relative to where the user is.
    elsewhere = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != SCRIPT.parent
    )
    if shutil.which("a2a-grpc", path=elsewhere):
        pytest.skip("another a2a-grpc is on PATH")
    env = {**os.environ, "PATH": elsewhere}
    home = SCRIPT.parent.parent.parent  # where .venv is
    with serving("--grpc-port", "0", "--store", "memory", command=[str(SCRIPT)], cwd=home, env=env) as s:
        hint = re.search(r"a2a-grpc: try  (\S+) send (\S+) 'hello'", s.lines[-1])
        assert hint, s.lines[-1]
        assert hint.group(1) == os.path.relpath(SCRIPT, home)  # e.g. .venv/bin/a2a-grpc
        assert hint.group(2) == s.grpc
        tried = run("send", hint.group(2), "echo hint", command=[hint.group(1)], cwd=home, env=env)
        assert tried.returncode == 0, tried.stderr
    # On PATH: the plain command name.
    env = {**os.environ, "PATH": os.pathsep.join([str(SCRIPT.parent), elsewhere])}
    with serving("--grpc-port", "0", "--store", "memory", command=[str(SCRIPT)], env=env) as s:
        assert f"a2a-grpc: try  a2a-grpc send {s.grpc} 'hello'" in s.lines[-1]


def test_make_run_takes_both_ports() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    dry = subprocess.run(
        ["make", "-n", "run", "GRPC_PORT=50061", "HTTP_PORT=8081"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "a2a-grpc serve --grpc-port 50061 --http-port 8081" in dry.stdout, dry.stdout + dry.stderr
    helped = subprocess.run(
        ["make", "help"], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
    )
    assert "GRPC_PORT" in helped.stdout
    assert "HTTP_PORT" in helped.stdout
    assert "GRPC_PORT" in (REPO / "README.md").read_text()


# --- 4. arguments are checked before anything is dialled ---------------------------------------

CLIENT_COMMANDS = [
    ["send", "{address}", "hi"],
    ["card", "{address}"],
    ["tasks", "get", "{address}", "t"],
    ["tasks", "cancel", "{address}", "t"],
    ["tasks", "list", "{address}"],
]


def usage_of(command: list[str]) -> str:
    return "usage: a2a-grpc " + " ".join(w for w in command if not w.startswith("{") and w not in ("hi", "t"))


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_client_command_wants_host_and_port(command: list[str]) -> None:
    result = run(*(w.format(address="127.0.0.1") for w in command))
    assert result.returncode == 2
    assert result.stderr.startswith(usage_of(command))
    assert "argument address: '127.0.0.1' has no port: give HOST:PORT, e.g. 127.0.0.1:50051" in result.stderr


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("::1:50051", "put an IPv6 address in brackets, e.g. [::1]:50051"),
        ("127.0.0.1:0", "must be a number 1..65535"),
        ("127.0.0.1:http", "must be a number 1..65535"),
        ("grpc://127.0.0.1:50051", "give HOST:PORT (gRPC) or an http(s):// URL"),
    ],
)
def test_bad_addresses_are_refused_locally(address: str, message: str) -> None:
    result = run("tasks", "list", address)
    assert result.returncode == 2
    assert message in result.stderr


def test_an_ipv6_address_in_brackets_is_dialled() -> None:
    result = run("tasks", "get", "[::1]:1", "t", "--timeout", "1")
    assert "usage:" not in result.stderr
    assert "UnavailableError" in error_line(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "list", "127.0.0.1:1", "--page-size", "0"], "argument --page-size: must be 1..100, not 0"),
        (
            ["tasks", "list", "127.0.0.1:1", "--page-size", "101"],
            "argument --page-size: must be 1..100, not 101",
        ),
        (["send", "127.0.0.1:1", "hi", "--timeout", "-1"], "argument --timeout: must be a positive number"),
        (["card", "127.0.0.1:1", "--timeout", "0"], "argument --timeout: must be a positive number"),
        (
            ["tasks", "get", "127.0.0.1:1", "t", "--timeout", "inf"],
            "argument --timeout: must be a positive number",
        ),
        (
            ["tasks", "get", "127.0.0.1:1", "t", "--history-length", "-1"],
            "argument --history-length: must be 0 or more",
        ),
        (
            ["send", "127.0.0.1:1", "hi", "--history-length", "x"],
            "argument --history-length: must be a whole number",
        ),
        (["serve", "--grpc-port", "70000"], "argument --grpc-port: must be a port number 0..65535"),
        (["serve", "--http-port", "-1"], "argument --http-port: must be a port number 0..65535"),
    ],
)
def test_bad_values_are_refused_before_any_call(args: list[str], message: str) -> None:
    # Port 1 has no server: had the value reached a call, the answer would be UNAVAILABLE (status 1).
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_page_size_help_gives_the_range() -> None:
    assert "tasks per page, 1..100" in help_text("tasks", "list")


# --- 5. an http(s) URL: the agent card says where gRPC is ----------------------------------------


class CardApp:
    """A minimal ASGI app that publishes one agent card at the well-known path."""

    def __init__(self, card: types.AgentCard) -> None:
        from google.protobuf import json_format

        self.body = json.dumps(json_format.MessageToDict(card)).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        found = scope["path"] == "/.well-known/agent-card.json"
        await send(
            {
                "type": "http.response.start",
                "status": 200 if found else 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": self.body if found else b"{}"})


@contextlib.asynccontextmanager
async def card_site(card: types.AgentCard) -> AsyncIterator[str]:
    http = HttpServer(CardApp(card), "127.0.0.1", 0, grace=1.0)
    await http.start()
    try:
        yield http.url
    finally:
        await http.stop()


@pytest.mark.asyncio
async def test_send_to_a_url_uses_the_first_grpc_interface_of_its_card() -> None:
    async with serve_stack() as stack:  # the card lists GRPC first, then the bridge's two
        sent = await run_async("send", stack.url, "echo through the card")
        assert sent.returncode == 0, sent.stderr
        task_id = json.loads(sent.stdout)["task"]["id"]
        got = await run_async("tasks", "get", stack.url + "/", task_id)
        assert "echo through the card" in got.stdout, got.stderr
        listed = await run_async("tasks", "list", stack.url, "--page-size", "5")
        assert task_id in listed.stdout
        shown = await run_async("card", stack.url)
        assert json.loads(shown.stdout)["supportedInterfaces"][0]["protocolBinding"] == "GRPC"


@pytest.mark.asyncio
async def test_a_url_card_tenant_goes_into_every_request() -> None:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=0))
    await server.start()
    try:
        card = types.AgentCard()
        card.CopyFrom(server.card())
        del card.supported_interfaces[:]
        # Not first in the card: the first GRPC one is what counts.
        card.supported_interfaces.extend(bridge_interfaces("http://127.0.0.1:9"))
        card.supported_interfaces.add(
            url=server.address, protocol_binding="GRPC", protocol_version="1.0", tenant="acme"
        )
        card.supported_interfaces.add(url="127.0.0.1:9", protocol_binding="GRPC", protocol_version="1.0")
        async with card_site(card) as url:
            sent = await run_async("send", url, "slow 30", "--return-immediately")  # cancelable
            assert sent.returncode == 0, sent.stderr
            task_id = json.loads(sent.stdout)["task"]["id"]
            async with A2AClient(server.address, timeout=10) as client:
                assert (await client.get_task(task_id, tenant="acme")).id == task_id
                with pytest.raises(errors.TaskNotFoundError):
                    await client.get_task(task_id)
            for args in (
                ["tasks", "get", url, task_id],
                ["tasks", "cancel", url, task_id],
                ["tasks", "list", url],
            ):
                result = await run_async(*args)
                assert task_id in result.stdout, (args, result.stderr)
    finally:
        await server.stop(0)


@pytest.mark.asyncio
async def test_a_url_whose_card_has_no_grpc_interface_says_what_to_do() -> None:
    card = types.AgentCard(name="json only", description="x", version="1")
    card.supported_interfaces.extend(bridge_interfaces("http://127.0.0.1:9"))
    async with card_site(card) as url:
        for args in (["send", url, "hi"], ["tasks", "list", url]):
            line = error_line(await run_async(*args))
            assert "has no GRPC interface" in line
            assert "JSONRPC 1.0 at http://127.0.0.1:9/, HTTP+JSON 1.0 at http://127.0.0.1:9" in line
            assert f"a2a-grpc bridge grpc-to-http --upstream {url}" in line


# --- 6. a bad flag shows the usage of the command it was given to --------------------------------


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["tasks", "list", "127.0.0.1:1", "--bogus"], "usage: a2a-grpc tasks list"),
        (["serve", "--bogus"], "usage: a2a-grpc serve"),
        (
            ["bridge", "grpc-to-http", "--upstream", "http://127.0.0.1:1", "--bogus"],
            "usage: a2a-grpc bridge grpc-to-http",
        ),
        (["send", "127.0.0.1:1", "hi", "--bogus", "1"], "usage: a2a-grpc send"),
    ],
)
def test_an_unknown_flag_shows_its_commands_usage(args: list[str], usage: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(usage), result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr


# --- 7. help and docs speak to users ------------------------------------------------------------


def test_help_and_docs_speak_of_the_project() -> None:
    texts = {
        "bench --help": run("bench", "--help").stdout,
        **{
            f"{' '.join(c)} --help": run(*c, "--help").stdout
            for c in (["serve"], ["bridge", "http-to-grpc"], ["send"])
        },
        **{
            name: (REPO / name).read_text() for name in ("README.md", "docs/performance.md", "docs/bridge.md")
        },
    }
    for name, text in texts.items():
        for phrase in ("the issue", "issue's", "stored copy"):  # whole words: "the issuer" is fine
            assert not re.search(rf"\b{re.escape(phrase)}\b", text.lower()), f"{name} says {phrase!r}"
    assert "the project's speed goals" in texts["bench --help"]


# --- 8. --history-length -------------------------------------------------------------------------


def test_history_length_on_send_and_cancel() -> None:
    with serving("--grpc-port", "0", "--store", "memory") as s:
        full = json.loads(run("send", s.grpc, "echo a").stdout)["task"]
        assert full["history"]
        trimmed = json.loads(run("send", s.grpc, "echo a", "--history-length", "0").stdout)["task"]
        assert "history" not in trimmed

        started = run("send", s.grpc, "slow 30", "--return-immediately")
        task_id = json.loads(started.stdout)["task"]["id"]
        time.sleep(0.5)  # a few progress messages into its history
        assert len(json.loads(run("tasks", "get", s.grpc, task_id).stdout)["history"]) > 1
        canceled = run("tasks", "cancel", s.grpc, task_id, "--history-length", "1")
        assert canceled.returncode == 0, canceled.stderr
        task = json.loads(canceled.stdout)
        assert task["status"]["state"] == "TASK_STATE_CANCELED"
        assert len(task["history"]) == 1
    assert "this command trims the task it gets back" in help_text("tasks", "cancel")


# --- 9. an unusable SQLite store: one line, at start -----------------------------------------------


def serve_store(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run("serve", "--grpc-port", "0", "--store", f"sqlite:///{path}", *extra)  # path is absolute


def store_error(result: subprocess.CompletedProcess[str], path: Path) -> str:
    line = error_line(result)
    assert line.startswith(f"a2a-grpc: error: task store {path}"), line
    return line


def make_store(path: Path, tasks: int) -> None:
    async def fill() -> None:
        store = SqliteTaskStore(str(path))
        for n in range(tasks):
            task = types.Task(
                id=f"t{n:04d}", context_id="c", status=types.TaskStatus(state=types.TASK_STATE_COMPLETED)
            )
            task.status.timestamp.seconds = 1_700_000_000 + n
            task.history.add(message_id=f"m{n}").parts.add(text="hello " * 20)
            await store.save("", task)
        await store.close()

    asyncio.run(fill())


def test_serve_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.write_bytes(os.urandom(16384))
    assert "is not an SQLite database" in store_error(serve_store(path), path)


def test_serve_refuses_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.mkdir()
    assert "is a directory, not a database file" in store_error(serve_store(path), path)


def test_serve_refuses_an_unwritable_path(tmp_path: Path) -> None:
    from tests.test_task_store import unwritable_path

    path = unwritable_path(tmp_path)
    assert "cannot be opened for reading and writing: permission denied" in store_error(
        serve_store(path), path
    )


@pytest.mark.slow  # the command waits 5 s for the lock before giving up
def test_serve_refuses_a_store_another_process_keeps_locked(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    make_store(path, 1)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM tasks")
        assert "is locked by another process" in store_error(serve_store(path), path)
    finally:
        holder.close()


def test_serve_refuses_a_store_with_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    make_store(path, 200)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tasks_by_state'").fetchone()
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    with path.open("r+b") as file:
        file.seek((root - 1) * size)
        file.write(b"\xa5" * size)
    line = store_error(serve_store(path), path)
    assert "is damaged (SQLite quick_check:" in line
    assert "restore it from a backup, or move it aside to start with an empty store" in line
    # The check can be skipped (the damage then surfaces in calls that read the damaged index).
    with serving("--grpc-port", "0", "--store", f"sqlite:///{path}", "--no-integrity-check") as s:
        assert any("task store" in line for line in s.lines)


def test_serve_help_gives_the_integrity_check_cost() -> None:
    text = help_text("serve")
    assert "--no-integrity-check" in text
    assert "0.3 s per 100,000 tasks" in text
