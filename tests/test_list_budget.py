"""ListTasks reads only what it returns (issue 14, item 4).

Sixty stored tasks of ~16 MB of artifacts each (960 MB): a ListTasks without artifacts made the
stores read and parse every body of the page (5.5 s on SQLite), and one with artifacts built a
960 MB answer before failing. Here the listing without artifacts reads no artifact bytes (proved
on SQLite with an authorizer that sees every column a statement reads, on the memory store with a
tripwire in place of the artifacts), answers fast (measured), and pages with artifacts stay within
the page byte budget (``Limits.max_list_page_bytes``) while paging returns every task once.
A database written by the previous schema opens, is migrated, and lists the same.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.limits import Limits
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore, RedisTaskStore, SqliteTaskStore, StoreError, TaskStore
from a2a_grpc.tasks import sqlite as sqlite_store
from a2a_grpc.tasks._encoded import history_tail, split_task
from a2a_grpc.tasks.sqlite import SCHEMA_VERSION
from a2a_grpc.tasks.store import ANSWER_ROOM, DEFAULT_LIST_PAGE_BYTES, field_bytes
from tests.redisserver import start_redis

MiB = 1024 * 1024
COUNT = 60
ARTIFACT_BYTES = 16_000_000  # two fit the default 32 MiB budget, three do not
BASE_TS = 1_700_000_000
WAIT = 60.0


def task_of(i: int, *, artifact_bytes: int = ARTIFACT_BYTES, history: int = 3) -> types.Task:
    task = types.Task(
        id=f"t{i:02d}", context_id="ctx", status=types.TaskStatus(state=types.TASK_STATE_COMPLETED)
    )
    task.status.timestamp.seconds = BASE_TS + i
    for m in range(history):
        task.history.add(message_id=f"t{i:02d}-m{m}", role=types.ROLE_USER).parts.add(text=f"message {m}")
    artifact = task.artifacts.add(artifact_id=f"t{i:02d}-a", name="big")
    artifact.parts.add(raw=bytes(artifact_bytes))
    task.metadata.update({"n": i})
    return task


async def fill(store: TaskStore, count: int = COUNT, **shape: Any) -> None:
    for i in range(count):
        await store.save("", task_of(i, **shape))


def newest_first(count: int = COUNT) -> list[str]:
    return [f"t{i:02d}" for i in reversed(range(count))]


@pytest.fixture(scope="module")
def memory_store() -> Iterator[InMemoryTaskStore]:
    store = InMemoryTaskStore()
    for i in range(COUNT):  # the memory store has stored a task when save returns
        store.save("", task_of(i))
    yield store
    asyncio.run(store.close())


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file holding the sixty tasks (~1 GB), written once for the module."""
    path = tmp_path_factory.mktemp("list-budget") / "tasks.db"

    async def write() -> None:
        store = SqliteTaskStore(str(path))
        try:
            await fill(store)
        finally:
            await store.close()

    asyncio.run(write())
    return path


