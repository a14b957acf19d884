"""The import arrows of DESIGN.md: the client imports no server-side module, the runtime imports no
bridge module (only the command line, the composition root, puts them together)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_SIDE = (
    "a2a_grpc.handler",
    "a2a_grpc.execution",
    "a2a_grpc.runs",
    "a2a_grpc.tasks",
    "a2a_grpc.server",
    "a2a_grpc.push",
)
RUNTIME = (
    "a2a_grpc.accesslog",
    "a2a_grpc.client",
    "a2a_grpc.errors",
    "a2a_grpc.handler",
    "a2a_grpc.reference_agent",
    "a2a_grpc.server",
    "a2a_grpc.service",
    "a2a_grpc.status",
)


def imported_by(*modules: str) -> set[str]:
    """Every a2a_grpc and bridge module a fresh interpreter holds after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('a2a_grpc', 'bridge'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout))


def test_the_client_imports_no_server_side_module() -> None:
    loaded = imported_by("a2a_grpc.client")
    assert "a2a_grpc.service" in loaded  # the method table it shares with the servers
    assert not {m for m in loaded if m.startswith(SERVER_SIDE)}


@pytest.mark.parametrize("module", RUNTIME)
def test_the_runtime_imports_no_bridge_module(module: str) -> None:
    assert not {m for m in imported_by(module) if m.startswith("bridge")}
