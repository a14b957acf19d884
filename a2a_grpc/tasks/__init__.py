"""Task lifecycle rules and task storage.

``open_store(url)`` picks a backend:

* ``memory`` (or ``memory://``): :class:`InMemoryTaskStore`, process-local, lost on exit.
* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``: :class:`SqliteTaskStore`
  (three slashes, then the path; a fourth slash makes it absolute, as in SQLAlchemy).
  ``sqlite:///:memory:`` is a private in-memory SQLite database.
* ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix:///path.sock``:
  :class:`RedisTaskStore`, shared by the replicas that open the same URL (query parameters:
  ``prefix=``, ``cluster=true``, and redis-py's TLS options; see :mod:`a2a_grpc.redisconn`).

A store that cannot be used (a bad URL; a database file that is damaged, locked by another
process, unwritable, or a directory; a Redis that refuses the connection or the password, or does
not answer in time) raises :class:`StoreError`, a ``ValueError`` whose message
is one line naming the file and the problem.
"""

from __future__ import annotations

from a2a_grpc.tasks._errors import (
    InvalidListRequestError,
    InvalidPageTokenError,
    InvalidTransitionError,
    StoreError,
)
from a2a_grpc.tasks.lifecycle import (
    ALLOWED_TRANSITIONS,
    INTERRUPTED_STATES,
    TERMINAL_STATES,
    check_transition,
    is_interrupted,
    is_terminal,
)
from a2a_grpc.tasks.memory import InMemoryTaskStore
from a2a_grpc.tasks.redis_store import RedisTaskStore
from a2a_grpc.tasks.settings import StoreSettings
from a2a_grpc.tasks.sqlite import SqliteTaskStore
from a2a_grpc.tasks.store import TaskStore, trim_task

__all__ = [
    "ALLOWED_TRANSITIONS",
    "INTERRUPTED_STATES",
    "TERMINAL_STATES",
    "InMemoryTaskStore",
    "InvalidListRequestError",
    "InvalidPageTokenError",
    "InvalidTransitionError",
    "RedisTaskStore",
    "SqliteTaskStore",
    "StoreError",
    "StoreSettings",
    "TaskStore",
    "check_transition",
    "is_interrupted",
    "is_terminal",
    "open_store",
    "trim_task",
]

_SQLITE_PREFIX = "sqlite:///"
_REDIS_SCHEMES = ("redis", "rediss", "unix")


def open_store(url: str, *, check_integrity: bool = True, settings: StoreSettings | None = None) -> TaskStore:
    """Open the task store named by ``url`` (see the module docstring); :class:`StoreError` if it
    cannot be used. ``check_integrity`` and ``settings``: see :class:`SqliteTaskStore` (the memory
    store needs neither)."""
    if url in ("memory", "memory://"):
        return InMemoryTaskStore()
    if url.startswith(_SQLITE_PREFIX):
        path = url[len(_SQLITE_PREFIX) :]
        if not path or path.endswith("/"):
            raise StoreError(
                f"task store URL {url!r} has no database file path, e.g. sqlite:///tasks.db", path=path
            )
        return SqliteTaskStore(path, check_integrity=check_integrity, settings=settings)
    scheme, sep, _ = url.partition("://")
    if sep and scheme in _REDIS_SCHEMES:
        return RedisTaskStore(url, settings=settings)
    if sep and scheme == "sqlite":
        raise StoreError(
            f"task store URL {url!r} is malformed: use sqlite:///relative/path.db or sqlite:////absolute/path.db",
            path="",
        )
    if sep:
        raise StoreError(
            f"task store scheme {scheme!r} is not supported; use 'memory', 'sqlite:///path/to/tasks.db' "
            "or 'redis://host:port/0'",
            path="",
        )
    raise StoreError(
        f"task store URL {url!r} is not recognised; use 'memory', 'sqlite:///path/to/tasks.db' or "
        "'redis://host:port/0'",
        path="",
    )
