"""What was measured where: the machine, the packages, and the commit (for the results' ``meta``)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.servers import REPO_ROOT

__all__ = ["describe", "source_state"]

PACKAGES = ("grpcio", "protobuf", "a2a-sdk", "uvicorn", "starlette", "httptools")


def source_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it (read-only git calls)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "a2a_grpc")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "runtime_changed": None if changed is None else bool(changed),
    }


def describe() -> dict[str, Any]:
    """Python, platform, CPU model and the versions of the packages that matter here."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "packages": {name: version(name) for name in PACKAGES},
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