@pytest.fixture(scope="module")
def redis_filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the module's own (the session's is flushed by other tests) holding the
    sixty tasks, stopped by PID at the end."""
    server = start_redis(tmp_path_factory.mktemp("list-budget-redis"))
    url = f"redis://127.0.0.1:{server.port}/0"

    async def write() -> None:
        store = RedisTaskStore(url)
        try:
            await fill(store)
        finally:
            await store.close()

    try:
        # On a thread of its own: the fixture is asked for from inside a running event loop.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, write()).result()
        yield url
    finally:
        server.stop()


@pytest_asyncio.fixture(params=["memory", "sqlite", "redis"])
async def big_store(
    request: pytest.FixtureRequest, memory_store: InMemoryTaskStore, sqlite_file: Path
) -> AsyncIterator[TaskStore]:
    if request.param == "memory":
        yield memory_store
        return
    store: TaskStore
    if request.param == "redis":
        store = RedisTaskStore(request.getfixturevalue("redis_filled"))
    else:
        store = SqliteTaskStore(str(sqlite_file), check_integrity=False)
    try:
        yield store
    finally:
        await store.close()


# ---------------------------------------------------------------- without artifacts: fast


@pytest.mark.asyncio
async def test_sixty_16mb_tasks_list_without_artifacts_fast(big_store: TaskStore) -> None:
    started = time.perf_counter()
    first = await big_store.list("", types.ListTasksRequest())
    second = await big_store.list("", types.ListTasksRequest(page_token=first.next_page_token))
    took = time.perf_counter() - started
    print(f"\n{type(big_store).__name__}: ListTasks of {COUNT} tasks without artifacts: {took * 1000:.1f} ms")
    assert took < 1.0  # was 5.5 s on SQLite
    assert [t.id for t in first.tasks] + [t.id for t in second.tasks] == newest_first()
    assert (first.total_size, len(first.tasks), second.next_page_token) == (COUNT, 50, "")
    for task in [*first.tasks, *second.tasks]:
        assert not task.artifacts
        assert len(task.history) == 3
        assert task.metadata["n"] == int(task.id[1:])
    assert first.ByteSize() < 64 * 1024


@pytest.mark.asyncio
async def test_history_length_is_honoured_over_big_tasks(big_store: TaskStore) -> None:
    page = await big_store.list("", types.ListTasksRequest(page_size=5, history_length=2))
    assert [[m.message_id for m in t.history] for t in page.tasks] == [
        [f"{t}-m1", f"{t}-m2"] for t in newest_first()[:5]
    ]
    none = await big_store.list("", types.ListTasksRequest(page_size=5, history_length=0))
    assert all(not t.history and not t.artifacts and t.status.state for t in none.tasks)
    # GetTask still gives the whole task.
    whole = await big_store.get("", "t07")
    assert whole == task_of(7)


# ---------------------------------------------------------------- with artifacts: within the budget


async def page_through(store: TaskStore, **fields: Any) -> tuple[list[str], list[types.ListTasksResponse]]:
    ids: list[str] = []
    pages: list[types.ListTasksResponse] = []
    token = ""
    for _ in range(COUNT + 1):  # bounded: every page holds at least one task
        page = await store.list("", types.ListTasksRequest(page_size=100, page_token=token, **fields))
        pages.append(page)
        ids += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    return ids, pages


@pytest.mark.asyncio
async def test_pages_with_artifacts_stay_within_the_budget(big_store: TaskStore) -> None:
    started = time.perf_counter()
    ids, pages = await page_through(big_store, include_artifacts=True)
    took = time.perf_counter() - started
    largest = max(p.ByteSize() for p in pages)
    print(
        f"\n{type(big_store).__name__}: {len(pages)} pages with artifacts in {took:.2f} s, "
        f"largest answer {largest / MiB:.1f} MiB"
    )
    assert ids == newest_first()  # every task, once, in order
    assert largest <= DEFAULT_LIST_PAGE_BYTES + ANSWER_ROOM
    assert all(len(p.tasks) == 2 and p.page_size == 100 and p.total_size == COUNT for p in pages)
    for page in pages[:2]:
        for task in page.tasks:
            assert task == task_of(int(task.id[1:]))


@pytest.mark.asyncio
async def test_paging_with_artifacts_leaves_the_event_loop_running(big_store: TaskStore) -> None:
    """Other callers wait at most for one slice of a page: the SQLite store reads and parses on its
    thread, the memory store lets the loop run after each few megabytes it copies."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.01)
        token, pages = "", 0
        for _ in range(COUNT + 1):
            request = types.ListTasksRequest(page_size=100, include_artifacts=True, page_token=token)
            token = (await big_store.list("", request)).next_page_token
            pages += 1
            await asyncio.sleep(0)  # each page is a call of its own
            if not token:
                break
    finally:
        done.set()
        await ticking
    worst = max(gaps)
    print(f"\n{type(big_store).__name__}: worst event-loop stall over {pages} pages: {worst * 1000:.1f} ms")
    assert pages == COUNT // 2
    assert worst < 1.0  # a page of everything (960 MB) took seconds


@pytest.mark.asyncio
async def test_a_budget_shorter_than_one_task_returns_it_alone(big_store: TaskStore) -> None:
    page = await big_store.list(
        "", types.ListTasksRequest(page_size=3, include_artifacts=True), max_bytes=MiB
    )
    assert [t.id for t in page.tasks] == ["t59"]
    assert page.tasks[0] == task_of(59)
    following = await big_store.list(
        "",
        types.ListTasksRequest(page_size=3, include_artifacts=True, page_token=page.next_page_token),
        max_bytes=MiB,
    )
    assert [t.id for t in following.tasks] == ["t58"]
    # Without artifacts the same budget holds the whole page.
    light = await big_store.list("", types.ListTasksRequest(page_size=3), max_bytes=MiB)
    assert [t.id for t in light.tasks] == ["t59", "t58", "t57"]


