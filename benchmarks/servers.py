"""Server processes for the benchmark: start pinned, wait (bounded) for their port, kill by PID.

A :class:`ServerSet` owns every process it starts. Leaving it, normally or by
an exception or Ctrl-C, terminates each one by PID (SIGTERM, then SIGKILL
after a bounded wait). The module also remembers every live PID and kills them
at interpreter exit, and the servers themselves exit when their stdin closes,
so no server outlives the runner.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CLIENT_CPU",
    "SERVER_CPU",
    "Endpoint",
    "ReadyParser",
    "ServerError",
    "ServerProcess",
    "ServerSet",
    "cli_ready",
    "json_ready",
    "python_module",
    "workers_ready",
]

SERVER_CPU = 0
"""The core every server is pinned to."""
CLIENT_CPU = 1
"""The core the load generator (the runner) is pinned to."""
READY_SECONDS = 30.0
"""How long a server may take to print its port."""
STOP_SECONDS = 5.0
"""How long a server may take to exit after SIGTERM before it gets SIGKILL."""
LOG_TAIL_LINES = 15
REPO_ROOT = Path(__file__).resolve().parent.parent

_live_pids: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_live_pids):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class ServerError(Exception):
    """A server did not start, or did not say where it listens."""


ReadyParser = Callable[[str, dict[str, Any]], bool]
"""Fed each stdout line and a dict to fill; returns True once the server is ready."""


def json_ready(line: str, info: dict[str, Any]) -> bool:
    """The ``benchmarks.serve`` contract: one JSON line with ``"ready": true`` and ``"port"``."""
    if not line.startswith("{"):
        return False
    data = json.loads(line)
    info.update(data)
    return bool(data.get("ready"))


_GRPC_LINE = re.compile(r"gRPC\b.*?(?:\d{1,3}\.){3}\d{1,3}:(\d+)")
_HTTP_LINE = re.compile(r"https?://(?:\d{1,3}\.){3}\d{1,3}:(\d+)")


_WORKER_STARTED = re.compile(r"^a2a-grpc: worker (\d+) started \(pid (\d+)\)")
_SHARING = re.compile(r"^a2a-grpc: starting \d+ workers? .*? sharing gRPC [\d.]+:(\d+)")
_ALL_READY = re.compile(r"^a2a-grpc: all \d+ workers ready")


def workers_ready(line: str, info: dict[str, Any]) -> bool:
    """For ``a2a-grpc serve --workers N``: the shared gRPC port, each worker's PID (``worker_pids``,
    by index), ready once the supervisor says all its workers are."""
    if m := _SHARING.search(line):
        info["grpc_port"] = int(m.group(1))
    elif m := _WORKER_STARTED.search(line):
        info.setdefault("worker_pids", {})[int(m.group(1))] = int(m.group(2))
    return bool(_ALL_READY.search(line)) and "grpc_port" in info


def cli_ready(*, want_grpc: bool, want_http: bool) -> ReadyParser:
    """For ``a2a-grpc`` commands: a JSON line with ``grpc_port``/``http_port`` and ``"ready": true``,
    or else the human lines ``... gRPC at HOST:PORT`` and ``... http://HOST:PORT``."""

    def parse(line: str, info: dict[str, Any]) -> bool:
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                info.update(json.loads(line))
        else:
            if want_grpc and "grpc_port" not in info and (m := _GRPC_LINE.search(line)):
                info["grpc_port"] = int(m.group(1))
            if want_http and "http_port" not in info and (m := _HTTP_LINE.search(line)):
                info["http_port"] = int(m.group(1))
        have = (not want_grpc or "grpc_port" in info) and (not want_http or "http_port" in info)
        return have and (info.get("ready", True) is not False)

    return parse


@dataclass
class ServerProcess:
    """One running server: its process, what it reported when ready, and its log file."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    info: dict[str, Any] = field(default_factory=dict)
    _drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def pinned(self) -> bool:
        return bool(self.info.get("pinned"))

    def log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


@dataclass
class Endpoint:
    """Where a case's servers listen, and the processes that count as "the server"."""

    host: str
    servers: list[ServerProcess]
    grpc_port: int = 0
    http_port: int = 0
    paths: dict[str, str] = field(default_factory=dict)
    worker_pids: list[int] = field(default_factory=list)
    """The workers of an ``a2a-grpc serve --workers`` among ``servers``: they count as the server too."""
    """HTTP path prefixes by binding (``JSONRPC``, ``HTTP+JSON``), when the server's card names them."""

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.servers] + self.worker_pids

    @property
    def pinned(self) -> bool:
        return all(s.pinned for s in self.servers)


class ServerSet:
    """Starts servers for one case and stops every one of them on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[ServerProcess] = []

    async def __aenter__(self) -> ServerSet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    async def start(
        self, name: str, argv: Sequence[str], ready: ReadyParser = json_ready, timeout: float = READY_SECONDS
    ) -> ServerProcess:
        """Run ``argv`` and wait up to ``timeout`` seconds until ``ready`` accepts its output."""
        log = self.workdir / f"{name}.{len(self.servers)}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=str(REPO_ROOT),
                start_new_session=True,  # Ctrl-C reaches the runner only; it stops the servers itself
            )
        _live_pids.add(process.pid)
        server = ServerProcess(name, process, log)
        self.servers.append(server)
        try:
            await asyncio.wait_for(self._await_ready(server, ready), timeout)
        except TimeoutError:
            raise ServerError(
                f"{name} did not report ready within {timeout:.0f} s\n{server.log_tail()}"
            ) from None
        server._drain = asyncio.create_task(self._drain(server))
        return server

    @staticmethod
    async def _await_ready(server: ServerProcess, ready: ReadyParser) -> None:
        assert server.process.stdout is not None
        seen: list[str] = []
        while True:
            raw = await server.process.stdout.readline()
            if not raw:
                await asyncio.wait_for(server.process.wait(), STOP_SECONDS)
                output = "\n".join(seen[-LOG_TAIL_LINES:])
                raise ServerError(
                    f"{server.name} exited (code {server.process.returncode}) before it was ready\n"
                    f"{output}\n{server.log_tail()}".rstrip()
                )
            line = raw.decode(errors="replace").strip()
            seen.append(line)
            try:
                if ready(line, server.info):
                    return
            except ValueError as exc:
                raise ServerError(f"{server.name} printed an unreadable ready line {line!r}: {exc}") from None

    @staticmethod
    async def _drain(server: ServerProcess) -> None:
        """Keep reading stdout after the ready line, so a chatty server never blocks on a full pipe."""
        assert server.process.stdout is not None
        while await server.process.stdout.read(65536):
            pass

    async def stop_all(self) -> None:
        await asyncio.gather(*(self._stop(s) for s in reversed(self.servers)), return_exceptions=True)
        self.servers.clear()

    @staticmethod
    async def _stop(server: ServerProcess) -> None:
        process = server.process
        try:
            if process.returncode is None:
                if process.stdin is not None:
                    process.stdin.close()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), STOP_SECONDS)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                    await asyncio.wait_for(process.wait(), STOP_SECONDS)
        finally:
            if process.returncode is not None:
                _live_pids.discard(process.pid)
            if server._drain is not None:
                server._drain.cancel()


def python_module(module: str, *args: str) -> list[str]:
    """A command line running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
