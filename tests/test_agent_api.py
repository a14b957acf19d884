"""The agent author's API, over every binding: what RequestContext tells, work that outlives
``execute``, tasks ``execute`` abandons, chunked artifacts, data and file parts, and messages sent
to a task that is busy."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from google.protobuf import struct_pb2

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.parts import data_part, file_part, part_data, text_part, to_struct, to_value
from a2a_grpc.reference_agent import reference_card
from tests.bridge_peers import BINDINGS, Binding, Stack, collect, open_binding, serve_stack

ASYNC = pytest.mark.asyncio(loop_scope="module")
WAIT = 10.0


class ApiAgent(Agent):
    """One behaviour per first word of the message; see each branch."""

    def __init__(self) -> None:
        self.card = reference_card()
        self.handles: dict[str, TaskUpdater] = {}
        self.jobs: set[asyncio.Task[None]] = set()
        self.gate = asyncio.Event()

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        word = context.text.split(" ", 1)[0]
        if context.task is not None and context.task.status.state == types.TASK_STATE_AUTH_REQUIRED:
            word = "after-auth"
        match word:
            case "config":  # what the request's configuration said, as a data artifact
                push = context.push_config
                seen = {
                    "returnImmediately": context.return_immediately,
                    "acceptedOutputModes": list(context.accepted_output_modes),
                    "historyLength": context.history_length,
                    "pushUrl": push.url if push is not None else None,
                    "streaming": context.streaming,
                }
                await updater.artifact([data_part(seen)], name="config")
                await updater.complete()
            case "background":  # detach, finish later from a background job
                handle = await updater.detach()
                await handle.working("started in the background")
                job = asyncio.get_running_loop().create_task(self._later(handle))
                self.jobs.add(job)
                job.add_done_callback(self.jobs.discard)
            case "auth":  # wait for credentials that arrive out of band (grant())
                self.handles[updater.task_id] = await updater.detach()
                await updater.require_auth("sign in at https://example.invalid/login")
            case "after-auth":
                await updater.complete("a message after auth-required")
            case "abandon":  # returns leaving the task WORKING, without detaching
                await updater.working("on it")
            case "drop":  # detaches, then drops the updater while the task is WORKING
                await updater.detach()
                await updater.working("on it")
            case "append-no-id":
                await updater.artifact([types.Part(text="chunk")], append=True)
            case "append-unknown":
                await updater.artifact([types.Part(text="chunk")], artifact_id="nope", append=True)
            case "writer":
                writer = updater.artifact_writer(name="story")
                await writer.write("once")
                await writer.write([types.Part(text=" upon")])
                await writer.write(types.Part(text=" a time"), last=True)
                with pytest.raises(ValueError, match="last chunk"):
                    await writer.write("more")
                await updater.complete()
            case "parts":
                value = struct_pb2.Value()  # the standard class, from protobuf's default pool
                value.struct_value.update({"standard": True})
                await updater.artifact(
                    [
                        text_part("summary"),
                        data_part({"city": "Paris", "celsius": [18, 21]}),
                        data_part(value),
                        file_part(raw=b"\x89PNG", filename="chart.png", media_type="image/png"),
                        file_part(url="https://example.invalid/r.pdf", media_type="application/pdf"),
                    ],
                    name="parts",
                )
                await updater.complete()
            case "slow-ask":  # asks for input, then keeps running a little (still at rest)
                await updater.require_input("more please")
                await self.gate.wait()
            case "slow":
                await updater.working()
                await self.gate.wait()
                await updater.complete("done")
            case _:
                await updater.artifact([types.Part(text=context.text)], name="echo")
                await updater.complete()

    async def _later(self, handle: TaskUpdater) -> None:
        await asyncio.sleep(0.05)
        writer = handle.artifact_writer(name="late")
        await writer.write("made after execute returned", last=True)
        await handle.complete("finished in the background")

    async def grant(self, task_id: str) -> None:
        """Credentials arrived out of band: continue the task that waited for them."""
        handle = self.handles.pop(task_id)
        await handle.working("signed in")
        await handle.complete("done with credentials")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with serve_stack(ApiAgent()) as served:
        yield served


@contextlib.asynccontextmanager
async def binding(kind: str, stack: Stack) -> AsyncIterator[Binding]:
    async with open_binding(kind, stack) as b:
        yield b


def request(text: str, **options: object) -> types.SendMessageRequest:
    return A2AClient.text_request(text, **options)  # type: ignore[arg-type]


async def wait_state(b: Binding, task_id: str, state: int) -> types.Task:
    async with asyncio.timeout(WAIT):
        while True:
            task = await b.get_task(types.GetTaskRequest(id=task_id))
            if task.status.state == state:
                return task
            await asyncio.sleep(0.02)


def agent_of(stack: Stack) -> ApiAgent:
    agent = stack.server.agent
    assert isinstance(agent, ApiAgent)
    return agent


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_request_context_exposes_the_configuration(stack: Stack, kind: str) -> None:
    async with binding(kind, stack) as b:
        plain = await b.send_message(request("config"))
        assert part_data(plain.task.artifacts[0].parts[0]) == {
            "returnImmediately": False,
            "acceptedOutputModes": [],
            "historyLength": None,
            "pushUrl": None,
            "streaming": False,
        }
        configured = request("config", return_immediately=True)
        configured.configuration.accepted_output_modes.extend(["application/json", "text/plain"])
        configured.configuration.history_length = 3
        configured.configuration.task_push_notification_config.url = "https://hooks.example.com/hook"
        first = await b.send_message(configured)
        task = await wait_state(b, first.task.id, types.TASK_STATE_COMPLETED)
        assert part_data(task.artifacts[0].parts[0]) == {
            "returnImmediately": True,
            "acceptedOutputModes": ["application/json", "text/plain"],
            "historyLength": 3.0,
            "pushUrl": "https://hooks.example.com/hook",
            "streaming": False,
        }
        events = await collect(b.send_streaming_message(request("config")))
        artifact = next(e.artifact_update.artifact for e in events if e.HasField("artifact_update"))
        assert part_data(artifact.parts[0])["streaming"] is True


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_a_detached_updater_finishes_the_task_after_execute_returns(stack: Stack, kind: str) -> None:
    async with binding(kind, stack) as b:
        # Not return-immediately: the answer waits until the background job completes the task.
        task = (await b.send_message(request("background"))).task
        assert task.status.state == types.TASK_STATE_COMPLETED
        assert task.status.message.parts[0].text == "finished in the background"
        assert [a.parts[0].text for a in task.artifacts] == ["made after execute returned"]
        # A stream sees it through to the end, too.
        events = await collect(b.send_streaming_message(request("background")))
        states = [e.status_update.status.state for e in events if e.HasField("status_update")]
        assert states[-1] == types.TASK_STATE_COMPLETED
        assert any(e.HasField("artifact_update") for e in events)


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_credentials_out_of_band_continue_an_auth_required_task(stack: Stack, kind: str) -> None:
    async with binding(kind, stack) as b:
        task = (await b.send_message(request("auth"))).task
        assert task.status.state == types.TASK_STATE_AUTH_REQUIRED
        stream = b.subscribe_to_task(types.SubscribeToTaskRequest(id=task.id))
        async with contextlib.aclosing(stream):
            snapshot = await anext(stream)
            assert snapshot.task.status.state == types.TASK_STATE_AUTH_REQUIRED
            await agent_of(stack).grant(task.id)
            rest = [e async for e in stream]
        assert [e.status_update.status.state for e in rest] == [
            types.TASK_STATE_WORKING,
            types.TASK_STATE_COMPLETED,
        ]
        done = await b.get_task(types.GetTaskRequest(id=task.id))
        assert done.status.message.parts[0].text == "done with credentials"


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_a_task_execute_abandons_is_failed_saying_so(
    stack: Stack, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with binding(kind, stack) as b:
        with caplog.at_level(logging.WARNING, "a2a_grpc.handler"):
            task = (await b.send_message(request("abandon"))).task
        assert task.status.state == types.TASK_STATE_FAILED
        assert "without finishing it (it was TASK_STATE_WORKING)" in task.status.message.parts[0].text
        assert any("without detaching" in r.getMessage() for r in caplog.records)
        events = await collect(b.send_streaming_message(request("abandon")))  # ends, does not hang
        assert events[-1].status_update.status.state == types.TASK_STATE_FAILED


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_a_dropped_detached_updater_fails_its_task(stack: Stack, kind: str) -> None:
    async with binding(kind, stack) as b:
        first = await b.send_message(request("drop", return_immediately=True))
        gc.collect()  # CPython frees it at once; collect() makes that certain on any runtime
        task = await wait_state(b, first.task.id, types.TASK_STATE_FAILED)
        assert "without finishing it" in task.status.message.parts[0].text


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_chunked_artifacts_the_safe_way(
    stack: Stack, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with binding(kind, stack) as b:
        events = await collect(b.send_streaming_message(request("writer")))
        updates = [e.artifact_update for e in events if e.HasField("artifact_update")]
        assert [(u.append, u.last_chunk) for u in updates] == [(False, False), (True, False), (True, True)]
        assert len({u.artifact.artifact_id for u in updates}) == 1
        task = await b.get_task(types.GetTaskRequest(id=updates[0].task_id))
        assert len(task.artifacts) == 1
        assert "".join(p.text for p in task.artifacts[0].parts) == "once upon a time"
        # Appending without the id (or to an artifact that does not exist) is refused: it would
        # silently start a new artifact. The error reaches the log; the caller gets "internal error".
        refusals = (("append-no-id", "needs artifact_id"), ("append-unknown", "no artifact 'nope' to append"))
        for text, said in refusals:
            with caplog.at_level(logging.ERROR), pytest.raises(errors.InternalError):
                await b.send_message(request(text))
            assert any(said in str(r.exc_info[1]) for r in caplog.records if r.exc_info), text


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_data_and_file_parts(stack: Stack, kind: str) -> None:
    async with binding(kind, stack) as b:
        task = (await b.send_message(request("parts"))).task
        parts = task.artifacts[0].parts
        assert [p.WhichOneof("content") for p in parts] == ["text", "data", "data", "raw", "url"]
        assert part_data(parts[1]) == {"city": "Paris", "celsius": [18.0, 21.0]}
        assert part_data(parts[2]) == {"standard": True}
        assert (parts[3].raw, parts[3].filename) == (b"\x89PNG", "chart.png")
        assert parts[3].media_type == "image/png"
        assert parts[4].url == "https://example.invalid/r.pdf"


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_a_message_to_a_working_task_is_refused_and_the_task_carries_on(
    stack: Stack, kind: str
) -> None:
    agent = agent_of(stack)
    agent.gate.clear()
    async with binding(kind, stack) as b:
        task = (await b.send_message(request("slow", return_immediately=True))).task
        await wait_state(b, task.id, types.TASK_STATE_WORKING)
        for send in (
            lambda: b.send_message(request("echo interloper", task_id=task.id)),
            lambda: collect(b.send_streaming_message(request("echo interloper", task_id=task.id))),
        ):
            with pytest.raises(errors.UnsupportedOperationError) as refused:
                await send()
            assert refused.value.metadata == {"task_id": task.id, "state": "TASK_STATE_WORKING"}
            assert "busy" in refused.value.message
        agent.gate.set()
        done = await wait_state(b, task.id, types.TASK_STATE_COMPLETED)
        assert done.status.message.parts[0].text == "done"
        assert not done.artifacts  # the interloper produced nothing
        assert [m.parts[0].text for m in done.history if m.role == types.ROLE_USER] == ["slow"]


@ASYNC
@pytest.mark.parametrize("kind", BINDINGS)
async def test_input_required_takes_one_message_at_a_time(stack: Stack, kind: str) -> None:
    agent = agent_of(stack)
    agent.gate.clear()
    async with binding(kind, stack) as b:
        # The first execute asked for input and still runs: the task is at rest, a message goes in.
        asked = (await b.send_message(request("slow-ask"))).task
        assert asked.status.state == types.TASK_STATE_INPUT_REQUIRED
        reply = request("slow", task_id=asked.id, return_immediately=True)
        second = (await b.send_message(reply)).task
        await wait_state(b, second.id, types.TASK_STATE_WORKING)
        with pytest.raises(errors.UnsupportedOperationError):
            await b.send_message(request("echo third", task_id=asked.id))
        agent.gate.set()
        await wait_state(b, asked.id, types.TASK_STATE_COMPLETED)


@pytest.mark.asyncio
async def test_two_racing_messages_to_an_input_required_task_start_one_execution() -> None:
    async with serve_stack(ApiAgent()) as stack, binding("grpc", stack) as b:
        agent = agent_of(stack)
        asked = (await b.send_message(request("slow-ask"))).task
        agent.gate.set()
        outcomes = await asyncio.gather(
            *(b.send_message(request("echo racer", task_id=asked.id)) for _ in range(5)),
            return_exceptions=True,
        )
        accepted = [o for o in outcomes if isinstance(o, types.SendMessageResponse)]
        refused = [o for o in outcomes if isinstance(o, errors.UnsupportedOperationError)]
        assert (len(accepted), len(refused)) == (1, 4), outcomes
        task = await b.get_task(types.GetTaskRequest(id=asked.id))
        assert [a.parts[0].text for a in task.artifacts] == ["echo racer"]


def test_parts_take_plain_values_and_standard_protobuf_messages() -> None:
    standard = struct_pb2.Struct()
    standard.update({"a": [1, "b", None]})
    assert part_data(data_part(standard)) == {"a": [1.0, "b", None]}
    assert part_data(data_part(struct_pb2.Value(string_value="x"))) == "x"
    listed = struct_pb2.ListValue()
    listed.extend([1, 2])
    assert part_data(data_part(listed)) == [1.0, 2.0]
    assert to_value(None).WhichOneof("kind") == "null_value"
    assert dict(to_struct({"k": "v"})) == {"k": "v"}
    assert types.Part(data=types.Value(bool_value=True)).data.bool_value is True
    with pytest.raises(TypeError, match=r"value\['when'\]: datetime is not a JSON value"):
        data_part({"when": datetime.datetime.now()})
    with pytest.raises(TypeError, match=r"not a lf\.a2a\.v1\.Task message"):
        data_part(types.Task())
    with pytest.raises(TypeError, match="object keys must be str"):
        data_part({1: "x"})
    with pytest.raises(TypeError, match="a Struct holds a JSON object"):
        to_struct([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"exactly one of raw= .* or url="):
        file_part(raw=b"x", url="https://example.invalid")
    with pytest.raises(ValueError, match="not a data part: it holds text"):
        part_data(text_part("x"))
    deep: object = "leaf"
    for _ in range(150):
        deep = [deep]
    with pytest.raises(TypeError, match="nests more than 100 levels"):
        data_part(deep)
