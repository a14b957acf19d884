"""Every code block of the docs runs here, so that the docs cannot drift from the code.

One test per page (the README and every ``docs/*.md``; the README's curl cookbook is
``tests/test_cookbook.py``'s). A page's blocks run in order, in a fresh folder, against the
reference agent served on free ports, and the addresses the docs use (127.0.0.1:50051 for gRPC,
http://127.0.0.1:8080 for JSON, ``grpc_port=50051`` ...) are rewritten to the ones in use:

* ``python``: executed in one namespace per page (top-level ``await`` allowed). A block whose
  fence says ``title="name.py"`` is also written to that file, so later blocks and commands
  import it. Afterwards every ``test_*`` coroutine function the page defined is run (the docs'
  own tests must pass), and a ``main`` coroutine function is run for a moment: it must still be
  serving when it is stopped.
* ``sh``: each command runs. ``a2a-grpc serve`` and ``a2a-grpc bridge`` start in the background
  (stopped by PID at the end of the page) and from then on the page's addresses are theirs;
  ``make`` targets are checked with ``make -n``; commands that take minutes (the benchmarks,
  ``buf generate``) are checked against their ``--help``: every option they use must exist.
* ``ts`` and ``go``: an excerpt of an example program, named by ``title="examples/..."`` in the
  fence, which must contain the block word for word; the example's own test builds and runs it
  (tests/test_node_client.py, tests/test_go_client.py).
* ``json``: must parse. ``text``: a diagram (a sequence of arrows between lifelines), not code.
* ``yaml``: a configuration file (docs/configuration.md): read and judged as ``a2a-grpc serve``
  reads it (``command="bridge grpc-to-http"`` in the fence: as that command does), so every key,
  type and value must be one the configuration takes; with ``title="name.yaml"`` it is also
  written to that file, for the commands after it. A YAML block of another program's (a
  Prometheus or Kubernetes file) says ``other`` in its fence, and must only parse.
  Any other language fails the test: add it here first.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.cli.config import sections_of
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.settings import ConfigError, load
from tests.conftest import stop_process

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
SKIPPED_SECTIONS = {("README.md", "Curl cookbook")}
"""Sections whose blocks another test runs (with checks of their output)."""
COMMAND_LIMIT = 60.0
START_LIMIT = 20.0
MAIN_RUNS = 1.0
FENCE = re.compile(r"^```([\w+-]*)([^\n]*)\n(.*?)^```", re.S | re.M)


@dataclass
class Block:
    page: str
    line: int
    section: str
    lang: str
    info: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def title(self) -> str | None:
        found = re.search(r'title="([^"]+)"', self.info)
        return found.group(1) if found else None


def blocks(page: str) -> list[Block]:
    """The page's fenced blocks, each with the heading it sits under (lines inside blocks that look
    like headings, such as shell comments, are not headings)."""
    text = (ROOT / page).read_text()
    out = []
    section = ""
    taken = 0
    for found in FENCE.finditer(text):
        for heading in re.findall(r"^#+ (.+)$", text[taken : found.start()], flags=re.M):
            section = heading.strip()
        taken = found.end()
        if (page, section) in SKIPPED_SECTIONS:
            continue
        line = text[: found.start()].count("\n") + 1
        out.append(Block(page, line, section, found.group(1), found.group(2), found.group(3)))
    return out


@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")
def test_every_page_has_its_test() -> None:
    assert "docs/agents.md" in PAGES
    assert "docs/client.md" in PAGES
    assert all(blocks(page) for page in ("docs/agents.md", "docs/client.md", "docs/index.md"))


@dataclass
class Page:
    """The running state of one page: where its agent is, what it started."""

    workdir: Path
    grpc: str
    http: str
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "docs"})
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    drains: list[asyncio.Future[None]] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)

    def rewrite(self, code: str) -> str:
        for base in ("https://127.0.0.1:8080", "http://127.0.0.1:8080"):  # the server's scheme wins
            code = code.replace(base, self.http)
        code = code.replace("127.0.0.1:50051", self.grpc)
        for name, port in (("grpc_port", "50051"), ("http_port", "8080")):
            code = code.replace(f"{name}={port}", f"{name}=0")
        for flag, port in (("--grpc-port", "50051"), ("--http-port", "8080")):
            code = code.replace(f"{flag} {port}", f"{flag} 0")
        code = re.sub(r"--listen (\S+):\d+", r"--listen \1:0", code)
        return code.replace(".venv/bin/", f"{BIN}/")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        }


# --- python ------------------------------------------------------------------------------------------


async def run_python(page: Page, block: Block) -> None:
    code = page.rewrite(block.code)
    if block.title is not None:
        (page.workdir / block.title).write_text(code)
        page.modules.append(Path(block.title).stem)
    compiled = compile(code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, page.namespace)  # the docs' own code, run on purpose
    if inspect.iscoroutine(result):
        async with asyncio.timeout(COMMAND_LIMIT):
            await result


async def run_defined(page: Page) -> list[str]:
    """The page's ``test_*`` coroutine functions (each must pass) and ``main`` (must keep serving)."""
    ran = []
    for name, fn in list(page.namespace.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(fn):
            async with asyncio.timeout(COMMAND_LIMIT):
                await fn()
            ran.append(name)
    main = page.namespace.get("main")
    if inspect.iscoroutinefunction(main):
        job = asyncio.ensure_future(main())
        done, _ = await asyncio.wait({job}, timeout=MAIN_RUNS)
        assert not done, f"main() of the page stopped by itself: {job.exception() if done else ''}"
        job.cancel()
        await asyncio.wait({job})
        ran.append("main")
    return ran


# --- sh ----------------------------------------------------------------------------------------------


def commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            out.append(text)
    return out


def argv_of(command: str) -> list[str]:
    without_comment = shlex.split(command, comments=True)
    return without_comment


async def run_process(argv: list[str], page: Page, *, cwd: Path | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd or page.workdir,
        env=page.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(COMMAND_LIMIT):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{argv} did not finish within {COMMAND_LIMIT:g} s") from None
    return proc.returncode or 0, out.decode(errors="replace")


_GRPC_BANNER = re.compile(r"(?:over gRPC at|bridging gRPC at) (\S+)")
_HTTP_BANNER = re.compile(r"(?:JSON-RPC and HTTP\+JSON at) (https?://\S+)")


async def start_server(argv: list[str], page: Page, where: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=page.workdir,
        env=page.env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    page.processes.append(proc)
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(START_LIMIT):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError(f"{where}: {argv} exited:\n{''.join(seen)}")
                seen.append(line)
                if (found := _GRPC_BANNER.search(line)) is not None:
                    page.grpc = found.group(1)
                if (found := _HTTP_BANNER.search(line)) is not None:
                    page.http = found.group(1).rstrip("/")
                if "Ctrl-C" in line or "bridging" in line:
                    break
    except TimeoutError:
        raise AssertionError(f"{where}: {argv} did not start:\n{''.join(seen)}") from None
    page.drains.append(asyncio.ensure_future(_drain(proc.stdout)))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def help_check(argv: list[str], page: Page, where: str) -> None:
    """A command too long to run in a test: its ``--help`` must list every option it uses."""
    code, out = await run_process([*argv_until_options(argv), "--help"], page, cwd=ROOT)
    assert code == 0, f"{where}: {argv} --help failed:\n{out}"
    for option in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
        assert option in out, f"{where}: {argv[0]} has no option {option}:\n{out}"


def argv_until_options(argv: list[str]) -> list[str]:
    """The program and its subcommands (``python -m module`` included), without the options."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "-m":
            out += [arg, next(args)]
        elif arg.startswith("-"):
            break
        else:
            out.append(arg)
    return out


async def run_sh(page: Page, block: Block) -> None:
    """Special commands one by one; runs of ordinary ones in one bash process (variables carry)."""
    script: list[str] = []
    for command in commands(page.rewrite(block.code)):
        argv = argv_of(command)
        where = f"{block.where}: {command}"
        program = Path(argv[0]).name
        special = True
        if program == "make":
            code, out = await run_process(["make", "-n", *argv[1:]], page, cwd=ROOT)
            assert code == 0, f"{where}: no such make target:\n{out}"
        elif program == "a2a-grpc" and argv[1] in ("serve", "bridge"):
            await run_script(script, page, block)
            await start_server(argv, page, where)
        elif (
            (program == "a2a-grpc" and argv[1] == "bench")
            or any(a.startswith("benchmarks") for a in argv[1:3])
            or (program == "buf" and argv[1] == "generate")
        ):
            await help_check(argv, page, where)
        elif (
            program in ("a2a-grpc", "curl", "echo", "openssl")
            or "=" in argv[0]
            or program.startswith("python")
        ):
            special = False
            script.append(command)
        else:
            raise AssertionError(f"{where}: the docs test does not know how to run {program!r}: add a rule")
        if special:
            await run_script(script, page, block)
    await run_script(script, page, block)


async def run_script(script: list[str], page: Page, block: Block) -> None:
    """Run the commands gathered so far in one bash process, from the repository's root if they
    are developer commands (``python tools/...``), else from the page's folder."""
    if not script:
        return
    commands_, script[:] = list(script), []
    cwd = ROOT if any(Path(shlex.split(c)[0]).name.startswith("python") for c in commands_) else None
    body = "\n".join(["set -euo pipefail", *commands_])
    code, out = await run_process(["bash", "-c", body], page, cwd=cwd)
    assert code == 0, f"{block.where}: exit {code}:\n{body}\n---\n{out}"


# --- yaml --------------------------------------------------------------------------------------------


def check_yaml(page: Page, block: Block) -> None:
    """A configuration file of the docs: every key known, every value one its setting takes."""
    if re.search(r"\bother\b", block.info):  # another program's file: it must be YAML, no more
        yaml.safe_load(block.code)
        return
    found = re.search(r'command="([^"]+)"', block.info)
    command = found.group(1) if found else "serve"
    path = page.workdir / (block.title or "config.yaml")
    path.write_text(page.rewrite(block.code))
    try:
        load(sections_of(command), file=path)
    except ConfigError as exc:
        raise AssertionError(f"{block.where}: a configuration {command} refuses: {exc}") from None
    if block.title is None:
        path.unlink()


# --- excerpts ----------------------------------------------------------------------------------------


def check_excerpt(block: Block) -> None:
    """Code of another language: quoted from an example program that its own test builds and runs."""
    title = block.title
    assert title is not None, f'{block.where}: a ```{block.lang} block needs title="examples/..."'
    assert title.startswith("examples/"), f"{block.where}: {title} is not an example program"
    source = ROOT / title
    assert source.is_file(), f"{block.where}: no file {title}"
    assert block.code in source.read_text(), f"{block.where}: not word for word in {title}"


# --- pages -------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def reference() -> AsyncIterator[AgentStack]:
    async with AgentStack(ReferenceAgent(), host="127.0.0.1", grpc_port=0, http_port=0) as stack:
        yield stack


@pytest.mark.parametrize("page_name", PAGES)
async def test_page(
    page_name: str, reference: AgentStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reference.http_url is not None
    page = Page(tmp_path, reference.grpc_address, reference.http_url)
    try:
        for block in blocks(page_name):
            if block.lang == "python":
                await run_python(page, block)
            elif block.lang in ("sh", "bash"):
                await run_sh(page, block)
            elif block.lang in ("ts", "go"):
                check_excerpt(block)
            elif block.lang == "json":
                json.loads(block.code)
            elif block.lang == "yaml":
                check_yaml(page, block)
            elif block.lang == "text":  # a diagram: nothing to run, but it must look like one
                assert "|" in block.code or "->" in block.code, (
                    f"{block.where}: a ```text block that is no diagram"
                )
            else:
                raise AssertionError(f"{block.where}: a ```{block.lang} block: the docs test cannot run it")
        await run_defined(page)
    finally:
        for proc in page.processes:
            await stop_process(proc)
        if page.drains:
            await asyncio.wait(page.drains, timeout=10)
        for name in page.modules:
            sys.modules.pop(name, None)
