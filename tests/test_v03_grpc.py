"""Our gRPC server serves A2A v0.3 (``a2a.v1.A2AService``) beside v1.0 on the same port.

The official a2a-sdk 0.3.26 client (tests/sdk03, a subprocess in its own virtualenv) drives our
server, started in this process with the reference agent, through the harness scenarios; a v1.0
client works against the same server at the same time and sees the same tasks; hostile calls on
the v0.3 service get a precise error in the v0.3 form and the server keeps serving; and the
``serve_v03`` setting removes the service and the card entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.push import PushNotifier
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.security.authentication import Authentication
from a2a_grpc.security.schemes import ApiKey, ApiKeyScheme
from a2a_grpc.security.webhooks import WebhookPolicy
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import METHODS
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.errors import from_grpc_error_v03
from tests.sdk03.plugin import one, run_sdk03_client, steps
from tests.webhook import Receiver, until

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SERVICE = "/a2a.v1.A2AService"
LOOPBACK = WebhookPolicy(allow=("127.0.0.0/8",))
"""The webhooks here listen on loopback, which the default policy refuses (SSRF)."""
ALICE, BOB = "alice-key-0123456789", "bob-key-0123456789ab"


@contextlib.asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[A2AServer]:
    notifier = PushNotifier(policy=LOOPBACK, timeout=5.0)
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(**settings), notifier=notifier)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)
        await notifier.aclose(timeout=2.0)


async def raw(
    address: str,
    rpc: str,
    request: Message | bytes,
    answer: type[Message],
    metadata: tuple[tuple[str, str], ...] = (),
    *,
    stream: bool = False,
) -> Any:
    """One call on the v0.3 service with our own v0.3 classes (or raw bytes); a stream's events as a list."""
    data = request if isinstance(request, bytes) else request.SerializeToString()
    async with grpc.aio.insecure_channel(address) as channel:
        if stream:
            call = channel.unary_stream(f"{SERVICE}/{rpc}", response_deserializer=answer.FromString)
            return [event async for event in call(data, metadata=metadata, timeout=20)]
        unary = channel.unary_unary(f"{SERVICE}/{rpc}", response_deserializer=answer.FromString)
        return await unary(data, metadata=metadata, timeout=20)


