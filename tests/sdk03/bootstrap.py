"""The a2a-sdk 0.3 virtualenv: build/sdk03-venv, built once from requirements.txt and re-used while
its stamp matches (the requirements and the interpreter that built it).

Runs in OUR virtualenv. Two pytest processes may start at once: the build happens under an
exclusive lock on build/sdk03-venv.lock, and the stamp is written last, so a process that waited
finds a finished virtualenv or builds it itself, never a half-built one.

``python -m tests.sdk03.bootstrap`` (or ``make sdk03``) builds it ahead of the tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "LOCK",
    "REQUIREMENTS",
    "SDK_VERSION",
    "VENV",
    "Sdk03VenvError",
    "clean_env",
    "ensure_venv",
    "is_ready",
    "venv_python",
]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / "build" / "sdk03-venv"
LOCK = ROOT / "build" / "sdk03-venv.lock"
REQUIREMENTS = HERE / "requirements.txt"
STAMP_NAME = ".sdk03-stamp"
SDK_VERSION = "0.3.26"
BUILD_TIMEOUT = 900.0
"""Seconds for the whole build (venv + pip install); the first one took ~20 s here."""

# What the scripts import, checked after the install so a broken one fails here, not in a test.
_PROBE = (
    "import importlib.metadata as m, a2a.client, a2a.grpc.a2a_pb2_grpc, a2a.server.apps, "
    "a2a.server.request_handlers, grpc, httpx, uvicorn; print(m.version('a2a-sdk'))"
)


class Sdk03VenvError(RuntimeError):
    """The a2a-sdk 0.3 virtualenv could not be built; the message says which step failed and how."""


def venv_python() -> Path:
    return VENV / "bin" / "python"


def _wanted_stamp() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    # A venv is tied to the interpreter that made it: another one (or another version) rebuilds.
    digest.update(f"{sys.base_prefix}|{sys.version}".encode())
    return digest.hexdigest()


def is_ready() -> bool:
    """Whether the virtualenv is built for the current requirements (no lock: a hint only)."""
    stamp = VENV / STAMP_NAME
    try:
        return venv_python().exists() and stamp.read_text().strip() == _wanted_stamp()
    except OSError:
        return False


def clean_env() -> dict[str, str]:
    """Our environment without what would leak our packages into the 0.3 interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@contextlib.contextmanager
def _locked(timeout: float) -> Iterator[None]:
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Sdk03VenvError(
                        f"another process has held {LOCK} for {timeout:.0f} s (a build that hangs?)"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _run(step: str, args: list[str], deadline: float) -> str:
    left = deadline - time.monotonic()
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=max(left, 1.0),
            env=clean_env(),
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise Sdk03VenvError(f"{step} took longer than the {BUILD_TIMEOUT:.0f} s allowed") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise Sdk03VenvError(f"{step} failed (exit {done.returncode}): {' '.join(args)}\n{tail}")
    return done.stdout


def ensure_venv(timeout: float = BUILD_TIMEOUT) -> Path:
    """The 0.3 virtualenv's interpreter, building the virtualenv first when it is missing or stale.

    Raises :class:`Sdk03VenvError` naming the failed step (with pip's output) otherwise."""
    deadline = time.monotonic() + timeout
    with _locked(timeout):
        if is_ready():
            return venv_python()
        shutil.rmtree(VENV, ignore_errors=True)
        _run("creating the virtualenv", [sys.executable, "-m", "venv", str(VENV)], deadline)
        pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        _run(
            f"installing a2a-sdk {SDK_VERSION} from {REQUIREMENTS.name} (needs PyPI)",
            [*pip, "--quiet", "-r", str(REQUIREMENTS)],
            deadline,
        )
        version = _run("importing the SDK", [str(venv_python()), "-c", _PROBE], deadline).strip()
        if version != SDK_VERSION:
            raise Sdk03VenvError(f"pip installed a2a-sdk {version}, not {SDK_VERSION}")
        (VENV / STAMP_NAME).write_text(_wanted_stamp() + "\n")
        return venv_python()


def main() -> int:
    started = time.monotonic()
    try:
        python = ensure_venv()
    except Sdk03VenvError as exc:
        print(f"sdk03: {exc}", file=sys.stderr)
        return 1
    print(f"sdk03: {python} (a2a-sdk {SDK_VERSION}) ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
