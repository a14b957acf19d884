#!/usr/bin/env python3
"""Generate and compile the stubs of other languages from protos/ (``make stubs-<lang>``).

Each language's plugins are the entries of buf.gen.yaml whose ``out`` is under
``gen/<lang>``; ``buf generate`` runs with those entries only. Plugins are
local programs (Debian packages, npm): nothing is fetched from a remote
registry. Before generating, every plugin the language needs is looked up,
and a missing one is named with the package that brings it.

``check`` compiles what was generated, with the language's own compiler
(python imports, tsc, go build in GOPATH mode, javac, g++, mcs), so a change
to a proto that breaks a language's stubs fails here.

``all`` generates and checks every language and prints one line per
language: generated or not (and why), compiled or not (and why).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "buf.gen.yaml"
NODE_TOOLS = ROOT / "tools" / "node"
GOPATH_SYSTEM = "/usr/share/gocode"  # Debian's golang-*-dev packages install here
JAVA_JARS = "/usr/share/java"
# Our files (google/* are generated as imports). Not protos/a2a: the legacy v0.3 wire lives only
# in our private Python pool, so other languages do not get a second a2a.v1 package from us.
PROTO_PATHS = ("protos/lf", "protos/a2a_grpc")

# What brings each program, said to whoever misses it.
INSTALL = {
    "protoc": "apt-get install protobuf-compiler",
    "grpc_python_plugin": "apt-get install protobuf-compiler-grpc",
    "grpc_cpp_plugin": "apt-get install protobuf-compiler-grpc",
    "protoc-gen-es": "npm ci --prefix tools/node (make stubs-ts does it)",
    "protoc-gen-go": "apt-get install protoc-gen-go",
    "protoc-gen-go-grpc": "apt-get install protoc-gen-go-grpc",
    "grpc_java_plugin": "apt-get install protobuf-compiler-grpc-java-plugin",
    "grpc_csharp_plugin": "the NuGet package Grpc.Tools (no Debian, npm or PyPI package has it)",
    "tsc": "npm ci --prefix tools/node (make stubs-ts does it)",
    "go": "apt-get install golang-go golang-google-protobuf-dev golang-google-grpc-dev"
    " golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev",
    "javac": "apt-get install default-jdk-headless libprotobuf-java libgrpc-java"
    " libgeronimo-annotation-1.3-spec-java",
    "g++": "apt-get install g++ libprotobuf-dev libgrpc++-dev",
    "mcs": "apt-get install mono-mcs",
}
OPTIONAL_PLUGINS = {"grpc_csharp_plugin"}
"""Plugins a language is generated without: messages come, services do not (the report says so)."""

LANGS = ("python", "ts", "go", "java", "cpp", "csharp")


class StubsError(Exception):
    """A step failed: the message says which and why."""


@dataclass
class Outcome:
    lang: str
    generated: str
    compiled: str
    ok: bool


# --- the template --------------------------------------------------------------------------------


def template() -> dict[str, Any]:
    loaded = yaml.safe_load(TEMPLATE.read_text())
    if not isinstance(loaded, dict) or not isinstance(loaded.get("plugins"), list):
        raise StubsError(f"{TEMPLATE.name}: no plugins list")
    return loaded


def lang_of(plugin: dict[str, Any]) -> str:
    parts = Path(str(plugin["out"])).parts
    if len(parts) < 2 or parts[0] != "gen" or parts[1] not in LANGS:
        raise StubsError(f"{TEMPLATE.name}: out {plugin['out']!r} is not under gen/<language>")
    return parts[1]


def plugins_of(lang: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    found = [p for p in config["plugins"] if lang_of(p) == lang]
    if not found:
        raise StubsError(f"{TEMPLATE.name}: no plugin writes gen/{lang}")
    return found


def program_of(plugin: dict[str, Any]) -> str:
    return "protoc" if "protoc_builtin" in plugin else str(plugin["local"])


def search_path() -> str:
    """PATH with tools/node's programs after the caller's own (an example's npm scripts win)."""
    return os.pathsep.join([os.environ.get("PATH", ""), str(NODE_TOOLS / "node_modules" / ".bin")])


def which(program: str) -> str | None:
    return shutil.which(program, path=search_path())


def missing_plugins(lang: str, config: dict[str, Any]) -> list[str]:
    return sorted({program_of(p) for p in plugins_of(lang, config) if which(program_of(p)) is None})


def say_missing(lang: str, programs: Sequence[str]) -> str:
    lines = [f"{lang}: cannot generate, missing {', '.join(programs)}"]
    lines += [f"  {p}: {INSTALL.get(p, 'not known here')}" for p in programs]
    lines.append("  (make stubs-tools installs every one of them on Debian)")
    return "\n".join(lines)


# --- generate ------------------------------------------------------------------------------------


def generate(lang: str, out: Path) -> list[str]:
    """Write ``lang``'s stubs into ``out`` (emptied first); returns the optional plugins left out."""
    config = template()
    missing = missing_plugins(lang, config)
    required = [p for p in missing if p not in OPTIONAL_PLUGINS]
    if required:
        raise StubsError(say_missing(lang, required))
    chosen = []
    for plugin in plugins_of(lang, config):
        if program_of(plugin) in missing:
            continue
        entry = dict(plugin)
        relative = Path(*Path(str(plugin["out"])).parts[2:])  # gen/go/src -> src
        entry["out"] = str(out / relative)
        chosen.append(entry)
    config = {**config, "plugins": chosen, "clean": False}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "buf.py"), "deps"], cwd=ROOT, check=True)
    argv = [buf(), "generate", "--template", json.dumps(config)]
    for path in PROTO_PATHS:
        argv += ["--path", path]
    done = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, "PATH": search_path()}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise StubsError(f"{lang}: buf generate failed:\n{done.stdout}{done.stderr}")
    return missing


