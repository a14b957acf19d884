"""What one request may hold (``ServerSettings.limits``, docs/limits.md): parts per message, JSON
nesting, free-form nesting (metadata, data parts), history kept; and the stalls the issue measured.

Each limit over every binding (gRPC, JSON-RPC, HTTP+JSON): a request at the limit is served, one
just over it is refused with LimitExceededError naming the limit, and an echo succeeds right
after. The headline requests (1.2 million parts, ``bytes 1073741824``) are refused while another
caller's echo keeps being answered: its worst latency is measured and printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import orjson
import pytest
import pytest_asyncio

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.errordetails import ERROR_INFO_TYPE
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.stack import AgentStack
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent, SkillBounds
from a2a_grpc.security.limits import Limits
from a2a_grpc.server import ServerSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one served stack for the module

WAIT = 30.0
BINDINGS = ("grpc", "jsonrpc", "rest")
LIMITS = Limits(max_parts=5, max_json_depth=10, max_struct_depth=4, max_history_length=3)


@dataclass
class Served:
    stack: AgentStack
    client: A2AClient
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def served(limits: Limits, agent: ReferenceAgent | None = None) -> AsyncIterator[Served]:
    stack = AgentStack(agent or ReferenceAgent(), "memory", grpc=ServerSettings(limits=limits), http_port=0)
    async with stack:
        assert stack.http_url is not None
        async with (
            A2AClient(stack.grpc_address, timeout=WAIT) as client,
            httpx.AsyncClient(base_url=stack.http_url, timeout=WAIT, headers={"a2a-version": "1.0"}) as http,
        ):
            yield Served(stack, client, http)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def small() -> AsyncIterator[Served]:
    async with served(LIMITS) as s:
        yield s


# -- requests over every binding -----------------------------------------------------------------


def nest(levels: int) -> Any:
    """A JSON value nesting objects and arrays ``levels`` deep (0: a string)."""
    value: Any = "leaf"
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


def send_params(text: str = "echo hi", parts: int = 1, **message: Any) -> dict[str, Any]:
    return {
        "message": {
            "messageId": f"m-{time.monotonic_ns()}",
            "role": "ROLE_USER",
            "parts": [{"text": text}] * parts,
            **message,
        }
    }


@dataclass
class Outcome:
    state: str = ""
    """The task's state when served."""
    limit: str = ""
    """The limit named when refused."""
    value: str = ""


def _refused(details: list[dict[str, Any]]) -> Outcome:
    (found,) = [d for d in details if d["@type"] == ERROR_INFO_TYPE]
    assert found["reason"] == "LIMIT_EXCEEDED", found
    return Outcome(limit=found["metadata"]["limit"], value=found["metadata"]["limit_value"])


