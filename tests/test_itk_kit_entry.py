"""The repository's entry for the A2A Integration Test Kit (itk/), launched as the kit's runner
launches an SDK's agent: ``uv sync --locked`` in ``<repo>/itk``, then ``uv run main.py --httpPort H
--grpcPort G``; then a chain of the runner's kind through two agents so launched.

uv comes with the development install (``pip install -e '.[dev]'``); ``uv sync`` installs
a2a-grpc's dependencies from PyPI into a folder of the test's, once per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_itk_agent import (
    Running,
    _stop,
    first_hop_sync,
    hop_chain,
    payload,
    response_text,
    start_agent,
)

ROOT = Path(__file__).resolve().parent.parent
ITK = ROOT / "itk"
READY_WAIT = 60.0


def uv() -> str:
    found = Path(sys.executable).parent / "uv"
    if not found.exists():
        pytest.fail("uv is not installed: pip install -e '.[dev]' (make install) brings it")
    return str(found)


def run_uv(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([uv(), *args], cwd=ITK, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the runner's ``uv`` commands, its virtualenv synced from the lock."""
    venv = tmp_path_factory.mktemp("itk") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)  # the runner's would be itk/.venv
    synced = run_uv("sync", "--locked", env=env, timeout=600)
    assert synced.returncode == 0, f"uv sync --locked failed:\n{synced.stdout}{synced.stderr}"
    return env


def launch(name: str, env: dict[str, str]) -> Running:
    """``uv run main.py`` in itk/, on free ports (our agent prints the ones it bound)."""
    return start_agent(name, [uv(), "run", "--locked", "main.py"], ITK, env, wait=READY_WAIT)


@pytest.fixture(scope="module")
def launched(kit_env: dict[str, str]) -> Iterator[list[Running]]:
    started: list[Running] = []
    try:
        started.append(launch("a2a_grpc", kit_env))
        started.append(launch("a2a_grpc_2", kit_env))
        yield started
    finally:
        for running in started:
            _stop(running.proc)


def test_the_lock_matches_the_project() -> None:
    """`uv sync --locked` refuses a stale lock: after a change of a2a-grpc's dependencies, run
    `uv lock` in itk/ (this test names it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    checked = run_uv("lock", "--check", env=env, timeout=120)
    assert checked.returncode == 0, f"itk/uv.lock is stale: run `uv lock` in itk/\n{checked.stderr}"


@pytest.mark.asyncio
@pytest.mark.timeout(900)
@pytest.mark.parametrize("transport", ["jsonrpc", "grpc"])
async def test_agents_the_kit_launches_run_its_chains(launched: list[Running], transport: str) -> None:
    a, b = launched
    instruction, expected = hop_chain([a, b, a], transport, "send_message", streaming=False)
    async with httpx.AsyncClient(timeout=60) as http:
        card = (await http.get(f"http://127.0.0.1:{a.http_port}/.well-known/agent-card.json")).json()
        assert card["name"]  # what the runner waits for
        result = await first_hop_sync(http, a, payload(instruction, streaming=False))
    text = response_text(result)
    missing = [token for token in expected if token not in text]
    assert not missing, (missing, text)
