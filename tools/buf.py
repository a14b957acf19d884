#!/usr/bin/env python3
"""Run buf offline: ``lint``, or ``breaking`` against a git ref (default: main).

buf would normally fetch googleapis from its registry. We copy the google/api
protos our files import (and what those import) out of the installed
googleapis-common-protos package into build/buf-deps, which buf.yaml lists as
a second module; google/protobuf comes with buf itself.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = Path("build") / "buf-deps"
IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)


def buf() -> str:
    exe = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(exe).exists():
        raise SystemExit(
            "buf not found: install the dev extras (pip install -e '.[dev]', which brings buf-bin)"
        )
    return exe


def copy_deps(workspace: Path) -> None:
    """Copy the import closure of workspace/protos outside google/protobuf into workspace/build/buf-deps."""
    import google.api

    source = Path(next(iter(google.api.__path__))).parent.parent
    dest = workspace / DEPS
    shutil.rmtree(dest, ignore_errors=True)
    todo = [p.read_text() for p in (workspace / "protos").rglob("*.proto")]
    seen: set[str] = set()
    while todo:
        for name in IMPORT.findall(todo.pop()):
            if name in seen or name.startswith("google/protobuf/") or (workspace / "protos" / name).exists():
                continue
            seen.add(name)
            found = source / name
            if not found.exists():
                raise SystemExit(f"cannot find {name} in {source} (googleapis-common-protos)")
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, dest / name)
            todo.append(found.read_text())


def lint() -> int:
    copy_deps(ROOT)
    code = subprocess.call([buf(), "lint"], cwd=ROOT)
    if code == 0:
        print("buf lint: ok")
    return code


def breaking_between(old: Path, new: Path) -> subprocess.CompletedProcess[str]:
    """buf breaking of the workspace ``new`` against the workspace ``old`` (each a folder with
    buf.yaml and protos/); google/api comes from googleapis-common-protos in both.

    Both sides are built into images first: given the workspace itself as its input, buf 1.x
    matched none of its files against an image and passed every change, renumbered fields
    included. The rules are those of ``new``'s buf.yaml (it runs from there)."""
    images = []
    for side in (old, new):
        copy_deps(side)
        image = side / "build" / "image.binpb"
        built = subprocess.run([buf(), "build", "-o", str(image)], cwd=side, capture_output=True, text=True)
        if built.returncode != 0:
            return built
        images.append(str(image))
    return subprocess.run(
        [buf(), "breaking", images[1], "--against", images[0]], cwd=new, capture_output=True, text=True
    )


def breaking(ref: str, required: bool) -> int:
    if (
        subprocess.call(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        != 0
    ):
        if required:
            print(f"buf breaking: no commit {ref} in this clone (a shallow one? git fetch --unshallow)")
            return 1
        print(f"buf breaking: no git ref {ref!r} to compare against; skipped")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        archive = subprocess.run(
            ["git", "archive", ref, "--", "buf.yaml", "protos"], cwd=ROOT, capture_output=True
        )
        if archive.returncode != 0:
            print(f"buf breaking: {ref} has no protos yet; skipped")
            return 0
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        done = breaking_between(old, ROOT)
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode == 0:
        print(f"buf breaking: no breaking change against {ref}")
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lint", help="buf lint (STANDARD and COMMENTS)")
    b = sub.add_parser("breaking", help="buf breaking against a git ref")
    b.add_argument(
        "--against",
        action="append",
        help="git ref to compare with, repeatable (default: main); a ref other than main "
        "must exist in the clone",
    )
    sub.add_parser("deps", help="only copy the google/api protos into build/buf-deps")
    args = parser.parse_args(argv)
    if args.command == "lint":
        return lint()
    if args.command == "breaking":
        refs = args.against or ["main"]
        return max(breaking(ref, required=ref != "main") for ref in refs)
    copy_deps(ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
