"""PushNotifier against a real local HTTP receiver (Starlette served by uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket

import httpx
import pytest
from google.protobuf import json_format

from a2a_grpc import types
from a2a_grpc.push import TOKEN_HEADER, PushNotifier, PushSettings, PushStats
from a2a_grpc.security.webhooks import WebhookPolicy
from tests.webhook import Receiver, until

LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))
"""The receivers here listen on loopback, which the default policy refuses (spec 13.2, SSRF)."""
FAST = {"initial_backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0, "policy": LOOPBACK}


def webhook(
    url: str, *, config_id: str = "cfg-1", task_id: str = "task-1"
) -> types.TaskPushNotificationConfig:
    config = types.TaskPushNotificationConfig(id=config_id, task_id=task_id, url=url, token="tok-123")
    config.authentication.scheme = "Bearer"
    config.authentication.credentials = "s3cret-credential"
    return config


def status_event(i: int = 0, task_id: str = "task-1") -> types.StreamResponse:
    event = types.StreamResponse()
    update = event.status_update
    update.task_id, update.context_id = task_id, "ctx-1"
    update.status.state = types.TASK_STATE_WORKING
    update.status.timestamp.FromSeconds(1_700_000_000 + i)
    message = update.status.message
    message.message_id, message.role = f"m-{i}", types.ROLE_AGENT
    message.parts.add(text=f"step {i} — é")
    update.metadata.update({"seq": i, "nested": {"ok": True}})
    return event


def test_settings_defaults_and_validation() -> None:
    assert PushSettings() == PushSettings(5, 0.2, 5.0, 10.0, 10_000)
    bad: list[tuple[dict[str, object], str]] = [
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1"),
        ({"max_attempts": True}, "max_attempts must be an integer >= 1"),
        ({"queue_size": 1.5}, "queue_size must be an integer >= 1"),
        ({"initial_backoff": -0.1}, "initial_backoff must be >= 0"),
        ({"max_backoff": float("inf")}, "max_backoff must be a finite number"),
        ({"initial_backoff": 2.0, "max_backoff": 1.0}, r"max_backoff \(1.0\) must be >= initial_backoff"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"keepalive_connections": -1}, "keepalive_connections must be an integer >= 0"),
        ({"close_seconds": -1.0}, "close_seconds must be >= 0"),
        ({"close_seconds": float("nan")}, "close_seconds must be a finite number"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            PushNotifier(**kwargs)  # type: ignore[arg-type]


def test_notify_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        PushNotifier(client=httpx.AsyncClient()).notify(webhook("http://127.0.0.1:9/x"), status_event())


@pytest.mark.asyncio
async def test_payload_and_headers(receiver: Receiver) -> None:
    event = status_event(7)
    async with PushNotifier(**FAST) as notifier:  # type: ignore[arg-type]
        notifier.notify(webhook(receiver.url()), event)
        await until(lambda: notifier.stats.delivered == 1)
    (seen,) = receiver.requests
    assert seen.path == "/hook"
    assert seen.headers["content-type"] == "application/a2a+json"  # spec 4.3.3
    assert seen.headers["authorization"] == "Bearer s3cret-credential"
    assert seen.headers[TOKEN_HEADER] == "tok-123"
    assert json.loads(seen.body) == json_format.MessageToDict(event)
    assert json.loads(seen.body)["statusUpdate"]["taskId"] == "task-1"  # camelCase ProtoJSON
    assert json_format.Parse(seen.body, types.StreamResponse()) == event
    assert notifier.stats == PushStats(delivered=1)


@pytest.mark.asyncio
async def test_no_auth_or_token_headers_when_unset(receiver: Receiver) -> None:
    config = types.TaskPushNotificationConfig(id="c", task_id="task-1", url=receiver.url())
    async with PushNotifier(**FAST) as notifier:  # type: ignore[arg-type]
        notifier.notify(config, status_event())
    (seen,) = receiver.requests
    assert "authorization" not in seen.headers
    assert TOKEN_HEADER not in seen.headers


@pytest.mark.interop
@pytest.mark.asyncio
async def test_same_request_as_the_official_sdk(receiver: Receiver) -> None:
    from a2a.server.tasks.base_push_notification_sender import BasePushNotificationSender

    from a2a_grpc import interop

    event = status_event(3)
    sdk_config = interop.to_sdk(webhook(receiver.url("sdk")))

    class Store:
        async def get_info_for_dispatch(self, task_id: str) -> list[object]:
            return [sdk_config]

    async with httpx.AsyncClient() as client:
        sender = BasePushNotificationSender(client, Store())  # type: ignore[arg-type]
        sdk_event = interop.to_sdk(event.status_update)
        await asyncio.wait_for(sender.send_notification("task-1", sdk_event), 5)  # type: ignore[arg-type]
    async with PushNotifier(**FAST) as notifier:  # type: ignore[arg-type]
        notifier.notify(webhook(receiver.url("ours")), event)
    (theirs,), (ours,) = receiver.paths("sdk"), receiver.paths("ours")
    assert json.loads(ours.body) == json.loads(theirs.body)
    for name in ("authorization", TOKEN_HEADER):
        assert ours.headers[name] == theirs.headers[name]
    # The media type is the specification's (4.3.3); the SDK (1.3) still sends plain JSON.
    assert (ours.headers["content-type"], theirs.headers["content-type"]) == (
        "application/a2a+json",
        "application/json",
    )


@pytest.mark.asyncio
async def test_order_preserved_per_webhook(receiver: Receiver) -> None:
    async with PushNotifier(**FAST) as notifier:  # type: ignore[arg-type]
        for i in range(50):
            notifier.notify(webhook(receiver.url("a"), config_id="a"), status_event(i))
            notifier.notify(webhook(receiver.url("b"), config_id="b"), status_event(100 + i))
    for path, base in (("a", 0), ("b", 100)):
        seqs = [json.loads(r.body)["statusUpdate"]["metadata"]["seq"] for r in receiver.paths(path)]
        assert seqs == [base + i for i in range(50)]
    assert notifier.stats == PushStats(delivered=100)


@pytest.mark.asyncio
async def test_retries_5xx_then_succeeds(receiver: Receiver) -> None:
    receiver.script = [(503, {}), (503, {}), (500, {})]
    async with PushNotifier(max_attempts=5, **FAST) as notifier:  # type: ignore[arg-type]
        notifier.notify(webhook(receiver.url()), status_event())
        notifier.notify(webhook(receiver.url()), status_event(1))
    assert len(receiver.requests) == 5  # 3 failures + 1 success for the first, 1 for the second
    bodies = [json.loads(r.body)["statusUpdate"]["metadata"]["seq"] for r in receiver.requests]
    assert bodies == [0, 0, 0, 0, 1]  # the second waits for the first: order survives retries
    assert notifier.stats == PushStats(delivered=2, retried=3)


@pytest.mark.asyncio
async def test_429_honours_retry_after_capped_by_max_backoff(receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "30"})]
    settings = {"initial_backoff": 0.001, "max_backoff": 0.3, "timeout": 2.0, "policy": LOOPBACK}
    async with PushNotifier(**settings) as notifier:  # type: ignore[arg-type]
        notifier.notify(webhook(receiver.url()), status_event())
        await until(lambda: notifier.stats.delivered == 1)
    first, second = receiver.requests
    assert 0.25 <= second.at - first.at < 2.0  # waited Retry-After, cut to max_backoff, not 1 ms
    assert notifier.stats == PushStats(delivered=1, retried=1)


@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "headers"), [(400, {}), (404, {}), (307, {"Location": "/elsewhere"})])
async def test_4xx_and_redirects_fail_at_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, status: int, headers: dict[str, str]
) -> None:
    receiver.script = [(status, headers)]
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.push"):
        async with PushNotifier(max_attempts=5, **FAST) as notifier:  # type: ignore[arg-type]
            notifier.notify(webhook(receiver.url()), status_event())
    assert [r.path for r in receiver.requests] == ["/hook"]  # not retried, redirect not followed
    assert notifier.stats == PushStats(failed=1)
    assert f"last=HTTP {status}" in caplog.text


@pytest.mark.asyncio
async def test_unreachable_fails_after_max_attempts(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook-pa55word?sig=secret-query"
    with caplog.at_level(logging.ERROR, logger="a2a_grpc.push"):
        async with PushNotifier(max_attempts=3, **FAST) as notifier:  # type: ignore[arg-type]
            notifier.notify(webhook(url, config_id="cfg-x", task_id="task-x"), status_event(task_id="task-x"))
            await until(lambda: notifier.stats.failed == 1)
    assert notifier.stats == PushStats(retried=2, failed=1)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert "after 3 attempt(s)" in message
    assert "task=task-x" in message
    assert "config=cfg-x" in message
    assert f"url=http://127.0.0.1:{port}/… " in message  # path and query may hold secrets
    assert "last=ConnectError" in message
    assert "pa55word" not in caplog.text
    assert "secret" not in caplog.text
    assert "s3cret" not in caplog.text


@pytest.mark.asyncio
async def test_full_queue_counts_and_logs_drops(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="a2a_grpc.push"):
        async with PushNotifier(queue_size=2, **FAST) as notifier:  # type: ignore[arg-type]
            for i in range(5):  # no await in between: the workers cannot drain yet
                notifier.notify(webhook(receiver.url(), config_id="cfg-q"), status_event(i))
            assert notifier.stats.dropped == 3
    assert len(receiver.requests) == 2
    assert notifier.stats == PushStats(delivered=2, dropped=3)
    drops = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert drops
    assert "queue full" in drops[0]
    assert "task=task-1 config=cfg-q" in drops[0]


@pytest.mark.asyncio
async def test_aclose_drains_pending(receiver: Receiver) -> None:
    notifier = PushNotifier(**FAST)  # type: ignore[arg-type]
    for i in range(20):
        notifier.notify(webhook(receiver.url(), config_id=f"c{i % 3}"), status_event(i))
    await asyncio.wait_for(notifier.aclose(timeout=5), 6)
    assert len(receiver.requests) == 20
    assert notifier.stats == PushStats(delivered=20)
    notifier.notify(webhook(receiver.url()), status_event())  # after close: dropped, not raised
    assert notifier.stats.dropped == 1


@pytest.mark.asyncio
async def test_aclose_cancels_after_timeout(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.gate.clear()  # the receiver holds every request
    async with httpx.AsyncClient() as client:
        notifier = PushNotifier(client=client, **FAST)  # type: ignore[arg-type]
        for i in range(3):
            notifier.notify(webhook(receiver.url()), status_event(i))
        await until(lambda: len(receiver.requests) == 1)
        with caplog.at_level(logging.ERROR, logger="a2a_grpc.push"):
            await asyncio.wait_for(notifier.aclose(timeout=0.1), 5)
        assert not client.is_closed  # a caller's client is left open
    assert notifier.stats == PushStats(failed=3)
    assert "closed with 3 undelivered update(s): task=task-1 config=cfg-1" in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize(("keepalive", "connections"), [(0, 3), (100, 1)])
async def test_keepalive_connections_decides_whether_deliveries_share_a_connection(
    receiver: Receiver, keepalive: int, connections: int
) -> None:
    async with PushNotifier(keepalive_connections=keepalive, **FAST) as notifier:  # type: ignore[arg-type]
        for i in range(3):  # one webhook: delivered one after another
            notifier.notify(webhook(receiver.url()), status_event(i))
        await until(lambda: notifier.stats.delivered == 3)
    assert len({seen.port for seen in receiver.requests}) == connections


@pytest.mark.asyncio
async def test_close_seconds_is_how_long_a_stop_waits_for_deliveries(receiver: Receiver) -> None:
    receiver.gate.clear()  # the receiver holds every request
    notifier = PushNotifier(close_seconds=0.1, **FAST)  # type: ignore[arg-type]
    notifier.notify(webhook(receiver.url()), status_event())
    await until(lambda: len(receiver.requests) == 1)
    # Bounded below the default close_seconds (5 s): only the setting can have ended the wait in time.
    await asyncio.wait_for(notifier.aclose(), 3.0)
    assert notifier.stats == PushStats(failed=1)
