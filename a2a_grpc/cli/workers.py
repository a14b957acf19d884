"""``a2a-grpc serve --workers N``: N server processes on the same ports, under one supervisor.

One Python process serves from one core. With ``--workers N`` (or ``auto``: the cores this process
may use) ``serve`` becomes a supervisor: it reserves the gRPC port (and the HTTP port) itself, so a
port in use fails at once and port 0 is chosen once for all, then starts N workers, each the same
``a2a-grpc serve`` command line with its role in :data:`WORKER_ENV`. Each worker listens on the
reserved ports with SO_REUSEPORT (on for this mode only): Linux spreads new connections among the
listening workers; the supervisor's own sockets are bound but never listen, so they take none.

The supervisor restarts a worker that dies unexpectedly (after a back-off that doubles with each
quick failure), gives up, draining the others, when one keeps dying at start, forwards SIGTERM and
SIGINT to every worker (each drains as a single server does; a second signal hurries them), and
exits when all have stopped: 0 if each stopped cleanly. A worker dies with its supervisor
(PR_SET_PDEATHSIG: it is sent SIGTERM and drains), so a killed supervisor leaves no worker behind.

Hand-written rather than multiprocessing or gunicorn: a worker is our own command line (its
argument parsing, configuration and one-line errors unchanged), and the supervisor must drain
through our own signal protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2a_grpc.cli.common import CliError, say

__all__ = [
    "CPU_MAX",
    "GIVE_UP_AFTER",
    "RESTART_BACKOFF_MAX_SECONDS",
    "RESTART_BACKOFF_SECONDS",
    "STABLE_SECONDS",
    "WORKER_ENV",
    "Supervisor",
    "WorkerRole",
    "allowed_cores",
    "reserve_port",
    "worker_count",
]

WORKER_ENV = "A2A_GRPC_WORKER"
"""Set by the supervisor for each worker: its role (:class:`WorkerRole`, as JSON). Not for users."""
GIVE_UP_AFTER = 3
"""A worker that fails this many times in a row (exits before it is ready, or within
:data:`STABLE_SECONDS` of it) makes the supervisor give up."""
STABLE_SECONDS = 10.0
"""A worker that served this long before it died is restarted as a fresh one (its failures forgotten)."""
RESTART_BACKOFF_SECONDS = 0.5
"""The wait before restarting a worker after its first failure; doubled after each further one."""
RESTART_BACKOFF_MAX_SECONDS = 10.0
KILL_AFTER_SECONDS = 30.0
"""Once the workers are told to stop: how long beyond ``server.grace_seconds`` they get before the
supervisor kills them (a drain ends by itself long before: docs/shutdown.md)."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""Where the a2a_grpc this process runs is found: the workers run the same one."""


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
"""The cgroup (v2) CPU quota of this process's container: ``QUOTA PERIOD`` (microseconds) or ``max``."""


