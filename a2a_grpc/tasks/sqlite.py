"""The embedded default task store: one SQLite file that survives restarts.

All SQLite work happens on one dedicated worker thread (a single-worker executor), which
owns the only connection: SQLite connections are not shareable across threads, and one
writer avoids lock contention entirely. Coroutines queue their operations and never block the
event loop on disk I/O. Tasks and events are serialised on the event loop before being handed
over, so what is stored is exactly what the caller passed, even if it mutates it later.

**Group commit.** Operations queue up while the worker is busy, and the worker runs everything
queued so far in one transaction: under load, many saves and events share one commit (the
costly part), and each operation still completes only once its transaction has committed.

**Durable events.** The store is also the server's event sink (:attr:`SqliteTaskStore.event_sink`):
every event of a task is written as it happens, in the same queue as the task's snapshots, and
a reader sees an event only once it is committed. After a crash, the last snapshot of a task and
its events after it rebuild every part any client was sent. What a crash can lose is what no
client has seen: the events not yet committed, at most the caller's stream window for a streamed
task and half the retained window otherwise (``tests/test_recovery.py`` measures both). Events
a snapshot covers are deleted with that snapshot's save.

**Who runs what.** The store is also a task registry (:attr:`SqliteTaskStore.registry`): a
snapshot of a SUBMITTED or WORKING task records the owner id of the process that saved it, each
process renews a lease in the ``owners`` table, and a task whose owner is no longer alive is an
orphan for the next server to recover (see :mod:`a2a_grpc.tasks.registry`).

The database runs in WAL mode with ``synchronous=NORMAL``: readers never block the writer,
and a commit costs no fsync (a process crash loses nothing committed; a power loss, what came
after the last checkpoint; never corruption). Filters, ordering, ``total_size`` and cursor
pagination are done in SQL (see :mod:`a2a_grpc.tasks.store` for the semantics).

**Reads proportional to answers.** A task's history and artifacts are kept in columns of their own
(:mod:`a2a_grpc.tasks._encoded`), its artifacts last in the row with their size beside them. A
ListTasks reads the page's keys and sizes first, then each task's columns only as far as the page's
byte budget goes, and of those only what the answer holds: never the artifacts of a listing
without them, nor the messages a ``history_length`` drops parsed. Artifacts are read as a blob,
which SQLite copies without holding the GIL.

**Private files, sealed secrets.** The store's folder (when the store creates it) is made
``0700``, its database file ``0600`` before SQLite opens it (SQLite gives ``-wal`` and ``-shm``
the database file's mode), whatever the umask; an existing database, ``-wal`` or ``-shm`` file
that other users may read is made ``0600``, with a warning naming it (:mod:`a2a_grpc.tasks.files`).
Push configs (webhook URLs, tokens, credentials) are stored encrypted with AES-256-GCM, under
a key from ``key``, ``A2A_GRPC_STORE_KEY`` or the key file ``<database>.key``; see
:mod:`a2a_grpc.tasks.sealing` for what that protects against and what it does not. Push configs
a store wrote before it sealed them load as they are, and are sealed when the store opens.

Opening checks the file before any request can reach it: a file that is not a database, is
damaged, is locked by another process, cannot be written, or is a directory raises
:class:`~a2a_grpc.tasks.StoreError` with one line naming the file and the problem, rather than
a server that starts and then fails every call.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import errno
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, TypeVar

from a2a_grpc import errors, types
from a2a_grpc.tasks._encoded import history_tail, split_task
from a2a_grpc.tasks._errors import StoreError
from a2a_grpc.tasks.eventlog import TaskLog
from a2a_grpc.tasks.files import make_private_dirs, make_private_file, tighten
from a2a_grpc.tasks.registry import new_owner_id
from a2a_grpc.tasks.sealing import MARK, Sealer, store_sealer
from a2a_grpc.tasks.settings import StoreSettings
from a2a_grpc.tasks.store import (
    DEFAULT_LIST_ANSWER_BYTES,
    DEFAULT_LIST_PAGE_BYTES,
    PageBudget,
    PushConfigPage,
    PushQuery,
    TaskQuery,
    encode_push_cursor,
    encode_task_cursor,
    parse_list_request,
    parse_push_query,
    timestamp_micros,
)

__all__ = ["SCHEMA_VERSION", "SqliteTaskStore"]

_T = TypeVar("_T")

log = logging.getLogger("a2a_grpc.tasks")

SCHEMA_VERSION = 4
"""Stored in ``PRAGMA user_version``; bump it with a migration when the schema changes.

