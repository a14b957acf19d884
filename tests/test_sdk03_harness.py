"""The a2a-sdk 0.3 harness checks itself: the official 0.3 client (tests/sdk03/client.py) drives the
official 0.3 server (tests/sdk03/server.py) on JSON-RPC, HTTP+JSON and gRPC through every scenario,
and the normalized answers are checked. The v0.3 interop tests reuse the same scenarios with our
server or our client on one side, so what is asserted here is also what the 0.3 SDK itself does
(its quirks included, each named where it is asserted).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
from pathlib import Path
from typing import Any

import pytest

from tests.sdk03 import bootstrap, plugin
from tests.sdk03.plugin import (
    TRANSPORTS,
    Sdk03Server,
    one,
    run_sdk03_client,
    run_sdk03_client_sync,
    steps,
)
from tests.webhook import Receiver, until

pytestmark = [pytest.mark.interop, pytest.mark.slow]


async def run(python: Path, server: Sdk03Server, transport: str, *scenario: str) -> list[dict[str, Any]]:
    return await run_sdk03_client(python, transport, server.target(transport), *scenario)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_send_blocking_answers_each_skill(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    echo, fail, ask, reply = await asyncio.gather(
        *(
            run(sdk03_python, sdk03_server, transport, "send", text)
            for text in ("echo hello there", "fail oops", "input", "reply hi")
        )
    )
    task = one(echo, "result")
    assert task["kind"] == "task"
    assert task["state"] == "completed"
    assert [(a["name"], a["texts"]) for a in task["artifacts"]] == [("echo", ["echo hello there"])]
    assert task["id"]
    assert task["contextId"]

    failed = one(fail, "result")
    assert (failed["state"], failed["statusText"], failed["artifacts"]) == ("failed", "oops", [])

    asked = one(ask, "result")
    assert (asked["state"], asked["statusText"]) == ("input-required", "what should I work on?")

    message = one(reply, "result")
    assert (message["kind"], message["role"], message["texts"]) == ("message", "agent", ["hi"])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_stream_yields_every_event_in_order(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "stream", "stream 3")
    events = steps(lines, "event")
    assert [e["kind"] for e in events] == ["task"] + ["status-update"] + ["artifact-update"] * 3 + [
        "status-update"
    ]
    task_id = events[0]["id"]
    assert events[0]["state"] == "submitted"
    assert all(e["taskId"] == task_id for e in events[1:])
    assert (events[1]["state"], events[1]["final"]) == ("working", False)
    chunks = events[2:5]
    assert [c["texts"] for c in chunks] == [["chunk 0"], ["chunk 1"], ["chunk 2"]]
    assert [(c["append"], c["lastChunk"]) for c in chunks] == [(False, False), (True, False), (True, True)]
    assert {c["artifactId"] for c in chunks} == {"stream"}
    assert (events[-1]["state"], events[-1]["final"]) == ("completed", True)

    result = one(lines, "result")  # the client's task, with the appended chunks aggregated
    assert (result["id"], result["state"]) == (task_id, "completed")
    assert result["artifacts"] == [
        {"artifactId": "stream", "name": "stream", "texts": ["chunk 0", "chunk 1", "chunk 2"]}
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_get_returns_the_task_sent(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "get", "echo keep me")
    sent, got = one(lines, "sent"), one(lines, "result")
    assert (got["id"], got["contextId"], got["state"]) == (sent["id"], sent["contextId"], "completed")
    assert got["artifacts"] == sent["artifacts"]
    assert [a["texts"] for a in got["artifacts"]] == [["echo keep me"]]
    assert got["history"] >= 1  # the user's message at least


@pytest.mark.asyncio
async def test_a_task_is_visible_on_every_binding(sdk03_python: Path, sdk03_server: Sdk03Server) -> None:
    sent = one(await run(sdk03_python, sdk03_server, "jsonrpc", "send", "echo across"), "result")
    for transport in ("rest", "grpc"):
        got = one(await run(sdk03_python, sdk03_server, transport, "get-task", sent["id"]), "result")
        assert (got["id"], got["state"], got["artifacts"]) == (sent["id"], "completed", sent["artifacts"])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_cancel_stops_a_slow_task(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "cancel", "60")
    sent, canceled, got = one(lines, "sent"), one(lines, "cancel"), one(lines, "result")
    assert sent["state"] in {"submitted", "working"}  # a non-blocking send answers at once
    assert (canceled["id"], canceled["state"]) == (sent["id"], "canceled")
    assert canceled["statusText"] == "canceled on request"
    assert (got["id"], got["state"]) == (sent["id"], "canceled")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_resubscribe_follows_a_slow_task(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "resubscribe", "2")
    sent = one(lines, "sent")
    events = steps(lines, "event")
    assert events, lines
    assert all(e["kind"] == "status-update" and e["taskId"] == sent["id"] for e in events)
    working = [e for e in events if e["state"] == "working"]
    assert working
    assert all(e["final"] is False and e["text"].endswith("s left") for e in working)
    # The 0.3 server may close a resubscription before its last event (a race in its queue tap:
    # "Queue is closed. Event will not be dequeued."): the completion is either streamed last...
    if events[-1]["state"] != "working":
        assert (events[-1]["state"], events[-1]["final"], events[-1]["text"]) == ("completed", True, "done")
        assert events[:-1] == working
    # ...and the task completes either way.
    got = one(lines, "result")
    assert (got["id"], got["state"], got["statusText"]) == (sent["id"], "completed", "done")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_push_config_crud(sdk03_python: Path, sdk03_server: Sdk03Server, transport: str) -> None:
    hook = "http://127.0.0.1:9/hook"
    lines = await run(sdk03_python, sdk03_server, transport, "push-config", hook)
    task_id = one(lines, "sent")["id"]
    assert one(lines, "sent")["state"] == "input-required"  # a live task, to hang configs on
    made = steps(lines, "set")
    assert made == [
        {
            "scenario": "push-config",
            "step": "set",
            "taskId": task_id,
            "id": cid,
            "url": hook,
            "token": f"token-{cid}",
        }
        for cid in ("cfg-1", "cfg-2")
    ]
    # The 0.3 server answers a get with the task's FIRST config, whatever id was asked (cfg-2).
    got = one(lines, "get")
    assert (got["taskId"], got["id"], got["token"]) == (task_id, "cfg-1", "token-cfg-1")

    listed, deleted, after = one(lines, "list"), one(lines, "delete"), one(lines, "list-after")
    if transport == "jsonrpc":
        assert [c["id"] for c in listed["configs"]] == ["cfg-1", "cfg-2"]
        assert {c["taskId"] for c in listed["configs"]} == {task_id}
        assert deleted["deleted"] is True
        assert [c["id"] for c in after["configs"]] == ["cfg-2"]
    elif transport == "rest":
        # The 0.3 REST server: list raises NotImplemented (500), and it has no DELETE route.
        assert listed["error"]["httpStatus"] == 500
        assert deleted["error"]["httpStatus"] == 405
    else:
        # The 0.3 gRPC server implements neither List nor Delete.
        assert listed["error"]["grpcStatus"] == "UNIMPLEMENTED"
        assert deleted["error"]["grpcStatus"] == "UNIMPLEMENTED"
        assert after["error"]["grpcStatus"] == "UNIMPLEMENTED"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_push_notifications_reach_a_webhook(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str, receiver: Receiver
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "push", receiver.url("hook"), "echo pushed")
    task = one(lines, "result")
    assert task["state"] == "completed"

    def bodies() -> list[dict[str, Any]]:
        return [json.loads(seen.body) for seen in receiver.paths("hook")]

    # The 0.3 server posts the whole Task (v0.3 JSON), the token in X-A2A-Notification-Token.
    await until(lambda: any(b.get("status", {}).get("state") == "completed" for b in bodies()), 15.0)
    assert {seen.headers.get("x-a2a-notification-token") for seen in receiver.paths("hook")} == {"push-token"}
    assert {(b["kind"], b["id"]) for b in bodies()} == {("task", task["id"])}
    done = next(b for b in bodies() if b["status"]["state"] == "completed")
    assert done["artifacts"][0]["parts"] == [{"kind": "text", "text": "echo pushed"}]


EXPECTED_ERRORS = {
    # probe: (JSON-RPC code, REST status, gRPC status, gRPC details' error name)
    "get-unknown": (-32001, 404, "NOT_FOUND", "TaskNotFoundError"),
    "cancel-unknown": (-32001, 404, "NOT_FOUND", "TaskNotFoundError"),
    # The 0.3 SDK maps TaskNotCancelable to 409 on REST and to UNIMPLEMENTED on gRPC.
    "cancel-completed": (-32002, 409, "UNIMPLEMENTED", "TaskNotCancelableError"),
    # The 0.3 REST server breaks the SSE body off; its client reports that as 503.
    "resubscribe-unknown": (-32001, 503, "NOT_FOUND", "TaskNotFoundError"),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_errors_carry_the_binding_code(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    lines = await run(sdk03_python, sdk03_server, transport, "errors")
    assert [line["step"] for line in lines] == list(EXPECTED_ERRORS)
    for probe, (code, status, grpc_status, name) in EXPECTED_ERRORS.items():
        error = one(lines, probe)["error"]
        if transport == "jsonrpc":
            assert (error["class"], error["code"]) == ("A2AClientJSONRPCError", code), probe
        elif transport == "rest":
            assert (error["class"], error["httpStatus"]) == ("A2AClientHTTPError", status), probe
        else:
            assert (error["class"], error["grpcStatus"], error["name"]) == ("AioRpcError", grpc_status, name)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.asyncio
async def test_the_card_leads_the_client_to_each_binding(
    sdk03_python: Path, sdk03_server: Sdk03Server, transport: str
) -> None:
    card = one(
        await run_sdk03_client(sdk03_python, transport, sdk03_server.card, "card", card=True), "result"
    )
    assert (card["protocolVersion"], card["preferredTransport"], card["url"]) == (
        "0.3.0",
        "JSONRPC",
        sdk03_server.jsonrpc,
    )
    assert card["interfaces"] == [
        {"transport": "JSONRPC", "url": sdk03_server.jsonrpc},
        {"transport": "HTTP+JSON", "url": sdk03_server.rest},
        {"transport": "GRPC", "url": sdk03_server.grpc},
    ]
    assert (card["streaming"], card["pushNotifications"]) == (True, True)
    sent = await run_sdk03_client(
        sdk03_python, transport, sdk03_server.card, "send", "echo via card", card=True
    )
    assert one(sent, "result")["artifacts"][0]["texts"] == ["echo via card"]


def test_the_sync_runner_and_an_unreachable_peer(sdk03_python: Path, sdk03_server: Sdk03Server) -> None:
    lines = run_sdk03_client_sync(sdk03_python, "grpc", sdk03_server.grpc, "send", "echo sync")
    assert one(lines, "result")["state"] == "completed"
    # Nothing listens on port 9: the client ends with a crash line, which check=False returns...
    dead = run_sdk03_client_sync(
        sdk03_python, "jsonrpc", "http://127.0.0.1:9/", "send", "echo x", timeout=20, check=False
    )
    crash = one(dead, "crash")["error"]
    assert crash["class"] == "A2AClientHTTPError"
    assert crash["httpStatus"] == 503
    # ...and check=True turns into a failed test that shows it.
    with pytest.raises(pytest.fail.Exception, match="exited 2"):
        run_sdk03_client_sync(sdk03_python, "jsonrpc", "http://127.0.0.1:9/", "send", "echo x", timeout=20)


def test_a_build_waits_for_the_lock_and_gives_up_at_its_limit(sdk03_python: Path) -> None:
    # Another process building: the lock is held, so ensure_venv waits, then names the lock.
    with bootstrap.LOCK.open("a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        try:
            with pytest.raises(bootstrap.Sdk03VenvError, match=r"sdk03-venv\.lock"):
                bootstrap.ensure_venv(timeout=0.5)
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    # Released: the stamp matches, nothing is rebuilt, the same interpreter comes back.
    assert bootstrap.is_ready()
    assert bootstrap.ensure_venv(timeout=10) == sdk03_python


def test_a_failed_build_fails_the_test_never_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = bootstrap.Sdk03VenvError("installing a2a-sdk 0.3.26 from requirements.txt (needs PyPI) failed")
    monkeypatch.setattr(plugin, "_built", broken)
    with pytest.raises(pytest.fail.Exception, match=r"could not be built: installing a2a-sdk 0\.3\.26"):
        plugin.sdk03_interpreter()
