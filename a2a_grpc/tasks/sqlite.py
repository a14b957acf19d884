"""The embedded default task store: one SQLite file that survives restarts.

All SQLite work happens on one dedicated worker thread (a single-worker executor), which
owns the only connection: SQLite connections are not shareable across threads, and one
writer avoids lock contention entirely. Coroutines queue their calls on it and never block
the event loop on disk I/O. Tasks are serialised on the event loop before being handed over,
so the stored snapshot is exactly what the caller passed, even if it mutates the task later.

The database runs in WAL mode with ``synchronous=NORMAL``: readers never block the writer,
and a commit costs no fsync (durability is that of the last checkpoint on power loss,
never corruption). Filters, ordering, ``total_size`` and cursor pagination are done in SQL
(see :mod:`a2a_grpc.tasks.store` for the semantics).

Opening checks the file before any request can reach it: a file that is not a database, is
damaged, is locked by another process, cannot be written, or is a directory raises
:class:`~a2a_grpc.tasks.StoreError` with one line naming the file and the problem, rather than
a server that starts and then fails every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from a2a_grpc import types
from a2a_grpc.tasks._errors import StoreError
from a2a_grpc.tasks.store import (
    PushConfigPage,
    PushQuery,
    TaskQuery,
    encode_push_cursor,
    encode_task_cursor,
    parse_list_request,
    parse_push_query,
    timestamp_micros,
    trim_task_in_place,
)

__all__ = ["SCHEMA_VERSION", "SqliteTaskStore"]

_T = TypeVar("_T")

SCHEMA_VERSION = 1
"""Stored in ``PRAGMA user_version``; bump it with a migration when the schema changes."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    tenant      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    context_id  TEXT    NOT NULL,
    state       INTEGER NOT NULL,
    status_ts   INTEGER NOT NULL,   -- status.timestamp in microseconds since the epoch; 0 if unset
    updated_seq INTEGER NOT NULL,   -- store-wide save counter: the order in which saves happened
    body        BLOB    NOT NULL,   -- Task.SerializeToString()
    PRIMARY KEY (tenant, id)
);
-- One index per ListTasks filter, each ending in the sort key so that the filter, the
-- ordering and the cursor condition are all satisfied by a single index range scan.
CREATE INDEX IF NOT EXISTS tasks_by_time    ON tasks (tenant, status_ts, id);
CREATE INDEX IF NOT EXISTS tasks_by_context ON tasks (tenant, context_id, status_ts, id);
CREATE INDEX IF NOT EXISTS tasks_by_state   ON tasks (tenant, state, status_ts, id);
CREATE TABLE IF NOT EXISTS push_configs (
    tenant  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    id      TEXT NOT NULL,
    body    BLOB NOT NULL,          -- TaskPushNotificationConfig.SerializeToString()
    PRIMARY KEY (tenant, task_id, id)
);
"""

_UPSERT_TASK = """
INSERT INTO tasks (tenant, id, context_id, state, status_ts, updated_seq, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, id) DO UPDATE SET
    context_id = excluded.context_id, state = excluded.state, status_ts = excluded.status_ts,
    updated_seq = excluded.updated_seq, body = excluded.body
