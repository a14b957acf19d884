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
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from a2a_grpc import types
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

_UPSERT_PUSH = """
INSERT INTO push_configs (tenant, task_id, id, body) VALUES (?, ?, ?, ?)
ON CONFLICT (tenant, task_id, id) DO UPDATE SET body = excluded.body
"""


class SqliteTaskStore:
    """A :class:`~a2a_grpc.tasks.store.TaskStore` in the SQLite file at ``path``.

    Parent directories are created. ``":memory:"`` gives a private, non-persistent database.
    The constructor opens (and if needed creates) the database before returning, so a bad
    path fails here rather than on first use. Always ``await store.close()``.
    """

    def __init__(self, path: str) -> None:
        self._path = path
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
        if self._path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self._path))
            os.makedirs(parent, exist_ok=True)
        # Autocommit: every statement is its own transaction unless we BEGIN explicitly.
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=5000")  # another process may hold the write lock
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"task store {self._path!r} has schema version {version}, newer than the "
                    f"supported {SCHEMA_VERSION}; upgrade a2a-grpc"
                )
            if version < SCHEMA_VERSION:
                # executescript() would commit an open transaction first, so the script
                # carries its own: schema and version land together or not at all.
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            (self._seq,) = conn.execute("SELECT COALESCE(MAX(updated_seq), 0) FROM tasks").fetchone()
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_sync(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA optimize")  # keeps query-planner statistics fresh
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
