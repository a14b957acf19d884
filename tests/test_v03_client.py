"""Our client side against A2A v0.3 agents: the official a2a-sdk 0.3 agent (tests/sdk03/server.py)
reached by our A2AClient over its v0.3 gRPC service, and by our reverse bridge over its v0.3
JSON-RPC and HTTP+JSON interfaces (our A2AClient then talks v1.0 gRPC to the bridge). Then hostile
v0.3 peers (fakes in this file): garbage answers are InvalidAgentResponseError, a peer that
vanishes mid-stream is a typed error, nothing hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.bridge.grpcfront import GrpcFront
from a2a_grpc.bridge.outbound import choose_interface, fetch_card, open_json_upstream
from a2a_grpc.bridge.outbound03 import JsonRpc03Upstream, Rest03Upstream
from a2a_grpc.bridge.upstream import Call
from a2a_grpc.client import A2AClient
from a2a_grpc.server import ServerSettings
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.card import parse_card_json
from tests.sdk03.plugin import Sdk03Server, one, run_sdk03_client, steps

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PATHS = ("grpc", "jsonrpc", "rest")
"""How our v1.0 client reaches the 0.3 agent: our client's v0.3 gRPC, or our reverse bridge."""
BINDING = {"jsonrpc": "JSONRPC", "rest": "HTTP+JSON"}


@contextlib.asynccontextmanager
async def reach(server: Sdk03Server, path: str) -> AsyncIterator[A2AClient]:
    """A v1.0 client of ours that reaches the 0.3 agent along ``path``."""
    if path == "grpc":
        async with httpx.AsyncClient() as http:
            card = await fetch_card(server.card, client=http)
        async with A2AClient.from_card(card, timeout=30) as client:
            yield client
        return
    upstream = await open_json_upstream(server.card, prefer=(BINDING[path],))
    try:
        async with (
            GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0)) as front,
            A2AClient(front.address, timeout=30) as client,
        ):
            yield client
    finally:
        await upstream.aclose()


async def events_of(stream: AsyncIterator[Any]) -> list[Any]:
    return [event async for event in stream]


async def drain(stream: Any, seen: list[Any], then: Callable[[], Any] | None = None) -> None:
    """Read ``stream`` into ``seen`` (awaiting ``then()`` after the first event), closing it at the end."""
    async with contextlib.aclosing(stream):
        async for event in stream:
            seen.append(event)
            if then is not None and len(seen) == 1:
                await then()


# --- the card -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_v03_card_reads_as_our_card_with_03_interfaces(sdk03_server: Sdk03Server) -> None:
    async with httpx.AsyncClient() as http:
        raw = (await http.get(sdk03_server.card)).json()
        card = await fetch_card(sdk03_server.card, client=http)
    assert "supportedInterfaces" not in raw  # a genuine v0.3 card
    assert card == parse_card_json(raw)
    assert card.name == "a2a-sdk 0.3 peer"
    assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
        ("JSONRPC", sdk03_server.jsonrpc, "0.3.0"),
        ("HTTP+JSON", sdk03_server.rest, "0.3.0"),
        ("GRPC", sdk03_server.grpc, "0.3.0"),
    ]
    assert card.capabilities.streaming
    assert card.capabilities.push_notifications
    assert choose_interface(card).protocol_binding == "JSONRPC"
    assert choose_interface(card, ("HTTP+JSON",)).url == sdk03_server.rest
    client = A2AClient.from_card(card)
    try:
        assert (client.target, client.protocol_version) == (sdk03_server.grpc, "0.3")
    finally:
        await client.close()
    upstream = await open_json_upstream(sdk03_server.card)
    try:
        assert isinstance(upstream, JsonRpc03Upstream)
        assert await upstream.card() == card
    finally:
        await upstream.aclose()


def _card(*interfaces: tuple[str, str, str]) -> types.AgentCard:
    card = types.AgentCard(name="mixed")
    for binding, url, version in interfaces:
        card.supported_interfaces.add(protocol_binding=binding, url=url, protocol_version=version)
    return card


