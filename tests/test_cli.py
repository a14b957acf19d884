"""The a2a-grpc command against a real server process (cleaned up by PID)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import cli_server

CLI = [sys.executable, "-m", "a2a_grpc.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    with cli_server() as served:
        yield served


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["send"],
        ["card"],
        ["tasks"],
        ["tasks", "get"],
        ["tasks", "list"],
        ["tasks", "cancel"],
        ["bridge"],
        ["bridge", "http-to-grpc"],
        ["bridge", "grpc-to-http"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: a2a-grpc" in result.stdout


def test_send_get_and_list(address: str) -> None:
    sent = run("send", address, "echo from the cli")
    assert sent.returncode == 0, sent.stderr
    assert "TASK_STATE_COMPLETED" in sent.stdout
    task_id = re.search(r'"id": "([^"]+)"', sent.stdout)
    assert task_id
    got = run("tasks", "get", address, task_id.group(1))
    assert got.returncode == 0
    assert "echo from the cli" in got.stdout
    listed = run("tasks", "list", address, "--status", "completed")
    assert task_id.group(1) in listed.stdout
    streamed = run("send", address, "stream 2", "--stream")
    assert streamed.returncode == 0
    assert len(streamed.stdout.strip().splitlines()) == 5


def test_errors_are_one_line_and_non_zero(address: str) -> None:
    missing = run("tasks", "get", address, "no-such-task")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        "a2a-grpc: error: TaskNotFoundError: task 'no-such-task' not found"
    ]
    bad_status = run("tasks", "list", address, "--status", "sleepy")
    assert bad_status.returncode == 1
    assert bad_status.stderr.startswith("a2a-grpc: error: unknown status 'sleepy'")
    bad_store = run("serve", "--store", "postgresql://x", "--grpc-port", "0")
    assert bad_store.returncode == 1
    assert len(bad_store.stderr.strip().splitlines()) == 1
    assert "not supported" in bad_store.stderr
    no_redis = run("serve", "--store", "redis://:pw@127.0.0.1:1/0", "--grpc-port", "0")
    assert no_redis.returncode == 1
    assert len(no_redis.stderr.strip().splitlines()) == 1, no_redis.stderr
    assert "task store redis://:***@127.0.0.1:1/0: cannot connect" in no_redis.stderr


def test_serve_holds_callers_to_the_rates_and_quotas_its_flags_set() -> None:
    with cli_server("--rate-per-principal", "3/minute", "--max-streams-per-principal", "2") as served:
        outcomes = [run("tasks", "list", served) for _ in range(5)]
    codes = [o.returncode for o in outcomes]
    assert codes[:3] == [0, 0, 0]  # three per minute (a fourth only where a window turns)
    refused = next(o for o in outcomes if o.returncode != 0)
    assert "rate_per_principal" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--rate-per-principal", "often"),
        ("--rate-per-tenant", "5 per fortnight"),
        ("--max-running-tasks-per-principal", "0"),
        ("--max-sessions-per-principal", "many"),
    ],
)
def test_serve_refuses_a_bad_rate_or_quota_before_starting(flag: str, value: str) -> None:
    result = run("serve", "--grpc-port", "0", "--store", "memory", flag, value)
    assert result.returncode == 2
    assert flag in result.stderr