def buf() -> str:
    exe = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(exe).exists():
        raise StubsError("buf not found: pip install -e '.[dev]' (it brings buf-bin)")
    return exe


# --- check: one compiler per language --------------------------------------------------------------


def run(argv: Sequence[str], what: str, **kwargs: Any) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        lines = output.splitlines()
        shown = "\n".join(lines[:40] + ([f"... {len(lines) - 40} more lines"] if len(lines) > 40 else []))
        raise StubsError(f"{what} failed:\n{shown}")


def need(program: str) -> str:
    found = which(program)
    if found is None:
        raise StubsError(f"{program} not found: {INSTALL[program]}")
    return found


def files(out: Path, suffix: str) -> list[str]:
    found = sorted(str(p) for p in out.rglob(f"*{suffix}"))
    if not found:
        raise StubsError(f"no *{suffix} file in {out}: generate first")
    return found


def check_python(out: Path) -> str:
    # The generated packages are namespace packages, and one of them is named a2a_grpc, like
    # this library: import them from a copy where each folder is a regular package, first on
    # sys.path, in a fresh interpreter.
    modules = [".".join(Path(f).relative_to(out).with_suffix("").parts) for f in files(out, "_pb2.py")]
    modules += [m + "_grpc" for m in modules if (out / (m.replace(".", "/") + "_grpc.py")).exists()]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "python"
        shutil.copytree(out, copy)
        for folder in [d for d in copy.rglob("*") if d.is_dir()]:
            (folder / "__init__.py").touch()
        script = f"import sys; sys.path.insert(0, {str(copy)!r})\n" + "".join(
            f"import {m}\n" for m in modules
        )
        run([sys.executable, "-I", "-W", "error", "-c", script], "python import", cwd=tmp)
    return f"imported {len(modules)} modules"


