"""``a2a-grpc serve --workers``: real supervisor and worker processes on 127.0.0.1.

Each supervisor is started with an SQLite store in ``tmp_path`` and an agent that answers with the
PID of the process that ran it, so that the answers say which worker served them; every wait is
bounded, and every process started (the supervisor and each worker it names) is killed by PID at
the end of its test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from a2a_grpc import types
from a2a_grpc.cli.args import workers as workers_arg
from a2a_grpc.cli.common import CliError
from a2a_grpc.cli.config import ServeSettings
from a2a_grpc.cli.workers import WORKER_ENV, WorkerRole, allowed_cores, reserve_port, worker_count
from a2a_grpc.server import ServerSettings
from benchmarks.servers import workers_ready

CLI = [sys.executable, "-m", "a2a_grpc.cli"]
START = 60.0
"""Seconds a supervisor may take until all its workers are ready (the machine is shared)."""
EXIT = 40.0
"""Seconds a supervisor may take to exit once told to (each worker's grace is 5 s)."""
ASYNC = pytest.mark.asyncio
# Longer than every bounded wait of a test here (START, EXIT), so that a wait that runs out
# fails with its message and the supervisor's lines, not as pytest-timeout's bare timeout.
pytestmark = pytest.mark.timeout(3 * START)

AGENT = """
import asyncio
import os

from a2a_grpc import types
from a2a_grpc.agent import Agent


def _card():
    card = types.AgentCard(name="whoami", description="answers with its process id", version="1.0.0",
                           default_input_modes=["text/plain"], default_output_modes=["text/plain"])
    card.skills.add(id="pid", name="pid", description="the process id", tags=["pid"])
    return card


class WhoAmI(Agent):
    card = _card()

    async def execute(self, context, updater):
        if context.text == "slow":
            await updater.working(str(os.getpid()))
            await asyncio.sleep(600)
        await updater.artifact([types.Part(text=str(os.getpid()))], name="pid")
        await updater.complete()
"""


class Supervised:
    """A supervisor process, the lines it and its workers printed (read by a thread), and the PIDs
    it named; every one of them killed by PID at the end."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put("")

    def _take(self, timeout: float) -> str | None:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        self.lines.append(line)
        return line

    def until_line(self, pattern: str, timeout: float = START, after: int = 0) -> re.Match[str]:
        """The first line from index ``after`` on that matches ``pattern`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for line in self.lines[seen:]:
                if found := re.search(pattern, line):
                    return found
            seen = len(self.lines)
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} not printed within {timeout:g} s:\n" + "\n".join(self.lines)
            line = self._take(min(left, 0.5))
            if line == "" and self.proc.poll() is not None:
                raise AssertionError(
                    f"the supervisor exited ({self.proc.returncode}):\n" + "\n".join(self.lines)
                )

    @property
    def workers(self) -> dict[int, int]:
        """Worker index -> the PID of its latest process, as the supervisor said."""
        found: dict[int, int] = {}
        for line in self.lines:
            if m := re.search(r"^a2a-grpc: worker (\d+) started \(pid (\d+)\)", line):
                found[int(m.group(1))] = int(m.group(2))
        return found

    @property
    def address(self) -> str:
        return self.until_line(r"sharing gRPC ([\d.]+:\d+)").group(1)

    @property
    def http(self) -> str:
        return "http://127.0.0.1:" + self.until_line(r"and HTTP port (\d+)").group(1)

    def exited(self, timeout: float = EXIT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {timeout:g} s later:\n" + "\n".join(self.lines)) from None
        self._reader.join(timeout=10)
        while self._take(0) is not None:
            pass
        self.lines = [line for line in self.lines if line]  # without the end-of-output marker
        return code

    def kill_all(self) -> None:
        for pid in [self.proc.pid, *self.workers.values()]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def supervising(
    tmp_path: Path, *args: str, ready: bool = True, store: str | None = None, **popen: object
) -> Iterator[Supervised]:
    """``a2a-grpc serve --workers ... ARGS`` with the WhoAmI agent and an SQLite store in
    ``tmp_path``; waits until all its workers are ready unless ``ready`` is False."""
    (tmp_path / "whoami.py").write_text(AGENT)
    store = store or f"sqlite:///{tmp_path / 'tasks.db'}"
    agent = ["--agent", "whoami:WhoAmI", "--app-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [*CLI, "serve", "--store", store, *agent, "--grpc-port", "0", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    supervised = Supervised(proc)
    try:
        if ready:
            supervised.until_line(r"^a2a-grpc: all \d+ workers ready")
        yield supervised
    finally:
        supervised.kill_all()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


async def until(condition: Callable[[], bool], timeout: float = EXIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.1)


def request(text: str = "who") -> types.SendMessageRequest:
    req = types.SendMessageRequest()
    req.message.message_id = f"m-{time.monotonic_ns()}"
    req.message.role = types.ROLE_USER
    req.message.parts.add(text=text)
    return req


async def pid_over_grpc(address: str) -> int:
    """The PID that answers one SendMessage over a connection of its own."""
    # A channel of its own subchannel pool: a new TCP connection, which the kernel gives to any worker.
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = channel.unary_unary(
            "/lf.a2a.v1.A2AService/SendMessage",
            request_serializer=types.SendMessageRequest.SerializeToString,
            response_deserializer=types.SendMessageResponse.FromString,
        )
        answer = await call(request(), metadata=(("a2a-version", "1.0"),), timeout=20)
    return int(answer.task.artifacts[0].parts[0].text)


async def pid_over_http(base: str) -> int:
    body = {
        "message": {"messageId": f"m-{time.monotonic_ns()}", "role": "ROLE_USER", "parts": [{"text": "who"}]}
    }
    async with httpx.AsyncClient(timeout=20) as http:  # a new connection per client
        answer = await http.post(f"{base}/message:send", json=body, headers={"A2A-Version": "1.0"})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["task"]["artifacts"][0]["parts"][0]["text"])


async def pids_seen(ask: Callable[[], object], want: set[int], tries: int = 200) -> set[int]:
    """The PIDs that answer, over up to ``tries`` new connections, stopping once ``want`` are all seen."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(await ask())  # type: ignore[misc]
        if want <= seen:
            break
    return seen


@ASYNC
async def test_two_workers_share_the_grpc_and_http_ports_both_answer_and_sigterm_drains_them(
    tmp_path: Path,
) -> None:
    with supervising(tmp_path, "--workers", "2", "--http-port", "0", "--log-format", "json",
                     "--log-level", "info") as served:  # fmt: skip
        workers = served.workers
        assert sorted(workers) == [0, 1]
        pids = set(workers.values())
        assert await pids_seen(lambda: pid_over_grpc(served.address), pids) == pids
        assert await pids_seen(lambda: pid_over_http(served.http), pids) == pids
        # Whose line is whose: the printed lines and every log record name the worker.
        for index in (0, 1):
            assert any(line.startswith(f"a2a-grpc[worker {index}]: serving") for line in served.lines)
            assert any(f'"worker": "{index}"' in line for line in served.lines)
        # The benchmark harness reads the same lines (python -m benchmarks --cases grpc-unary-workers-2).
        info: dict[str, object] = {}
        assert [workers_ready(line, info) for line in served.lines].count(True) == 1
        assert info == {"grpc_port": int(served.address.rpartition(":")[2]), "worker_pids": workers}
        os.kill(served.proc.pid, signal.SIGTERM)
        assert served.exited() == 0
        for index in (0, 1):
            assert f"a2a-grpc[worker {index}]: stopped" in served.lines
        assert served.lines[-1] == "a2a-grpc: stopped"
        assert not any(alive(pid) for pid in pids)


@ASYNC
async def test_a_killed_worker_is_restarted_while_the_port_keeps_answering(tmp_path: Path) -> None:
    with supervising(tmp_path, "--workers", "2") as served:
        first = served.workers
        os.kill(first[0], signal.SIGKILL)
        mark = len(served.lines)
        # Once it is gone (reaped by the supervisor: every thread ended, its listening socket closed
        # with the last), the port answers meanwhile: worker 1, or the new worker 0 once it serves.
        served.until_line(r"^a2a-grpc: worker 0 \(pid \d+\) was killed by SIGKILL", after=mark)
        for _ in range(10):
            assert await pid_over_grpc(served.address) != first[0]
        served.until_line(r"^a2a-grpc: worker 0 ready again \(pid (\d+)\)", after=mark)
        again = served.workers
        assert again[1] == first[1]
        assert again[0] != first[0]
        assert alive(again[0])
        pids = set(again.values())
        assert await pids_seen(lambda: pid_over_grpc(served.address), pids) == pids
        os.kill(served.proc.pid, signal.SIGTERM)
        assert served.exited() == 0


def test_a_worker_that_fails_at_start_makes_the_supervisor_give_up(tmp_path: Path) -> None:
    with supervising(tmp_path, "--workers", "2", "--agent", "no_such_module:Agent", ready=False) as served:
        assert served.exited(START) == 1
        text = "\n".join(served.lines)
        assert "a2a-grpc[worker 0]: error: cannot import 'no_such_module'" in text
        assert re.search(r"a2a-grpc: error: worker \d failed 3 times in a row \(last: exited with status 1 "
                         r"before it was ready", text), text  # fmt: skip
        assert "restarting worker" in text
        assert not any(alive(pid) for pid in served.workers.values())


@ASYNC
async def test_a_killed_supervisor_takes_its_workers_with_it(tmp_path: Path) -> None:
    with supervising(tmp_path, "--workers", "2") as served:
        pids = list(served.workers.values())
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait(timeout=10)
        await until(lambda: not any(alive(pid) for pid in pids))  # each drained on its SIGTERM


def test_workers_auto_is_the_cores_this_process_may_use(tmp_path: Path) -> None:
    one_core = {min(os.sched_getaffinity(0))}
    with supervising(
        tmp_path, "--workers", "auto", preexec_fn=lambda: os.sched_setaffinity(0, one_core)
    ) as served:
        served.until_line(r"^a2a-grpc: starting 1 worker \(the 1 core this process may use\)")
        assert list(served.workers) == [0]
    cores = len(os.sched_getaffinity(0))
    assert allowed_cores(tmp_path / "none")[0] == cores == worker_count("auto")[0]  # type: ignore[index]
    quota = tmp_path / "cpu.max"
    quota.write_text("50000 100000\n")  # a container limited to half a core: 1 worker (rounded up)
    assert allowed_cores(quota) == (1, "the cgroup CPU quota of 0.5 cores")
    quota.write_text(f"{cores * 100000 + 1} 100000\n")  # more than the affinity allows: the affinity
    assert allowed_cores(quota)[0] == cores
    quota.write_text("max 100000\n")
    assert allowed_cores(quota)[0] == cores
    quota.write_text("garbage")
    assert allowed_cores(quota)[0] == cores
    assert worker_count(1) is None
    assert worker_count(3) == (3, "serve.workers, --workers")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_a_bad_worker_count_is_refused_in_one_line(value: str) -> None:
    done = run("serve", "--workers", value, "--store", "memory")
    assert done.returncode == 2
    assert f"argument --workers: must be a whole number >= 1 or auto, not {value!r}" in done.stderr
    with pytest.raises(argparse.ArgumentTypeError):
        workers_arg(value)


def test_a_bad_worker_count_in_the_configuration_is_refused_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "a2a.yaml"
    config.write_text("serve:\n  workers: 0\n")
    done = run("serve", "--config", str(config), "--store", "memory")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "serve.workers: " in done.stderr
    env = {**os.environ, "A2A_SERVE__WORKERS": "auto"}
    shown = run("config", "show", "--json", "serve", env=env)
    assert shown.returncode == 0, shown.stderr
    assert '"value": "auto"' in shown.stdout.split('"workers"')[1].split("}")[0]
    for good in (1, 4, "auto"):
        assert ServeSettings(workers=good).workers == good  # type: ignore[arg-type]
    for bad in (0, -3, True, "many"):
        with pytest.raises(ValueError, match="workers must be a whole number >= 1 or 'auto'"):
            ServeSettings(workers=bad)  # type: ignore[arg-type]


def test_the_memory_store_is_refused_with_workers() -> None:
    done = run("serve", "--workers", "2", "--store", "memory", "--grpc-port", "0")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "a2a-grpc: error: 2 workers need a task store they share (sqlite:///PATH or redis://...): "
        "the memory store lives inside one process"
    )


def test_a_port_in_use_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run(
            "serve", "--workers", "2", "--store", f"sqlite:///{tmp_path / 't.db'}", "--grpc-port", str(port)
        )
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"a2a-grpc: error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "worker" not in done.stdout


def test_reserved_ports_are_shared_by_workers_and_take_no_connection() -> None:
    held, port = reserve_port("127.0.0.1", 0)
    try:
        assert port > 0
        assert len(held) == 1
        # A process that does not share it cannot take it.
        with socket.socket() as plain, pytest.raises(OSError, match="Address already in use"):
            plain.bind(("127.0.0.1", port))
        with contextlib.suppress(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
            raise AssertionError("a reserved port that nobody listens on took a connection")
        with socket.socket() as worker:  # a worker asks to share it: it may
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_a_worker_role_travels_whole_and_a_forged_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    role = WorkerRole(
        index=1, parent=os.getpid(), ready_fd=7, grpc_port=5000, http_port=None, store_checked=True
    )
    monkeypatch.setenv(WORKER_ENV, role.to_env())
    assert WorkerRole.from_env() == role
    forgeries = ["", "{", "[]", "null", '{"index": "x"}', '{"index": 1}', role.to_env().replace("7", '"7"')]
    bad_indexes = ("-1", "true", "1.5", "null")
    forgeries += [role.to_env().replace('"index": 1', f'"index": {bad}') for bad in bad_indexes]
    forgeries += [role.to_env().replace("5000", "70000"), role.to_env().replace("true", "1")]
    forgeries += [role.to_env().replace("}", ', "extra": 1}'), "9" * 5000]
    for forged in forgeries:
        monkeypatch.setenv(WORKER_ENV, forged)
        with pytest.raises(CliError, match="is set by a2a-grpc serve --workers for its workers"):
            WorkerRole.from_env()
    monkeypatch.delenv(WORKER_ENV)
    assert WorkerRole.from_env() is None
    # Each worker: the shared port, shared; a metrics port of its own (the base + its index).
    settings = role.adapt(ServerSettings(port=0))
    assert (settings.port, settings.reuse_port, settings.observability.metrics_port) == (5000, True, None)
    base = ServerSettings(port=0)
    base = base.__class__(port=0, observability=base.observability.__class__(metrics_port=9100))
    assert role.adapt(base).observability.metrics_port == 9101
    assert ServerSettings().reuse_port is False  # off outside this mode


@ASYNC
async def test_each_worker_serves_its_own_metrics_with_its_index(tmp_path: Path) -> None:
    with supervising(tmp_path, "--workers", "2", "--metrics-port", "0") as served:
        urls = {}
        for index in (0, 1):
            found = served.until_line(rf"^a2a-grpc\[worker {index}\]: metrics and debug endpoints at (\S+)")
            urls[index] = found.group(1)
        async with httpx.AsyncClient(timeout=20) as http:
            for index, url in urls.items():
                text = (await http.get(f"{url}/metrics")).text
                assert f'a2a_worker_info{{worker="{index}"}} 1.0' in text
                assert f'worker="{1 - index}"' not in text


@ASYNC
async def test_a_second_signal_hurries_every_worker_and_the_stop_stays_truthful(tmp_path: Path) -> None:
    env = {**os.environ, "A2A_SERVER__GRACE_SECONDS": "120"}  # far longer than this test may wait
    with supervising(tmp_path, "--workers", "2", env=env) as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stream = channel.unary_stream(
                "/lf.a2a.v1.A2AService/SendStreamingMessage",
                request_serializer=types.SendMessageRequest.SerializeToString,
                response_deserializer=types.StreamResponse.FromString,
            )
            call = stream(request("slow"), metadata=(("a2a-version", "1.0"),), timeout=EXIT)
            events = [await call.read(), await call.read()]  # the task, then WORKING: it sleeps
            os.kill(served.proc.pid, signal.SIGTERM)
            served.until_line(r"^a2a-grpc: stopping: draining 2 workers")
            for index in (0, 1):  # each has taken the first (two signals sent at once would be one)
                served.until_line(rf"^a2a-grpc\[worker {index}\]: stopping: draining")
            os.kill(served.proc.pid, signal.SIGINT)
            while (event := await call.read()) is not grpc.aio.EOF:
                events.append(event)
        assert served.exited() == 0
        assert "a2a-grpc: signalled again: telling the workers to stop now" in served.lines
        final = events[-1].status_update.status
        assert final.state == types.TASK_STATE_FAILED
        assert "the server stopped" in final.message.parts[0].text


@ASYNC
async def test_a_task_of_a_killed_worker_is_ended_truthfully_whichever_worker_reads_it(
    tmp_path: Path,
) -> None:
    with supervising(tmp_path, "--workers", "2") as served:
        async with grpc.aio.insecure_channel(served.address) as channel:
            stream = channel.unary_stream(
                "/lf.a2a.v1.A2AService/SendStreamingMessage",
                request_serializer=types.SendMessageRequest.SerializeToString,
                response_deserializer=types.StreamResponse.FromString,
            )
            call = stream(request("slow"), metadata=(("a2a-version", "1.0"),), timeout=EXIT)
            task = (await call.read()).task
            working = (await call.read()).status_update.status
            runner = int(working.message.parts[0].text)  # the worker running it
            assert runner in served.workers.values()
            index = next(i for i, pid in served.workers.items() if pid == runner)
            mark = len(served.lines)
            os.kill(runner, signal.SIGKILL)
            with contextlib.suppress(grpc.aio.AioRpcError):  # the stream's connection was that worker's
                while await call.read() is not grpc.aio.EOF:
                    pass
        served.until_line(rf"^a2a-grpc: worker {index} ready again", after=mark)
        get = types.GetTaskRequest(id=task.id)
        states = set()
        for _ in range(20):  # over new connections: whichever worker answers, the store says the same
            async with grpc.aio.insecure_channel(
                served.address, options=[("grpc.use_local_subchannel_pool", 1)]
            ) as fresh:
                read = fresh.unary_unary(
                    "/lf.a2a.v1.A2AService/GetTask",
                    request_serializer=types.GetTaskRequest.SerializeToString,
                    response_deserializer=types.Task.FromString,
                )
                found = await read(get, metadata=(("a2a-version", "1.0"),), timeout=20)
            states.add((found.status.state, found.status.message.parts[0].text))
        (state, text), *others = states
        assert others == []
        assert state == types.TASK_STATE_FAILED
        assert "stopped while it was TASK_STATE_WORKING" in text
        os.kill(served.proc.pid, signal.SIGTERM)
        assert served.exited() == 0


async def unary(address: str, method: str, message: Any, answer: Any) -> Any:
    """One call of ``method`` over a new connection (any worker may take it)."""
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = channel.unary_unary(
            f"/lf.a2a.v1.A2AService/{method}",
            request_serializer=type(message).SerializeToString,
            response_deserializer=answer.FromString,
        )
        return await call(message, metadata=(("a2a-version", "1.0"),), timeout=20)


@ASYNC
async def test_workers_share_a_redis_store_a_task_is_read_and_canceled_through_any(
    tmp_path: Path, redis_url: str
) -> None:
    with supervising(tmp_path, "--workers", "2", store=redis_url) as served:
        pids = set(served.workers.values())
        assert await pids_seen(lambda: pid_over_grpc(served.address), pids) == pids
        async with grpc.aio.insecure_channel(served.address) as channel:
            stream = channel.unary_stream(
                "/lf.a2a.v1.A2AService/SendStreamingMessage",
                request_serializer=types.SendMessageRequest.SerializeToString,
                response_deserializer=types.StreamResponse.FromString,
            )
            call = stream(request("slow"), metadata=(("a2a-version", "1.0"),), timeout=EXIT)
            task = (await call.read()).task
            await call.read()  # WORKING, on one of the workers
            for _ in range(12):  # new connections: both workers read it from Redis
                found = await unary(served.address, "GetTask", types.GetTaskRequest(id=task.id), types.Task)
                assert found.status.state == types.TASK_STATE_WORKING
            canceled = await unary(
                served.address, "CancelTask", types.CancelTaskRequest(id=task.id), types.Task
            )
            assert canceled.status.state == types.TASK_STATE_CANCELED
            events = []
            while (event := await call.read()) is not grpc.aio.EOF:
                events.append(event)
        assert events[-1].status_update.status.state == types.TASK_STATE_CANCELED
        os.kill(served.proc.pid, signal.SIGTERM)
        assert served.exited() == 0
