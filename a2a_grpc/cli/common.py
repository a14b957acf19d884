"""What every command shares: the one-line error, JSON output, and the words for OS failures."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shlex
import shutil
import signal
import sys
import traceback
from collections.abc import Callable

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = [
    "CliError",
    "dial_address",
    "failure",
    "is_url",
    "os_reason",
    "require_http_extra",
    "say",
    "self_command",
    "set_speaker",
    "shown",
    "speaker",
    "to_json",
    "until_signal",
]


class CliError(Exception):
    """A problem worth one line to the user."""


_speaker = "a2a-grpc"


def set_speaker(name: str) -> None:
    """Who the lines of :func:`say` (and the one-line errors) come from: ``a2a-grpc``, or for a
    worker of ``serve --workers`` ``a2a-grpc[worker N]``, so that interleaved lines say whose they are."""
    global _speaker
    _speaker = name


def speaker() -> str:
    return _speaker


def say(text: str) -> None:
    """One line for the operator on stdout, as ``a2a-grpc: text`` (see :func:`set_speaker`)."""
    print(f"{_speaker}: {text}", flush=True)


def to_json(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message), indent=2)


def require_http_extra(what: str) -> None:
    """CliError saying how to install the bridge's dependencies, if they are not installed."""
    try:
        import httptools  # noqa: F401
        import orjson  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CliError(
            f"{what} needs the JSON bridge's dependencies ({exc.name} is missing): "
            "pip install 'a2a-grpc[http]'"
        ) from None


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def os_reason(exc: OSError) -> str:
    """An OSError as a phrase: its own message without the "[Errno N]" prefix."""
    text = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        text += (
            " (another process listens there: pick another port, or start both with --reuse-port to share it)"
        )
    return text


def shown(path: str) -> str:
    """``path`` relative to the working directory when it is under it (shorter to read)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def failure(what: str, exc: BaseException) -> str:
    """One line: what failed, the exception, and the file and line where it was raised."""
    if isinstance(exc, SyntaxError):
        text, filename, line = exc.msg, exc.filename, exc.lineno
    else:
        text, filename, line = str(exc), None, None
        # The innermost frame of the user's code, not of the import machinery.
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if not frame.filename.startswith("<frozen") and "importlib" not in frame.filename:
                filename, line = frame.filename, frame.lineno
                break
    where = f" ({shown(filename)}, line {line})" if filename else ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{what}: {type(exc).__name__}{': ' + first if first else ''}{where}"


def self_command() -> str:
    """How the user can run this command again from their shell."""
    found = shutil.which("a2a-grpc")
    script = sys.argv[0]
    if os.path.basename(script) == "a2a-grpc":  # the installed entry point
        if found and os.path.exists(script) and os.path.samefile(found, script):
            return "a2a-grpc"
        return shlex.quote(shown(os.path.abspath(script)))
    if found:
        return "a2a-grpc"
    return f"{shlex.quote(shown(sys.executable))} -m a2a_grpc.cli"


def dial_address(host: str, port: int) -> str:
    """Where a client on this machine reaches a server listening on ``host``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def until_signal(again: Callable[[], object] | None = None) -> None:
    """Until SIGINT or SIGTERM; the caller then drains (docs/shutdown.md). ``again`` is called on
    each further signal: a second one during the drain stops at once (still truthfully)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def signalled() -> None:
        if not stop.is_set():
            stop.set()
        elif again is not None:
            say("signalled again: stopping now")
            again()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, signalled)
    await stop.wait()
    say("stopping: draining (a second signal stops at once)")
