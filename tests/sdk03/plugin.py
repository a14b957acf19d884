"""The pytest side of the a2a-sdk 0.3 harness (runs in OUR virtualenv; tests/conftest.py loads it).

* ``sdk03_python`` (session): the 0.3 virtualenv's interpreter, built on first use
  (tests/sdk03/bootstrap.py). A build that fails FAILS the test that asked, with pip's output; it
  never skips.
* ``sdk03_server`` (module): the official 0.3 agent (tests/sdk03/server.py) on JSON-RPC, HTTP+JSON
  and gRPC, as a :class:`Sdk03Server`; :func:`start_sdk03_server` starts a private one.
* :func:`run_sdk03_client` (async) / :func:`run_sdk03_client_sync`: the official 0.3 client
  (tests/sdk03/client.py) running one scenario against a target; returns its JSON lines, whose
  shapes tests/sdk03/normal.py describes. :func:`steps` and :func:`one` pick lines by step.

While the virtualenv is not built yet, a test that uses it gets a timeout long enough for the
build (pytest-timeout's 60 s would not do); once built, the usual timeout applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.sdk03.bootstrap import BUILD_TIMEOUT, Sdk03VenvError, clean_env, ensure_venv, is_ready

__all__ = [
    "CLIENT_SCRIPT",
    "SERVER_SCRIPT",
    "TRANSPORTS",
    "Sdk03Server",
    "one",
    "run_sdk03_client",
    "run_sdk03_client_sync",
    "sdk03_interpreter",
    "sdk03_python",
    "sdk03_server",
    "start_sdk03_server",
    "steps",
]

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "server.py"
CLIENT_SCRIPT = HERE / "client.py"
TRANSPORTS = ("jsonrpc", "rest", "grpc")
READY_TIMEOUT = 60.0
STOP_GRACE = 15.0
_EXTRA = 15.0
"""Seconds the harness waits for a client past the scenario's own limit (start-up, imports)."""


@dataclass(frozen=True)
class Sdk03Server:
    """A running official 0.3 agent: where each binding is, and its card."""

    pid: int
    jsonrpc: str
    """The JSON-RPC URL (POST), ending in '/'."""
    rest: str
    """The HTTP+JSON base URL (routes under /v1)."""
    grpc: str
    """The gRPC target, host:port (service a2a.v1.A2AService)."""
    card: str
    """The agent card URL (/.well-known/agent-card.json), on the JSON-RPC port."""

    def target(self, transport: str) -> str:
        return {"jsonrpc": self.jsonrpc, "rest": self.rest, "grpc": self.grpc}[transport]


_built: Path | Sdk03VenvError | None = None


def sdk03_interpreter() -> Path:
    """The 0.3 virtualenv's python, built once per session; ``pytest.fail`` if it cannot be."""
    global _built
    if _built is None:
        try:
            _built = ensure_venv()
        except Sdk03VenvError as exc:
            _built = exc
    if isinstance(_built, Sdk03VenvError):
        pytest.fail(f"the a2a-sdk 0.3 virtualenv (build/sdk03-venv) could not be built: {_built}")
    return _built


@pytest.fixture(scope="session")
def sdk03_python() -> Path:
    return sdk03_interpreter()


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def start_sdk03_server(python: Path, timeout: float = READY_TIMEOUT) -> Iterator[Sdk03Server]:
    """Start tests/sdk03/server.py; wait (bounded) for its ready line; stop it by PID at the end."""
    with tempfile.TemporaryDirectory(prefix="sdk03-server-") as folder:
        log = Path(folder) / "stderr.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [str(python), str(SERVER_SCRIPT)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                env=clean_env(),
            )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout
            line = ""
            while not line and proc.poll() is None and (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([proc.stdout], [], [], left)
                if readable:
                    line = proc.stdout.readline()  # the ready line is written whole, then flushed
            if not line:
                state = f"exited {proc.returncode}" if proc.poll() is not None else f"silent {timeout:.0f} s"
                pytest.fail(f"the a2a-sdk 0.3 server did not start ({state}):\n{_tail(log)}")
            ready = json.loads(line)
            yield Sdk03Server(ready["pid"], ready["jsonrpc"], ready["rest"], ready["grpc"], ready["card"])
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def sdk03_server(sdk03_python: Path) -> Iterator[Sdk03Server]:
    with start_sdk03_server(sdk03_python) as server:
        yield server


def _command(
    python: Path,
    transport: str,
    target: str,
    scenario: str,
    args: tuple[str, ...],
    card: bool,
    timeout: float,
) -> list[str]:
    command = [str(python), str(CLIENT_SCRIPT), transport, target, scenario, *args, "--timeout", str(timeout)]
    return [*command, "--card"] if card else command


def _parse(command: list[str], code: int, out: str, err: str, check: bool) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for raw in out.splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pytest.fail(f"the 0.3 client printed a line that is not JSON: {raw!r}\nstderr:\n{err[-3000:]}")
    if check and code != 0:
        shown = "\n".join(out.splitlines()[-20:])
        pytest.fail(f"the 0.3 client exited {code}: {' '.join(command[1:])}\n{shown}\nstderr:\n{err[-3000:]}")
    return lines


async def run_sdk03_client(
    python: Path,
    transport: str,
    target: str,
    scenario: str,
    *args: str,
    card: bool = False,
    timeout: float = 60.0,
    check: bool = True,
) -> list[dict[str, Any]]:
    """Run one client.py scenario without blocking the event loop (so that a server of ours in this
    loop keeps serving); its JSON lines. With ``check``, a non-zero exit fails the test.
    ``card``: ``target`` is an agent card URL rather than an interface."""
    command = _command(python, transport, target, scenario, args, card, timeout)
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=clean_env(),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout + _EXTRA)
    except TimeoutError:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        pytest.fail(f"the 0.3 client ran over {timeout + _EXTRA:.0f} s: {' '.join(command[1:])}")
    except BaseException:
        if proc.returncode is None:  # cancelled: leave no client behind
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        raise
    assert proc.returncode is not None
    return _parse(command, proc.returncode, out.decode(), err.decode(), check)


def run_sdk03_client_sync(
    python: Path,
    transport: str,
    target: str,
    scenario: str,
    *args: str,
    card: bool = False,
    timeout: float = 60.0,
    check: bool = True,
) -> list[dict[str, Any]]:
    """:func:`run_sdk03_client` for a test without an event loop (the server is another process)."""
    command = _command(python, transport, target, scenario, args, card, timeout)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout + _EXTRA,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the 0.3 client ran over {timeout + _EXTRA:.0f} s: {' '.join(command[1:])}")
    return _parse(command, done.returncode, done.stdout, done.stderr, check)


def steps(lines: list[dict[str, Any]], step: str) -> list[dict[str, Any]]:
    """The lines of one step ("event", "result", "set", ...), in order."""
    return [line for line in lines if line.get("step") == step]


def one(lines: list[dict[str, Any]], step: str) -> dict[str, Any]:
    """The single line of ``step``; fails the test if there is not exactly one."""
    found = steps(lines, step)
    if len(found) != 1:
        pytest.fail(f"expected one {step!r} line, got {len(found)}: {lines}")
    return found[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_ready():
        return
    # The first test to ask builds the virtualenv; we cannot tell which one runs first.
    for item in items:
        if "sdk03_python" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("timeout")
        current = float(marker.args[0]) if marker and marker.args else float(config.getini("timeout") or 0)
        if current and current < BUILD_TIMEOUT + 120:
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT + 120), append=False)
