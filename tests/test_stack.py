"""AgentStack: gRPC and the JSON bindings from one library call."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import httpx
import pytest

from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import ServerSettings
from a2a_grpc.session.frames import BINDING_URI
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.types import AgentCard, Part

pytestmark = pytest.mark.asyncio
V = {"A2A-Version": "1.0"}


async def test_one_call_serves_grpc_and_json(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    async with AgentStack(
        ReferenceAgent(), f"sqlite:///{db}", host="127.0.0.1", grpc_port=0, http_port=0
    ) as stack:
        assert stack.http_url is not None
        bindings = [(i.protocol_binding, i.url) for i in stack.card.supported_interfaces]
        assert bindings == [
            ("GRPC", stack.grpc_address),
            ("GRPC", stack.grpc_address),  # v0.3, the same port (serve_v03)
            (BINDING_URI, stack.grpc_address),  # the session binding, on the gRPC port
            ("JSONRPC", stack.http_url + "/"),
            ("HTTP+JSON", stack.http_url),
            ("JSONRPC", stack.http_url + "/"),  # the same URLs serve v0.3 clients (serve_v03)
            ("HTTP+JSON", stack.http_url),
        ]
        async with A2AClient(stack.grpc_address, timeout=10) as client:
            task = (await client.send_message(A2AClient.text_request("echo over grpc"))).task
        async with httpx.AsyncClient(base_url=stack.http_url, timeout=10) as http:
            card = (await http.get("/.well-known/agent-card.json")).json()
            assert card["supportedInterfaces"][0]["url"] == stack.grpc_address
            got = await http.get(f"/tasks/{task.id}", headers=V)
            assert got.json()["status"]["state"] == "TASK_STATE_COMPLETED"
            sent = await http.post(
                "/",
                headers=V,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "SendMessage",
                    "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
                },
            )
            assert sent.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    assert stack.store is None  # the store it opened from a URL is closed
    assert db.exists()


async def test_grpc_only_and_a_store_of_yours_left_open() -> None:
    store = InMemoryTaskStore()
    stack = AgentStack(ReferenceAgent(), store, grpc=ServerSettings(port=0))
    await stack.start()
    try:
        assert stack.http_url is None
        assert [i.protocol_binding for i in stack.card.supported_interfaces] == ["GRPC", "GRPC", BINDING_URI]
    finally:
        await stack.stop(0)
    await stack.stop()  # idempotent
    assert await store.get("", "nothing") is None  # still usable: the stack did not close it
    await store.close()


async def test_public_urls_name_the_interfaces() -> None:
    async with AgentStack(
        ReferenceAgent(),
        grpc=ServerSettings(port=0, public_address="agents.example:443"),
        http_port=0,
        bridge=BridgeSettings(public_url="https://agents.example/a2a/"),
    ) as stack:
        assert [i.url for i in stack.card.supported_interfaces] == [
            "agents.example:443",
            "agents.example:443",  # v0.3 (serve_v03)
            "agents.example:443",  # the session binding
            "https://agents.example/a2a/",
            "https://agents.example/a2a",
            "https://agents.example/a2a/",  # the JSON interfaces again, for v0.3
            "https://agents.example/a2a",
        ]


async def test_a_busy_http_port_fails_start_and_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = AgentStack(ReferenceAgent(), grpc=ServerSettings(port=0), http_port=port)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await stack.start()
        assert stack.server is None
        with pytest.raises(RuntimeError, match="starts once"):
            await stack.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = AgentStack(ReferenceAgent()).grpc_address


async def test_log_requests_logs_every_binding(caplog: pytest.LogCaptureFixture) -> None:
    async with AgentStack(
        ReferenceAgent(),
        grpc=ServerSettings(port=0, log_requests=True),
        http_port=0,
        bridge=BridgeSettings(log_requests=True),
    ) as stack:
        assert stack.http_url is not None
        with caplog.at_level(logging.INFO, "a2a_grpc.access"):
            async with A2AClient(stack.grpc_address, timeout=10) as client:
                await client.get_agent_card()
                await client.send_message(A2AClient.text_request("echo hi"))
            async with httpx.AsyncClient(base_url=stack.http_url, timeout=10) as http:
                await http.get("/tasks/nope", headers=V)
                body = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}
                await http.post("/", json=body, headers=V)
                await http.get("/" + "x" * 500)
    lines = [r.getMessage().split(" ms ")[0].rsplit(" ", 1)[0] for r in caplog.records]
    assert lines == [
        "grpc GetAgentCard OK",
        "grpc SendMessage OK",
        "http GET /tasks/nope 404 GetTask",
        "http POST / 200 ListTasks",
        f"http GET /{'x' * 119}\u2026(501) 404 -",
    ]


async def test_an_agent_whose_card_says_nothing_streams_on_every_binding() -> None:
    class Quiet(Agent):
        card = AgentCard(name="quiet")  # no capabilities at all

        async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
            await updater.artifact([Part(text="done")], name="out")
            await updater.complete()

    async with AgentStack(Quiet(), grpc=ServerSettings(port=0), http_port=0) as stack:
        assert stack.http_url is not None
        async with httpx.AsyncClient(base_url=stack.http_url, headers=V, timeout=10) as http:
            card = (await http.get("/.well-known/agent-card.json")).json()
            assert card["capabilities"]["streaming"] is True
            message = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "go"}]}}
            streamed = await http.post("/message:stream", json=message)
            assert streamed.headers["content-type"].startswith("text/event-stream")
            assert '"TASK_STATE_COMPLETED"' in streamed.text
            call = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": message}
            streamed = await http.post("/", json=call)
            assert '"TASK_STATE_COMPLETED"' in streamed.text