def allowed_cores(cpu_max: Path = CPU_MAX) -> tuple[int, str]:
    """How many cores this process may use, and why: its CPU affinity, lowered by a cgroup (v2)
    CPU quota (``cpu_max``) when one is set (a container's CPU limit), rounded up."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    why = f"the {cores} core{'s' if cores != 1 else ''} this process may use"
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            limit = max(1, math.ceil(int(quota) / int(period)))
            if limit < cores:
                cores, why = limit, f"the cgroup CPU quota of {int(quota) / int(period):g} cores"
    except (OSError, ValueError):
        pass  # no cgroup v2 quota to read: the affinity stands
    return cores, why


def worker_count(value: int | str) -> tuple[int, str] | None:
    """The number of workers ``serve.workers`` asks for, and why; None for 1 (no supervisor)."""
    if value == "auto":
        return allowed_cores()
    assert isinstance(value, int)
    return None if value == 1 else (value, "serve.workers, --workers")


def reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind (never listen on) ``host:port`` with SO_REUSEPORT, for the workers to share: the sockets
    held and the port (port 0 picks a free one). CliError if the port is in use by a process that
    does not share it."""
    try:
        resolved = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise CliError(f"cannot listen on {host}:{port}: unknown host") from None
    held: list[socket.socket] = []
    problems: list[OSError] = []
    for family, kind, proto, _, where in resolved:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((where[0], port, *where[2:]))
        except OSError as exc:
            sock.close()
            problems.append(exc)
            continue
        held.append(sock)
        port = port or sock.getsockname()[1]  # the others of a name (localhost: v4 and v6) take the same
    if not held:  # as grpc: listening on one of the addresses of a name is enough
        reason = (problems[0].strerror or str(problems[0])).lower()
        raise CliError(f"cannot listen on {host}:{port}: {reason}")
    return held, port


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What the supervisor tells a worker (in :data:`WORKER_ENV`): which one it is, whom to watch,
    where to say it is ready, the ports to share and whether the store was checked already."""

    index: int
    parent: int
    """The supervisor's PID: the worker stops when it is gone."""
    ready_fd: int
    """A pipe the worker writes one line to once it serves."""
    grpc_port: int
    http_port: int | None
    store_checked: bool

    def to_env(self) -> str:
        return json.dumps({name: getattr(self, name) for name in self.__slots__})

    @classmethod
    def from_env(cls) -> WorkerRole | None:
        """The role of this process, if it is a worker; CliError if the variable is malformed."""
        text = os.environ.get(WORKER_ENV)
        if text is None:
            return None
        try:
            role = cls(**json.loads(text))
            numbers = [role.index, role.parent, role.ready_fd, role.grpc_port]
            if role.http_port is not None:
                numbers.append(role.http_port)
            if not all(type(n) is int and n >= 0 for n in numbers) or type(role.store_checked) is not bool:
                raise TypeError("not a role")
            if max(role.grpc_port, role.http_port or 0) > 65535:
                raise ValueError("not a port")
        except (ValueError, TypeError):
            raise CliError(
                f"{WORKER_ENV} is set by a2a-grpc serve --workers for its workers; unset it"
            ) from None
        return role

    def bind_to_parent(self) -> None:
        """Be sent SIGTERM (and drain) when the supervisor dies, and stop now if it is gone already."""
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != self.parent:  # it died before the line above
            raise CliError("the supervisor (serve --workers) is gone: not starting")

    def adapt(self, settings: Any) -> Any:
        """The gRPC server's settings for this worker: the shared port, shared (SO_REUSEPORT), and
        a metrics port of its own (``metrics_port`` + index, when one is set and not 0)."""
        import dataclasses

        observability = settings.observability
        if observability.metrics_port:
            port = observability.metrics_port + self.index
            observability = dataclasses.replace(observability, metrics_port=port)
        return dataclasses.replace(
            settings, port=self.grpc_port, reuse_port=True, observability=observability
        )

    def ready(self) -> None:
        """Tell the supervisor this worker serves."""
        with contextlib.suppress(OSError):  # a supervisor that is gone takes SIGTERM to us instead
            os.write(self.ready_fd, b"ready\n")
            os.close(self.ready_fd)