"""

_RESTORE = "restore it from a backup, or move it aside to start with an empty store"

_UPSERT_PUSH = """
INSERT INTO push_configs (tenant, task_id, id, body) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, task_id, id) DO UPDATE SET body = excluded.body
"""


class SqliteTaskStore:
    """A :class:`~a2a_grpc.tasks.store.TaskStore` in the SQLite file at ``path``.

    Parent directories are created. ``":memory:"`` gives a private, non-persistent database.
    The constructor opens (and if needed creates) the database before returning, so a bad
    file fails here, with :class:`~a2a_grpc.tasks.StoreError`, rather than on first use.
    Always ``await store.close()``.

    ``check_integrity`` runs ``PRAGMA quick_check`` on an existing file at open, so a file
    with damaged pages refuses to open instead of failing calls later. It reads the whole
    file, sequentially first (on a cold page cache the check alone reads pages scattered).
    Measured with ``python -m benchmarks.store_check`` (tasks of ~2.5 KiB: four messages and
    an artifact; 2-core VM, SSD), it adds to the open: 0.04 s for 10,000 tasks (43 MB) and
    0.3 s for 100,000 tasks (430 MB), with the file in the page cache or evicted from it
    (without the sequential read, evicted: 1 s and 9.6 s). Pass False for stores so large
    that this matters. ``quick_check`` rather than ``integrity_check``: it finds the damaged
    pages and b-trees that make queries fail, in time linear in the file; ``integrity_check``
    also matches every index entry with its row, 1.8 times the time at 100,000 tasks (and
    growing faster), for damage that does not stop a server from answering.

    ``busy_timeout`` is how long, in seconds, a statement waits for another process's lock
    before failing (at open too: a file another process holds locked fails after it).
    """

    def __init__(self, path: str, *, check_integrity: bool = True, busy_timeout: float = 5.0) -> None:
        self._path = path
        self._check_integrity = check_integrity
        self._busy_timeout = busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="a2a-task-store")
        self._conn: sqlite3.Connection | None = None
        self._seq = 0  # only touched on the worker thread
        self._closed = False
        try:
            # Blocks the caller once, at startup; every later call goes through _run.
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    @property
    def path(self) -> str:
        return self._path

    # ------------------------------------------------------------ TaskStore

    async def get(self, tenant: str, task_id: str) -> types.Task | None:
        return await self._run(partial(self._get_sync, tenant, task_id))

    async def save(self, tenant: str, task: types.Task) -> None:
        if not task.id:
            raise ValueError("cannot save a task without an id")
        # Serialise here, not on the worker: the caller owns `task` and may change it
        # as soon as we yield to the event loop.
        status = task.status
        row = (tenant, task.id, task.context_id, status.state, timestamp_micros(status.timestamp))
        await self._run(partial(self._save_sync, row, task.SerializeToString()))

    async def list(self, tenant: str, request: types.ListTasksRequest) -> types.ListTasksResponse:
        query = parse_list_request(tenant, request)  # validation errors without a thread hop
        return await self._run(partial(self._list_sync, query))

    async def put_push_config(self, tenant: str, config: types.TaskPushNotificationConfig) -> None:
        if not config.task_id or not config.id:
            raise ValueError("a push notification config needs both task_id and id to be stored")
        row = (tenant, config.task_id, config.id, config.SerializeToString())
        await self._run(partial(self._execute_sync, _UPSERT_PUSH, row))

    async def get_push_config(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None:
        return await self._run(partial(self._get_push_sync, tenant, task_id, config_id))

    async def list_push_configs(
        self, tenant: str, task_id: str, page_size: int, page_token: str
    ) -> PushConfigPage:
        query = parse_push_query(tenant, task_id, page_size, page_token)
        return await self._run(partial(self._list_push_sync, query))

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        sql = "DELETE FROM push_configs WHERE tenant = ? AND task_id = ? AND id = ?"
        return await self._run(partial(self._execute_sync, sql, (tenant, task_id, config_id))) > 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        finally:
            # The queue is empty by now, so this only joins an idle thread.
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[[], _T]) -> _T:
        if self._closed:
            raise RuntimeError("SqliteTaskStore is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteTaskStore is closed")
        return self._conn

    # ------------------------------------------------------------ worker-thread side

    def _open(self) -> None:
        try:
            self._conn = self._connect()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._problem(exc), path=self._path) from exc

    def _connect(self) -> sqlite3.Connection:
        on_disk = self._path != ":memory:"
        if on_disk:
            if os.path.isdir(self._path):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
        # Autocommit: every statement is its own transaction unless we BEGIN explicitly.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Another process may hold the write lock for a moment.
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"task store {self._path} has schema version {version}, newer than the "
                    f"{SCHEMA_VERSION} this a2a-grpc supports: upgrade a2a-grpc",
                    path=self._path,
                )
            if version and self._check_integrity:
                if on_disk:
                    _read_through(self._path)
                # quick_check(1): stop at the first problem, which is all the message names.
                (verdict,) = conn.execute("PRAGMA quick_check(1)").fetchone()
                if verdict != "ok":
                    # e.g. "*** in database main ***\nPage 4: btreeInitPage() returns error code 11"
                    lines = verdict.splitlines()
                    found = "; ".join(x for x in lines if x.strip() and not x.startswith("***"))
                    raise StoreError(
                        f"task store {self._path} is damaged (SQLite quick_check: {found}); {_RESTORE}",
                        path=self._path,
                    )
            if version < SCHEMA_VERSION:
                # executescript() would commit an open transaction first, so the script
                # carries its own: schema and version land together or not at all.
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            elif on_disk:
                # Take the write lock once: a file we can read but not write (or that another
                # process keeps locked) fails now, not on the first task.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            (self._seq,) = conn.execute("SELECT COALESCE(MAX(updated_seq), 0) FROM tasks").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _problem(self, exc: sqlite3.Error | OSError) -> str:
        """One line naming the file, what is wrong with it, and what to do."""
        path = self._path
        if isinstance(exc, StoreError):
            return exc.message
        if isinstance(exc, IsADirectoryError):
            return f"task store {path} is a directory, not a database file"
        if isinstance(exc, OSError):
            parent = os.path.dirname(path) or "."
            if isinstance(exc, (FileExistsError, NotADirectoryError)):
                return f"task store {path}: its directory {parent} cannot be made: a file is in the way"
            return f"task store {path}: its directory {parent} cannot be made: {_reason(exc)}"
        text = str(exc)
        if "file is not a database" in text:
            return (
                f"task store {path} is not an SQLite database (damaged, or another kind of file); {_RESTORE}"
            )
        if "malformed" in text or "corrupt" in text:
            return f"task store {path} is damaged ({text}); {_RESTORE}"
        if "locked" in text or "busy" in text:
            return (
                f"task store {path} is locked by another process (waited {self._busy_timeout:g} s); "
                "stop that process, or give this server a store file of its own"
            )
        if "unable to open" in text or "readonly" in text or "read-only" in text:
            why = _unwritable(path) or text
            return f"task store {path} cannot be opened for reading and writing: {why}"
        return f"task store {path} cannot be used: {text}"

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Keeps query-planner statistics fresh; best effort, so a damaged file still closes.
            try:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA optimize")
            finally:
                conn.close()

    def _execute_sync(self, sql: str, params: tuple[object, ...]) -> int:
        return self._db.execute(sql, params).rowcount

    def _save_sync(self, row: tuple[str, str, str, int, int], body: bytes) -> None:
        self._seq += 1
        self._db.execute(_UPSERT_TASK, (*row, self._seq, body))

    def _get_sync(self, tenant: str, task_id: str) -> types.Task | None:
        found = self._db.execute(
            "SELECT body FROM tasks WHERE tenant = ? AND id = ?", (tenant, task_id)
        ).fetchone()
        return types.Task.FromString(found[0]) if found is not None else None

    def _list_sync(self, query: TaskQuery) -> types.ListTasksResponse:
        where = ["tenant = ?"]
        params: list[object] = [query.tenant]
        if query.context_id:
            where.append("context_id = ?")
            params.append(query.context_id)
        if query.status:
            where.append("state = ?")
            params.append(query.status)
        if query.after_micros is not None:
            where.append("status_ts >= ?")
            params.append(query.after_micros)
        filters = " AND ".join(where)
        page_where, page_params = filters, params
        if query.cursor is not None:
            page_where += " AND (status_ts, id) < (?, ?)"
            page_params = [*params, *query.cursor]
        db = self._db
        # One read transaction so total_size and the page come from the same snapshot.
        db.execute("BEGIN")
        try:
            (total,) = db.execute(f"SELECT COUNT(*) FROM tasks WHERE {filters}", params).fetchone()
            rows = db.execute(
                f"SELECT status_ts, id, body FROM tasks WHERE {page_where} "
                "ORDER BY status_ts DESC, id DESC LIMIT ?",
                (*page_params, query.page_size + 1),  # one extra row: is there a next page?
            ).fetchall()
        finally:
            db.execute("COMMIT")
        response = types.ListTasksResponse(page_size=query.page_size, total_size=total)
        if len(rows) > query.page_size:
            rows = rows[: query.page_size]
            response.next_page_token = encode_task_cursor(query, (rows[-1][0], rows[-1][1]))
        for _, _, body in rows:
            task = response.tasks.add()
            task.ParseFromString(body)
            trim_task_in_place(task, query.history_length, query.include_artifacts)
        return response

    def _get_push_sync(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None:
        found = self._db.execute(
            "SELECT body FROM push_configs WHERE tenant = ? AND task_id = ? AND id = ?",
            (tenant, task_id, config_id),
        ).fetchone()
        return types.TaskPushNotificationConfig.FromString(found[0]) if found is not None else None

    def _list_push_sync(self, query: PushQuery) -> PushConfigPage:
        rows = self._db.execute(
            "SELECT id, body FROM push_configs WHERE tenant = ? AND task_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (query.tenant, query.task_id, query.after_id or "", query.page_size + 1),
        ).fetchall()
        token = ""
        if len(rows) > query.page_size:
            rows = rows[: query.page_size]
            token = encode_push_cursor(query, rows[-1][0])
        return [types.TaskPushNotificationConfig.FromString(body) for _, body in rows], token


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _unwritable(path: str) -> str | None:
    """Why the operating system will not let us write ``path`` (SQLite does not say), if it will not."""
    existed = os.path.exists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        return _reason(exc)
    os.close(fd)
    if not existed:
        os.unlink(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.access(parent, os.W_OK):  # WAL mode needs the -wal and -shm files beside it
        return f"its directory {parent} is not writable"
    return None


def _read_through(path: str, chunk: int = 1 << 20) -> None:
    """Read the file once, in order, into the page cache.

    quick_check visits pages in b-tree order, which on a cold cache is scattered reads: on a
    100,000-task store this turns ~8 s of them into ~1 s of sequential reading.
    """
    buffer = bytearray(chunk)
    with open(path, "rb", buffering=0) as file:
        while file.readinto(buffer):
            pass