@pytest.mark.asyncio
async def test_a_v10_interface_is_always_preferred() -> None:
    mixed = _card(
        ("GRPC", "127.0.0.1:1", "0.3"),
        ("JSONRPC", "http://127.0.0.1:2/", "0.3"),
        ("GRPC", "127.0.0.1:3", "1.0"),
        ("JSONRPC", "http://127.0.0.1:4/", "1.0"),
    )
    client = A2AClient.from_card(mixed)
    asked = A2AClient.from_card(mixed, v03=True)  # the caller may ask for v0.3
    try:
        assert (client.target, client.protocol_version) == ("127.0.0.1:3", "1.0")
        assert (asked.target, asked.protocol_version) == ("127.0.0.1:1", "0.3")
    finally:
        await client.close()
        await asked.close()
    assert choose_interface(mixed).url == "http://127.0.0.1:4/"
    only03 = _card(("GRPC", "127.0.0.1:1", "0.3"))
    with pytest.raises(errors.UnavailableError, match=r"no GRPC interface for A2A 1\.x"):
        A2AClient.from_card(only03, v03=False)  # no silent downgrade when 1.x is asked
    with pytest.raises(errors.UnavailableError, match=r"GRPC 0\.3 at 127\.0\.0\.1:1"):
        choose_interface(only03)


# --- the operations on each path ---------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_send_get_and_stream(sdk03_server: Sdk03Server, path: str) -> None:
    async with reach(sdk03_server, path) as client:
        sent = await client.send_message(A2AClient.text_request("echo hello there"))
        task = sent.task
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert [(a.name, [p.text for p in a.parts]) for a in task.artifacts] == [
            ("echo", ["echo hello there"])
        ]
        got = await client.get_task(task.id)
        assert (got.id, got.context_id, got.status.state) == (task.id, task.context_id, task.status.state)
        assert list(got.artifacts) == list(task.artifacts)
        assert [m.role for m in got.history][:1] == [types.ROLE_USER]
        assert not (await client.get_task(task.id, history_length=0)).history  # trimmed by us or the front

        reply = await client.send_message(A2AClient.text_request("reply hi"))
        assert (reply.message.role, [p.text for p in reply.message.parts]) == (types.ROLE_AGENT, ["hi"])

        events = await events_of(client.send_streaming_message(A2AClient.text_request("stream 3")))
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds == ["task", "status_update", *["artifact_update"] * 3, "status_update"]
    task_id = events[0].task.id
    assert events[0].task.status.state == types.TASK_STATE_SUBMITTED
    assert {e.status_update.task_id or e.artifact_update.task_id for e in events[1:]} == {task_id}
    chunks = [e.artifact_update for e in events[2:5]]
    assert [[p.text for p in c.artifact.parts] for c in chunks] == [["chunk 0"], ["chunk 1"], ["chunk 2"]]
    assert [(c.append, c.last_chunk) for c in chunks] == [(False, False), (True, False), (True, True)]
    assert events[1].status_update.status.state == types.TASK_STATE_WORKING
    assert events[-1].status_update.status.state == types.TASK_STATE_COMPLETED


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_cancel_and_resubscribe_follow_a_slow_task(sdk03_server: Sdk03Server, path: str) -> None:
    async with reach(sdk03_server, path) as client:
        slow = await client.send_message(A2AClient.text_request("slow 60", return_immediately=True))
        assert slow.task.status.state in (types.TASK_STATE_SUBMITTED, types.TASK_STATE_WORKING)
        canceled = await client.cancel_task(slow.task.id)
        assert (canceled.id, canceled.status.state) == (slow.task.id, types.TASK_STATE_CANCELED)
        assert [p.text for p in canceled.status.message.parts] == ["canceled on request"]
        assert (await client.get_task(slow.task.id)).status.state == types.TASK_STATE_CANCELED

        short = await client.send_message(A2AClient.text_request("slow 1.5", return_immediately=True))
        events = await events_of(client.subscribe_to_task(short.task.id, timeout=30))
        assert events
        assert {e.WhichOneof("payload") for e in events} <= {"status_update", "task"}
        updates = [e.status_update for e in events if e.HasField("status_update")]
        assert {u.task_id for u in updates} == {short.task.id}
        assert types.TASK_STATE_WORKING in {u.status.state for u in updates}
        # the 0.3 server may close a resubscription before its last event (see the harness)
        for _ in range(100):
            done = await client.get_task(short.task.id)
            if done.status.state != types.TASK_STATE_WORKING:
                break
            await asyncio.sleep(0.1)
        assert done.status.state == types.TASK_STATE_COMPLETED


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_push_config_crud_with_the_03_sdks_gaps(sdk03_server: Sdk03Server, path: str) -> None:
    hook = "http://127.0.0.1:9/hook"
    async with reach(sdk03_server, path) as client:
        live = (await client.send_message(A2AClient.text_request("input"))).task
        assert live.status.state == types.TASK_STATE_INPUT_REQUIRED
        for cid in ("cfg-1", "cfg-2"):
            made = await client.create_task_push_notification_config(
                types.TaskPushNotificationConfig(task_id=live.id, id=cid, url=hook, token=f"token-{cid}")
            )
            assert (made.task_id, made.id, made.url, made.token) == (live.id, cid, hook, f"token-{cid}")
        # The 0.3 server answers a get with the task's FIRST config, whatever id is asked.
        got = await client.get_task_push_notification_config(live.id, "cfg-2")
        assert (got.task_id, got.id, got.token) == (live.id, "cfg-1", "token-cfg-1")
        if path == "jsonrpc":
            listed = await client.list_task_push_notification_configs(live.id)
            assert [(c.task_id, c.id) for c in listed.configs] == [(live.id, "cfg-1"), (live.id, "cfg-2")]
            await client.delete_task_push_notification_config(live.id, "cfg-1")
            after = await client.list_task_push_notification_configs(live.id)
            assert [c.id for c in after.configs] == ["cfg-2"]
        elif path == "rest":
            # Its REST server: list raises NotImplemented (HTTP 500); no DELETE route (405).
            with pytest.raises(errors.InternalError):
                await client.list_task_push_notification_configs(live.id)
            with pytest.raises(errors.UnsupportedOperationError, match="HTTP 405"):
                await client.delete_task_push_notification_config(live.id, "cfg-1")
        else:
            # Its gRPC server implements neither List nor Delete: UNIMPLEMENTED.
            with pytest.raises(errors.MethodNotFoundError):
                await client.list_task_push_notification_configs(live.id)
            with pytest.raises(errors.MethodNotFoundError):
                await client.delete_task_push_notification_config(live.id, "cfg-1")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.asyncio
