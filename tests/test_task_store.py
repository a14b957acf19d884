"""Task stores: one behavioural suite run against every backend, plus SQLite persistence."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from a2a_grpc import types
from a2a_grpc.tasks import (
    InMemoryTaskStore,
    InvalidListRequestError,
    InvalidPageTokenError,
    RedisTaskStore,
    SqliteTaskStore,
    StoreError,
    StoreSettings,
    TaskStore,
    open_store,
    trim_task,
)
from a2a_grpc.tasks.sqlite import SCHEMA_VERSION

BASE_TS = 1_700_000_000


def make_task(
    task_id: str,
    *,
    context_id: str = "ctx-1",
    state: types.TaskState = types.TASK_STATE_WORKING,
    ts: int | None = BASE_TS,
    nanos: int = 0,
    history: int = 3,
    artifacts: int = 1,
) -> types.Task:
    task = types.Task(id=task_id, context_id=context_id, status=types.TaskStatus(state=state))
    if ts is not None:
        task.status.timestamp.seconds = ts
        task.status.timestamp.nanos = nanos
    for i in range(history):
        message = task.history.add(message_id=f"{task_id}-m{i}", role=types.ROLE_USER)
        message.parts.add(text=f"message {i}")
    for i in range(artifacts):
        task.artifacts.add(artifact_id=f"{task_id}-a{i}").parts.add(text=f"artifact {i}")
    task.metadata.update({"n": 1})
    return task


def request(**fields: object) -> types.ListTasksRequest:
    return types.ListTasksRequest(**fields)  # type: ignore[arg-type]


@pytest_asyncio.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskStore]:
    backend: TaskStore
    if request.param == "memory":
        backend = InMemoryTaskStore()
    elif request.param == "sqlite":
        backend = SqliteTaskStore(str(tmp_path / "tasks.db"))
    else:
        backend = RedisTaskStore(
            request.getfixturevalue("redis_url"), key=base64.b64encode(bytes(32)).decode()
        )
    try:
        yield backend
    finally:
        await backend.close()


async def list_ids(store: TaskStore, tenant: str = "", **fields: object) -> list[str]:
    return [t.id for t in (await store.list(tenant, request(**fields))).tasks]


# ---------------------------------------------------------------- get / save


@pytest.mark.asyncio
async def test_save_get_round_trip(store: TaskStore) -> None:
    task = make_task("t1", history=4, artifacts=2)
    await store.save("", task)
    assert await store.get("", "t1") == task
    assert await store.get("", "missing") is None


@pytest.mark.asyncio
async def test_save_is_an_upsert(store: TaskStore) -> None:
    await store.save("", make_task("t1", state=types.TASK_STATE_SUBMITTED))
    newer = make_task("t1", state=types.TASK_STATE_COMPLETED, ts=BASE_TS + 5, history=5)
    await store.save("", newer)
    assert await store.get("", "t1") == newer
    listed = await store.list("", request(status=types.TASK_STATE_COMPLETED))
    assert [t.id for t in listed.tasks] == ["t1"]
    assert (await store.list("", request())).total_size == 1


@pytest.mark.asyncio
async def test_saved_task_is_not_aliased(store: TaskStore) -> None:
    task = make_task("t1")
    await store.save("", task)
    snapshot = types.Task()
    snapshot.CopyFrom(task)
    task.status.state = types.TASK_STATE_FAILED
    task.history.add(message_id="late")
    task.artifacts.add(artifact_id="late")
    assert await store.get("", "t1") == snapshot

    got = await store.get("", "t1")
    assert got is not None
    got.history.add(message_id="mutated-after-get")
    assert await store.get("", "t1") == snapshot
    listed = (await store.list("", request(include_artifacts=True))).tasks[0]
    listed.history.add(message_id="mutated-after-list")
    assert await store.get("", "t1") == snapshot


@pytest.mark.asyncio
async def test_save_requires_an_id(store: TaskStore) -> None:
    with pytest.raises(ValueError, match="without an id"):
        await store.save("", types.Task())


@pytest.mark.asyncio
async def test_tenants_are_isolated(store: TaskStore) -> None:
    await store.save("acme", make_task("shared", context_id="a"))
    await store.save("globex", make_task("shared", context_id="g"))
    await store.save("acme", make_task("only-acme"))
    acme = await store.get("acme", "shared")
    globex = await store.get("globex", "shared")
    assert acme is not None
    assert acme.context_id == "a"
    assert globex is not None
    assert globex.context_id == "g"
    assert await store.get("", "shared") is None
    assert await store.get("globex", "only-acme") is None
    assert sorted(await list_ids(store, "acme")) == ["only-acme", "shared"]
    assert await list_ids(store, "globex") == ["shared"]
    assert (await store.list("", request())).total_size == 0


# ---------------------------------------------------------------- listing


@pytest.mark.asyncio
async def test_list_orders_most_recently_updated_first(store: TaskStore) -> None:
    await store.save("", make_task("old", ts=BASE_TS))
    await store.save("", make_task("new", ts=BASE_TS + 10))
    await store.save("", make_task("mid", ts=BASE_TS + 5))
    await store.save("", make_task("mid-later-by-micros", ts=BASE_TS + 5, nanos=1_000))
    await store.save("", make_task("no-timestamp", ts=None))
    # Equal timestamps fall back to id, descending, so the order is total.
    await store.save("", make_task("tie-a", ts=BASE_TS + 5))
    assert await list_ids(store) == ["new", "mid-later-by-micros", "tie-a", "mid", "old", "no-timestamp"]


@pytest.mark.asyncio
async def test_id_tie_break_is_code_point_order_in_every_backend(store: TaskStore) -> None:
    ids = ["Z", "a", "\u00e9", "\u4e2d", "\U0001f600", "a\u0000b", "ab"]
    for task_id in ids:
        await store.save("", make_task(task_id))
    assert await list_ids(store) == sorted(ids, reverse=True)
    walked: list[str] = []
    token = ""
    while True:
        page = await store.list("", request(page_size=2, page_token=token))
        walked.extend(t.id for t in page.tasks)
        if not (token := page.next_page_token):
            break
    assert walked == sorted(ids, reverse=True)


@pytest.mark.asyncio
async def test_list_filters(store: TaskStore) -> None:
    await store.save("", make_task("a", context_id="c1", state=types.TASK_STATE_WORKING, ts=BASE_TS))
    await store.save("", make_task("b", context_id="c1", state=types.TASK_STATE_COMPLETED, ts=BASE_TS + 1))
    await store.save("", make_task("c", context_id="c2", state=types.TASK_STATE_WORKING, ts=BASE_TS + 2))
    await store.save(
        "", make_task("d", context_id="c2", state=types.TASK_STATE_INPUT_REQUIRED, ts=BASE_TS + 3)
    )

    assert await list_ids(store, context_id="c1") == ["b", "a"]
    assert await list_ids(store, context_id="nope") == []
    assert await list_ids(store, status=types.TASK_STATE_WORKING) == ["c", "a"]
    assert await list_ids(store, context_id="c2", status=types.TASK_STATE_WORKING) == ["c"]

    after = types.ListTasksRequest()
    after.status_timestamp_after.seconds = BASE_TS + 2  # inclusive bound
    response = await store.list("", after)
    assert [t.id for t in response.tasks] == ["d", "c"]
    assert response.total_size == 2
    after.status_timestamp_after.seconds = BASE_TS + 4
    assert (await store.list("", after)).total_size == 0

    combined = request(context_id="c1", status=types.TASK_STATE_WORKING)
    combined.status_timestamp_after.seconds = BASE_TS
    assert [t.id for t in (await store.list("", combined)).tasks] == ["a"]


@pytest.mark.asyncio
async def test_page_size_default_and_limits(store: TaskStore) -> None:
    for i in range(120):
        await store.save("", make_task(f"t{i:03d}", ts=BASE_TS + i, history=0, artifacts=0))
    default = await store.list("", request())
    assert (len(default.tasks), default.page_size, default.total_size) == (50, 50, 120)
    assert default.next_page_token
    assert len((await store.list("", request(page_size=1))).tasks) == 1
    full = await store.list("", request(page_size=100))
    assert (len(full.tasks), full.page_size) == (100, 100)
    for bad in (0, 101, 150, -1):  # an explicit 0 is refused too: only an absent page_size means 50
        with pytest.raises(InvalidListRequestError, match="between 1 and 100") as caught:
            await store.list("", request(page_size=bad))
        assert caught.value.field == "page_size"


@pytest.mark.asyncio
async def test_invalid_history_length_and_status(store: TaskStore) -> None:
    with pytest.raises(InvalidListRequestError, match="non-negative") as caught:
        await store.list("", request(history_length=-5))
    assert caught.value.field == "history_length"
    with pytest.raises(InvalidListRequestError) as caught:
        await store.list("", request(status=42))
    assert caught.value.field == "status"


@pytest.mark.asyncio
@pytest.mark.parametrize("page_size", [1, 3, 7, 25])
async def test_pagination_walks_every_task_once_in_order(store: TaskStore, page_size: int) -> None:
    # Several tasks share a timestamp so the id tie-break is exercised across page edges.
    for i in range(25):
        await store.save("", make_task(f"t{i:02d}", context_id=f"c{i % 2}", ts=BASE_TS + i // 3))
    await store.save("other-tenant", make_task("x"))
    expected = await list_ids(store, page_size=100)
    assert len(expected) == 25

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await store.list("", request(page_size=page_size, page_token=token))
        assert page.total_size == 25
        assert page.page_size == page_size
        seen.extend(t.id for t in page.tasks)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == expected
    assert pages == -(-25 // page_size)


@pytest.mark.asyncio
async def test_pagination_is_stable_while_tasks_are_added(store: TaskStore) -> None:
    for i in range(10):
        await store.save("", make_task(f"t{i}", ts=BASE_TS + i))
    expected = await list_ids(store)
    seen: list[str] = []
    token = ""
    step = 0
    while True:
        page = await store.list("", request(page_size=3, page_token=token))
        seen.extend(t.id for t in page.tasks)
        # New tasks (and updates) land in front of the cursor; they must not disturb the walk.
        await store.save("", make_task(f"new{step}", ts=BASE_TS + 100 + step))
        await store.save("", make_task(f"old{step}", ts=BASE_TS - 100 - step))
        step += 1
        token = page.next_page_token
        if not token:
            break
    assert [i for i in seen if i.startswith("t")] == expected
    assert len(seen) == len(set(seen))


@pytest.mark.asyncio
async def test_history_length_and_include_artifacts(store: TaskStore) -> None:
    task = make_task("t1", history=5, artifacts=2)
    await store.save("", task)

    async def listed(**fields: object) -> types.Task:
        return (await store.list("", request(**fields))).tasks[0]

    everything = await listed(include_artifacts=True)
    assert everything == task
    assert [m.message_id for m in (await listed(history_length=2)).history] == ["t1-m3", "t1-m4"]
    assert len((await listed(history_length=5)).history) == 5
    assert len((await listed(history_length=50)).history) == 5
    assert len((await listed(history_length=0)).history) == 0
    # Artifacts are omitted by default (spec §3.1.4) and kept only on request.
    assert len((await listed()).artifacts) == 0
    assert len((await listed(include_artifacts=False)).artifacts) == 0
    assert len((await listed(include_artifacts=True)).artifacts) == 2
    trimmed = await listed(history_length=1)
    assert trimmed.metadata == task.metadata
    assert trimmed.status == task.status
    # The stored task is untouched by trimming.
    assert await store.get("", "t1") == task


def test_trim_task_returns_a_copy() -> None:
    task = make_task("t1", history=4, artifacts=2)
    out = trim_task(task, 1, include_artifacts=False)
    assert [m.message_id for m in out.history] == ["t1-m3"]
    assert len(out.artifacts) == 0
    assert len(task.history) == 4
    assert len(task.artifacts) == 2
    assert trim_task(task, None) == task


# ---------------------------------------------------------------- page tokens


async def first_token(store: TaskStore, tenant: str = "", **fields: object) -> str:
    token = (await store.list(tenant, request(page_size=1, **fields))).next_page_token
    assert token
    return token


def flip(token: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = alphabet[(alphabet.index(token[index]) + 1) % len(alphabet)]
    return token[:index] + replacement + token[index + 1 :]


@pytest.mark.asyncio
async def test_malformed_page_tokens_are_refused(store: TaskStore) -> None:
    for i in range(3):
        await store.save("", make_task(f"t{i}", context_id="c", ts=BASE_TS + i))
    token = await first_token(store)
    assert (await store.list("", request(page_size=1, page_token=token))).tasks[0].id == "t1"

    bad_tokens = [
        "garbage!!",
        "not base64 at all",
        "AAAA",
        token[:-3],
        token[:10],
        token + "AA",
        flip(token, len(token) // 2),
        flip(token, 0),
        base64.urlsafe_b64encode(b"x" * 40).decode(),
        "A" * 5000,
    ]
    for bad in bad_tokens:
        with pytest.raises(InvalidPageTokenError) as caught:
            await store.list("", request(page_size=1, page_token=bad))
        assert caught.value.field == "page_token"
        assert isinstance(caught.value, ValueError)


@pytest.mark.asyncio
async def test_page_token_is_bound_to_its_query(store: TaskStore) -> None:
    for i in range(3):
        await store.save("", make_task(f"t{i}", context_id="c", ts=BASE_TS + i))
        await store.save("other", make_task(f"t{i}", context_id="c", ts=BASE_TS + i))
    token = await first_token(store)
    with pytest.raises(InvalidPageTokenError, match="different tenant or different filters"):
        await store.list("", request(page_token=token, context_id="c"))
    with pytest.raises(InvalidPageTokenError, match="different tenant or different filters"):
        await store.list("", request(page_token=token, status=types.TASK_STATE_WORKING))
    with pytest.raises(InvalidPageTokenError, match="different tenant or different filters"):
        await store.list("other", request(page_token=token))
    with pytest.raises(InvalidPageTokenError, match="different list operation"):
        await store.list_push_configs("", "t0", 1, token)
    # Page size, history_length and include_artifacts may change between pages.
    page = await store.list(
        "", request(page_token=token, page_size=5, history_length=0, include_artifacts=True)
    )
    assert [t.id for t in page.tasks] == ["t1", "t0"]


# ---------------------------------------------------------------- push configs


def push_config(
    task_id: str, config_id: str, url: str = "https://example.com/hook"
) -> types.TaskPushNotificationConfig:
    return types.TaskPushNotificationConfig(
        task_id=task_id,
        id=config_id,
        url=url,
        token="secret",
        authentication=types.AuthenticationInfo(scheme="Bearer", credentials="c"),
    )


@pytest.mark.asyncio
async def test_push_config_crud(store: TaskStore) -> None:
    config = push_config("t1", "p1")
    await store.put_push_config("", config)
    assert await store.get_push_config("", "t1", "p1") == config
    config.url = "https://mutated.example.com"  # not aliased
    assert (await store.get_push_config("", "t1", "p1")) == push_config("t1", "p1")

    await store.put_push_config("", push_config("t1", "p1", url="https://replaced.example.com"))
    replaced = await store.get_push_config("", "t1", "p1")
    assert replaced is not None
    assert replaced.url == "https://replaced.example.com"

    assert await store.get_push_config("", "t2", "p1") is None
    assert await store.get_push_config("other", "t1", "p1") is None
    assert await store.delete_push_config("other", "t1", "p1") is False
    assert await store.delete_push_config("", "t1", "p1") is True
    assert await store.delete_push_config("", "t1", "p1") is False  # idempotent
    assert await store.get_push_config("", "t1", "p1") is None
    assert await store.list_push_configs("", "t1", 0, "") == ([], "")

    with pytest.raises(ValueError, match="task_id and id"):
        await store.put_push_config("", push_config("t1", ""))
    with pytest.raises(ValueError, match="task_id and id"):
        await store.put_push_config("", push_config("", "p1"))


@pytest.mark.asyncio
async def test_push_config_paging(store: TaskStore) -> None:
    ids = [f"p{i:02d}" for i in range(7)]
    for config_id in reversed(ids):
        await store.put_push_config("", push_config("t1", config_id))
    await store.put_push_config("", push_config("t2", "other-task"))
    await store.put_push_config("tenant-b", push_config("t1", "other-tenant"))

    everything, token = await store.list_push_configs("", "t1", 0, "")
    assert [c.id for c in everything] == ids
    assert token == ""

    seen: list[str] = []
    token = ""
    while True:
        page, token = await store.list_push_configs("", "t1", 3, token)
        assert len(page) <= 3
        seen.extend(c.id for c in page)
        if not token:
            break
    assert seen == ids

    _, token = await store.list_push_configs("", "t1", 2, "")
    with pytest.raises(InvalidPageTokenError, match="different tenant or different filters"):
        await store.list_push_configs("", "t2", 2, token)
    with pytest.raises(InvalidPageTokenError, match="different list operation"):
        await store.list("", request(page_token=token))
    with pytest.raises(InvalidPageTokenError):
        await store.list_push_configs("", "t1", 2, token[:-2])
    with pytest.raises(InvalidListRequestError) as caught:
        await store.list_push_configs("", "t1", -1, "")
    assert caught.value.field == "page_size"
    big, _ = await store.list_push_configs("", "t1", 1000, "")  # clamped, not refused
    assert len(big) == 7


# ---------------------------------------------------------------- concurrency and closing


@pytest.mark.asyncio
async def test_concurrent_saves_and_reads(store: TaskStore) -> None:
    await asyncio.gather(*(store.save("", make_task(f"t{i:03d}", ts=BASE_TS + i)) for i in range(200)))
    got = await asyncio.gather(*(store.get("", f"t{i:03d}") for i in range(200)))
    assert all(t is not None and t.id == f"t{i:03d}" for i, t in enumerate(got))
    assert (await store.list("", request())).total_size == 200


def test_backends_satisfy_the_protocol(store: TaskStore) -> None:
    assert isinstance(store, TaskStore)


@pytest.mark.asyncio
async def test_closed_store_refuses_calls(store: TaskStore) -> None:
    await store.save("", make_task("t1"))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await store.save("", make_task("t1"))
    with pytest.raises(RuntimeError, match="closed"):
        await store.get("", "t1")
    with pytest.raises(RuntimeError, match="closed"):
        await store.list("", request())


# ---------------------------------------------------------------- SQLite specifics


@pytest.mark.asyncio
async def test_sqlite_tasks_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "tasks.db"  # parents are created
    first = SqliteTaskStore(str(path))
    try:
        for i in range(5):
            await first.save("", make_task(f"t{i}", ts=BASE_TS + i))
        await first.save("acme", make_task("acme-task"))
        await first.put_push_config("", push_config("t1", "p1"))
    finally:
        await first.close()

    second = SqliteTaskStore(str(path))
    try:
        assert await second.get("", "t3") == make_task("t3", ts=BASE_TS + 3)
        listed = await second.list("", request(page_size=2))
        assert [t.id for t in listed.tasks] == ["t4", "t3"]
        assert listed.total_size == 5
        rest = await second.list("", request(page_size=10, page_token=listed.next_page_token))
        assert [t.id for t in rest.tasks] == ["t2", "t1", "t0"]
        assert [t.id for t in (await second.list("acme", request())).tasks] == ["acme-task"]
        assert await second.get_push_config("", "t1", "p1") == push_config("t1", "p1")
        # Saves after a restart keep working (and keep the save counter increasing).
        await second.save("", make_task("t5", ts=BASE_TS + 5))
        assert (await second.list("", request())).total_size == 6
    finally:
        await second.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        seqs = [row[0] for row in conn.execute("SELECT updated_seq FROM tasks WHERE tenant = '' ORDER BY id")]
    conn.close()
    assert seqs == [1, 2, 3, 4, 5, 7]


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(
        StoreError,
        match=f"has schema version {SCHEMA_VERSION + 1}, newer than the {SCHEMA_VERSION} this a2a-grpc",
    ):
        SqliteTaskStore(str(path))


# ---------------------------------------------------------------- open_store


@pytest.mark.asyncio
async def test_open_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = open_store("memory")
    assert isinstance(memory, InMemoryTaskStore)
    await memory.close()

    absolute = open_store(f"sqlite:///{tmp_path}/abs/tasks.db")  # tmp_path starts with "/"
    assert isinstance(absolute, SqliteTaskStore)
    await absolute.close()
    assert (tmp_path / "abs" / "tasks.db").exists()

    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel/tasks.db")
    await relative.close()
    assert (tmp_path / "rel" / "tasks.db").exists()

    in_memory_sqlite = open_store("sqlite:///:memory:")
    await in_memory_sqlite.save("", make_task("t1"))
    assert (await in_memory_sqlite.list("", request())).total_size == 1
    await in_memory_sqlite.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://db/a2a", "'postgresql' is not supported"),
        ("sqlite:///", "no database file path"),
        ("sqlite://relative.db", "malformed"),
        ("tasks.db", "not recognised"),
        ("", "not recognised"),
    ],
)
def test_open_store_rejects_unsupported_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


# ---------------------------------------------------------------- unusable SQLite files


def one_line(error: pytest.ExceptionInfo[StoreError], path: Path) -> str:
    """The error's message, checked to be one line that names the file."""
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert error.value.path == str(path)
    return message