async def send(s: Served, binding: str, params: dict[str, Any]) -> Outcome:
    """SendMessage of ``params`` (its JSON) over ``binding``: the task's state, or the limit named."""
    if binding == "grpc":
        request = transcoding.decode(params, types.SendMessageRequest)
        try:
            answer = await s.client.send_message(request)
        except errors.LimitExceededError as exc:
            refused = exc
        else:
            return Outcome(state=types.TaskState.Name(answer.task.status.state))
        assert refused.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED
        return Outcome(limit=refused.limit, value=str(refused.metadata["limit_value"]))
    if binding == "jsonrpc":
        envelope = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        response = await s.http.post(
            "/", content=orjson.dumps(envelope), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        if "error" in body:
            assert body["error"]["code"] == -32099, body
            return _refused(body["error"]["data"])
        return Outcome(state=body["result"]["task"]["status"]["state"])
    response = await s.http.post(
        "/message:send", content=orjson.dumps(params), headers={"content-type": "application/json"}
    )
    if response.status_code != 200:
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        return _refused(error["details"])
    return Outcome(state=response.json()["task"]["status"]["state"])


async def echo_works(s: Served, binding: str) -> None:
    assert (await send(s, binding, send_params("echo after"))).state == "TASK_STATE_COMPLETED"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_parts_at_the_limit_pass_and_one_more_is_refused(small: Served, binding: str) -> None:
    assert (await send(small, binding, send_params(parts=5))).state == "TASK_STATE_COMPLETED"
    assert await send(small, binding, send_params(parts=6)) == Outcome(limit="max_parts", value="5")
    await echo_works(small, binding)


def with_free_form(where: str, depth: int) -> dict[str, Any]:
    """SendMessage params holding a free-form value nesting ``depth`` levels at ``where``."""
    struct = {"a": nest(depth - 1)}  # metadata is an object: it is the first level
    params = send_params()
    message = params["message"]
    if where == "message.metadata":
        message["metadata"] = struct
    elif where == "metadata":
        params["metadata"] = struct
    elif where == "data":
        message["parts"] = [{"data": nest(depth)}]
    else:
        message["parts"] = [{"text": "x", "metadata": struct}]
    return params


@pytest.mark.parametrize("where", ["message.metadata", "metadata", "data", "part metadata"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_free_form_values_nest_up_to_the_limit(small: Served, binding: str, where: str) -> None:
    assert (await send(small, binding, with_free_form(where, 4))).state == "TASK_STATE_COMPLETED"
    assert await send(small, binding, with_free_form(where, 5)) == Outcome(
        limit="max_struct_depth", value="4"
    )
    await echo_works(small, binding)


@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
async def test_json_bodies_nest_up_to_the_limit(small: Served, binding: str) -> None:
    # An unknown member (ignored by the operation, spec 5.7) still costs its parse: it counts.
    envelope = 2 if binding == "jsonrpc" else 1  # {"params": {...}} or the body itself
    at_limit = {**send_params(), "extra": nest(LIMITS.max_json_depth - envelope)}
    over = {**send_params(), "extra": nest(LIMITS.max_json_depth - envelope + 1)}
    assert (await send(small, binding, at_limit)).state == "TASK_STATE_COMPLETED"
    assert await send(small, binding, over) == Outcome(limit="max_json_depth", value="10")
    await echo_works(small, binding)


async def test_a_task_keeps_its_latest_history_and_a_larger_history_length_is_not_refused(
    small: Served,
) -> None:
    asked = await small.client.send_message(A2AClient.text_request("ask"))
    assert asked.task.status.state == types.TASK_STATE_INPUT_REQUIRED
    reply = A2AClient.text_request("the answer")
    reply.message.task_id = asked.task.id
    done = await small.client.send_message(reply)
    assert done.task.status.state == types.TASK_STATE_COMPLETED
    # ask, "what should I work on?", the answer, "thanks, ...": the first left the task.
    task = await small.client.get_task(asked.task.id, history_length=100)
    texts = [m.parts[0].text for m in task.history]
    assert len(texts) == LIMITS.max_history_length
    assert texts[0] == "what should I work on?"
    assert texts[1:] == ["the answer", "thanks, you said: the answer"]
    over_json = await small.http.get(f"/tasks/{asked.task.id}", params={"historyLength": 100})
    assert len(over_json.json()["history"]) == LIMITS.max_history_length


# -- request bytes name their setting ------------------------------------------------------------


async def test_a_grpc_request_just_over_max_receive_message_bytes_names_it() -> None:
    most = 64 * 1024
    stack = AgentStack(ReferenceAgent(), "memory", grpc=ServerSettings(max_receive_message_bytes=most))
    async with stack, A2AClient(stack.grpc_address, timeout=WAIT) as client:
        request = A2AClient.text_request("echo " + "x" * most)
        with pytest.raises(errors.LimitExceededError) as caught:
            await client.send_message(request)
        assert (caught.value.limit, caught.value.metadata["limit_value"]) == (
            "max_receive_message_bytes",
            str(most),
        )
        answer = await client.send_message(A2AClient.text_request("echo small"))
        assert answer.task.status.state == types.TASK_STATE_COMPLETED


# -- the stalls the issue measured ------------------------------------------------------------------


class EchoProbe:
    """Another caller: echoes over its own gRPC connection, one after another, keeping the worst
    latency, while something else happens."""

    def __init__(self, address: str) -> None:
        own = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        self.channel = own
        self.client = A2AClient(address, timeout=WAIT, channel=own)
        self.worst = 0.0
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            answer = await self.client.send_message(A2AClient.text_request("echo probe"))
            assert answer.task.status.state == types.TASK_STATE_COMPLETED
            self.worst = max(self.worst, loop.time() - started)
            self.count += 1
            await asyncio.sleep(0.002)

    async def __aenter__(self) -> EchoProbe:
        await self.client.send_message(A2AClient.text_request("echo warm"))
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # a failed echo fails the test
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.channel.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def default() -> AsyncIterator[Served]:
    async with served(Limits()) as s:
        yield s


async def test_a_million_parts_over_json_rpc_are_refused_without_stalling_others(default: Served) -> None:
    parts = [{"text": "x"}] * 1_200_000
    params = {"message": {"messageId": "m", "role": "ROLE_USER", "parts": parts}}
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params})
    assert len(body) < 16 * 1024 * 1024  # under max_body_bytes: the parts limit has to refuse it
    async with EchoProbe(default.stack.grpc_address) as probe:
        started = time.monotonic()
        response = await default.http.post("/", content=body, headers={"content-type": "application/json"})
        took = time.monotonic() - started
        await asyncio.sleep(0.05)
    refused = _refused(response.json()["error"]["data"])
    print(
        f"\n1.2M parts over JSON-RPC ({len(body) / 2**20:.1f} MiB): refused in {took * 1000:.0f} ms; "
        f"worst echo of another caller meanwhile {probe.worst * 1000:.0f} ms ({probe.count} echoes)"
    )
    assert refused == Outcome(limit="max_parts", value="1000")
    assert probe.worst < 3.0  # the issue measured 31 s


async def test_a_million_parts_over_grpc_are_refused_without_stalling_others(default: Served) -> None:
    request = A2AClient.text_request("x")
    request.message.parts.extend([types.Part(text="x")] * 1_200_000)
    async with EchoProbe(default.stack.grpc_address) as probe:
        started = time.monotonic()
        with pytest.raises(errors.LimitExceededError) as caught:
            await default.client.send_message(request)
        took = time.monotonic() - started
        await asyncio.sleep(0.05)
    print(
        f"\n1.2M parts over gRPC: refused in {took * 1000:.0f} ms (the client's encoding included); "
        f"worst echo of another caller meanwhile {probe.worst * 1000:.0f} ms ({probe.count} echoes)"
    )
    assert caught.value.limit == "max_parts"
    assert probe.worst < 3.0


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_gigabyte_bytes_request_is_refused_at_once(default: Served, binding: str) -> None:
    async with EchoProbe(default.stack.grpc_address) as probe:
        started = time.monotonic()
        outcome = await send(default, binding, send_params("bytes 1073741824"))
        took = time.monotonic() - started
    print(
        f"\nbytes 1073741824 over {binding}: refused in {took * 1000:.0f} ms; worst echo of another "
        f"caller {probe.worst * 1000:.0f} ms"
    )
    assert outcome == Outcome(limit="max_artifact_bytes", value=str(SkillBounds().max_artifact_bytes))
    assert probe.worst < 3.0  # the issue measured 17 s
    await echo_works(default, binding)


async def test_the_reference_agent_bounds_are_settings() -> None:
    bounds = SkillBounds(max_stream_chunks=3, max_artifact_bytes=10, max_slow_seconds=0.5)
    async with served(Limits(), ReferenceAgent(bounds=bounds)) as s:
        for text, limit in (
            ("stream 4", "max_stream_chunks"),
            ("bytes 11", "max_artifact_bytes"),
            ("slow 0.6", "max_slow_seconds"),
        ):
            assert (await send(s, "grpc", send_params(text))).limit == limit
        for text in ("stream 3", "bytes 10", "slow 0.1"):
            assert (await send(s, "grpc", send_params(text))).state == "TASK_STATE_COMPLETED"
        with pytest.raises(errors.InvalidParamsError):
            await s.client.send_message(A2AClient.text_request("bytes -1"))
        skills = {skill.id: skill.description for skill in s.stack.card.skills}
        assert "N <= 10)" in skills["bytes"]
        assert "N <= 3)" in skills["stream"]
    with pytest.raises(ValueError, match="max_artifact_bytes"):
        SkillBounds(max_artifact_bytes=-1)


# -- large bodies are parsed off the loop, as orjson would parse them -------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [1, -2, 3.5, 1e10, true, false, null, "t\\u00e9xt", {"b": {}}], "a2": []}',
        b'{"big": 18446744073709551616, "neg": -9223372036854775809, "dup": 1, "dup": 2}',
        '{"emoji": "\U0001f600", "escaped": "\\ud83d\\ude00"}'.encode(),
    ],
)
async def test_a_body_parsed_in_a_thread_reads_as_orjson_reads_it(body: bytes) -> None:
    assert await transcoding.parse_body(body, in_thread_above=0) == orjson.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b'{"a": "\xff"}',
        b'{"a": 1} x',
        b'{"a": [1, 2}',
        b'["\\ud800"]',
        b"[" * 1100,
    ],
)
async def test_a_body_parsed_in_a_thread_refuses_what_orjson_refuses(body: bytes) -> None:
    with pytest.raises(errors.ParseError, match="invalid JSON"):
        transcoding.loads(body)
    with pytest.raises(errors.ParseError, match="invalid JSON"):
        await transcoding.parse_body(body, in_thread_above=0)