async def test_errors_are_typed(sdk03_server: Sdk03Server, path: str) -> None:
    async with reach(sdk03_server, path) as client:
        with pytest.raises(errors.TaskNotFoundError):
            await client.get_task("no-such-task")
        with pytest.raises(errors.TaskNotFoundError):
            await client.cancel_task("no-such-task")
        done = (await client.send_message(A2AClient.text_request("echo done"))).task
        with pytest.raises(errors.TaskNotCancelableError):
            await client.cancel_task(done.id)
        with pytest.raises(errors.UnsupportedOperationError, match=r"v0\.3 has no such operation"):
            await client.list_tasks()
        if path == "jsonrpc":  # an id is a JSON string there
            with pytest.raises(errors.TaskNotFoundError):
                await client.get_task("a/b")
        else:  # v0.3 names tasks by resource name (gRPC) or path segment: refused before sending
            with pytest.raises(errors.InvalidParamsError, match="without '/'"):
                await client.get_task("a/b")
        if path != "rest":  # its REST server breaks the SSE body off instead of answering an error
            with pytest.raises(errors.TaskNotFoundError):
                await events_of(client.subscribe_to_task("no-such-task", timeout=20))


# --- hostile v0.3 peers ------------------------------------------------------------------------


class FakeGrpc03:
    """A v0.3 gRPC agent answering whatever bytes a test gives it, recording the metadata it gets."""

    def __init__(self) -> None:
        self.unary: Callable[[], bytes] = lambda: b""
        self.events: list[bytes] = []
        self.vanish = asyncio.Event()
        self.seen: list[dict[str, str]] = []
        self.server = grpc.aio.server()
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        handlers = {
            "SendMessage": grpc.unary_unary_rpc_method_handler(self._unary),
            "GetTask": grpc.unary_unary_rpc_method_handler(self._unary),
            "SendStreamingMessage": grpc.unary_stream_rpc_method_handler(self._stream),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("a2a.v1.A2AService", handlers),)
        )

    def _record(self, context: grpc.aio.ServicerContext) -> None:
        self.seen.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})

    async def _unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self._record(context)
        return self.unary()

    async def _stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self._record(context)
        for event in self.events:
            yield event
        await asyncio.wait_for(self.vanish.wait(), 30)


def _v03_task(state: int = v03.TASK_STATE_COMPLETED) -> bytes:
    return v03.Task(id="t1", context_id="c1", status=v03.TaskStatus(state=state)).SerializeToString()


