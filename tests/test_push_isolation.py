"""Webhooks isolated per target: a dripping, black-hole or dead receiver spends only its own queue and
connection budget; every attempt has a deadline; retries are bounded; nothing is lost uncounted; a
big artifact is encoded without stalling the loop; a task holds a bounded number of push configs.

Receivers listen on 127.0.0.1 port 0: the healthy one is tests/webhook.py's (Starlette on uvicorn),
the hostile ones are raw asyncio servers below. Figures (latencies, stalls) are printed (``pytest -s``)
and asserted only against bounds the broken behaviour blows through.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from google.protobuf import json_format

from a2a_grpc import errors, push, types
from a2a_grpc._push_body import encode_in_steps
from a2a_grpc.client import A2AClient
from a2a_grpc.push import PushNotifier, PushSettings, PushStats
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.webhooks import SIGNATURE_HEADER, WebhookPolicy, verify_signature
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore
from tests.webhook import Receiver, until

LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))
"""Every receiver here is on loopback, which the default policy refuses (SSRF)."""


def webhook(
    url: str, *, config_id: str = "cfg-1", task_id: str = "task-1"
) -> types.TaskPushNotificationConfig:
    return types.TaskPushNotificationConfig(id=config_id, task_id=task_id, url=url, token="tok")


def status_event(i: int = 0, task_id: str = "task-1") -> types.StreamResponse:
    event = types.StreamResponse()
    update = event.status_update
    update.task_id, update.context_id = task_id, "ctx-1"
    update.status.state = types.TASK_STATE_WORKING
    update.metadata.update({"seq": i})
    return event


def free_port() -> int:
    """A port that was free a moment ago: nothing listens there (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Hostile:
    """A webhook receiver that misbehaves, on 127.0.0.1 port 0.

    ``drip``: reads the request, then answers one byte every ``interval`` seconds, never finishing
    its headers. ``blackhole``: reads whatever comes and never answers. Counts connections, and the
    most it held open at once.
    """

    def __init__(self, mode: str, interval: float = 0.05) -> None:
        self.mode, self.interval = mode, interval
        self.port = 0
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    def url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def start(self) -> Hostile:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # each handler then sees its connection end and returns
            writer.close()
        if self._handlers:
            _, late = await asyncio.wait(self._handlers, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            if self.mode == "drip":
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                while not reader.at_eof():  # until the client gives up on us
                    await asyncio.sleep(self.interval)
                    writer.write(b"a")
                    await writer.drain()
            else:
                while await reader.read(65536):
                    pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest_asyncio.fixture
async def drip() -> AsyncIterator[Hostile]:
    server = await Hostile("drip").start()
    yield server
    await server.close()


@pytest_asyncio.fixture
async def blackhole() -> AsyncIterator[Hostile]:
    server = await Hostile("blackhole").start()
    yield server
    await server.close()


def accounted(notifier: PushNotifier, sent: int) -> bool:
    """Every update handed to the notifier is delivered, failed or dropped: none lost uncounted."""
    stats = notifier.stats
    return stats.delivered + stats.failed + stats.dropped == sent


# -- settings --------------------------------------------------------------------------------------


def test_new_settings_defaults_and_validation() -> None:
    settings = PushSettings()
    assert (
        settings.attempt_deadline,
        settings.target_queue_size,
        settings.target_concurrency,
        settings.max_targets,
        settings.max_connections,
    ) == (30.0, 1_000, 8, 1_000, 512)
    bad: list[tuple[dict[str, object], str]] = [
        ({"attempt_deadline": 0}, "attempt_deadline must be > 0"),
        ({"attempt_deadline": float("nan")}, "attempt_deadline must be a finite number"),
        ({"target_queue_size": 0}, "target_queue_size must be an integer >= 1"),
        ({"target_concurrency": 2.0}, "target_concurrency must be an integer >= 1"),
        ({"max_targets": True}, "max_targets must be an integer >= 1"),
        ({"max_connections": 0}, "max_connections must be an integer >= 1"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            PushNotifier(**kwargs)  # type: ignore[arg-type]


# -- isolation -------------------------------------------------------------------------------------


async def healthy_latencies(
    notifier: PushNotifier, receiver: Receiver, count: int, between: Callable[[int], None]
) -> list[float]:
    """Seconds from notify to arrival of ``count`` updates to the healthy receiver, one at a time;
    ``between(i)`` runs before each (to keep the hostile targets busy)."""
    latencies: list[float] = []
    for i in range(count):
        between(i)
        sent = time.monotonic()
        notifier.notify(
            webhook(receiver.url("ok"), config_id="ok", task_id="healthy"), status_event(i, "healthy")
        )
        await until(lambda: len(receiver.paths("ok")) > len(latencies), limit=15)
        latencies.append(receiver.paths("ok")[-1].at - sent)
    return latencies


@pytest.mark.asyncio
async def test_dead_blackhole_and_dripping_targets_do_not_delay_a_healthy_one(
    receiver: Receiver, drip: Hostile, blackhole: Hostile
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    sent = 0
    # Long timeouts and deadline, as in production: the hostile targets hold on to what they get.
    notifier = PushNotifier(policy=LOOPBACK, attempt_deadline=30.0, timeout=10.0)

    def hostile_updates(i: int) -> None:
        nonlocal sent
        for c in range(40):
            for url in (drip.url(f"d{c}"), blackhole.url(f"b{c}"), f"{dead}/x{c}"):
                notifier.notify(
                    webhook(url, config_id=f"c{c}", task_id="hostile"), status_event(i, "hostile")
                )
                sent += 1

    try:
        latencies = await healthy_latencies(notifier, receiver, 20, hostile_updates)
        sent += 20
        median = sorted(latencies)[len(latencies) // 2]
        print(
            "\nhealthy webhook beside drip/black-hole/dead targets: "
            f"latency max {max(latencies) * 1000:.1f} ms, median {median * 1000:.1f} ms"
        )
        assert max(latencies) < 2.0  # before: the shared pool of 100 connections made it wait 10 s and fail
        # Each hostile target got at most its own budget of connections at once.
        assert drip.most_open <= notifier.settings.target_concurrency
        assert blackhole.most_open <= notifier.settings.target_concurrency
        assert drip.connections >= 1
        assert blackhole.connections >= 1
        held = notifier.targets()
        assert held[f"http://127.0.0.1:{drip.port}"] > 0
        healthy = f"http://127.0.0.1:{receiver.port}"
        await until(lambda: healthy not in notifier.targets())  # idle: its worker went away
    finally:
        await notifier.aclose(timeout=0)
    assert notifier.stats.delivered == 20
    assert accounted(notifier, sent)  # what the hostile targets held is counted as failed
    assert notifier.targets() == {}


@pytest.mark.asyncio
async def test_a_task_with_120_configs_on_a_dripping_webhook_does_not_delay_other_tasks(
    receiver: Receiver, drip: Hostile
) -> None:
    """End to end: the server, the reference agent, one task with 120 webhooks that drip."""
    notifier = PushNotifier(policy=LOOPBACK, initial_backoff=0.01, max_backoff=0.05)
    limits = Limits(max_push_configs_per_task=120)
    server = A2AServer(
        ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=0, limits=limits), notifier=notifier
    )
    await server.start()
    try:
        async with A2AClient(server.address, timeout=10) as client:
            waiting = (await client.send_message(A2AClient.text_request("ask"))).task
            for i in range(120):
                config = types.TaskPushNotificationConfig(
                    task_id=waiting.id, id=f"drip-{i}", url=drip.url(f"d{i}")
                )
                await client.create_task_push_notification_config(config)
            await client.send_message(A2AClient.text_request("go on", task_id=waiting.id))
            await until(lambda: drip.open == notifier.settings.target_concurrency, limit=10)
            latencies: list[float] = []
            for i in range(10):
                request = A2AClient.text_request(f"echo {i}")
                request.configuration.task_push_notification_config.url = receiver.url(f"ok{i}")
                sent = time.monotonic()
                await client.send_message(request)

                def completed(path: str = f"ok{i}") -> bool:
                    return any(b'"TASK_STATE_COMPLETED"' in r.body for r in receiver.paths(path))

                await until(completed, limit=15)
                arrived = next(r.at for r in receiver.paths(f"ok{i}") if b'"TASK_STATE_COMPLETED"' in r.body)
                latencies.append(arrived - sent)
            print(
                f"\n120 dripping configs on one task: another task's send-to-last-delivery max "
                f"{max(latencies) * 1000:.1f} ms, median {sorted(latencies)[5] * 1000:.1f} ms"
            )
            assert max(latencies) < 3.0  # before: no delivery at all while the 120 held the pool
            assert drip.most_open <= notifier.settings.target_concurrency
            assert (
                await client.send_message(A2AClient.text_request("echo still here"))
            ).task.status.state == (types.TASK_STATE_COMPLETED)
    finally:
        await server.stop(grace=1)
        await notifier.aclose(timeout=0)
    assert notifier.stats.dropped == 0
    assert notifier.stats.failed >= 1  # the dripping deliveries cut short at close: counted


# -- deadline and retries --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_attempt_deadline_ends_a_dripping_delivery(
    drip: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    # The drip (a byte every 50 ms) never lets the 10 s per-read timeout fire: only the deadline ends it.
    notifier = PushNotifier(
        policy=LOOPBACK,
        attempt_deadline=0.3,
        timeout=10.0,
        max_attempts=2,
        initial_backoff=0.01,
        max_backoff=0.02,
    )
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.push"):
        async with notifier:
            started = time.monotonic()
            notifier.notify(webhook(drip.url("hook-s3cret")), status_event())
            await until(lambda: notifier.stats.failed == 1, limit=5)
            took = time.monotonic() - started
    print(f"\ntwo dripping attempts ended by a 0.3 s deadline after {took:.2f} s")
    assert notifier.stats == PushStats(retried=1, failed=1, timed_out=2)
    assert drip.connections == 2
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "after 2 attempt(s)" in record.getMessage()
    assert "last=deadline exceeded (attempt_deadline=0.3 s)" in record.getMessage()
    assert "s3cret" not in caplog.text


@pytest.mark.asyncio
async def test_a_blackhole_is_ended_by_the_deadline_too(blackhole: Hostile) -> None:
    async with PushNotifier(policy=LOOPBACK, attempt_deadline=0.2, max_attempts=1) as notifier:
        notifier.notify(webhook(blackhole.url()), status_event())
        await until(lambda: notifier.stats.failed == 1, limit=5)
    assert notifier.stats == PushStats(failed=1, timed_out=1)


@pytest.mark.asyncio
async def test_retries_are_bounded_with_exponential_backoff(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [(503, {})] * 4
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.push"):
        async with PushNotifier(
            policy=LOOPBACK, max_attempts=4, initial_backoff=0.1, max_backoff=0.4
        ) as notifier:
            notifier.notify(webhook(receiver.url()), status_event())
            await until(lambda: notifier.stats.failed == 1, limit=10)
            notifier.notify(webhook(receiver.url()), status_event(1))  # the script is spent: 200
            await until(lambda: notifier.stats.delivered == 1)
    assert len(receiver.requests) == 5  # 4 attempts, no fifth, then the next update
    times = [r.at for r in receiver.requests[:4]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    print(f"\nbackoff between attempts: {', '.join(f'{g * 1000:.0f} ms' for g in gaps)}")
    # Equal jitter: each wait is between half and all of 0.1, 0.2, 0.4 s (never shorter).
    for gap, step in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= step / 2 * 0.95
    assert sum(gaps) < 5.0
    assert notifier.stats == PushStats(delivered=1, retried=3, failed=1)
    assert "after 4 attempt(s)" in caplog.text
    assert "last=HTTP 503" in caplog.text


@pytest.mark.asyncio
async def test_retry_after_is_respected_within_bounds(receiver: Receiver) -> None:
    receiver.script = [(503, {"Retry-After": "0.4"})]
    async with PushNotifier(policy=LOOPBACK, initial_backoff=0.001, max_backoff=1.0) as notifier:
        notifier.notify(webhook(receiver.url()), status_event())
        await until(lambda: notifier.stats.delivered == 1)
    first, second = receiver.requests
    assert second.at - first.at >= 0.38  # the receiver's 0.4 s, not the 1 ms backoff
    assert notifier.stats == PushStats(delivered=1, retried=1)


# -- bounded queues, counted drops -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_full_target_queue_drops_counted_and_logged_and_spares_other_targets(
    receiver: Receiver, blackhole: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = PushNotifier(policy=LOOPBACK, target_queue_size=3, target_concurrency=1, attempt_deadline=30)
    with caplog.at_level(logging.WARNING, logger="a2a_grpc.push"):
        for i in range(10):
            url = blackhole.url(f"hook-{i % 2}?token=s3cret")
            notifier.notify(webhook(url, config_id=f"c{i % 2}"), status_event(i))
        assert notifier.stats.dropped == 7
        assert notifier.targets() == {f"http://127.0.0.1:{blackhole.port}": 3}
        notifier.notify(webhook(receiver.url()), status_event())  # another target: not dropped
        await until(lambda: notifier.stats.delivered == 1)
        await notifier.aclose(timeout=0)
    assert notifier.stats == PushStats(delivered=1, dropped=7, failed=3)
    assert accounted(notifier, 11)
    (drop,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]  # one a second
    assert "target queue full (target_queue_size=3)" in drop
    assert f"target=http://127.0.0.1:{blackhole.port} " in drop
    assert "(1 dropped since last warning)" in drop  # the first at once; the next 6 wait a second
    assert "s3cret" not in caplog.text
    assert "hook-" not in caplog.text  # the host only, never the path


@pytest.mark.asyncio
async def test_too_many_targets_drops_counted_and_logged(
    receiver: Receiver, blackhole: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = PushNotifier(policy=LOOPBACK, max_targets=1)
    with caplog.at_level(logging.WARNING, logger="a2a_grpc.push"):
        notifier.notify(webhook(blackhole.url()), status_event())
        notifier.notify(webhook(receiver.url()), status_event())
        await notifier.aclose(timeout=0)
    assert notifier.stats == PushStats(dropped=1, failed=1)
    assert f"too many webhook targets at once (max_targets=1): target=http://127.0.0.1:{receiver.port}" in (
        caplog.text
    )


@pytest.mark.asyncio
async def test_an_idle_target_goes_away_and_frees_its_place(receiver: Receiver, blackhole: Hostile) -> None:
    notifier = PushNotifier(policy=LOOPBACK, max_targets=1)
    for i in range(3):  # its worker ends when it is idle, and a later update starts one again
        notifier.notify(webhook(receiver.url()), status_event(i))
        assert notifier.targets() == {f"http://127.0.0.1:{receiver.port}": 1}
        await until(lambda: notifier.targets() == {})
        assert notifier.stats.delivered == i + 1
    notifier.notify(webhook(blackhole.url()), status_event())  # the one place is free again
    assert notifier.targets() == {f"http://127.0.0.1:{blackhole.port}": 1}
    await notifier.aclose(timeout=0)
    assert notifier.stats == PushStats(delivered=3, failed=1)


# -- big payloads ----------------------------------------------------------------------------------


class Sink:
    """A receiver that reads each request and answers 204, keeping only the sizes and the body's
    first and last bytes (a big body is never held whole)."""

    def __init__(self) -> None:
        self.port = 0
        self.bodies: list[tuple[int, int, bytes, bytes]] = []  # content-length, bytes read, head, tail

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                got, first, last = 0, b"", b""
                while got < length:
                    chunk = await reader.read(min(1 << 20, length - got))
                    if not chunk:
                        return
                    first = first or chunk[:64]
                    last = (last + chunk)[-64:]
                    got += len(chunk)
                self.bodies.append((length, got, first, last))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        finally:
            writer.close()


@pytest.mark.asyncio
async def test_a_big_artifact_is_delivered_without_stalling_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    size = 64 * 1024 * 1024

    def artifact_event(raw: bytes) -> types.StreamResponse:
        event = types.StreamResponse()
        update = event.artifact_update
        update.task_id, update.context_id = "big-task", "ctx"
        update.artifact.artifact_id = "a-1"
        update.artifact.parts.add(raw=raw, media_type="application/octet-stream")
        return event

    event = artifact_event(b"\x07" * size)
    empty = json.dumps(json_format.MessageToDict(artifact_event(b"")), separators=(",", ":")).encode()
    before, _, after = empty.partition(b'"raw":""')
    expected_length = len(empty) + 4 * ((size + 2) // 3)
    encodings = 0

    def counting(e: types.StreamResponse) -> list[bytes]:
        nonlocal encodings
        encodings += 1
        return list(encode_in_steps(e))

    monkeypatch.setattr(push, "encode_in_steps", counting)
    sink = Sink()
    server = await asyncio.start_server(sink.handle, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal worst
        while not done.is_set():
            start = loop.time()
            await asyncio.sleep(0.005)
            worst = max(worst, loop.time() - start - 0.005)

    try:
        async with PushNotifier(policy=LOOPBACK, attempt_deadline=60, timeout=30) as notifier:
            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.05)
            started = time.monotonic()
            for i in range(3):  # three webhooks of one task: one encoding
                notifier.notify(webhook(f"http://127.0.0.1:{sink.port}/{i}", config_id=f"c{i}"), event)
            await until(lambda: notifier.stats.delivered == 3, limit=50)
            took = time.monotonic() - started
            done.set()
            await watcher
    finally:
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
    print(
        f"\n64 MiB artifact to 3 webhooks: delivered in {took:.2f} s, worst loop stall {worst * 1000:.1f} ms"
    )
    # Before: MessageToDict + json.dumps on the loop, once per webhook: about 0.9 s each here, 2.6 s
    # in a row for three. What is left is protobuf copying the 64 MiB value out in one call.
    assert worst < 1.0
    assert encodings == 1
    assert notifier.stats == PushStats(delivered=3)
    assert len(sink.bodies) == 3
    for length, got, head, tail in sink.bodies:
        assert length == got == expected_length
        assert head == (before + b'"raw":"' + base64.b64encode(b"\x07" * 60))[:64]
        assert tail == (base64.b64encode(b"\x07" * (60 + size % 3)) + b'"' + after)[-64:]


@pytest.mark.asyncio
async def test_a_big_body_is_sent_in_chunks_signed_as_a_whole(receiver: Receiver) -> None:
    secret = b"a shared secret of 16 bytes or more"
    event = types.StreamResponse()
    event.artifact_update.task_id = "task-1"
    event.artifact_update.artifact.parts.add(text="long text ✓ " * 200_000)  # 2.4 MB of JSON
    event.artifact_update.artifact.parts.add(raw=bytes(range(256)) * 4_000)
    async with PushNotifier(policy=LOOPBACK, signing_secret=secret) as notifier:
        notifier.notify(webhook(receiver.url()), event)
        await until(lambda: notifier.stats.delivered == 1)
    (seen,) = receiver.requests
    assert int(seen.headers["content-length"]) == len(seen.body)
    assert "transfer-encoding" not in seen.headers
    assert verify_signature(secret, seen.headers[SIGNATURE_HEADER], seen.body)
    assert json_format.Parse(seen.body, types.StreamResponse()) == event


def test_the_encoding_in_steps_equals_protojson() -> None:
    event = types.StreamResponse()
    artifact = event.artifact_update.artifact
    event.artifact_update.task_id = "t"
    artifact.parts.add(raw=bytes(range(256)) * 1000 + b"\x01", filename="f.bin")
    artifact.parts.add(text='é "quoted" \\ \n\x01 😀 ' * 20_000)
    json_format.ParseDict({"k": [1, "x" * 100_000, {"z": None}]}, artifact.parts.add().data)
    artifact.parts.add(raw=b"")
    artifact.metadata.update({"long": "y" * 70_000})
    expected = json.dumps(
        json_format.MessageToDict(event), ensure_ascii=False, separators=(",", ":")
    ).encode()
    chunks = encode_in_steps(event)
    assert b"".join(chunks) == expected
    assert len(chunks) > 3  # the long values came in slices
    assert max(len(c) for c in chunks) < 600_000


# -- configs per task ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_push_configs_per_task_are_limited() -> None:
    limits = Limits(max_push_configs_per_task=3)
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(port=0, limits=limits))
    await server.start()
    try:
        async with A2AClient(server.address, timeout=10) as client:
            task = (await client.send_message(A2AClient.text_request("ask"))).task
            url = "https://hooks.example.com/hook"
            for i in range(3):
                await client.create_task_push_notification_config(
                    types.TaskPushNotificationConfig(task_id=task.id, id=f"c{i}", url=url)
                )
            with pytest.raises(errors.LimitExceededError) as caught:
                await client.create_task_push_notification_config(
                    types.TaskPushNotificationConfig(task_id=task.id, url=url)
                )
            assert caught.value.limit == "max_push_configs_per_task"
            assert "max_push_configs_per_task" in caught.value.message
            # Replacing one by its id takes no more room.
            replaced = await client.create_task_push_notification_config(
                types.TaskPushNotificationConfig(task_id=task.id, id="c1", url=url + "2")
            )
            assert replaced.url == url + "2"
            # The same limit for a config carried by SendMessage to the task.
            request = A2AClient.text_request("answer", task_id=task.id)
            request.configuration.task_push_notification_config.url = url
            with pytest.raises(errors.LimitExceededError) as inline:
                await client.send_message(request)
            assert inline.value.limit == "max_push_configs_per_task"
            listed = await client.list_task_push_notification_configs(task.id)
            assert sorted(c.id for c in listed.configs) == ["c0", "c1", "c2"]  # nothing stored beyond
            # The refused message left no trace: the task goes on with the next one.
            done = (await client.send_message(A2AClient.text_request("the answer", task_id=task.id))).task
            assert done.status.state == types.TASK_STATE_COMPLETED
            assert [m.parts[0].text for m in done.history] == [
                "ask",
                "what should I work on?",
                "the answer",
                "thanks, you said: the answer",
            ]
            echo = await client.send_message(A2AClient.text_request("echo still serving"))
            assert echo.task.status.state == types.TASK_STATE_COMPLETED
    finally:
        await server.stop(grace=1)
