"""Stubs of other languages (tools/stubs.py, buf.gen.yaml) and the breaking-change checks (tools/buf.py).

Every language is generated from protos/ and compiled with its own compiler; a stub that does
not compile fails its check; a missing plugin is named with the package that brings it; and
``buf breaking`` refuses an incompatible change to either proto. The plugins and compilers come
from ``make stubs-tools`` (``make test`` runs it): when one is missing, these tests fail and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import load_tool

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "tools" / "stubs.py"
LANGS = ("python", "ts", "go", "java", "cpp", "csharp")


buf_tool = load_tool("buf")


def stubs(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STUBS), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GOCACHE": str(ROOT / "build" / "go-cache"), **(env or {})},
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every language generated once (``tools/stubs.py generate all``). Compiling all of them is
    CI's ``make stubs-all`` (C++ alone takes half a minute); here, the quick ones are compiled."""
    out = tmp_path_factory.mktemp("gen")
    done = stubs("generate", "all", "--out", str(out))
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"make stubs-tools installs the plugins and compilers:\n{report}"
    yield out
    shutil.rmtree(out, ignore_errors=True)


# --- generation and compilation -------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["python", "ts", "go", "csharp"])
@pytest.mark.timeout(240)
def test_generated_stubs_pass_their_check(generated: Path, lang: str) -> None:
    done = stubs("check", lang, "--out", str(generated / lang))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_every_language_is_generated(generated: Path) -> None:
    # What each language must contain: the A2A service and the session service, in that
    # language's own naming.
    expected = {
        "python": ["lf/a2a/v1/a2a_pb2_grpc.py", "a2a_grpc/session/v1/session_pb2_grpc.py"],
        "ts": ["lf/a2a/v1/a2a_pb.ts", "a2a_grpc/session/v1/session_pb.ts", "google/api/annotations_pb.ts"],
        "go": [
            "src/google.golang.org/lf/a2a/v1/a2a_grpc.pb.go",
            "src/github.com/a2a-grpc/stubs/go/a2a_grpc/session/v1/session_grpc.pb.go",
        ],
        "java": [
            "com/google/lf/a2a/v1/A2AServiceGrpc.java",
            "com/a2a_grpc/session/v1/SessionServiceGrpc.java",
        ],
        "cpp": ["lf/a2a/v1/a2a.grpc.pb.cc", "a2a_grpc/session/v1/session.grpc.pb.h"],
        "csharp": ["A2A.cs", "Session.cs"],
    }
    for lang, paths in expected.items():
        for path in paths:
            assert (generated / lang / path).is_file(), f"{lang}: no {path}"
    ts = (generated / "ts" / "a2a_grpc" / "session" / "v1" / "session_pb.ts").read_text()
    assert "export const SessionService" in ts
    assert 'from "../../../lf/a2a/v1/a2a_pb.js"' in ts  # import_extension=js: runs under Node ESM