@pytest.mark.asyncio
async def test_a_garbage_grpc_peer_is_an_invalid_agent_response() -> None:
    fake = FakeGrpc03()
    await fake.server.start()
    client = A2AClient(f"127.0.0.1:{fake.port}", v03=True, extensions=["urn:x"], timeout=10)
    try:
        fake.unary = lambda: b"\xff\xff\xff"  # not a protobuf message
        with pytest.raises(errors.InvalidAgentResponseError, match=r"not an a2a\.v1\.SendMessageResponse"):
            await client.send_message(A2AClient.text_request("hi"))
        fake.unary = lambda: v03.SendMessageResponse().SerializeToString()  # neither task nor message
        with pytest.raises(errors.InvalidAgentResponseError, match="payload"):
            await client.send_message(A2AClient.text_request("hi"))
        fake.unary = lambda: _v03_task(state=77)  # a state v0.3 does not have
        with pytest.raises(errors.InvalidAgentResponseError, match="GetTask"):
            await client.get_task("t1")
        fake.unary = lambda: _v03_task()
        assert (await client.get_task("t1")).status.state == types.TASK_STATE_COMPLETED
        assert {(s["a2a-version"], s["x-a2a-extensions"], s["a2a-extensions"]) for s in fake.seen} == {
            ("0.3", "urn:x", "urn:x")
        }
        with pytest.raises(errors.UnsupportedOperationError):
            client.session()
    finally:
        await client.close()
        await fake.server.stop(0)


@pytest.mark.asyncio
async def test_a_grpc_peer_that_vanishes_mid_stream_is_a_typed_error() -> None:
    fake = FakeGrpc03()
    fake.events = [v03.StreamResponse(task=v03.Task(id="t1", context_id="c1")).SerializeToString()]
    await fake.server.start()
    client = A2AClient(f"127.0.0.1:{fake.port}", v03=True)
    try:
        seen: list[types.StreamResponse] = []
        stream = client.send_streaming_message(A2AClient.text_request("x"))
        # the peer goes away with the stream open
        with pytest.raises(errors.UnavailableError):
            await drain(stream, seen, lambda: fake.server.stop(0))
        assert [e.task.id for e in seen] == ["t1"]
    finally:
        fake.vanish.set()
        await client.close()


class FakeHttp03:
    """A v0.3 HTTP agent on a raw socket: ``answer(path, body)`` gives the bytes to write back
    (None: send one SSE event, then drop the connection mid-body)."""

    def __init__(self, answer: Callable[[str, bytes], bytes | None]) -> None:
        self.answer = answer
        self.heads: list[dict[str, str]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> FakeHttp03:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
            line, *fields = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields if f)}
            self.heads.append(headers)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = self.answer(line.split(" ")[1], body)
            if answer is None:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                event = b'data: {"jsonrpc": "2.0", "id": 1, "result": {"kind": "task", "id": "t1", '
                event += b'"contextId": "c1", "status": {"state": "working"}}}\n\n'
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                writer.transport.abort()  # vanish: no closing chunk
                return
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()


def _http(body: bytes, status: str = "200 OK", media: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {media}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body
    )


def _rpc(result: Any) -> bytes:
    return _http(json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode())


GARBAGE_JSONRPC = {
    "not JSON": _http(b"{this is not json"),
    "a wrong kind": _rpc({"kind": "banana", "id": "t1"}),
    "a task with an unknown shape": _rpc({"kind": "task", "id": 7, "contextId": "c1"}),
    "an array": _http(b"[1, 2, 3]"),
}


@pytest.mark.parametrize("answer", list(GARBAGE_JSONRPC))
@pytest.mark.asyncio
async def test_a_garbage_jsonrpc_peer_is_an_invalid_agent_response(answer: str) -> None:
    async with FakeHttp03(lambda path, body: GARBAGE_JSONRPC[answer]) as fake:
        upstream = JsonRpc03Upstream(fake.url + "/")
        try:
            call = Call({"a2a-version": "1.0", "a2a-extensions": "urn:x"}, timeout=10)
            request = A2AClient.text_request("hi")
            with pytest.raises(errors.InvalidAgentResponseError):
                await upstream.unary("SendMessage", request, call)
        finally:
            await upstream.aclose()
        assert (fake.heads[0]["a2a-version"], fake.heads[0]["x-a2a-extensions"]) == ("0.3", "urn:x")


GARBAGE_REST = {
    "not JSON": _http(b"<html>oops</html>"),
    "no payload": _http(b"{}"),
    "a wrong type": _http(b'{"task": {"id": ["t1"]}}'),
    "an unknown state": _http(b'{"task": {"id": "t1", "status": {"state": 99}}}'),
}