# -- an agent's large artifact ------------------------------------------------------------------------


async def test_an_artifact_update_larger_than_any_reader_could_receive_is_refused_to_the_agent() -> None:
    most = 1024 * 1024
    agent = ReferenceAgent(bounds=SkillBounds(max_artifact_bytes=4 * most))
    stack = AgentStack(agent, "memory", grpc=ServerSettings(max_send_message_bytes=most))
    async with stack, A2AClient(stack.grpc_address, timeout=WAIT) as client:
        answer = await client.send_message(A2AClient.text_request(f"bytes {2 * most}"))
        task = answer.task
        assert task.status.state == types.TASK_STATE_FAILED
        assert "max_send_message_bytes" in task.status.message.parts[0].text
        ok = await client.send_message(A2AClient.text_request(f"bytes {most // 2}"))
        assert ok.task.status.state == types.TASK_STATE_COMPLETED
        assert len(ok.task.artifacts[0].parts[0].raw) == most // 2


async def test_a_large_artifact_streamed_as_json_leaves_others_served() -> None:
    # Under retained_event_bytes (16 MiB): one event larger than what a task's log keeps would end
    # its reader's stream (EventsNotRetainedError).
    size = 12 * 1024 * 1024
    agent = ReferenceAgent(bounds=SkillBounds(max_artifact_bytes=size))
    async with served(Limits(), agent) as s, EchoProbe(s.stack.grpc_address) as probe:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendStreamingMessage",
            "params": send_params(f"bytes {size}"),
        }
        received = 0
        started = time.monotonic()
        async with s.http.stream("POST", "/", json=body) as response:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
        took = time.monotonic() - started
    print(
        f"\n{size >> 20} MiB artifact streamed as JSON-RPC SSE ({received >> 20} MiB) in {took:.2f} s; "
        f"worst echo of another caller {probe.worst * 1000:.0f} ms ({probe.count} echoes)"
    )
    assert received > size * 4 // 3  # base64
    assert probe.worst < 5.0