def check_ts(out: Path) -> str:
    tsc = need("tsc")
    dist = NODE_TOOLS / "node_modules" / "@bufbuild" / "protobuf" / "dist" / "esm"
    config = {
        "compilerOptions": {
            "target": "ES2022",
            "module": "NodeNext",
            "moduleResolution": "NodeNext",
            "strict": True,
            "noEmit": True,
            "skipLibCheck": True,
            # The stubs import @bufbuild/protobuf, which is installed in tools/node, not above
            # gen/: point the compiler at its type declarations.
            "paths": {
                "@bufbuild/protobuf": [str(dist / "index.d.ts")],
                "@bufbuild/protobuf/*": [str(dist / "*" / "index.d.ts")],
            },
        },
        "include": [str(out / "**" / "*.ts")],
    }
    sources = files(out, ".ts")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tsconfig.json"
        path.write_text(json.dumps(config))
        run([tsc, "-p", str(path)], "tsc")
    return f"tsc: {len(sources)} files"


def go_packages(out: Path) -> list[str]:
    src = out / "src"
    return sorted({str(Path(f).parent.relative_to(src)) for f in files(src, ".go")})


def go_env(gopath: Path) -> dict[str, str]:
    """GOPATH mode: the module proxy is out of reach, Debian's Go packages are the libraries."""
    cache = ROOT / "build" / "go-cache"
    return {
        **os.environ,
        "GOPATH": os.pathsep.join([str(gopath), GOPATH_SYSTEM]),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": os.environ.get("GOCACHE", str(cache)),
    }


# Compiling is not enough in Go: grpc-go encodes through github.com/golang/protobuf, and its
# 1.3 line (Debian's golang-github-golang-protobuf-1-3-dev) compiles against our stubs but
# panics on the first message it encodes. One message through grpc's own codec tells.
GO_CODEC_CHECK = """package main

import (
\t"fmt"

\ta2a "google.golang.org/lf/a2a/v1"
\t"google.golang.org/grpc/encoding"
\t_ "google.golang.org/grpc/encoding/proto"
)

func main() {
\tcodec := encoding.GetCodec("proto")
\tdata, err := codec.Marshal(&a2a.Task{Id: "t-1", ContextId: "c-1"})
\tif err != nil {
\t\tpanic(err)
\t}
\tvar back a2a.Task
\tif err := codec.Unmarshal(data, &back); err != nil || back.Id != "t-1" {
\t\tpanic(fmt.Sprintf("round trip: %v %q", err, back.Id))
\t}
\tfmt.Println("ok")
}
"""


def check_go(out: Path) -> str:
    go = need("go")
    packages = go_packages(out)
    run([go, "build", *packages], "go build", env=go_env(out), cwd=out)
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "codec.go"
        program.write_text(GO_CODEC_CHECK)
        hint = "grpc's codec could not encode a generated message (golang-github-golang-protobuf-1-5-dev?)"
        run([go, "run", str(program)], f"go run: {hint}", env=go_env(out), cwd=tmp)
    return f"go build: {len(packages)} packages; a message through grpc's codec"


def java_classpath() -> str:
    jars = [
        "protobuf",
        "grpc-api",
        "grpc-stub",
        "grpc-protobuf",
        "grpc-protobuf-lite",
        "guava",
        "geronimo-annotation-1.3-spec",
    ]
    missing = [j for j in jars if not (Path(JAVA_JARS) / f"{j}.jar").exists()]
    if missing:
        names = ", ".join(j + ".jar" for j in missing)
        raise StubsError(f"javac: no {names} in {JAVA_JARS}: {INSTALL['javac']}")
    return os.pathsep.join(str(Path(JAVA_JARS) / f"{j}.jar") for j in jars)


def check_java(out: Path) -> str:
    javac = need("javac")
    sources = files(out, ".java")
    with tempfile.TemporaryDirectory() as tmp:
        run([javac, "-nowarn", "-d", tmp, "-cp", java_classpath(), *sources], "javac")
    return f"javac: {len(sources)} files"