async def filled_store(path: Path, tasks: int) -> None:
    store = SqliteTaskStore(str(path))
    for n in range(tasks):
        await store.save("", make_task(f"t{n:05d}", ts=BASE_TS + n, history=4))
    await store.close()  # the last connection checkpoints the WAL into the file


def damage_page(path: Path, page: int) -> None:
    """Overwrite one database page with garbage; the header (page 1) stays valid."""
    with sqlite3.connect(path) as conn:
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with path.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(bytes(range(256)) * (size // 256))


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(StoreError) as error:
        SqliteTaskStore(str(path))
    assert "is not an SQLite database" in one_line(error, path)
    assert "move it aside" in str(error.value)


def test_sqlite_refuses_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    path.mkdir()
    with pytest.raises(StoreError) as error:
        SqliteTaskStore(str(path))
    assert "is a directory, not a database file" in one_line(error, path)


def test_sqlite_refuses_a_path_whose_directory_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    path = tmp_path / "data" / "tasks.db"
    with pytest.raises(StoreError) as error:
        SqliteTaskStore(str(path))
    assert "cannot be made: a file is in the way" in one_line(error, path)


def unwritable_path(tmp_path: Path) -> Path:
    """A database path this process may not create: a read-only directory, or for root (whom
    permissions do not stop) a path in sysfs."""
    if os.geteuid() != 0:
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o500)
        return locked / "tasks.db"
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without sysfs: no path root cannot write")
    return Path("/sys/kernel/a2a-grpc-test-tasks.db")


def test_sqlite_refuses_an_unwritable_path(tmp_path: Path) -> None:
    path = unwritable_path(tmp_path)
    with pytest.raises(StoreError) as error:
        SqliteTaskStore(str(path))
    assert "cannot be opened for reading and writing: permission denied" in one_line(error, path)
    assert not path.exists()


@pytest.mark.parametrize(
    "given",
    [{"busy_timeout": 0.2}, {"settings": StoreSettings(busy_timeout=0.2)}],
    ids=["keyword", "settings"],
)
def test_sqlite_refuses_a_file_another_process_keeps_locked(tmp_path: Path, given: dict[str, Any]) -> None:
    path = tmp_path / "tasks.db"
    asyncio.run(filled_store(path, 1))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM tasks")  # an exclusive lock in WAL mode comes with the first write
        with pytest.raises(StoreError) as error:
            SqliteTaskStore(str(path), **given)
        assert "is locked by another process (waited 0.2 s)" in one_line(error, path)
    finally:
        holder.close()


@pytest.mark.asyncio
async def test_sqlite_refuses_a_file_with_damaged_pages(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    await filled_store(path, 300)
    with sqlite3.connect(path) as conn:
        (index_root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'tasks_by_time'"
        ).fetchone()
    conn.close()
    damage_page(path, index_root)

    # Without the check the store opens, and then fails the calls that read the damaged index
    # (with a StoreError naming the file: the damage, not a bare sqlite3 exception).
    unchecked = SqliteTaskStore(str(path), check_integrity=False)
    try:
        with pytest.raises((StoreError, sqlite3.DatabaseError), match="malformed"):
            await unchecked.list("", request())
    finally:
        await unchecked.close()

    with pytest.raises(StoreError) as error:
        SqliteTaskStore(str(path))
    message = one_line(error, path)
    assert "is damaged (SQLite quick_check:" in message
    assert "restore it from a backup, or move it aside to start with an empty store" in message


@pytest.mark.asyncio
async def test_a_timestamp_outside_the_timestamp_range_is_refused_naming_the_field(store: TaskStore) -> None:
    await store.save("", make_task("t1", ts=BASE_TS, history=0, artifacts=0))
    for seconds, nanos in ((2**62, 0), (-(2**62), 0), (253_402_300_800, 0), (BASE_TS, -1), (BASE_TS, 10**9)):
        asked = request()
        asked.status_timestamp_after.seconds = seconds
        asked.status_timestamp_after.nanos = nanos
        with pytest.raises(InvalidListRequestError, match="0001-01-01 to 9999-12-31") as caught:
            await store.list("", asked)
        assert caught.value.field == "status_timestamp_after"
    last = request()
    last.status_timestamp_after.seconds = 253_402_300_799  # the last second there is: no task after it
    assert (await store.list("", last)).tasks == []


@pytest.mark.asyncio
async def test_over_grpc_an_out_of_range_timestamp_is_invalid_params_and_the_server_serves_on() -> None:
    from a2a_grpc import errors
    from a2a_grpc.client import A2AClient
    from a2a_grpc.reference_agent import ReferenceAgent
    from a2a_grpc.testing import serving

    async with serving(ReferenceAgent()) as served:
        asked = request()
        asked.status_timestamp_after.seconds = 2**62
        with pytest.raises(errors.InvalidParamsError, match="status_timestamp_after"):
            await served.client.list_tasks(asked)
        reply = await served.client.send_message(A2AClient.text_request("echo still here"))
        assert reply.task.artifacts[0].parts[0].text == "echo still here"


@pytest.mark.asyncio
async def test_sqlite_leases_last_lease_seconds_of_its_settings(tmp_path: Path) -> None:
    store = SqliteTaskStore(str(tmp_path / "tasks.db"), settings=StoreSettings(lease_seconds=3600.0))
    try:
        before = time.time()
        await store.registry.renew()  # the owner's lease, written
        with sqlite3.connect(tmp_path / "tasks.db") as conn:
            (expires,) = conn.execute("SELECT MAX(expires) FROM owners").fetchone()
        conn.close()
        assert before + 3600.0 <= expires <= time.time() + 3600.0
    finally:
        await store.close()


def test_store_settings_are_checked_naming_the_setting(tmp_path: Path) -> None:
    for name, bad in (
        ("busy_timeout", -1.0),
        ("commit_delay", float("inf")),
        ("lease_seconds", 0.0),
        ("lease_seconds", float("nan")),
    ):
        with pytest.raises(ValueError, match=name):
            StoreSettings(**{name: bad})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=name):
            SqliteTaskStore(str(tmp_path / "never.db"), **{name: bad})  # type: ignore[arg-type]
    assert not (tmp_path / "never.db").exists()