@pytest.mark.parametrize("answer", list(GARBAGE_REST))
@pytest.mark.asyncio
async def test_a_garbage_rest_peer_is_an_invalid_agent_response(answer: str) -> None:
    paths: list[str] = []

    def respond(path: str, body: bytes) -> bytes:
        paths.append(path)
        assert json.loads(body)["message"]["content"] == [{"text": "hi"}]  # ProtoJSON of a2a.v1
        return GARBAGE_REST[answer]

    async with FakeHttp03(respond) as fake:
        upstream = Rest03Upstream(fake.url)
        try:
            with pytest.raises(errors.InvalidAgentResponseError):
                await upstream.unary("SendMessage", A2AClient.text_request("hi"), Call(timeout=10))
        finally:
            await upstream.aclose()
    assert paths == ["/v1/message:send"]


@pytest.mark.asyncio
async def test_a_jsonrpc_peer_that_vanishes_mid_stream_is_a_typed_error() -> None:
    async with FakeHttp03(lambda path, body: None) as fake:
        upstream = JsonRpc03Upstream(fake.url + "/")
        seen: list[Any] = []
        try:
            stream = upstream.stream("SendStreamingMessage", A2AClient.text_request("x"), Call(timeout=10))
            with pytest.raises(errors.UnavailableError, match=r"the connection broke|broke the HTTP"):
                await drain(stream, seen)
        finally:
            await upstream.aclose()
    assert [e.task.id for e in seen] == ["t1"]
    assert seen[0].task.status.state == types.TASK_STATE_WORKING


@pytest.mark.asyncio
async def test_the_cli_reads_a_v03_card_file(tmp_path: Any) -> None:
    from a2a_grpc.cli.serving import card_source

    path = tmp_path / "card.json"
    path.write_text(
        json.dumps(
            {
                "name": "old",
                "description": "a v0.3 card",
                "url": "http://127.0.0.1:1/",
                "version": "1",
                "protocolVersion": "0.3.0",
                "capabilities": {},
                "defaultInputModes": [],
                "defaultOutputModes": [],
                "skills": [],
                "additionalInterfaces": [{"url": "127.0.0.1:2", "transport": "GRPC"}],
            }
        )
    )
    card = await card_source(str(path), 5)
    assert [(i.protocol_binding, i.url, i.protocol_version) for i in card.supported_interfaces] == [
        ("JSONRPC", "http://127.0.0.1:1/", "0.3.0"),
        ("GRPC", "127.0.0.1:2", "0.3.0"),
    ]
    client = A2AClient.from_card(card)
    try:
        assert (client.target, client.protocol_version) == ("127.0.0.1:2", "0.3")
    finally:
        await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["jsonrpc", "rest"])
async def test_a_v03_json_agent_behind_our_reverse_bridge_serves_v03_grpc_clients(
    sdk03_server: Sdk03Server, sdk03_python: Path, path: str
) -> None:
    """Both ends v0.3: the official 0.3 client calls our bridge's v0.3 gRPC service, and the bridge
    calls the official 0.3 agent over v0.3 JSON; the core in between speaks v1.0."""
    upstream = await open_json_upstream(sdk03_server.card, prefer=(BINDING[path],))
    try:
        async with GrpcFront(upstream, ServerSettings(host="127.0.0.1", port=0)) as front:
            card = await front.public_card()
            grpcs = [
                (i.url, i.protocol_version) for i in card.supported_interfaces if i.protocol_binding == "GRPC"
            ]
            assert grpcs[:2] == [(front.address, "1.0"), (front.address, "0.3")]
            sent = one(
                await run_sdk03_client(sdk03_python, "grpc", front.address, "send", "echo both ends"),
                "result",
            )
            assert (sent["kind"], sent["state"]) == ("task", "completed")
            assert [a["texts"] for a in sent["artifacts"]] == [["echo both ends"]]
            got = one(
                await run_sdk03_client(sdk03_python, "grpc", front.address, "get-task", sent["id"]), "result"
            )
            assert (got["id"], got["state"]) == (sent["id"], "completed")
            streamed = steps(
                await run_sdk03_client(sdk03_python, "grpc", front.address, "stream", "stream 2"), "event"
            )
            assert [e["kind"] for e in streamed if e["kind"] == "artifact-update"] == ["artifact-update"] * 2
            assert streamed[-1]["state"] == "completed"
    finally:
        await upstream.aclose()