async def refused(coro: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await coro
    return caught.value


def v03_send(text: str) -> v03.SendMessageRequest:
    request = v03.SendMessageRequest()
    request.request.message_id = f"m-{text}"
    request.request.role = v03.ROLE_USER
    request.request.content.add(text=text)
    request.configuration.blocking = True
    return request


# --- the official 0.3 client drives our server ----------------------------------------------------


@pytest.mark.asyncio
async def test_the_sdk03_client_drives_our_server_over_grpc(sdk03_python: Path, receiver: Receiver) -> None:
    async with serving() as server:
        target = server.address

        async def run(*scenario: str) -> list[dict[str, Any]]:
            return await run_sdk03_client(sdk03_python, "grpc", target, *scenario)

        send, reply, stream, get, cancel, resub, crud, push, errs = await asyncio.gather(
            run("send", "echo hello"),
            run("send", "reply hi"),
            run("stream", "stream 3"),
            run("get", "echo get me"),
            run("cancel", "30"),
            run("resubscribe", "2"),
            run("push-config", receiver.url("crud")),
            run("push", receiver.url("hook"), "echo pushed"),
            run("errors"),
        )

    task = one(send, "result")
    assert (task["kind"], task["state"]) == ("task", "completed")
    assert [(a["name"], a["texts"]) for a in task["artifacts"]] == [("echo", ["echo hello"])]
    assert task["id"]
    assert task["contextId"]
    assert task["history"] >= 1
    message = one(reply, "result")
    assert (message["kind"], message["role"], message["texts"]) == ("message", "agent", ["hi"])

    events = steps(stream, "event")
    task_id = events[0]["id"]
    assert events[0]["kind"] == "task"
    chunks = [e for e in events if e["kind"] == "artifact-update"]
    assert [c["texts"] for c in chunks] == [["chunk 0"], ["chunk 1"], ["chunk 2"]]
    assert [(c["append"], c["lastChunk"]) for c in chunks] == [(False, False), (True, False), (True, True)]
    updates = [e for e in events if e["kind"] == "status-update"]
    assert all(u["taskId"] == task_id for u in updates)
    assert [(u["state"], u["final"]) for u in updates][-1] == ("completed", True)
    assert all(not u["final"] for u in updates[:-1])
    streamed = one(stream, "result")
    assert (streamed["id"], streamed["state"]) == (task_id, "completed")
    assert streamed["artifacts"] == [
        {"artifactId": chunks[0]["artifactId"], "name": "stream", "texts": ["chunk 0", "chunk 1", "chunk 2"]}
    ]

    sent, got = one(get, "sent"), one(get, "result")
    assert (got["id"], got["contextId"], got["state"]) == (sent["id"], sent["contextId"], "completed")
    assert got["artifacts"] == sent["artifacts"]

    # No configuration's "blocking" from a polling client: the send answers before the task ends.
    sent, canceled, after = one(cancel, "sent"), one(cancel, "cancel"), one(cancel, "result")
    assert sent["state"] in {"submitted", "working"}
    assert (canceled["id"], canceled["state"]) == (sent["id"], "canceled")
    assert (after["id"], after["state"]) == (sent["id"], "canceled")

    sent = one(resub, "sent")
    followed = [e for e in steps(resub, "event") if e["kind"] == "status-update"]
    assert all(e["taskId"] == sent["id"] for e in followed)
    assert any(e["state"] == "working" and e["text"].endswith("s left") for e in followed)
    assert (followed[-1]["state"], followed[-1]["final"], followed[-1]["text"]) == ("completed", True, "done")
    assert (one(resub, "result")["state"], one(resub, "result")["statusText"]) == ("completed", "done")

    # Push config CRUD: set and get through the SDK client, list and delete through the raw stub
    # (the 0.3 SDK's own gRPC server implements neither; ours does). A get answers the id asked for.
    crud_task = one(crud, "sent")["id"]
    hook = receiver.url("crud")
    assert [(s["taskId"], s["id"], s["url"], s["token"]) for s in steps(crud, "set")] == [
        (crud_task, cid, hook, f"token-{cid}") for cid in ("cfg-1", "cfg-2")
    ]
    got = one(crud, "get")
    assert (got["taskId"], got["id"], got["token"]) == (crud_task, "cfg-2", "token-cfg-2")
    assert [c["id"] for c in one(crud, "list")["configs"]] == ["cfg-1", "cfg-2"]
    assert one(crud, "delete") == {"scenario": "push-config", "step": "delete", "deleted": True}
    assert [c["id"] for c in one(crud, "list-after")["configs"]] == ["cfg-2"]

    # Push: our notifier posts v1.0 StreamResponse bodies (a documented loss), with the token.
    pushed = one(push, "result")
    assert pushed["state"] == "completed"

    def bodies() -> list[dict[str, Any]]:
        return [json.loads(seen.body) for seen in receiver.paths("hook")]

    def done(body: dict[str, Any]) -> bool:
        state = (body.get("task") or body.get("statusUpdate") or {}).get("status", {}).get("state")
        return bool(state == "TASK_STATE_COMPLETED")

    await until(lambda: any(done(b) for b in bodies()), 15.0)
    assert {seen.headers.get("x-a2a-notification-token") for seen in receiver.paths("hook")} == {"push-token"}
    # One StreamResponse per update, each about the task pushed.
    kinds = {"task", "statusUpdate", "artifactUpdate"}
    assert all(len(b) == 1 and set(b) <= kinds for b in bodies()), bodies()
    ids = {b["task"]["id"] if "task" in b else next(iter(b.values()))["taskId"] for b in bodies()}
    assert ids == {pushed["id"]}

    expected = {
        "get-unknown": ("NOT_FOUND", "TaskNotFoundError"),
        "cancel-unknown": ("NOT_FOUND", "TaskNotFoundError"),
        # The v1.0 code (as SDK 1.x's v0.3 service); the 0.3 SDK's own server says UNIMPLEMENTED.
        "cancel-completed": ("FAILED_PRECONDITION", "TaskNotCancelableError"),
        "resubscribe-unknown": ("NOT_FOUND", "TaskNotFoundError"),
    }
    assert [line["step"] for line in errs] == list(expected)
    for probe, (code, name) in expected.items():
        error = one(errs, probe)["error"]
        assert (error["class"], error["grpcStatus"], error["name"]) == ("AioRpcError", code, name), probe


# --- v1.0 and v0.3 side by side ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_v10_and_a_v03_client_share_the_server_and_its_tasks(sdk03_python: Path) -> None:
    async with serving() as server, A2AClient(server.address, timeout=20) as client:
        v03_lines, v10_answer = await asyncio.gather(
            run_sdk03_client(sdk03_python, "grpc", server.address, "send", "echo from v0.3"),
            client.send_message(A2AClient.text_request("echo from v1.0")),
        )
        from_v03, from_v10 = one(v03_lines, "result"), v10_answer.task
        assert from_v03["state"] == "completed"
        assert from_v10.status.state == types.TASK_STATE_COMPLETED

        seen_by_v10 = await client.get_task(from_v03["id"])
        assert (seen_by_v10.id, seen_by_v10.context_id) == (from_v03["id"], from_v03["contextId"])
        assert [p.text for p in seen_by_v10.artifacts[0].parts] == ["echo from v0.3"]

        lines = await run_sdk03_client(sdk03_python, "grpc", server.address, "get-task", from_v10.id)
        seen_by_v03 = one(lines, "result")
        assert (seen_by_v03["id"], seen_by_v03["contextId"], seen_by_v03["state"]) == (
            from_v10.id,
            from_v10.context_id,
            "completed",
        )
        assert [a["texts"] for a in seen_by_v03["artifacts"]] == [["echo from v1.0"]]

        # The card offers both at the same address, 1.0 first (which v1.0 clients pick).
        grpcs = [
            (i.url, i.protocol_version)
            for i in server.card().supported_interfaces
            if i.protocol_binding == "GRPC"
        ]
        assert grpcs == [(server.address, "1.0"), (server.address, "0.3")]
        assert A2AClient.from_card(server.card()).target == server.address


@pytest.mark.asyncio
async def test_get_agent_card_answers_the_v03_card_and_the_extended_one_to_the_authenticated() -> None:
    async with serving() as server:
        card = await raw(server.address, "GetAgentCard", v03.GetAgentCardRequest(), v03.AgentCard)
        assert (card.name, card.protocol_version) == ("a2a-grpc reference agent", "0.3")
        assert (card.url, card.preferred_transport) == (server.address, "GRPC")
        assert card.supports_authenticated_extended_card
        assert "extended" not in card.description  # no authentication: nobody is authenticated

    auth = Authentication([ApiKeyScheme([ApiKey("alice", key=ALICE)])])
    async with serving(authentication=auth) as server:
        public = await raw(server.address, "GetAgentCard", v03.GetAgentCardRequest(), v03.AgentCard)
        assert "extended" not in public.description
        assert list(public.security_schemes) == ["apiKey"]  # the scheme the server declares
        key = (("x-api-key", ALICE),)
        extended = await raw(server.address, "GetAgentCard", v03.GetAgentCardRequest(), v03.AgentCard, key)
        assert extended.description.endswith("(extended card: shown to authenticated callers)")
        assert extended.url == server.address


@pytest.mark.asyncio
async def test_a_send_without_configuration_does_not_block_as_on_the_sdks_v03_grpc_wire() -> None:
    async with serving() as server:
        request = v03_send("slow 30")
        request.ClearField("configuration")
        answer = await raw(server.address, "SendMessage", request, v03.SendMessageResponse)
        assert answer.task.status.state in {v03.TASK_STATE_SUBMITTED, v03.TASK_STATE_WORKING}
        name = v03.CancelTaskRequest(name=f"tasks/{answer.task.id}")
        assert (
            await raw(server.address, "CancelTask", name, v03.Task)
        ).status.state == v03.TASK_STATE_CANCELLED
        # With configuration.blocking the same send waits for the end.
        blocking = await raw(server.address, "SendMessage", v03_send("slow 0.3"), v03.SendMessageResponse)
        assert blocking.task.status.state == v03.TASK_STATE_COMPLETED


# --- hostile callers ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_hostile_calls_on_the_v03_service_get_precise_v03_errors_and_the_server_keeps_serving() -> None:
    async with serving() as server:
        address = server.address
        # Bytes that are no SendMessageRequest.
        garbage = await refused(
            raw(address, "SendMessage", b"\xff\xff\xff\x07garbage", v03.SendMessageResponse)
        )
        assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert garbage.details().startswith(
            "InvalidRequestError: the request is not a valid a2a.v1.SendMessageRequest"
        )
        assert isinstance(from_grpc_error_v03(garbage), errors.InvalidRequestError)
        # The same on a stream.
        cut = await refused(raw(address, "TaskSubscription", b"\x0a\xff", v03.StreamResponse, stream=True))
        assert cut.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert cut.details().startswith("InvalidRequestError: ")
        # Resource names that do not parse.
        for rpc, request, answer in [
            ("GetTask", v03.GetTaskRequest(name="task/abc"), v03.Task),
            ("CancelTask", v03.CancelTaskRequest(name="tasks/a/b"), v03.Task),
            (
                "GetTaskPushNotificationConfig",
                v03.GetTaskPushNotificationConfigRequest(name="tasks/x"),
                v03.TaskPushNotificationConfig,
            ),
            (
                "ListTaskPushNotificationConfig",
                v03.ListTaskPushNotificationConfigRequest(parent=""),
                v03.ListTaskPushNotificationConfigResponse,
            ),
        ]:
            bad = await refused(raw(address, rpc, request, answer))
            assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT, rpc
            assert bad.details().startswith("InvalidParamsError: "), rpc
            decoded = from_grpc_error_v03(bad)
            assert isinstance(decoded, errors.InvalidParamsError)
            assert decoded.field_violations, rpc
        # A v1.0 client on the v0.3 service is refused, in the v0.3 form; 0.3 and 0.x are served.
        for version in ("1.0", "1", "2.1", "banana"):
            wrong = await refused(
                raw(
                    address,
                    "SendMessage",
                    v03_send("echo v"),
                    v03.SendMessageResponse,
                    (("a2a-version", version),),
                )
            )
            assert wrong.code() == grpc.StatusCode.FAILED_PRECONDITION, version
            assert wrong.details().startswith("VersionNotSupportedError: "), version
            assert isinstance(from_grpc_error_v03(wrong), errors.VersionNotSupportedError)
        wrong = await refused(
            raw(
                address,
                "TaskSubscription",
                v03.TaskSubscriptionRequest(name="tasks/x"),
                v03.StreamResponse,
                (("a2a-version", "1.0"),),
                stream=True,
            )
        )
        assert wrong.details().startswith("VersionNotSupportedError: ")
        for version in ("0.3", "0.3.0", "0.2.5", ""):
            answer = await raw(
                address,
                "SendMessage",
                v03_send(f"echo {version}"),
                v03.SendMessageResponse,
                (("a2a-version", version),),
            )
            assert answer.task.status.state == v03.TASK_STATE_COMPLETED, version
        # A message v0.3 cannot carry into v1.0 (no role) is refused naming the field.
        roleless = v03_send("echo")
        roleless.request.role = v03.ROLE_UNSPECIFIED
        no_role = await refused(raw(address, "SendMessage", roleless, v03.SendMessageResponse))
        assert no_role.details().startswith("InvalidParamsError: ")
        # Still serving, both versions.
        served = await raw(address, "SendMessage", v03_send("echo still here"), v03.SendMessageResponse)
        assert served.task.status.state == v03.TASK_STATE_COMPLETED
        async with A2AClient(address, timeout=20) as client:
            assert (await client.get_task(served.task.id)).status.state == types.TASK_STATE_COMPLETED


@pytest.mark.asyncio
async def test_another_principals_task_is_not_found_over_v03_as_over_v10() -> None:
    auth = Authentication([ApiKeyScheme([ApiKey("alice", key=ALICE), ApiKey("bob", key=BOB)])])
    async with serving(authentication=auth) as server:
        address = server.address
        alice, bob = (("x-api-key", ALICE),), (("x-api-key", BOB),)
        nobody = await refused(raw(address, "SendMessage", v03_send("echo anon"), v03.SendMessageResponse))
        assert nobody.code() == grpc.StatusCode.UNAUTHENTICATED
        assert nobody.details().startswith("UnauthenticatedError: ")

        slow = v03_send("slow 30")
        slow.configuration.blocking = False
        mine = (await raw(address, "SendMessage", slow, v03.SendMessageResponse, alice)).task
        name = f"tasks/{mine.id}"
        config = v03.CreateTaskPushNotificationConfigRequest(parent=name, config_id="c1")
        config.config.push_notification_config.url = "https://hooks.example.com/h"
        probes: list[tuple[str, Message, type[Message], bool]] = [
            ("GetTask", v03.GetTaskRequest(name=name), v03.Task, False),
            ("CancelTask", v03.CancelTaskRequest(name=name), v03.Task, False),
            ("TaskSubscription", v03.TaskSubscriptionRequest(name=name), v03.StreamResponse, True),
            ("CreateTaskPushNotificationConfig", config, v03.TaskPushNotificationConfig, False),
            (
                "ListTaskPushNotificationConfig",
                v03.ListTaskPushNotificationConfigRequest(parent=name),
                v03.ListTaskPushNotificationConfigResponse,
                False,
            ),
        ]
        for rpc, request, answer, stream in probes:
            theirs = await refused(raw(address, rpc, request, answer, bob, stream=stream))
            assert theirs.code() == grpc.StatusCode.NOT_FOUND, rpc
            assert theirs.details().startswith("TaskNotFoundError: "), rpc
        # The same answer as on v1.0, and the task is untouched: alice still sees it running.
        async with A2AClient(address, timeout=20, metadata=bob) as bobs:
            with pytest.raises(errors.TaskNotFoundError):
                await bobs.get_task(mine.id)
        got = await raw(address, "GetTask", v03.GetTaskRequest(name=name), v03.Task, alice)
        assert got.status.state == v03.TASK_STATE_WORKING
        canceled = await raw(address, "CancelTask", v03.CancelTaskRequest(name=name), v03.Task, alice)
        assert canceled.status.state == v03.TASK_STATE_CANCELLED


# --- observability and the setting -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_v03_calls_are_logged_and_counted_under_the_v10_method_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="a2a_grpc.access")
    async with serving(log_requests=True) as server:
        slow = v03_send("slow 0.5")
        slow.configuration.blocking = False
        sent = await raw(server.address, "SendMessage", slow, v03.SendMessageResponse)
        events = await raw(
            server.address,
            "TaskSubscription",
            v03.TaskSubscriptionRequest(name=f"tasks/{sent.task.id}"),
            v03.StreamResponse,
            stream=True,
        )
        assert events[0].task.id == sent.task.id
        await refused(raw(server.address, "GetTask", v03.GetTaskRequest(name="tasks/none"), v03.Task))
    lines = [r.getMessage() for r in caplog.records if r.name == "a2a_grpc.access"]
    assert any(line.startswith("grpc SendMessage OK") for line in lines), lines
    assert any(line.startswith("grpc SubscribeToTask OK") for line in lines), lines
    assert any(line.startswith("grpc GetTask NOT_FOUND") for line in lines), lines
    allowed = {*METHODS, "GetAgentCard", "other"}
    for family in REGISTRY.collect():
        for sample in family.samples:
            method = sample.labels.get("method")
            assert method is None or method in allowed, (family.name, method)


@pytest.mark.asyncio
async def test_a_client_leaving_a_v03_stream_closes_it_and_the_drain_gate_refuses_v03_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="a2a_grpc.access")
    async with serving(log_requests=True) as server:
        slow = v03_send("slow 30")
        slow.configuration.blocking = False
        sent = await raw(server.address, "SendMessage", slow, v03.SendMessageResponse)
        name = f"tasks/{sent.task.id}"
        async with grpc.aio.insecure_channel(server.address) as channel:
            subscribe = channel.unary_stream(
                f"{SERVICE}/TaskSubscription", response_deserializer=v03.StreamResponse.FromString
            )
            call = subscribe(v03.TaskSubscriptionRequest(name=name).SerializeToString(), timeout=20)
            first = await call.read()
            assert first.task.id == sent.task.id
            call.cancel()  # the client leaves
        await until(lambda: any("SubscribeToTask CANCELLED" in r.getMessage() for r in caplog.records), 10.0)
        # The task runs on, and takes its cancel.
        canceled = await raw(server.address, "CancelTask", v03.CancelTaskRequest(name=name), v03.Task)
        assert canceled.status.state == v03.TASK_STATE_CANCELLED

        server.drain_gate.close(2.0)  # what a drain does first: every front's new calls refused
        draining = await refused(raw(server.address, "GetTask", v03.GetTaskRequest(name=name), v03.Task))
        assert draining.code() == grpc.StatusCode.UNAVAILABLE
        assert draining.details().startswith("ServerDrainingError: ")
        assert isinstance(from_grpc_error_v03(draining), errors.ServerDrainingError)


@pytest.mark.asyncio
async def test_serve_v03_off_removes_the_service_and_the_card_entry() -> None:
    async with serving() as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            async for answer in stub.ServerReflectionInfo(iter([request])):
                names = {s.name for s in answer.list_services_response.service}
                break
        assert {"a2a.v1.A2AService", "lf.a2a.v1.A2AService"} <= names

    async with serving(serve_v03=False) as server:
        off = await refused(raw(server.address, "GetTask", v03.GetTaskRequest(name="tasks/x"), v03.Task))
        assert off.code() == grpc.StatusCode.UNIMPLEMENTED
        versions = [(i.protocol_binding, i.protocol_version) for i in server.card().supported_interfaces]
        assert ("GRPC", "0.3") not in versions
        assert ("GRPC", "1.0") in versions
        async with A2AClient(server.address, timeout=20) as client:
            answer = await client.send_message(A2AClient.text_request("echo v1.0 only"))
            assert answer.task.status.state == types.TASK_STATE_COMPLETED

    with pytest.raises(ValueError, match="serve_v03 must be True or False"):
        ServerSettings(serve_v03="yes")  # type: ignore[arg-type]