@pytest.mark.asyncio
async def test_a_task_no_answer_can_carry_is_refused_naming_it(big_store: TaskStore) -> None:
    with pytest.raises(errors.LimitExceededError) as caught:
        await big_store.list(
            "", types.ListTasksRequest(include_artifacts=True), max_bytes=MiB, max_answer_bytes=8 * MiB
        )
    assert caught.value.limit == "max_send_message_bytes"
    assert "t59" in str(caught.value)
    assert caught.value.metadata["task_id"] == "t59"
    # The store goes on serving.
    assert len((await big_store.list("", types.ListTasksRequest(page_size=2))).tasks) == 2


@pytest.mark.asyncio
async def test_a_page_stops_exactly_at_the_budget() -> None:
    store = InMemoryTaskStore()
    sqlite = SqliteTaskStore(":memory:")
    try:
        for backend in (store, sqlite):
            await fill(backend, 6, artifact_bytes=1000)
            size = field_bytes((await backend.get("", "t05")).ByteSize())  # type: ignore[union-attr]
            for fits in (1, 2, 5):
                request = types.ListTasksRequest(page_size=5, include_artifacts=True)
                for budget in (fits * size, (fits + 1) * size - 1):
                    page = await backend.list("", request, max_bytes=budget)
                    assert len(page.tasks) == fits, (type(backend).__name__, budget)
                    assert page.next_page_token  # one more task is there either way
    finally:
        await store.close()
        await sqlite.close()


# ---------------------------------------------------------------- no artifact bytes read (structure)