Version 3 changes no table: ``push_configs.body`` may be sealed (:mod:`a2a_grpc.tasks.sealing`),
which an a2a-grpc that reads version 2 would take for damaged protobuf; it refuses the file instead.
Version 4 keeps a task's history and artifacts apart from the rest of it (a ListTasks reads only
what it returns); opening an older file moves them, once, in the transaction that upgrades it."""
_RUNNING = (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)

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
    body    BLOB NOT NULL,          -- TaskPushNotificationConfig.SerializeToString(), sealed (v3)
    PRIMARY KEY (tenant, task_id, id)
);
"""

# Version 2: snapshots say which event they include and who runs the task; events, owners and
# cancel signals get tables of their own.
_SCHEMA_2 = """
ALTER TABLE tasks ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;      -- the event position the body includes
ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';      -- who runs it (SUBMITTED/WORKING only)
CREATE INDEX IF NOT EXISTS tasks_by_owner ON tasks (owner) WHERE owner != '';
-- A task's events of one transaction, in one row: first_seq..last_seq, each event as a 4-byte
-- big-endian length and StreamResponse.SerializeToString() (one row, not one per event: the
-- per-statement cost dominates small events).
CREATE TABLE IF NOT EXISTS events (
    tenant    TEXT    NOT NULL,
    task_id   TEXT    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    body      BLOB    NOT NULL,
    PRIMARY KEY (tenant, task_id, first_seq)
);
CREATE TABLE IF NOT EXISTS owners (
    owner   TEXT PRIMARY KEY,
    host    TEXT    NOT NULL,
    pid     INTEGER NOT NULL,
    expires REAL    NOT NULL        -- time.time() until which the owner's lease holds
);
CREATE TABLE IF NOT EXISTS cancels (
    tenant  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    PRIMARY KEY (tenant, task_id)
);
"""

# Version 4: ``body`` holds the task without its history and artifacts, which get columns of
# their own, each the task's encoded fields as they are (body + history + artifacts, parsed in
# turn, is the task). Added last, and the artifacts after everything else: SQLite reads a row's
# columns in order, so a read of the others never walks the pages of megabytes of artifacts.
_COLUMNS_4 = (
    ("artifacts_size", "INTEGER NOT NULL DEFAULT 0"),  # length(artifacts), known without reading them
    ("history", "BLOB NOT NULL DEFAULT x''"),  # the Task's history fields
    ("artifacts", "BLOB NOT NULL DEFAULT x''"),  # the Task's artifacts fields
)

