"""The import arrows of DESIGN.md, and what the wheel installs.

* The core (``a2a_grpc`` without its bridge and its command line) imports neither of those, nor
  the benchmarks; the bridge imports no command line; importing the client loads no server-side
  module (handler, executions, runs, task stores, sqlite3, the server). Every module is imported
  in a fresh interpreter, and what it loaded is read from ``sys.modules``: a forbidden import
  anywhere below it fails the test.
* The wheel, installed into a fresh virtualenv, adds one top-level import name: ``a2a_grpc``.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import a2a_grpc

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(a2a_grpc.__path__, "a2a_grpc.")
    if not m.name.startswith("a2a_grpc._gen") and m.name != "a2a_grpc.cli.__main__"
)


def within(module: str, *packages: str) -> bool:
    """Whether ``module`` is one of ``packages`` or below one (``a2a_grpc.client`` is not below
    ``a2a_grpc.cli``)."""
    return any(module == p or module.startswith(p + ".") for p in packages)


CORE = [m for m in MODULES if not within(m, "a2a_grpc.bridge", "a2a_grpc.cli")]
BRIDGE = [m for m in MODULES if within(m, "a2a_grpc.bridge")]
SERVER_SIDE = (
    "a2a_grpc._handler",
    "a2a_grpc._execution",
    "a2a_grpc._runs",
    "a2a_grpc.tasks",
    "a2a_grpc.server",
    "a2a_grpc.push",
    "sqlite3",
)


def imported_by(*modules: str) -> dict[str, set[str]]:
    """For each of ``modules``: every module a fresh interpreter holds after importing it alone."""
    code = (
        "import importlib, json, sys\n"
        "before = set(sys.modules)\n"
        "out = {}\n"
        f"for name in {list(modules)!r}:\n"
        "    for loaded in [m for m in sys.modules if m not in before]: del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "    out[name] = sorted(set(sys.modules) - before)\n"
        "print(json.dumps(out))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {name: set(loaded) for name, loaded in json.loads(result.stdout).items()}


def test_the_module_lists_are_not_empty() -> None:
    assert "a2a_grpc.server" in CORE
    assert "a2a_grpc.bridge.app" in BRIDGE
    assert len(CORE) > 20


def test_the_core_imports_no_bridge_no_command_line_and_no_benchmarks() -> None:
    offenders = {
        module: sorted(m for m in loaded if within(m, "a2a_grpc.bridge", "a2a_grpc.cli", "benchmarks"))
        for module, loaded in imported_by(*CORE).items()
    }
    assert not {m: bad for m, bad in offenders.items() if bad}


def test_the_bridge_imports_no_command_line() -> None:
    offenders = {module: sorted(m for m in loaded if within(m, "a2a_grpc.cli", "benchmarks"))
                 for module, loaded in imported_by(*BRIDGE).items()}  # fmt: skip
    assert not {m: bad for m, bad in offenders.items() if bad}


@pytest.mark.parametrize("module", ["a2a_grpc.client", "a2a_grpc.parts", "a2a_grpc.types", "a2a_grpc"])
def test_a_client_loads_no_server_side_module(module: str) -> None:
    (loaded,) = imported_by(module).values()
    assert not sorted(m for m in loaded if within(m, *SERVER_SIDE))


def test_the_wheel_installs_one_top_level_name(tmp_path: Path) -> None:
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("a2a_grpc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"a2a_grpc"}
    # Installed into a fresh virtualenv, it brings a2a_grpc (and its bridge) and nothing else.
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    added = {p.name for p in Path(site).iterdir()} - {"pip", "setuptools", "_distutils_hack", "pkg_resources"}
    added = {a for a in added if not a.endswith((".dist-info", ".pth")) and a != "__pycache__"}
    assert added == {"a2a_grpc"}
    assert (Path(site) / "a2a_grpc" / "bridge" / "app.py").exists()
    assert not (Path(site) / "a2a_grpc" / "py.typed").stat().st_size  # typed, and shipped as such
