"""The CLI with authentication: a server that checks API keys, a client that presents one from the
environment, and a server beyond loopback that refuses to start without a scheme."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from a2a_grpc.cli.security import API_KEY_ENV, BEARER_TOKEN_ENV
from tests.conftest import cli_server, stop_popen

CLI = [sys.executable, "-m", "a2a_grpc.cli"]
KEY = "cli-test-key-0123456789"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in (API_KEY_ENV, BEARER_TOKEN_ENV)}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, check=False, env={**environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# who key\nops {KEY}\n")
    with cli_server("--api-keys-file", str(keys)) as served:
        yield served


def test_a_call_without_the_key_is_refused_and_with_it_served(address: str) -> None:
    refused = run("send", address, "echo hi")
    assert refused.returncode != 0
    assert "UnauthenticatedError" in refused.stderr
    assert "requires credentials" in refused.stderr
    wrong = run("send", address, "echo hi", env={API_KEY_ENV: "not-the-key-at-all-000"})
    assert wrong.returncode != 0
    assert "is not valid" in wrong.stderr
    served = run("send", address, "echo hi", env={API_KEY_ENV: KEY})
    assert served.returncode == 0, served.stderr
    assert "TASK_STATE_COMPLETED" in served.stdout
    card = run("card", address)
    assert card.returncode == 0  # the public card needs no credential, and declares the scheme
    assert '"apiKeySecurityScheme"' in card.stdout
    assert KEY not in card.stdout


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "0.0.0.0"], "refusing to serve gRPC on 0.0.0.0 without authentication"),
        (["--jwt-issuer", "https://issuer.test"], "need --jwt-issuer, --jwt-audience and"),
        (["--api-keys-file", "/nonexistent/keys.txt"], "cannot read /nonexistent/keys.txt"),
    ],
)
def test_an_unsafe_or_incomplete_configuration_does_not_start(args: list[str], problem: str) -> None:
    result = run("serve", "--grpc-port", "0", "--store", "memory", *args)
    assert result.returncode != 0
    assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_key_file_names_the_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"ops {KEY}\nshort abc\n")
    result = run("serve", "--grpc-port", "0", "--store", "memory", "--api-keys-file", str(keys))
    assert result.returncode != 0
    assert "keys.txt:2: API key of 'short' is too short" in result.stderr


def test_send_over_a_session_and_watch_its_handshake(address: str) -> None:
    sent = run("send", address, "echo by session", "--session", env={API_KEY_ENV: KEY})
    assert sent.returncode == 0, sent.stderr
    assert "echo by session" in sent.stdout
    watched = run("send", address, "stream 2", "--stream", "--show-handshake", env={API_KEY_ENV: KEY})
    assert watched.returncode == 0, watched.stderr
    lines = [json.loads(line) for line in watched.stderr.splitlines() if line.startswith("{")]
    assert [next(iter(line)) for line in lines] == ["hello", "welcome"]
    assert lines[0]["hello"]["metadata"]["x-api-key"] == "(hidden)"  # the credential crossed, not shown
    assert lines[0]["hello"]["metadata"]["a2a-version"] == "1.0"
    assert lines[1]["welcome"]["sessionId"]
    assert KEY not in watched.stderr
    assert len([line for line in watched.stdout.splitlines() if line.startswith("{")]) == 5
    refused = run("send", address, "echo", "--session")  # no key: the handshake is refused
    assert refused.returncode != 0
    assert "UnauthenticatedError" in refused.stderr


def _banner(proc: subprocess.Popen[str], pattern: str) -> str:
    """The first group of ``pattern`` in the lines the server prints at start."""
    import re

    assert proc.stdout is not None
    for _ in range(10):
        line = proc.stdout.readline()
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError(f"the server never printed {pattern!r}")


def test_serve_mints_delegation_tokens_and_a_sub_agent_trusts_them(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = tmp_path / "planner.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    serve = [*CLI, "serve", "--grpc-port", "0", "--store", "memory"]
    planner = subprocess.Popen(
        [*serve, "--http-port", "0", "--delegation-key", str(key), "--delegation-issuer", "planner",
         "--delegate-allow", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        planner_address = _banner(planner, r"over gRPC at (127\.0\.0\.1:\d+)")
        jwks = _banner(planner, r"HTTP\+JSON at (http://\S+)") + "/.well-known/jwks.json"
        sub = subprocess.Popen(
            [*serve, "--trust-delegations", f"planner={jwks}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            sub_address = _banner(sub, r"over gRPC at (127\.0\.0\.1:\d+)")
            anonymous = run("send", sub_address, "echo hi")
            assert anonymous.returncode != 0
            assert "UnauthenticatedError" in anonymous.stderr
            delegated = run("send", planner_address, f"delegate {sub_address} echo with a token")
            assert delegated.returncode == 0, delegated.stderr
            assert "TASK_STATE_COMPLETED" in delegated.stdout
            assert "echo with a token" in delegated.stdout
        finally:
            stop_popen(sub)
    finally:
        stop_popen(planner)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--trust-delegations", "planner"], "--trust-delegations takes ISSUER=JWKS"),
        (["--delegation-audience", "a:1"], "give that too"),
        (["--delegation-issuer", "planner"], "give that too"),
        (["--delegation-key", "/nonexistent/key.pem"], "cannot read the delegation key"),
    ],
)
def test_incomplete_delegation_options_do_not_start(args: list[str], problem: str) -> None:
    result = run("serve", "--grpc-port", "0", "--store", "memory", *args)
    assert result.returncode != 0
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
