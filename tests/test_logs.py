"""Log lines carry the ids of what they were written for; debug logging shows handshakes and payloads
and never a credential.

Real servers, real clients (gRPC, a session, JSON-RPC over the bridge); the JSON lines are read from
a stream handler on the root logger, as ``configure_logging(log_format="json")`` sets it up.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.observability import ObservabilitySettings
from a2a_grpc.observability.context import TRACE, TraceHeaders
from a2a_grpc.observability.debuglog import DebugLog
from a2a_grpc.observability.logs import DEBUG_LOGGER, ContextFilter, JsonFormatter, TextFormatter
from a2a_grpc.security import Credentials
from a2a_grpc.server import ServerSettings
from a2a_grpc.session.frames import Skill
from tests.conftest import serve, shutdown
from tests.test_auth import KEYS, authentication

ASYNC = pytest.mark.asyncio
WAIT = 10.0
agent_log = logging.getLogger("tests.logs.agent")


class Logging(Agent):
    """Logs one line while it works on a task, then completes it."""

    card = types.AgentCard(name="logging-agent", description="logs as it works", version="1.0.0")

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        agent_log.info("working on it")
        await updater.complete("done")


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The process's log records (INFO and up) as the JSON lines ``configure_logging`` would write."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def one(lines: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [line for line in lines if all(line.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, lines)
    return found[0]


@ASYNC
async def test_a_session_calls_lines_carry_agent_session_task_and_call_ids(json_lines: Lines) -> None:
    served = await serve(Logging(), log_requests=True)
    try:
        async with served.client.session() as session:
            answer = await session.send_message(A2AClient.text_request("hi"))
            session_id = session.welcome.session_id
        task_id = answer.task.id
        assert task_id
    finally:
        await shutdown(served)
    lines = json_lines()
    working = one(lines, message="working on it")
    assert working["agent"] == "logging-agent"
    assert working["session_id"] == session_id
    assert working["task_id"] == task_id
    assert working["call_id"].startswith(f"{session_id}/")
    assert working["logger"] == "tests.logs.agent"
    assert working["level"] == "INFO"
    access = one(lines, logger="a2a_grpc.access", method="SendMessage")
    assert access["binding"] == "session"
    assert access["status"] == "OK"
    assert isinstance(access["duration_ms"], float)
    assert access["peer"].startswith("ipv")
    assert access["call_id"] == working["call_id"]
    assert access["session_id"] == session_id
    assert access["task_id"] == task_id
    assert access["agent"] == "logging-agent"
    # The session's own lines (opened, closed) carry its id too.
    opened = [line for line in lines if line["logger"] == "a2a_grpc.session" and "open" in line["message"]]
    assert opened
    assert all(line["session_id"] == session_id for line in opened)


@ASYNC
async def test_a_grpc_calls_lines_carry_agent_task_and_call_ids_and_no_session(json_lines: Lines) -> None:
    served = await serve(Logging(), log_requests=True)
    try:
        answer = await served.client.send_message(A2AClient.text_request("hi"))
        with pytest.raises(errors.TaskNotFoundError):
            await served.client.get_task("no-such-task")
    finally:
        await shutdown(served)
    lines = json_lines()
    working = one(lines, message="working on it")
    assert working["task_id"] == answer.task.id
    assert "session_id" not in working
    sent = one(lines, logger="a2a_grpc.access", method="SendMessage")
    assert sent["binding"] == "grpc"
    assert sent["call_id"] == working["call_id"]
    assert sent["task_id"] == answer.task.id
    got = one(lines, logger="a2a_grpc.access", method="GetTask")
    assert got["status"] == "NOT_FOUND"
    assert got["task_id"] == "no-such-task"  # the task the call was about, even one not found
    assert got["call_id"] != sent["call_id"]


@ASYNC
async def test_the_bridges_access_lines_have_http_members_and_the_calls_ids(json_lines: Lines) -> None:
    async with AgentStack(
        Logging(),
        grpc=ServerSettings(log_requests=True),
        bridge=BridgeSettings(log_requests=True),
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
    ) as stack:
        assert stack.http_url is not None
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}]}},
        }
        async with httpx.AsyncClient(timeout=WAIT, headers={"A2A-Version": "1.0"}) as http:
            answer = (await http.post(stack.http_url + "/", json=body)).json()
    task_id = answer["result"]["task"]["id"]
    lines = json_lines()
    working = one(lines, message="working on it")
    http_line = one(lines, logger="a2a_grpc.access", binding="http")
    assert http_line["method"] == "SendMessage"
    assert http_line["status"] == "200"
    assert http_line["verb"] == "POST"
    assert http_line["path"] == "/"
    assert isinstance(http_line["duration_ms"], float)
    assert http_line["peer"].startswith("127.0.0.1:")
    assert http_line["call_id"] == working["call_id"]
    assert http_line["task_id"] == task_id
    assert http_line["agent"] == "logging-agent"


def test_json_lines_carry_the_trace_id_and_a_records_extras() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.__dict__.update({"method": "GetTask", "duration_ms": 1.5, "_private": "no"})
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    token = TRACE.set(TraceHeaders(trace))
    try:
        ContextFilter().filter(record)
    finally:
        TRACE.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you"
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["method"] == "GetTask"
    assert line["duration_ms"] == 1.5
    assert "_private" not in line
    assert "args" not in line  # the standard attributes are not repeated as members
    assert TextFormatter().format(record).endswith("hello you trace_id=0af7651916cd43dd8448eb211c80319c")


def test_an_id_given_as_extra_is_kept() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.call_id = "given"
    ContextFilter().filter(record)
    assert json.loads(JsonFormatter().format(record))["call_id"] == "given"


# -- debug logging ---------------------------------------------------------------------------------

SECRETS = {
    "api_key": KEYS["alice"],
    "bearer": "bearer-secret-7f6e5d4c3b2a1908",
    "push_credentials": "push-credentials-0a1b2c3d4e5f",
    "push_token": "push-token-9z8y7x6w5v4u",
    "metadata_key": "metadata-api-key-1q2w3e4r5t",
    "password": "password-secret-6y7u8i9o0p",
    "userinfo": "userinfo-secret-a1s2d3f4",
    "hook_path": "hook-path-secret-5g6h7j8k",
    "hook_query": "hook-query-secret-9l0z1x2c",
}


def debug_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == DEBUG_LOGGER]


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for name, secret in SECRETS.items():
            assert secret not in text, (name, text[:300])


@ASYNC
async def test_debug_logs_the_handshake_in_full_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {"authentication": authentication(), "observability": ObservabilitySettings(debug=True)}
    served = await serve(Logging(), **settings)
    try:
        credentials = Credentials(api_key=KEYS["alice"])
        async with (
            A2AClient(served.server.address, credentials=credentials, timeout=WAIT) as alice,
            alice.session(agent_name="debugged", heartbeat_interval=2.0) as session,
        ):
            await session.send_message(A2AClient.text_request("hi"))
            resume_token = session.welcome.resume_token
            session_id = session.welcome.session_id
            with pytest.raises(errors.A2AError):
                async with alice.session(required_skills=[Skill(id="no-such-skill")]):
                    pass
    finally:
        await shutdown(served)
    texts = debug_texts(caplog)
    opened = [t for t in texts if t.startswith(f"session {session_id} opened by")]
    assert len(opened) == 1, texts
    hello = json.loads(opened[0].split(" hello=", 1)[1].split(" welcome=", 1)[0])
    assert hello["agentName"] == "debugged"
    assert hello["metadata"]["x-api-key"] == "(hidden)"
    assert hello["metadata"]["a2a-version"] == "1.0"
    welcome = json.loads(opened[0].split(" welcome=", 1)[1].split(" negotiated=", 1)[0])
    assert welcome["sessionId"] == session_id
    assert welcome["resumeToken"] == "(hidden)"
    negotiated = json.loads(opened[0].split(" negotiated=", 1)[1])
    assert negotiated["heartbeat_seconds"] == 2.0
    assert negotiated["protocol_version"] == "1.0"
    refused = [t for t in texts if "refused" in t]
    assert len(refused) == 1, texts
    assert "no-such-skill" in refused[0]
    assert "(hidden)" in refused[0]
    everything = [r.getMessage() for r in caplog.records]
    assert_no_secret(everything)
    assert all(resume_token not in text for text in everything)


@ASYNC
async def test_debug_logs_payloads_and_answers_redacted_and_cut(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    served = await serve(Logging(), observability=ObservabilitySettings(debug=True, debug_payload_chars=600))
    headers = (("authorization", f"Bearer {SECRETS['bearer']}"), ("x-api-key", SECRETS["api_key"]))
    try:
        request = A2AClient.text_request("visible text")
        request.metadata.update(
            {"apiKey": SECRETS["metadata_key"], "nested": {"password": SECRETS["password"]}}
        )
        answer = await served.client.send_message(request, metadata=headers)
        config = types.TaskPushNotificationConfig(
            task_id=answer.task.id,
            url=f"https://user:{SECRETS['userinfo']}@127.0.0.1:1/{SECRETS['hook_path']}?sig={SECRETS['hook_query']}",
            token=SECRETS["push_token"],
        )
        config.authentication.scheme = "Bearer"
        config.authentication.credentials = SECRETS["push_credentials"]
        with pytest.raises(errors.A2AError):  # push is not configured here: refused, but logged first
            await served.client.create_task_push_notification_config(config, metadata=headers)
        # Over 600 * 256 bytes: named with its size, never converted.
        await served.client.send_message(A2AClient.text_request("y" * 200_000))
        long = A2AClient.text_request("x" * 5000)
        async for _ in served.client.send_streaming_message(long):
            pass
    finally:
        await shutdown(served)
    texts = debug_texts(caplog)
    sent = [t for t in texts if t.startswith("grpc SendMessage from") and "visible text" in t]
    assert len(sent) == 1, texts
    assert '"authorization":"(hidden)"' in sent[0]
    assert '"x-api-key":"(hidden)"' in sent[0]
    assert '"apiKey":"(hidden)"' in sent[0]
    assert '"password":"(hidden)"' in sent[0]
    assert any(t.startswith("SendMessage answer=") and answer.task.id in t for t in texts)
    pushed = [t for t in texts if t.startswith("grpc CreateTaskPushNotificationConfig from")]
    assert len(pushed) == 1, texts
    assert '"credentials":"(hidden)"' in pushed[0]
    assert '"token":"(hidden)"' in pushed[0]
    assert '"url":"https://127.0.0.1:1/…"' in pushed[0]
    assert any(t.startswith("CreateTaskPushNotificationConfig failed:") for t in texts)
    streamed = [t for t in texts if t.startswith("grpc SendStreamingMessage from")]
    assert len(streamed) == 1
    assert streamed[0].endswith("chars)")  # cut: 5000 characters of text do not fit in 600
    assert "x" * 700 not in streamed[0]
    assert any(t.startswith("SendStreamingMessage event 1=") for t in texts)
    huge = [t for t in texts if t.startswith("grpc SendMessage from") and "too large to show" in t]
    assert len(huge) == 1, texts
    assert "SendMessageRequest of" in huge[0]
    assert any(t.startswith("SendStreamingMessage ended after") for t in texts)
    assert_no_secret([r.getMessage() for r in caplog.records])


@ASYNC
async def test_without_debug_nothing_is_logged_on_the_debug_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    served = await serve(Logging())
    try:
        assert served.server.service is not None
        assert not any(isinstance(link, DebugLog) for link in served.server.service.interceptors)
        async with served.client.session() as session:
            await session.send_message(A2AClient.text_request("hi"))
        await served.client.send_message(A2AClient.text_request("hi"))
    finally:
        await shutdown(served)
    assert debug_texts(caplog) == []


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_a_bad_debug_payload_bound_is_refused_naming_it(value: Any) -> None:
    with pytest.raises(ValueError, match="debug_payload_chars"):
        ObservabilitySettings(debug_payload_chars=value)