def check_cpp(out: Path) -> str:
    gxx = need("g++")
    sources = files(out, ".cc")
    with tempfile.TemporaryDirectory() as tmp:

        def compile_one(source: str) -> None:
            target = Path(tmp) / (Path(source).relative_to(out).as_posix().replace("/", "_") + ".o")
            argv = [gxx, "-std=c++17", "-c", "-I", str(out), source, "-o", str(target)]
            run(argv, f"g++ {Path(source).relative_to(out)}")

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for future in [pool.submit(compile_one, s) for s in sources]:
                future.result()
    return f"g++ -c: {len(sources)} files"


def check_csharp(out: Path) -> str:
    mcs = need("mcs")
    sources = files(out, ".cs")
    run([mcs, "--parse", *sources], "mcs --parse")
    # Google.Protobuf and Grpc.Core.Api are NuGet packages only; mcs can check the syntax of
    # the stubs, not compile them against the runtime.
    return (
        f"mcs --parse: {len(sources)} files, syntax only; not compiled: the Google.Protobuf runtime"
        " is on NuGet only, which this machine does not reach"
    )


CHECKS = {
    "python": check_python,
    "ts": check_ts,
    "go": check_go,
    "java": check_java,
    "cpp": check_cpp,
    "csharp": check_csharp,
}


def check(lang: str, out: Path) -> str:
    if not out.is_dir():
        raise StubsError(f"{lang}: {out} does not exist: generate first (make stubs-{lang})")
    return CHECKS[lang](out)


# --- the command line ----------------------------------------------------------------------------


def build_all(langs: Sequence[str], out: Path) -> list[Outcome]:
    outcomes = []
    config = template()
    for lang in langs:
        required = [p for p in missing_plugins(lang, config) if p not in OPTIONAL_PLUGINS]
        if required:
            outcomes.append(Outcome(lang, say_missing(lang, required), "not compiled", False))
            continue
        try:
            left_out = generate(lang, out / lang)
            generated = "generated" + "".join(
                f"; without {p} ({INSTALL[p]}): no gRPC service classes" for p in left_out
            )
            outcomes.append(Outcome(lang, generated, check(lang, out / lang), True))
        except StubsError as exc:
            outcomes.append(Outcome(lang, "failed", str(exc), False))
    return outcomes


def expand(langs: Sequence[str]) -> list[str]:
    return list(LANGS) if "all" in langs else list(dict.fromkeys(langs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, what in (
        ("generate", "generate stubs (buf generate with the language's plugins)"),
        ("check", "compile stubs already generated"),
        ("all", "generate and compile, one report line per language; fails if any fails"),
    ):
        cmd = sub.add_parser(name, help=what, description=what)
        cmd.add_argument(
            "langs", nargs="+", choices=[*LANGS, "all"], metavar="LANG", help=f"{', '.join(LANGS)} or all"
        )
        cmd.add_argument(
            "--out",
            type=lambda text: Path(text).resolve(),  # buf runs from the repository's root
            help="output folder (default gen/, a language in gen/<lang>; with one language "
            "given, --out is that language's folder)",
        )
    args = parser.parse_args(argv)
    langs = expand(args.langs)
    try:
        if args.command == "all":
            outcomes = build_all(langs, args.out or ROOT / "gen")
            for o in outcomes:
                print(f"{'ok  ' if o.ok else 'FAIL'} {o.lang}: {o.generated}; {o.compiled}")
            return 0 if all(o.ok for o in outcomes) else 1
        for lang in langs:
            out = args.out if args.out and len(langs) == 1 else (args.out or ROOT / "gen") / lang
            if args.command == "generate":
                left_out = generate(lang, out)
                print(f"{lang}: generated into {out}")
                for program in left_out:
                    print(f"  without {program} ({INSTALL[program]}): no gRPC service classes")
            else:
                print(f"{lang}: {check(lang, out)}")
    except StubsError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