async def test_the_session_binding_holds_requests_to_the_same_limits(small: Served) -> None:
    async with small.client.session() as session:
        for params, limit in (
            (send_params(parts=6), "max_parts"),
            (with_free_form("data", 5), "max_struct_depth"),
        ):
            with pytest.raises(errors.LimitExceededError) as caught:
                await session.send_message(transcoding.decode(params, types.SendMessageRequest))
            assert caught.value.limit == limit
        answer = await session.send_message(
            transcoding.decode(send_params(parts=5), types.SendMessageRequest)
        )
        assert answer.task.status.state == types.TASK_STATE_COMPLETED


@pytest.mark.parametrize("binding", ["jsonrpc", "rest"])
async def test_a_large_legal_body_is_served_off_the_loop(default: Served, binding: str) -> None:
    params = send_params(parts=0)
    params["message"]["parts"] = [{"data": {"v": list(range(400))}} for _ in range(999)] + [{"text": "echo"}]
    assert len(orjson.dumps(params)) > BridgeSettings().offload_bytes  # parsed, judged, decoded in a thread
    async with EchoProbe(default.stack.grpc_address) as probe:
        started = time.monotonic()
        outcome = await send(default, binding, params)
        took = time.monotonic() - started
    size = len(orjson.dumps(params)) / 2**20
    print(
        f"\n{size:.1f} MiB of data parts over {binding}: served in {took:.2f} s; "
        f"worst echo of another caller {probe.worst * 1000:.0f} ms ({probe.count} echoes)"
    )
    assert outcome.state == "TASK_STATE_COMPLETED"
    assert probe.worst < 5.0