@pytest.mark.asyncio
async def test_sqlite_list_without_artifacts_reads_no_artifact_bytes(
    sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Artifacts are read in two ways only: a statement naming their column (the authorizer sees
    every column a statement reads) or the blob read of ``_artifacts`` (counted here)."""
    store = SqliteTaskStore(str(sqlite_file), check_integrity=False)
    read: set[tuple[str, str]] = set()
    blobs: list[int] = []

    def watch(action: int, table: str | None, column: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and table and column:
            read.add((table, column))
        return sqlite3.SQLITE_OK

    def counted(db: sqlite3.Connection, rowid: int) -> bytes:
        data = read_artifacts(db, rowid)
        blobs.append(len(data))
        return data

    read_artifacts = sqlite_store._artifacts
    monkeypatch.setattr(sqlite_store, "_artifacts", counted)
    try:
        await store._call(lambda db: db.set_authorizer(watch))
        await store.list("", types.ListTasksRequest(page_size=100))
        await store.list("", types.ListTasksRequest(page_size=100, history_length=1))
        await store.list("", types.ListTasksRequest(page_size=3, include_artifacts=True), max_bytes=MiB)
        assert ("tasks", "body") in read  # the watch sees what statements read
        assert ("tasks", "artifacts_size") in read
        assert ("tasks", "artifacts") not in read  # never by a statement
        # One task's artifacts (their encoded field), for the one page that asked (one fits a MiB).
        assert blobs == [field_bytes(task_of(59).artifacts[0].ByteSize())]
        await store.get("", "t03")
        assert len(blobs) == 2
    finally:
        await store._call(lambda db: db.set_authorizer(None))
        await store.close()


class Untouchable:
    """Stands in for a stored task's artifacts: whether there are any may be asked, nothing else
    (no reading, no copying: a protobuf copy would fail on it too)."""

    def __init__(self, count: int) -> None:
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("the artifacts were read")

    def __getitem__(self, index: object) -> Any:
        raise AssertionError("the artifacts were read")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the artifacts were used ({name})")


class Guarded:
    """A stored task whose artifacts are Untouchable; everything else is the task's."""

    def __init__(self, task: types.Task) -> None:
        self._task = task
        self.artifacts = Untouchable(len(task.artifacts))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def ListFields(self) -> list[tuple[Any, Any]]:
        return [(f, self.artifacts if f.name == "artifacts" else v) for f, v in self._task.ListFields()]


@pytest.mark.asyncio
async def test_memory_list_without_artifacts_never_touches_them() -> None:
    store = InMemoryTaskStore()
    try:
        await fill(store, 5, artifact_bytes=10)
        for entry in store._tasks[""].values():
            entry.task = Guarded(entry.task)  # type: ignore[assignment]
        for history_length in (None, 0, 1, 5):
            listed = types.ListTasksRequest(page_size=3)
            if history_length is not None:
                listed.history_length = history_length
            page = await store.list("", listed)
            assert [t.id for t in page.tasks] == newest_first(5)[:3]
            for task in page.tasks:
                assert not task.artifacts
                expected = task_of(int(task.id[1:]), artifact_bytes=10)
                kept = 3 if history_length is None else min(3, history_length)
                assert list(task.history) == list(expected.history)[3 - kept :]
                assert task.metadata == expected.metadata
                assert task.status == expected.status
        with pytest.raises(AssertionError, match="the artifacts were read"):  # they are, when asked for
            await store.list("", types.ListTasksRequest(include_artifacts=True))
    finally:
        await store.close()


# ---------------------------------------------------------------- the same over gRPC


@pytest.mark.asyncio
async def test_over_grpc_without_and_with_artifacts(sqlite_file: Path) -> None:
    store = SqliteTaskStore(str(sqlite_file), check_integrity=False)
    settings = ServerSettings(port=0, limits=Limits(max_list_page_bytes=40 * MiB))
    server = A2AServer(ReferenceAgent(), store, settings)
    await server.start()
    try:
        async with A2AClient(server.address, timeout=WAIT) as client:
            started = time.perf_counter()
            light = await client.list_tasks(types.ListTasksRequest(page_size=100))
            took = time.perf_counter() - started
            print(f"\nover gRPC (SQLite): ListTasks of {COUNT} tasks without artifacts: {took * 1000:.1f} ms")
            assert took < 1.0
            assert [t.id for t in light.tasks] == newest_first()
            assert not light.next_page_token
            assert not any(t.artifacts for t in light.tasks)
            ids: list[str] = []
            token, sizes = "", []
            started = time.perf_counter()
            for _ in range(COUNT + 1):
                page = await client.list_tasks(
                    types.ListTasksRequest(page_size=100, include_artifacts=True, page_token=token)
                )
                sizes.append(page.ByteSize())
                ids += [t.id for t in page.tasks]
                token = page.next_page_token
                if not token:
                    break
            print(
                f"over gRPC: {len(sizes)} pages with artifacts in {time.perf_counter() - started:.2f} s, "
                f"largest {max(sizes) / MiB:.1f} MiB (budget 40 MiB)"
            )
            assert ids == newest_first()
            assert max(sizes) <= 40 * MiB + ANSWER_ROOM
            assert len(sizes) == COUNT // 2
    finally:
        await server.stop(grace=1.0)
        await store.close()


@pytest.mark.asyncio
async def test_over_grpc_a_task_larger_than_any_answer_is_a_typed_error(tmp_path: Path) -> None:
    store = SqliteTaskStore(str(tmp_path / "tasks.db"))
    await fill(store, 2, artifact_bytes=3 * MiB)
    settings = ServerSettings(port=0, max_send_message_bytes=2 * MiB)
    server = A2AServer(ReferenceAgent(), store, settings)
    await server.start()
    try:
        async with A2AClient(server.address, timeout=WAIT) as client:
            with pytest.raises(errors.LimitExceededError) as caught:
                await client.list_tasks(types.ListTasksRequest(include_artifacts=True))
            assert caught.value.limit == "max_send_message_bytes"
            assert "t01" in str(caught.value)
            listed = await client.list_tasks(types.ListTasksRequest())  # the server goes on serving
            assert [t.id for t in listed.tasks] == ["t01", "t00"]
            echo = await client.send_message(A2AClient.text_request("echo hi"))
            assert echo.WhichOneof("payload") in ("message", "task")
    finally:
        await server.stop(grace=1.0)
        await store.close()


def test_the_page_budget_is_a_validated_setting() -> None:
    assert Limits().max_list_page_bytes == 32 * MiB
    for bad in (0, -1, True, 1.5, "32"):
        with pytest.raises(ValueError, match="max_list_page_bytes"):
            Limits(max_list_page_bytes=bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- a database of the previous schema


# The layout a2a-grpc wrote up to schema 3, spelled out here so that the test keeps writing it
# whatever the store's code becomes: a task's whole encoding in ``body``.
_SCHEMA_3 = """
CREATE TABLE tasks (
    tenant TEXT NOT NULL, id TEXT NOT NULL, context_id TEXT NOT NULL, state INTEGER NOT NULL,
    status_ts INTEGER NOT NULL, updated_seq INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX tasks_by_time    ON tasks (tenant, status_ts, id);
CREATE INDEX tasks_by_context ON tasks (tenant, context_id, status_ts, id);
CREATE INDEX tasks_by_state   ON tasks (tenant, state, status_ts, id);
CREATE TABLE push_configs (
    tenant TEXT NOT NULL, task_id TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (tenant, task_id, id)
);
ALTER TABLE tasks ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX tasks_by_owner ON tasks (owner) WHERE owner != '';
CREATE TABLE events (
    tenant TEXT NOT NULL, task_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (tenant, task_id, first_seq)
);
CREATE TABLE owners (owner TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, expires REAL NOT NULL);
CREATE TABLE cancels (tenant TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (tenant, task_id));
PRAGMA user_version=3;
"""


def old_database(path: Path, tasks: list[types.Task], *, tenant: str = "") -> None:
    with sqlite3.connect(path) as conn:
        conn.executescript(_SCHEMA_3)
        for n, task in enumerate(tasks, 1):
            conn.execute(
                "INSERT INTO tasks (tenant, id, context_id, state, status_ts, updated_seq, body, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant,
                    task.id,
                    task.context_id,
                    task.status.state,
                    task.status.timestamp.seconds * 1_000_000,
                    n,
                    task.SerializeToString(),
                    n,
                ),
            )
    conn.close()


@pytest.mark.asyncio
async def test_a_database_of_the_previous_schema_opens_and_lists_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    tasks = [task_of(i, artifact_bytes=100_000 * (i + 1), history=i) for i in range(6)]
    tasks.append(types.Task(id="bare", context_id="ctx"))  # no status, history nor artifacts
    old_database(path, tasks)
    store = SqliteTaskStore(str(path))
    try:
        for task in tasks:
            assert await store.get("", task.id) == task
        assert (await store.load("", "t03")) == (tasks[3], 4)
        light = await store.list("", types.ListTasksRequest(history_length=2))
        assert [t.id for t in light.tasks] == [*newest_first(6), "bare"]
        by_id = {t.id: t for t in light.tasks}
        for task in tasks:
            assert list(by_id[task.id].history) == list(task.history[-2:])
            assert not by_id[task.id].artifacts
        full = await store.list("", types.ListTasksRequest(include_artifacts=True))
        assert {t.id: t for t in full.tasks} == {t.id: t for t in tasks}
        # Saved again, a migrated task reads back the same.
        changed = task_of(2, artifact_bytes=10, history=5)
        await store.save("", changed)
        assert await store.get("", "t02") == changed
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows = conn.execute("SELECT id, length(artifacts), artifacts_size, body FROM tasks").fetchall()
    conn.close()
    for task_id, stored, size, body in rows:
        assert stored == size  # the size listed is the size stored
        assert not types.Task.FromString(body).artifacts
        assert not types.Task.FromString(body).history
        assert (size > 0) == (task_id != "bare")
    # Opening it again changes nothing (the migration ran once).
    again = SqliteTaskStore(str(path))
    try:
        assert await again.get("", "t05") == tasks[5]
    finally:
        await again.close()


@pytest.mark.asyncio
async def test_a_previous_schema_database_holding_a_damaged_task_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path, [task_of(0, artifact_bytes=10)])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE tasks SET body = ?", (b"\x22\xff\xff\xff\x0f",))  # a field longer than the row
    conn.close()
    with pytest.raises(StoreError, match=r"holds a damaged task \('t00' of tenant ''"):
        SqliteTaskStore(str(path))
    with sqlite3.connect(path) as conn:  # refused whole: nothing half migrated
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    conn.close()
    assert "artifacts" not in columns


