"""A real redis-server for the tests: started once per test session on a free loopback port,
with no persistence, and stopped by PID at the end.

``make test`` installs redis-server first (Debian's package) when it is missing; a test that needs
Redis fails (it is never skipped) when it is not there. ``redis_url`` gives a test an empty
database: every key is flushed before the test starts.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "redis_server", "redis_url", "start_redis"]


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(folder: Path, *extra: str) -> RedisServer:
    """A redis-server on a free 127.0.0.1 port, answering PING (a few tries: the port we picked
    may be taken by someone else before redis binds it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make redis` (Debian: apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    last = ""
    for _ in range(5):
        port = _free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(folder), "--daemonize", "no", "--loglevel", "warning", *extra]
        log = (folder / f"redis-{port}.log").open("wb")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    if client.ping():
                        return RedisServer(process, port, folder)
                time.sleep(0.02)
        finally:
            client.close()
        last = (folder / f"redis-{port}.log").read_text(errors="replace")[-400:]
        RedisServer(process, port, folder).stop()
    pytest.fail(f"redis-server did not start: {last}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty database of the session's redis-server."""
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, socket_timeout=5)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url
