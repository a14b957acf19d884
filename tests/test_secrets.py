"""Secrets at rest, in answers, in error texts and in logs.

1. The SQLite store's files are private whatever the umask: folder 0700, database, -wal, -shm
   and key file 0600; an existing file open to others is tightened, with a warning.
2. Push credentials never come back in answers (Create, Get, List), over gRPC.
3. Push configs are sealed in the SQLite file: its bytes hold no credential; a store reopened
   with the same key gives them back in clear (what the notifier reads); another key, a lost key
   file, a damaged or moved value are clear errors; configs stored in clear before are sealed.
4. An upstream URL with ``user:password@`` never reaches an error text or a log line, and its
   credentials are still sent (as Basic authentication).
"""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from a2a_grpc import errors, types
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import JsonRpcUpstream, RestUpstream, open_json_upstream
from a2a_grpc.bridge.upstream import Call
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.resilience import ResiliencePolicy
from a2a_grpc.security.redact import redact_userinfo, scrub_urls, split_userinfo, without_credentials
from a2a_grpc.server import ServerSettings
from a2a_grpc.tasks import SqliteTaskStore, StoreError
from a2a_grpc.tasks.sealing import STORE_KEY_ENV, new_store_key
from tests.conftest import serve, shutdown
from tests.json_peers import bind, serve_asgi

CREDENTIALS = "s3cret-credential-7f3a"
TOKEN = "client-token-91c2"
HOOK = "https://hooks.example/a2a?sig=1"
PASSWORD = "pa55-w0rd-e4d1"
V1 = {"a2a-version": "1.0"}
TIMEOUT = 5.0


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def exists(path: Path | str) -> bool:
    return os.path.exists(path)