_UPSERT_TASK = """
INSERT INTO tasks (tenant, id, context_id, state, status_ts, updated_seq, body, seq, owner,
                   artifacts_size, history, artifacts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant, id) DO UPDATE SET
    context_id = excluded.context_id, state = excluded.state, status_ts = excluded.status_ts,
    updated_seq = excluded.updated_seq, body = excluded.body, seq = excluded.seq, owner = excluded.owner,
    artifacts_size = excluded.artifacts_size, history = excluded.history, artifacts = excluded.artifacts
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

    ``key`` is the key push configs are sealed with (32 bytes, or their base64); without it the
    key comes from ``A2A_GRPC_STORE_KEY``, else from the key file ``<path>.key``, created (mode
    ``0600``) when missing (see :mod:`a2a_grpc.tasks.sealing`). A store whose sealed configs were
    written with another key refuses to open, with :class:`~a2a_grpc.tasks.StoreError`.

    ``settings`` (:class:`~a2a_grpc.tasks.settings.StoreSettings`): how long a statement waits for
    another process's lock, how long this process's leases last, how long a write may wait to share
    a commit; ``busy_timeout``, ``lease_seconds`` and ``commit_delay``, if given, replace those.

    Besides the :class:`~a2a_grpc.tasks.store.TaskStore` protocol it is the server's
    :attr:`event_sink` (durable events) and :attr:`registry` (owners and leases); see the
    module doc. ``owner`` names this process in the registry (default: a fresh owner id).
    """

    def __init__(
        self,
        path: str,
        *,
        check_integrity: bool = True,
        settings: StoreSettings | None = None,
        busy_timeout: float | None = None,
        owner: str | None = None,
        lease_seconds: float | None = None,
        commit_delay: float | None = None,
        key: bytes | str | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "busy_timeout": busy_timeout,
            "lease_seconds": lease_seconds,
            "commit_delay": commit_delay,
        }
        self.settings = dataclasses.replace(
            settings or StoreSettings(), **{k: v for k, v in given.items() if v is not None}
        )
        self._path = path
        self._key = key
        self._sealer: Sealer | None = None  # set by the open, from key, the environment or a key file
        self._check_integrity = check_integrity
        self._busy_timeout = self.settings.busy_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="a2a-task-store")
        self._conn: sqlite3.Connection | None = None
        self._seq = 0  # only touched on the worker thread
        self._closed = False
        self._queue: builtins.list[_Op] = []
        self._flushing = False
        self._scheduled = False
        self._last_commit = 0.0
        self._width = 0.0
        self._commit_delay = self.settings.commit_delay
        self._idle: asyncio.Future[None] | None = None
        self._events_on_disk: dict[tuple[str, str], int] = {}  # loop side: newest event stored per task
        self._pending: dict[tuple[str, str], _Events] = {}  # loop side: events for the next transaction
        self.registry = SqliteRegistry(self, owner or new_owner_id(), self.settings.lease_seconds)
        self.event_sink = SqliteEventSink(self)
        try:
            # Blocks the caller once, at startup; every later call goes through the queue.
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    @property
    def path(self) -> str:
        return self._path

    # ------------------------------------------------------------ TaskStore

    async def get(self, tenant: str, task_id: str) -> types.Task | None:
        found = await self.load(tenant, task_id)
        return found[0] if found is not None else None

    async def load(self, tenant: str, task_id: str) -> tuple[types.Task, int] | None:
        return await self._call(partial(self._load_sync, tenant, task_id))

    def save(self, tenant: str, task: types.Task, *, seq: int = 0) -> asyncio.Future[None]:
        if self._closed:
            raise RuntimeError("SqliteTaskStore is closed")
        if not task.id:
            raise ValueError("cannot save a task without an id")
        # Serialised now (see TaskStore.save): the caller may change `task` at once.
        status = task.status
        owner = self.registry.owner if status.state in _RUNNING else ""
        row = (tenant, task.id, task.context_id, status.state, timestamp_micros(status.timestamp))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Cut into its stored parts on the store's thread, where a save the batch supersedes
        # (see _coalesce) costs nothing more.
        fn = partial(self._save_sync, row, task.SerializeToString(), seq, owner)
        self._push(_Op(fn, future, kind=_SAVE, key=(tenant, task.id), seq=seq))
        return future

    async def list(
        self,
        tenant: str,
        request: types.ListTasksRequest,
        *,
        max_bytes: int = DEFAULT_LIST_PAGE_BYTES,
        max_answer_bytes: int = DEFAULT_LIST_ANSWER_BYTES,
    ) -> types.ListTasksResponse:
        query = parse_list_request(tenant, request)  # validation errors without a thread hop
        budget = PageBudget(max_bytes, max_answer_bytes)
        return await self._call(partial(self._list_sync, query, budget))

    async def put_push_config(self, tenant: str, config: types.TaskPushNotificationConfig) -> None:
        if not config.task_id or not config.id:
            raise ValueError("a push notification config needs both task_id and id to be stored")
        sealed = self._sealing.seal(config.SerializeToString(), tenant, config.task_id, config.id)
        row = (tenant, config.task_id, config.id, sealed)
        await self._call(partial(self._execute_sync, _UPSERT_PUSH, row))

    async def get_push_config(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None:
        return await self._call(partial(self._get_push_sync, tenant, task_id, config_id))

    async def list_push_configs(
        self, tenant: str, task_id: str, page_size: int, page_token: str
    ) -> PushConfigPage:
        query = parse_push_query(tenant, task_id, page_size, page_token)
        return await self._call(partial(self._list_push_sync, query))

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        sql = "DELETE FROM push_configs WHERE tenant = ? AND task_id = ? AND id = ?"
        return await self._call(partial(self._execute_sync, sql, (tenant, task_id, config_id))) > 0

    async def close(self) -> None:
        if self._closed:
            return
        try:
            with contextlib.suppress(Exception):  # best effort: a lease also lapses by itself
                await self.registry.leave()
            await self._drain()
        finally:
            self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sync)
        finally:
            # The queue is empty by now, so this only joins an idle thread.
            self._executor.shutdown(wait=True)

    # ------------------------------------------------------------ the queue (group commit)

    async def _call(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(connection)`` in the next transaction; its result once that has committed."""
        if self._closed:
            raise RuntimeError("SqliteTaskStore is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._push(_Op(fn, future))
        result: _T = await future
        return result

    def _push(self, op: _Op | None) -> None:
        if op is not None:
            self._queue.append(op)
        if not self._flushing and not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            delay = self._commit_delay
            if self._width > 1.25 and loop.time() - self._last_commit < delay:
                # Under concurrent load: gather more work into the next commit (the costly part).
                loop.call_later(delay, self._flush)
            else:
                # At the end of this loop iteration: what the same step queues shares the commit.
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        ops, self._queue = self._queue, []
        events, self._pending = self._pending, {}
        chunks = self._coalesce(ops, events)
        self._flushing = True
        loop = asyncio.get_running_loop()
        work = [op for op in ops if not op.skip]
        done = loop.run_in_executor(self._executor, self._batch_sync, work, chunks)
        done.add_done_callback(partial(self._flushed, ops, events))

    def _coalesce(
        self, ops: builtins.list[_Op], events: dict[tuple[str, str], _Events]
    ) -> builtins.list[_Chunk]:
        """What this transaction writes. A later save of a task makes its earlier saves moot, and
        the events its snapshot includes (they count as stored once it commits); the other events
        of a task become one row. A save prunes the event rows an earlier transaction stored that
        its snapshot includes."""
        last_save: dict[tuple[str, str], _Op] = {}
        for op in ops:
            if op.kind == _SAVE:
                earlier = last_save.get(op.key)
                if earlier is not None:
                    earlier.skip = True
                last_save[op.key] = op
        chunks: builtins.list[_Chunk] = []
        for key, pending in events.items():
            save = last_save.get(key)
            cut = save.seq if save is not None else 0
            items = [(seq, body) for seq, body in pending.items if seq > cut]
            if items:
                body = b"".join(len(data).to_bytes(4, "big") + data for _, data in items)
                chunks.append(_Chunk(key[0], key[1], items[0][0], items[-1][0], body))
        for key, save in last_save.items():
            on_disk = self._events_on_disk.get(key, 0)
            if on_disk:
                save.prune = save.seq
                if on_disk <= save.seq:
                    del self._events_on_disk[key]
        for chunk in chunks:
            self._events_on_disk[(chunk.tenant, chunk.task_id)] = chunk.last_seq
        return chunks

    def _flushed(
        self,
        ops: builtins.list[_Op],
        events: dict[tuple[str, str], _Events],
        done: asyncio.Future[BaseException | None],
    ) -> None:
        failure = done.exception() or done.result()
        for op in ops:
            if op.future is not None and not op.future.done():
                if failure is not None:
                    op.future.set_exception(_store_failure(self._path, failure))
                elif op.error is not None:
                    op.future.set_exception(op.error)
                else:
                    op.future.set_result(op.result)
        for pending in events.values():
            last = pending.items[-1][0]
            if failure is None:
                pending.log.stored(last)
            else:
                pending.log.fail(_lost_event(pending.log, last, failure))
        self._flushing = False
        self._last_commit = asyncio.get_running_loop().time()
        # How many tasks a commit serves, on average lately: above one, callers are concurrent.
        width = len(events.keys() | {op.key for op in ops if op.kind == _SAVE})
        self._width += (width - self._width) * 0.2
        if self._queue or self._pending:
            self._flush()
        elif self._idle is not None:
            self._idle.set_result(None)
            self._idle = None

    async def _drain(self) -> None:
        """Wait until everything queued so far is committed."""
        while self._flushing or self._queue or self._pending or self._scheduled:
            if self._idle is None:
                self._idle = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._idle)

    def _submit_event(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
        key = (log.tenant, log.task_id)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Events(log)
        pending.items.append((seq, event.SerializeToString()))
        self._push(None)

    # ------------------------------------------------------------ worker-thread side

    def _batch_sync(self, ops: builtins.list[_Op], chunks: builtins.list[_Chunk]) -> BaseException | None:
        """Run the operations in one transaction; a failing one fails alone (a savepoint each)."""
        db = self._db
        db.execute("BEGIN")
        try:
            if chunks:
                db.executemany(_INSERT_EVENTS, chunks)
            for op in ops:
                if op.kind == _SAVE:  # the queue's own statements: their failure fails the batch
                    op.fn(op.prune, db)
                    continue
                db.execute("SAVEPOINT op")
                try:
                    op.result = op.fn(db)
                except Exception as exc:
                    db.execute("ROLLBACK TO op")
                    op.error = exc
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            return exc
        return None

    @property
    def _sealing(self) -> Sealer:
        if self._sealer is None:
            raise RuntimeError("SqliteTaskStore is closed")
        return self._sealer

    def _config(
        self, tenant: str, task_id: str, config_id: str, body: bytes
    ) -> types.TaskPushNotificationConfig:
        plain = self._sealing.open(body, tenant, task_id, config_id, where=f"task store {self._path}")
        return types.TaskPushNotificationConfig.FromString(plain)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteTaskStore is closed")
        return self._conn

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
            make_private_dirs(os.path.dirname(os.path.abspath(self._path)))
            # Created private before SQLite opens it: SQLite would create it through the umask
            # (0644 under the usual 022), then give -wal and -shm that mode too.
            make_private_file(self._path)
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
                script = (_SCHEMA if version < 1 else "") + (_SCHEMA_2 if version < 2 else "")
                try:
                    # The script opens the transaction and leaves it open: the rows move in it too.
                    conn.executescript(f"BEGIN IMMEDIATE;{script}")
                    if version < 4:
                        self._split_bodies(conn)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            elif on_disk:
                # Take the write lock once: a file we can read but not write (or that another
                # process keeps locked) fails now, not on the first task.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            (self._seq,) = conn.execute("SELECT COALESCE(MAX(updated_seq), 0) FROM tasks").fetchone()
            if on_disk:
                # Only once it has opened as our database: a file given by mistake is not touched.
                for name in ("", "-wal", "-shm"):
                    tighten(self._path + name)
            self._sealer = store_sealer(self._path, self._key, partial(_holds_sealed, conn))
            self._check_key(conn)
            if on_disk:
                self._seal_plain_configs(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _split_bodies(self, conn: sqlite3.Connection) -> None:
        """Version 4: the columns, then each task's history and artifacts moved out of its body (one
        row at a time, so that memory holds one task, whatever the store's size). A row whose body
        holds neither is left as it is, so running it again changes nothing."""
        have = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
        for name, definition in _COLUMNS_4:
            if name not in have:
                conn.execute(f"ALTER TABLE tasks ADD COLUMN {name} {definition}")
        rowids = [r for (r,) in conn.execute("SELECT rowid FROM tasks")]
        moved = 0
        for rowid in rowids:
            tenant, task_id, body = conn.execute(
                "SELECT tenant, id, body FROM tasks WHERE rowid = ?", (rowid,)
            ).fetchone()
            try:
                rest, history, artifacts = split_task(body)
            except ValueError as exc:
                raise StoreError(
                    f"task store {self._path} holds a damaged task ({errors.echo(task_id)} of tenant "
                    f"{errors.echo(tenant)}: {exc}); {_RESTORE}",
                    path=self._path,
                ) from None
            if history or artifacts:
                moved += 1
                conn.execute(
                    "UPDATE tasks SET body = ?, history = ?, artifacts = ?, artifacts_size = ? "
                    "WHERE rowid = ?",
                    (rest, history, artifacts, len(artifacts), rowid),
                )
        if moved:
            log.info("task store %s: %d task(s) now keep history and artifacts apart", self._path, moved)

    def _check_key(self, conn: sqlite3.Connection) -> None:
        """A key that cannot open the sealed configs fails the open, not every later push."""
        found = conn.execute(_A_SEALED_CONFIG, (MARK,)).fetchone()
        if found is not None:
            self._sealing.check(found[3], where=f"task store {self._path}")

    def _seal_plain_configs(self, conn: sqlite3.Connection) -> None:
        """Seal the push configs an earlier a2a-grpc stored in clear, overwriting the clear bytes."""
        rows = conn.execute(
            "SELECT tenant, task_id, id, body FROM push_configs WHERE substr(body, 1, 1) != ?", (MARK,)
        ).fetchall()
        if not rows:
            return
        sealing = self._sealing
        # secure_delete: the pages' old contents are zeroed, not left in free space.
        conn.execute("PRAGMA secure_delete=ON")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for tenant, task_id, config_id, body in rows:
                    conn.execute(
                        "UPDATE push_configs SET body = ? WHERE tenant = ? AND task_id = ? AND id = ?",
                        (sealing.seal(body, tenant, task_id, config_id), tenant, task_id, config_id),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("PRAGMA secure_delete=OFF")
        # The clear pages also sit in the WAL until a checkpoint: write them back and empty it.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log.info("task store %s: %d push config(s) stored in clear are now sealed", self._path, len(rows))

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

    def _execute_sync(self, sql: str, params: tuple[object, ...], db: sqlite3.Connection) -> int:
        return db.execute(sql, params).rowcount

    def _save_sync(
        self,
        row: tuple[str, str, str, int, int],
        encoded: bytes,
        seq: int,
        owner: str,
        prune: int,
        db: sqlite3.Connection,
    ) -> None:
        self._seq += 1
        rest, history, artifacts = split_task(encoded)
        db.execute(_UPSERT_TASK, (*row, self._seq, rest, seq, owner, len(artifacts), history, artifacts))
        if prune:
            db.execute(
                "DELETE FROM events WHERE tenant = ? AND task_id = ? AND last_seq <= ?",
                (row[0], row[1], prune),
            )

    def _load_sync(self, tenant: str, task_id: str, db: sqlite3.Connection) -> tuple[types.Task, int] | None:
        found = db.execute(
            "SELECT body, seq, history, artifacts_size, rowid FROM tasks WHERE tenant = ? AND id = ?",
            (tenant, task_id),
        ).fetchone()
        if found is None:
            return None
        body, seq, history, artifacts_size, rowid = found
        task = types.Task.FromString(body)
        task.MergeFromString(history)
        if artifacts_size:
            task.MergeFromString(_artifacts(db, rowid))
        return task, seq

    def _events_after_sync(
        self, tenant: str, task_id: str, seq: int, db: sqlite3.Connection
    ) -> builtins.list[tuple[int, types.StreamResponse]]:
        rows = db.execute(
            "SELECT first_seq, body FROM events WHERE tenant = ? AND task_id = ? AND last_seq > ? "
            "ORDER BY first_seq",
            (tenant, task_id, seq),
        ).fetchall()
        out: builtins.list[tuple[int, types.StreamResponse]] = []
        for first, body in rows:
            view, at, n = memoryview(body), 0, first
            while at < len(view):
                size = int.from_bytes(view[at : at + 4], "big")
                if n > seq and (not out or n == out[-1][0] + 1):
                    out.append((n, types.StreamResponse.FromString(bytes(view[at + 4 : at + 4 + size]))))
                at, n = at + 4 + size, n + 1
        return out

    def _list_sync(
        self, query: TaskQuery, budget: PageBudget, db: sqlite3.Connection
    ) -> types.ListTasksResponse:
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
        # All in the batch's transaction: total_size and the page come from the same snapshot.
        (total,) = db.execute(f"SELECT COUNT(*) FROM tasks WHERE {filters}", params).fetchone()
        # The page's keys and sizes first; each task's columns then only as far as the budget goes,
        # and of those only what the answer holds (never the artifacts of a listing without them).
        keys = db.execute(
            f"SELECT status_ts, id, artifacts_size, rowid FROM tasks WHERE {page_where} "
            "ORDER BY status_ts DESC, id DESC LIMIT ?",
            (*page_params, query.page_size + 1),  # one extra row: is there a next page?
        ).fetchall()
        response = types.ListTasksResponse(page_size=query.page_size, total_size=total)
        more = len(keys) > query.page_size
        columns = "body, x''" if query.history_length == 0 else "body, history"
        read = f"SELECT {columns} FROM tasks WHERE rowid = ?"
        last = (0, "")
        for status_ts, task_id, artifacts_size, rowid in keys[: query.page_size]:
            body, history = db.execute(read, (rowid,)).fetchone()
            tail = history_tail(history, query.history_length)
            size = len(body) + len(tail) + (artifacts_size if query.include_artifacts else 0)
            if not budget.admits(task_id, size):
                more = True  # the next page starts with this task
                break
            task = response.tasks.add()
            task.ParseFromString(body)
            task.MergeFromString(tail)  # type: ignore[arg-type]  # a view: parsed in place, not copied
            if query.include_artifacts and artifacts_size:
                task.MergeFromString(_artifacts(db, rowid))
            last = (status_ts, task_id)
        if more:
            response.next_page_token = encode_task_cursor(query, last)
        return response

    def _get_push_sync(
        self, tenant: str, task_id: str, config_id: str, db: sqlite3.Connection
    ) -> types.TaskPushNotificationConfig | None:
        found = db.execute(
            "SELECT body FROM push_configs WHERE tenant = ? AND task_id = ? AND id = ?",
            (tenant, task_id, config_id),
        ).fetchone()
        return self._config(tenant, task_id, config_id, found[0]) if found is not None else None

    def _list_push_sync(self, query: PushQuery, db: sqlite3.Connection) -> PushConfigPage:
        rows = db.execute(
            "SELECT id, body FROM push_configs WHERE tenant = ? AND task_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            (query.tenant, query.task_id, query.after_id or "", query.page_size + 1),
        ).fetchall()
        token = ""
        if len(rows) > query.page_size:
            rows = rows[: query.page_size]
            token = encode_push_cursor(query, rows[-1][0])
        return [self._config(query.tenant, query.task_id, i, body) for i, body in rows], token


def _artifacts(db: sqlite3.Connection, rowid: int) -> bytes:
    """A task's artifacts column, read as a blob: SQLite's blob read runs without the GIL, where a
    column fetched by a query is copied holding it (tens of milliseconds of megabytes, during which
    the event loop could not run)."""
    with db.blobopen("tasks", "artifacts", rowid, readonly=True) as blob:
        return blob.read()


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _unwritable(path: str) -> str | None:
    """Why the operating system will not let us write ``path`` (SQLite does not say), if it will not."""
    existed = os.path.exists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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


_A_SEALED_CONFIG = "SELECT tenant, task_id, id, body FROM push_configs WHERE substr(body, 1, 1) = ? LIMIT 1"


def _holds_sealed(conn: sqlite3.Connection) -> bool:
    return conn.execute(_A_SEALED_CONFIG, (MARK,)).fetchone() is not None


_SAVE, _OTHER = 1, 0
_INSERT_EVENTS = (
    "INSERT OR REPLACE INTO events (tenant, task_id, first_seq, last_seq, body) VALUES (?, ?, ?, ?, ?)"
)


class _Chunk(NamedTuple):
    """One row of ``events``: a task's events of one transaction."""

    tenant: str
    task_id: str
    first_seq: int
    last_seq: int
    body: bytes


@dataclass(slots=True)
class _Events:
    """A task's events waiting for the next transaction."""

    log: TaskLog
    items: builtins.list[tuple[int, bytes]] = field(default_factory=builtins.list)


@dataclass(slots=True)
class _Op:
    """One operation of the queue: ``fn(connection)`` and who waits for it."""

    fn: Callable[..., Any]
    future: asyncio.Future[Any] | None
    seq: int = 0
    kind: int = _OTHER
    key: tuple[str, str] = ("", "")
    skip: bool = False  # made moot by a later save in the same batch (see _coalesce)
    prune: int = 0  # a save: delete the task's stored events up to this position
    result: Any = None
    error: BaseException | None = field(default=None)


def _store_failure(path: str, exc: BaseException) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"task store {path}: {exc}", path=path)
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _lost_event(log: TaskLog, seq: int, exc: BaseException) -> errors.InternalError:
    """An event that could not be stored: readers must not go on as if nothing happened."""
    logging.getLogger("a2a_grpc.tasks").error(
        "task %s: event %d could not be stored (%s); its readers are ended", log.task_id, seq, exc
    )
    return errors.InternalError(f"task {errors.echo(log.task_id)}: its events could not be stored")