def test_the_report_names_what_could_not_be_built(generated: Path) -> None:
    """C# has no gRPC plugin and no runtime here: the report says both, by name."""
    done = stubs("all", "csharp", "--out", str(generated.parent / "csharp-report"), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip()
    if shutil.which("grpc_csharp_plugin") is None:
        assert "without grpc_csharp_plugin" in line, line
        assert "Grpc.Tools" in line, line
    for said in ("mcs --parse", "not compiled", "Google.Protobuf"):
        assert said in line, line


BREAKS = {
    "python": ("lf/a2a/v1/a2a_pb2.py", "this is not python\n", "python import"),
    "ts": ("lf/a2a/v1/a2a_pb.ts", "export const broken: number = 'text';\n", "tsc"),
    "go": ("src/google.golang.org/lf/a2a/v1/a2a.pb.go", 'var broken int = "text"\n', "go build"),
    "java": ("com/google/lf/a2a/v1/Task.java", 'class Broken { int x = "text"; }\n', "javac"),
    "cpp": ("a2a_grpc/discovery/v1/discovery.pb.cc", "int broken = ;\n", "g++"),
    "csharp": ("Discovery.cs", "class { }\n", "mcs --parse"),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.timeout(240)
def test_a_stub_that_does_not_compile_fails_the_check(generated: Path, tmp_path: Path, lang: str) -> None:
    broken = tmp_path / lang
    shutil.copytree(generated / lang, broken)
    if lang == "cpp":  # one translation unit is enough to show g++ failing, and far quicker
        for source in broken.rglob("*.cc"):
            if not source.name.startswith("discovery.pb"):
                source.unlink()
    path, text, compiler = BREAKS[lang]
    with (broken / path).open("a") as f:
        f.write(text)
    done = stubs("check", lang, "--out", str(broken))
    assert done.returncode == 1, done.stdout + done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith(compiler), done.stderr
    assert first.endswith(" failed:"), done.stderr


def test_check_before_generate_says_so(tmp_path: Path) -> None:
    done = stubs("check", "go", "--out", str(tmp_path / "nothing"), timeout=30)
    assert done.returncode == 1
    assert "generate first (make stubs-go)" in done.stderr


def test_a_missing_plugin_is_named_with_its_package(tmp_path: Path) -> None:
    """With nothing on PATH, generating Go names both Go plugins and the Debian packages."""
    empty = tmp_path / "bin"
    empty.mkdir()
    done = stubs("generate", "go", "--out", str(tmp_path / "go"), env={"PATH": str(empty)}, timeout=30)
    assert done.returncode == 1
    assert "go: cannot generate, missing protoc-gen-go, protoc-gen-go-grpc" in done.stderr
    assert "apt-get install protoc-gen-go-grpc" in done.stderr
    assert "make stubs-tools" in done.stderr
    assert not (tmp_path / "go").exists(), "nothing is written when a plugin is missing"


def test_all_reports_a_language_it_cannot_generate_and_fails(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = stubs("all", "java", "--out", str(tmp_path / "gen"), env={"PATH": str(empty)}, timeout=30)
    assert done.returncode == 1
    assert done.stdout.startswith("FAIL java: java: cannot generate, missing grpc_java_plugin, protoc")


def test_every_template_entry_writes_a_known_language() -> None:
    tool = load_tool("stubs")
    config = tool.template()
    assert {tool.lang_of(p) for p in config["plugins"]} == set(LANGS)
    assert all(str(p["out"]).startswith("gen/") for p in config["plugins"])
    # Local plugins only: nothing is fetched from a remote plugin registry.
    assert all(("local" in p) != ("protoc_builtin" in p) and "remote" not in p for p in config["plugins"])
    assert "gen/" in (ROOT / ".gitignore").read_text().splitlines()


# --- breaking changes -----------------------------------------------------------------------------


@pytest.fixture
def workspaces(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        folder.mkdir()
        shutil.copy(ROOT / "buf.yaml", folder)
        shutil.copytree(ROOT / "protos", folder / "protos")
    return old, new


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path.name}"
    path.write_text(text.replace(old, new))


SESSION = Path("protos/a2a_grpc/session/v1/session.proto")
A2A = Path("protos/lf/a2a/v1/a2a.proto")


def test_unchanged_protos_pass(workspaces: tuple[Path, Path]) -> None:
    done = buf_tool.breaking_between(*workspaces)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_renumbered_session_field_is_refused(workspaces: tuple[Path, Path]) -> None:
    old, new = workspaces
    edit(new / SESSION, "string agent_name = 2;", "string agent_name = 20;")
    done = buf_tool.breaking_between(old, new)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "session.proto" in output, output
    assert re.search(r'"agent_name".*2', output), output


def test_a_renumbered_a2a_field_is_refused(workspaces: tuple[Path, Path]) -> None:
    old, new = workspaces
    belongs = "\n  // The task this message belongs to"
    edit(new / A2A, "string context_id = 2;" + belongs, "string context_id = 12;" + belongs)
    done = buf_tool.breaking_between(old, new)
    assert done.returncode != 0
    assert "a2a.proto" in done.stdout + done.stderr


def test_a_renamed_session_field_is_refused(workspaces: tuple[Path, Path]) -> None:
    """WIRE_JSON: the JSON name is part of the contract, so a rename breaks too."""
    old, new = workspaces
    edit(new / SESSION, "string agent_name = 2;", "string agent_label = 2;")
    done = buf_tool.breaking_between(old, new)
    assert done.returncode != 0, done.stdout + done.stderr


def test_an_added_session_field_passes(workspaces: tuple[Path, Path]) -> None:
    old, new = workspaces
    added = "string agent_name = 2;\n  // Added.\n  string added_later = 99;"
    edit(new / SESSION, "string agent_name = 2;", added)
    done = buf_tool.breaking_between(old, new)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_baseline_commit_is_in_the_history() -> None:
    """make breaking compares with PROTO_BASELINE; it must name a commit that holds the protos."""
    found = re.search(r"^PROTO_BASELINE := ([0-9a-f]{40})$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "Makefile: no PROTO_BASELINE"
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", found.group(1), "--", "protos"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert str(SESSION) in listed.stdout.split()
    assert str(A2A) in listed.stdout.split()