def push_config(task_id: str = "t1", config_id: str = "p1") -> types.TaskPushNotificationConfig:
    config = types.TaskPushNotificationConfig(task_id=task_id, id=config_id, url=HOOK, token=TOKEN)
    config.authentication.scheme = "Bearer"
    config.authentication.credentials = CREDENTIALS
    return config


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_KEY_ENV, raising=False)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def files_bytes(db: Path) -> bytes:
    """Everything SQLite keeps for ``db``: the database, and its -wal and -shm if present."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


# ==== 1. private files ==============================================================================


@pytest.mark.asyncio
@pytest.mark.usefixtures("umask_022")
async def test_a_new_store_is_private_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "store" / "tasks.db"
    store = SqliteTaskStore(str(db))
    try:
        await store.put_push_config("", push_config())
        await store.save("", types.Task(id="t1", context_id="c1"))
        files = [str(db), f"{db}-wal", f"{db}-shm", f"{db}.key"]
        assert {f: exists(f) and mode(f) for f in files} == dict.fromkeys(files, 0o600)
        assert mode(db.parent) == 0o700
        assert mode(db.parent.parent) == 0o700  # every folder the store made
    finally:
        await store.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("umask_022")
async def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    store = SqliteTaskStore(str(folder / "tasks.db"))
    await store.close()
    assert mode(folder) == 0o755
    assert mode(folder / "tasks.db") == 0o600


@pytest.mark.asyncio
@pytest.mark.usefixtures("umask_022")
async def test_an_existing_open_file_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.save("", types.Task(id="t1", context_id="c1"))
    await first.close()
    os.chmod(db, 0o644)
    os.chmod(f"{db}.key", 0o640)
    with caplog.at_level(logging.WARNING, "a2a_grpc.tasks"):
        second = SqliteTaskStore(str(db))
        try:
            assert await second.get("", "t1") is not None
            assert mode(db) == 0o600
            assert mode(f"{db}.key") == 0o600
        finally:
            await second.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(db) in line and "0644" in line and "0600" in line for line in warned), warned
    assert any(f"{db}.key" in line and "0640" in line for line in warned), warned


@pytest.mark.usefixtures("umask_022")
def test_a_file_that_is_not_a_store_is_not_touched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, given by mistake\n" * 100)
    os.chmod(notes, 0o644)
    with pytest.raises(StoreError, match="is not an SQLite database"):
        SqliteTaskStore(str(notes))
    assert mode(notes) == 0o644
    assert not exists(f"{notes}.key")


# ==== 2. no credentials in answers ==================================================================


@pytest_asyncio.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[tuple[A2AClient, SqliteTaskStore, Path]]:
    db = tmp_path / "tasks.db"
    store = SqliteTaskStore(str(db))
    served = await serve(ReferenceAgent(), store)
    try:
        yield served.client, store, db
    finally:
        await shutdown(served)


@pytest.mark.asyncio
async def test_answers_carry_the_scheme_but_no_credentials(
    sqlite_server: tuple[A2AClient, SqliteTaskStore, Path],
) -> None:
    client, store, db = sqlite_server
    task = (await client.send_message(A2AClient.text_request("echo hi"))).task
    config = push_config(task.id, "p1")
    config.ClearField("id")
    created = await client.create_task_push_notification_config(config)
    got = await client.get_task_push_notification_config(task.id, created.id)
    listed = await client.list_task_push_notification_configs(task.id)
    # SendMessage with a config: stored, and the answer (a task) does not echo it either.
    request = A2AClient.text_request("echo again")
    request.configuration.task_push_notification_config.CopyFrom(push_config("", "p2"))
    sent = await client.send_message(request)
    assert CREDENTIALS.encode() not in sent.SerializeToString()
    for answer in (created, got, *listed.configs):
        assert answer.authentication.scheme == "Bearer"
        assert answer.authentication.credentials == ""
        assert answer.url == HOOK
        assert answer.token == TOKEN
    # The server keeps them, for the notifier.
    kept = await store.get_push_config("", task.id, created.id)
    assert kept is not None
    assert kept.authentication.credentials == CREDENTIALS
    assert (await store.get_push_config("", sent.task.id, "p2")) == push_config(sent.task.id, "p2")
    # ... and never in clear on disk.
    raw = files_bytes(db)
    assert CREDENTIALS.encode() not in raw
    assert TOKEN.encode() not in raw


def test_without_credentials_copies_and_leaves_the_original() -> None:
    config = push_config()
    blanked = without_credentials(config)
    assert blanked.authentication.credentials == ""
    assert config.authentication.credentials == CREDENTIALS
    page = types.ListTaskPushNotificationConfigsResponse(configs=[config, push_config("t1", "p2")])
    assert [c.authentication.credentials for c in without_credentials(page).configs] == ["", ""]
    assert page.configs[0].authentication.credentials == CREDENTIALS
    plain = types.TaskPushNotificationConfig(id="p", url=HOOK)
    assert without_credentials(plain) is plain
    mixed = without_credentials(types.ListTaskPushNotificationConfigsResponse(configs=[plain, config]))
    assert not mixed.configs[0].HasField("authentication")  # not made present by the blanking
    assert mixed.configs[1].authentication.scheme == "Bearer"


# ==== 3. sealed at rest ==============================================================================


@pytest.mark.asyncio
async def test_a_reopened_store_gives_the_clear_credentials_back(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    try:
        await first.put_push_config("acme", push_config("t1", "p1"))
        await first.put_push_config("acme", push_config("t1", "p2"))
    finally:
        await first.close()
    raw = files_bytes(db)
    assert CREDENTIALS.encode() not in raw
    assert TOKEN.encode() not in raw
    assert b"hooks.example" not in raw
    second = SqliteTaskStore(str(db))
    try:
        # What the notifier reads (Runs loads a task's configs with list_push_configs).
        configs, _ = await second.list_push_configs("acme", "t1", 10, "")
        assert configs == [push_config("t1", "p1"), push_config("t1", "p2")]
        assert await second.get_push_config("acme", "t1", "p2") == push_config("t1", "p2")
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_the_key_comes_from_the_environment_or_the_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_store_key()
    monkeypatch.setenv(STORE_KEY_ENV, key)
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.put_push_config("", push_config())
    await first.close()
    assert not exists(f"{db}.key")  # no key file when the environment gives the key
    monkeypatch.delenv(STORE_KEY_ENV)
    second = SqliteTaskStore(str(db), key=base64.b64decode(key))
    try:
        assert await second.get_push_config("", "t1", "p1") == push_config()
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_another_key_is_a_clear_error_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.put_push_config("", push_config())
    await first.close()
    monkeypatch.setenv(STORE_KEY_ENV, new_store_key())
    with pytest.raises(StoreError, match=f"encrypted with another key than the one from {STORE_KEY_ENV}"):
        SqliteTaskStore(str(db))
    monkeypatch.setenv(STORE_KEY_ENV, "not a key")
    with pytest.raises(StoreError, match=f"the store key from {STORE_KEY_ENV} must be base64 of 32") as info:
        SqliteTaskStore(str(db))
    assert "not a key" not in info.value.message


@pytest.mark.asyncio
async def test_a_lost_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.put_push_config("", push_config())
    await first.close()
    os.unlink(f"{db}.key")
    with pytest.raises(StoreError, match=r"holds encrypted push configs but its key file .* is missing"):
        SqliteTaskStore(str(db))
    assert not exists(f"{db}.key")


@pytest.mark.asyncio
async def test_a_damaged_or_moved_value_fails_its_integrity_check(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.put_push_config("", push_config("t1", "p1"))
    await first.put_push_config("", push_config("t1", "p2"))
    await first.close()
    with sqlite3.connect(db) as conn:  # p2's sealed value copied into p1's row
        conn.execute(
            "UPDATE push_configs SET body = (SELECT body FROM push_configs WHERE id = 'p2') WHERE id = 'p1'"
        )
    conn.close()
    second = SqliteTaskStore(str(db))
    try:
        with pytest.raises(StoreError, match="fails its integrity check"):
            await second.get_push_config("", "t1", "p1")
        assert await second.get_push_config("", "t1", "p2") == push_config("t1", "p2")
    finally:
        await second.close()


@pytest.mark.asyncio
async def test_configs_stored_in_clear_still_load_and_are_sealed(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    first = SqliteTaskStore(str(db))
    await first.close()
    # What a2a-grpc wrote before sealing (schema 2): the serialised config as it is.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO push_configs (tenant, task_id, id, body) VALUES ('', 't1', 'p1', ?)",
            (push_config().SerializeToString(),),
        )
        conn.execute("PRAGMA user_version=2")
    conn.close()
    assert CREDENTIALS.encode() in files_bytes(db)
    second = SqliteTaskStore(str(db))
    try:
        assert await second.get_push_config("", "t1", "p1") == push_config()
    finally:
        await second.close()
    assert CREDENTIALS.encode() not in files_bytes(db)


# ==== 4. URL credentials out of errors and logs =====================================================


@pytest.mark.parametrize(
    ("url", "bare"),
    [
        (f"http://user:{PASSWORD}@host:8080/a?b=1", "http://host:8080/a?b=1"),
        (f"https://user:{PASSWORD}@h@st/", "https://st/"),
        ("https://token@host", "https://host"),
        ("http://host/x", "http://host/x"),
    ],
)
def test_redact_userinfo(url: str, bare: str) -> None:
    assert redact_userinfo(url) == bare
    assert scrub_urls(f"failed: {url}!") == f"failed: {bare}!"


def test_split_userinfo_decodes_the_credentials() -> None:
    assert split_userinfo("http://us%40er:p%3Ass@host/x") == ("http://host/x", ("us@er", "p:ss"))
    assert split_userinfo("http://host/x") == ("http://host/x", None)


def _closed_port() -> int:
    sock = bind()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@pytest.mark.asyncio
async def test_an_unreachable_upstream_with_a_password_is_named_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://user:{PASSWORD}@127.0.0.1:{_closed_port()}"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(errors.UnavailableError) as card:
            await open_json_upstream(url)
        failures: list[errors.A2AError] = [card.value]
        for upstream in (JsonRpcUpstream(url), RestUpstream(url)):
            try:
                with pytest.raises(errors.UnavailableError) as info:
                    await upstream.unary("GetTask", types.GetTaskRequest(id="x"), Call(V1, TIMEOUT))
                failures.append(info.value)
            finally:
                await upstream.aclose()
    for failure in failures:
        assert PASSWORD not in failure.message
        assert "user" not in failure.message
        assert "127.0.0.1" in failure.message
    assert caplog.records
    assert PASSWORD not in caplog.text


class BasicRecorder:
    """An HTTP+JSON agent whose card points at itself; records Authorization headers; answers 503."""

    def __init__(self) -> None:
        self.port = 0
        self.authorizations: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        sent = dict(scope["headers"])
        self.authorizations.append(sent.get(b"authorization", b"").decode())
        if scope["path"] == "/.well-known/agent-card.json":
            status, body = (
                200,
                orjson.dumps(
                    {
                        "name": "basic",
                        "supportedInterfaces": [
                            {"url": "/a2a", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}
                        ],
                    }
                ),
            )
        else:
            status, body = 503, b"down for maintenance"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


ONE_ATTEMPT = ClientSettings(timeout=TIMEOUT, resilience=ResiliencePolicy(max_attempts=1))


@pytest.mark.asyncio
async def test_url_credentials_are_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    agent = BasicRecorder()
    async with serve_asgi(agent) as port:
        agent.port = port
        url = f"http://user:{PASSWORD}@127.0.0.1:{port}"
        with caplog.at_level(logging.DEBUG):
            upstream = await open_json_upstream(url)
            try:
                async with (
                    GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0, log_requests=True)) as front,
                    # One GetTask reaches the upstream: a client that does not retry it.
                    A2AClient(front.address, settings=ONE_ATTEMPT) as client,
                ):
                    with pytest.raises(errors.UnavailableError) as info:
                        await client.get_task("t1")
            finally:
                await upstream.aclose()
    basic = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert agent.authorizations == [basic, basic]  # the card, then GetTask at /a2a/tasks/t1
    assert PASSWORD not in info.value.message
    assert f"upstream agent at http://127.0.0.1:{port}/a2a is unavailable" in info.value.message
    assert caplog.records  # httpx's request lines among them
    assert PASSWORD not in caplog.text
    assert "user:" not in caplog.text