class SqliteEventSink:
    """The store as the event log's sink: events written in the store's queue (see the module doc)."""

    def __init__(self, store: SqliteTaskStore) -> None:
        self._store = store

    def submit(self, log: TaskLog, seq: int, event: types.StreamResponse) -> None:
        self._store._submit_event(log, seq, event)

    async def stored_after(
        self, tenant: str, task_id: str, seq: int
    ) -> list[tuple[int, types.StreamResponse]]:
        return await self._store._call(partial(self._store._events_after_sync, tenant, task_id, seq))


class SqliteRegistry:
    """The store as the task registry: owners with leases in the ``owners`` table, the owner of a
    running task in its row, cancel signals in ``cancels`` (see :mod:`a2a_grpc.tasks.registry`).

    An owner is alive while its lease holds, except one on this host whose process is gone (a
    previous life of this server, killed), which is dead at once.
    """

    def __init__(self, store: SqliteTaskStore, owner: str, lease_seconds: float) -> None:
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._host = socket.gethostname()

    async def renew(self) -> list[tuple[str, str]]:
        return await self._store._call(self._renew_sync)

    def _renew_sync(self, db: sqlite3.Connection) -> list[tuple[str, str]]:
        db.execute(
            "INSERT OR REPLACE INTO owners (owner, host, pid, expires) VALUES (?, ?, ?, ?)",
            (self.owner, self._host, os.getpid(), time.time() + self.lease_seconds),
        )
        signalled = db.execute(
            "SELECT c.tenant, c.task_id FROM cancels c "
            "JOIN tasks t ON t.tenant = c.tenant AND t.id = c.task_id WHERE t.owner = ?",
            (self.owner,),
        ).fetchall()
        for tenant, task_id in signalled:
            db.execute("DELETE FROM cancels WHERE tenant = ? AND task_id = ?", (tenant, task_id))
        return [(tenant, task_id) for tenant, task_id in signalled]

    async def orphans(self) -> list[tuple[str, str]]:
        return await self._store._call(self._orphans_sync)

    def _orphans_sync(self, db: sqlite3.Connection) -> list[tuple[str, str]]:
        alive = self._alive(db)
        # Running tasks saved before owners were recorded (schema 1) have no owner: orphans too.
        rows = db.execute(
            "SELECT tenant, id, owner FROM tasks WHERE owner != '' OR (owner = '' AND state IN (?, ?))",
            _RUNNING,
        ).fetchall()
        return [(tenant, task_id) for tenant, task_id, owner in rows if owner not in alive]

    def _alive(self, db: sqlite3.Connection) -> set[str]:
        now = time.time()
        alive = {self.owner}
        for owner, host, pid, expires in db.execute("SELECT owner, host, pid, expires FROM owners"):
            if expires < now or owner == self.owner:
                continue
            if host == self._host and (pid == os.getpid() or not _process_alive(pid)):
                continue  # a previous life of a process on this host
            alive.add(owner)
        return alive

    async def signal_cancel(self, tenant: str, task_id: str) -> bool:
        return await self._store._call(partial(self._signal_sync, tenant, task_id))

    def _signal_sync(self, tenant: str, task_id: str, db: sqlite3.Connection) -> bool:
        found = db.execute(
            "SELECT owner FROM tasks WHERE tenant = ? AND id = ?", (tenant, task_id)
        ).fetchone()
        if found is None or not found[0] or found[0] not in self._alive(db):
            return False
        db.execute("INSERT OR IGNORE INTO cancels (tenant, task_id) VALUES (?, ?)", (tenant, task_id))
        return True

    async def owner_of(self, tenant: str, task_id: str) -> str | None:
        return await self._store._call(partial(self._owner_sync, tenant, task_id))

    def _owner_sync(self, tenant: str, task_id: str, db: sqlite3.Connection) -> str | None:
        found = db.execute(
            "SELECT owner FROM tasks WHERE tenant = ? AND id = ?", (tenant, task_id)
        ).fetchone()
        if found is None or not found[0] or found[0] not in self._alive(db):
            return None
        return str(found[0])

    async def leave(self) -> None:
        """This owner stops (gracefully): its lease ends now, not when it would have lapsed."""
        await self._store._call(self._leave_sync)

    def _leave_sync(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True