def _ended(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class _Slot:
    index: int
    process: asyncio.subprocess.Process | None = None
    ready_at: float | None = None
    ready_before: bool = False
    """It was ready once: the next time it is ready it is a restart."""
    clean: bool = True
    """Its last process ended as asked (cleared by a failure while stopping)."""


class Supervisor:
    """Runs ``count`` workers of the command line ``argv`` (``serve`` with its flags) until a signal
    or a worker that keeps failing; :meth:`run` answers the exit status."""

    def __init__(
        self,
        argv: list[str],
        count: int,
        *,
        grpc_port: int,
        http_port: int | None,
        address: str,
        grace: float,
        store_checked: bool,
    ) -> None:
        self.argv = argv
        self.slots = [_Slot(i) for i in range(count)]
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.address = address
        self.grace = grace
        self.store_checked = store_checked
        self.failure: str | None = None
        self._stopping = asyncio.Event()
        self._first_ready = asyncio.Event()
        self._all_ready = False

    # -- signals ------------------------------------------------------------------------------------

    def _signal_all(self, sig: int) -> None:
        for slot in self.slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(sig)

    def _signalled(self) -> None:
        if not self._stopping.is_set():
            say(f"stopping: draining {len(self.slots)} workers (a second signal stops them at once)")
            self._stopping.set()
        else:
            say("signalled again: telling the workers to stop now")
        self._signal_all(signal.SIGTERM)

    def _give_up(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        if not self._stopping.is_set():
            say("giving up: stopping the other workers (the reason follows once they have stopped)")
            self._stopping.set()
            self._signal_all(signal.SIGTERM)

    # -- workers ------------------------------------------------------------------------------------

    async def _spawn(self, slot: _Slot) -> asyncio.subprocess.Process:
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        role = WorkerRole(
            slot.index, os.getpid(), write_end, self.grpc_port, self.http_port, self.store_checked
        )
        path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, WORKER_ENV: role.to_env(), "PYTHONPATH": path}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "a2a_grpc.cli",
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(write_end,),
                env=env,
                # Its own process group: a Ctrl-C at the terminal reaches the supervisor only, which
                # forwards one signal (two would hurry the drain).
                start_new_session=True,
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        slot.process = process

        def readable() -> None:
            try:
                data = os.read(read_end, 64)
            except OSError:
                data = b""
            if data.startswith(b"ready"):
                self._ready(slot, process)
            if not data:
                loop.remove_reader(read_end)
                os.close(read_end)

        loop.add_reader(read_end, readable)
        say(f"worker {slot.index} started (pid {process.pid})")
        return process

    def _ready(self, slot: _Slot, process: asyncio.subprocess.Process) -> None:
        if slot.process is not process or process.returncode is not None:
            return  # read after that worker ended
        slot.ready_at = asyncio.get_running_loop().time()
        if slot.ready_before:
            say(f"worker {slot.index} ready again (pid {process.pid})")
        slot.ready_before = True
        self._first_ready.set()
        if not self._all_ready and all(s.ready_at is not None for s in self.slots):
            self._all_ready = True
            pids = ", ".join(str(s.process.pid) for s in self.slots if s.process is not None)
            say(f"all {len(self.slots)} workers ready (pids {pids}), serving gRPC at {self.address}")

    async def _run_slot(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping.is_set():
            slot.ready_at = None
            try:
                process = await self._spawn(slot)
            except OSError as exc:
                self._give_up(f"cannot start worker {slot.index}: {exc.strerror or exc}")
                return
            if self._stopping.is_set():  # a signal came while it started: it missed the forward
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            code = await process.wait()
            ready_at, slot.ready_at = slot.ready_at, None
            if self._stopping.is_set():
                # Told to stop: 0 is a clean drain; SIGTERM before it could handle it is clean too.
                slot.clean = code == 0 or (ready_at is None and code == -signal.SIGTERM)
                if not slot.clean:
                    say(f"worker {slot.index} (pid {process.pid}) {_ended(code)} while stopping")
                return
            served = 0.0 if ready_at is None else loop.time() - ready_at
            failures = 1 if served >= STABLE_SECONDS else failures + 1
            when = "before it was ready" if ready_at is None else f"after {served:.1f} s"
            say(f"worker {slot.index} (pid {process.pid}) {_ended(code)} {when}")
            if failures >= GIVE_UP_AFTER:
                slot.clean = False
                self._give_up(
                    f"worker {slot.index} failed {failures} times in a row (last: {_ended(code)} {when}; "
                    "its own error is above)"
                )
                return
            delay = min(RESTART_BACKOFF_SECONDS * 2 ** (failures - 1), RESTART_BACKOFF_MAX_SECONDS)
            say(f"restarting worker {slot.index} in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def run(self) -> int:
        """Run the workers until they have all stopped; 0 if each stopped cleanly, else 1
        (:attr:`failure` says why when the supervisor gave up)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            # Worker 0 first: it ends the tasks a previous run left running (the orphans a server
            # recovers at start, docs/shutdown.md) before the others start, so that no two workers
            # end the same task.
            runs = [asyncio.ensure_future(self._run_slot(self.slots[0]))]
            first = asyncio.ensure_future(self._first_ready.wait())
            starting: set[asyncio.Future[Any]] = {first, stopping, runs[0]}
            await asyncio.wait(starting, return_when=asyncio.FIRST_COMPLETED)
            first.cancel()
            if not self._stopping.is_set():
                runs += [asyncio.ensure_future(self._run_slot(slot)) for slot in self.slots[1:]]
            done = asyncio.gather(*runs)
            waits: set[asyncio.Future[Any]] = {stopping, done}
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            bound = self.grace + KILL_AFTER_SECONDS
            try:
                await asyncio.wait_for(asyncio.shield(done), bound)
            except TimeoutError:
                say(f"workers still running {bound:g} s after they were told to stop: killing them")
                self._signal_all(signal.SIGKILL)
                await done
        finally:
            stopping.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self._signal_all(signal.SIGKILL)  # only if this coroutine itself was cancelled or failed
        return 0 if self.failure is None and all(s.clean for s in self.slots) else 1