# ---------------------------------------------------------------- the split of an encoded task


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    history=st.lists(st.text(max_size=300), max_size=20),
    artifacts=st.lists(st.binary(max_size=300), max_size=5),
    metadata=st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3),
    keep=st.integers(0, 25),
)
def test_an_encoded_task_splits_into_parts_that_give_it_back(
    history: list[str], artifacts: list[bytes], metadata: dict[str, int], keep: int
) -> None:
    task = types.Task(id="t", context_id="c", status=types.TaskStatus(state=types.TASK_STATE_WORKING))
    for n, text in enumerate(history):
        task.history.add(message_id=f"m{n}").parts.add(text=text)
    for n, raw in enumerate(artifacts):
        task.artifacts.add(artifact_id=f"a{n}").parts.add(raw=raw)
    task.metadata.update(metadata)
    rest, history_part, artifacts_part = split_task(task.SerializeToString())
    back = types.Task.FromString(bytes(rest))
    assert not back.history
    assert not back.artifacts
    back.MergeFromString(bytes(history_part))
    back.MergeFromString(bytes(artifacts_part))
    assert back == task
    tail = types.Task.FromString(bytes(history_tail(bytes(history_part), keep)))
    assert list(tail.history) == list(task.history)[len(task.history) - min(keep, len(task.history)) :]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=64))
def test_bytes_that_are_no_task_split_whole_or_fail_as_value_error(data: bytes) -> None:
    try:
        parts = split_task(data)
    except ValueError:
        return
    assert sum(len(p) for p in parts) == len(data)
