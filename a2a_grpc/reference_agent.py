"""The reference agent: one skill per protocol path, chosen by the message's first word.

It ships with the library so that every path of the protocol can be reached
from a terminal, a test or a benchmark:

| message                | what happens                                                             |
| ---------------------- | ------------------------------------------------------------------------ |
| ``echo TEXT`` or other | a task completes with one artifact holding TEXT (the whole message)      |
| ``reply TEXT``         | a direct Message answers, no task is created                             |
| ``stream N``           | N artifact chunks (appended to one artifact), then completes             |
| ``slow SECONDS``       | works for SECONDS, reporting progress; honours CancelTask                |
| ``bytes N``            | one artifact with a raw part of N bytes                                  |
| ``fail [TEXT]``        | the task fails with TEXT                                                 |
| ``ask``                | input-required; the next message to the task completes it               |
| ``delegate ADDR TEXT`` | sends TEXT to the agent at ADDR over A2A gRPC, relays its artifacts      |
"""

from __future__ import annotations

import asyncio

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater

__all__ = ["ReferenceAgent", "reference_card"]

MAX_STREAM_CHUNKS = 100_000
MAX_BYTES = 1 << 30
MAX_SLOW_SECONDS = 3600.0


def _skill(skill_id: str, name: str, description: str, example: str) -> types.AgentSkill:
    return types.AgentSkill(
        id=skill_id, name=name, description=description, tags=[skill_id], examples=[example]
    )


def reference_card() -> types.AgentCard:
    card = types.AgentCard(
        name="a2a-grpc reference agent",
        description="Reaches every A2A protocol path; the first word of the message picks the behaviour.",
        version="0.1.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/octet-stream"],
        provider=types.AgentProvider(organization="a2a-grpc", url="https://example.invalid/a2a-grpc"),
        skills=[
            _skill(
                "echo",
                "Echo",
                "Any message not starting with another skill's word: a task completes with "
                "one artifact holding the message text.",
                "echo hello",
            ),
            _skill(
                "reply",
                "Direct reply",
                "'reply TEXT': answers with a Message and creates no task.",
                "reply hi",
            ),
            _skill(
                "stream",
                "Stream chunks",
                "'stream N': N artifact chunks appended to one artifact "
                f"(N <= {MAX_STREAM_CHUNKS}), then completes.",
                "stream 5",
            ),
            _skill(
                "slow",
                "Slow task",
                "'slow SECONDS': stays working for SECONDS, reporting progress every "
                "0.1 s; CancelTask stops it.",
                "slow 2",
            ),
            _skill(
                "bytes",
                "Large artifact",
                f"'bytes N': one artifact with a raw part of N bytes (N <= {MAX_BYTES}).",
                "bytes 1048576",
            ),
            _skill(
                "fail",
                "Failure",
                "'fail [TEXT]': the task fails with TEXT as its status message.",
                "fail oops",
            ),
            _skill(
                "ask",
                "Multi-turn",
                "'ask': the task asks for input (input-required); the next message sent "
                "to the same task completes it, quoting that message.",
                "ask",
            ),
            _skill(
                "delegate",
                "Delegation",
                "'delegate HOST:PORT TEXT': sends TEXT to the A2A agent at HOST:PORT "
                "over gRPC and relays the artifacts it produces.",
                "delegate 127.0.0.1:50052 echo hi",
            ),
        ],
    )
    card.capabilities.streaming = True
    card.capabilities.push_notifications = True
    card.capabilities.extended_agent_card = True
    return card


def _count(word: str, arg: str, limit: float, kind: type[int] | type[float]) -> float:
    try:
        value = kind(arg)
    except ValueError:
        raise errors.InvalidParamsError(f"'{word}' takes a number, not {arg!r}") from None
    if not 0 <= value <= limit:
        raise errors.InvalidParamsError(f"'{word}' takes a number from 0 to {limit}, not {arg}")
    return value


class ReferenceAgent(Agent):
    """See the module docstring for the skills."""

    def __init__(self) -> None:
        self.card = reference_card()
        extended = types.AgentCard()
        extended.CopyFrom(self.card)
        extended.description += " (extended card: shown to authenticated callers)"
        self.extended_card = extended

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        if context.task is not None and context.task.status.state == types.TASK_STATE_INPUT_REQUIRED:
            await updater.working()
            await updater.complete(f"thanks, you said: {context.text}")
            return
        word, _, rest = context.text.strip().partition(" ")
        rest = rest.strip()
        match word.lower():
            case "reply":
                await updater.reply(rest or "hello")
            case "stream":
                await self._stream(updater, int(_count(word, rest or "3", MAX_STREAM_CHUNKS, int)))
            case "slow":
                await self._slow(updater, _count(word, rest or "1", MAX_SLOW_SECONDS, float))
            case "bytes":
                size = int(_count(word, rest or "1024", MAX_BYTES, int))
                await updater.artifact(
                    [types.Part(raw=b"\x00" * size, media_type="application/octet-stream")],
                    name="bytes",
                    last_chunk=True,
                )
                await updater.complete()
            case "fail":
                await updater.fail(rest or "failed on request")
            case "ask":
                await updater.require_input("what should I work on?")
            case "delegate":
                await self._delegate(updater, rest)
            case _:
                await updater.artifact([types.Part(text=context.text)], name="echo", last_chunk=True)
                await updater.complete()

    async def _stream(self, updater: TaskUpdater, n: int) -> None:
        await updater.working()
        artifact_id = None
        for i in range(n):
            artifact_id = await updater.artifact(
                [types.Part(text=f"chunk {i}")],
                artifact_id=artifact_id,
                name="stream",
                append=i > 0,
                last_chunk=i == n - 1,
            )
        await updater.complete()

    async def _slow(self, updater: TaskUpdater, seconds: float) -> None:
        await updater.working("starting")
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(0.1, left))
            await updater.working(f"{max(0.0, end - loop.time()):.1f}s left")
        await updater.complete("done")

    async def _delegate(self, updater: TaskUpdater, rest: str) -> None:
        from a2a_grpc.client import A2AClient

        address, _, text = rest.partition(" ")
        if not address or not text:
            raise errors.InvalidParamsError(
                "'delegate' takes HOST:PORT and a message: delegate 127.0.0.1:50052 echo hi"
            )
        await updater.working(f"delegating to {address}")
        async with A2AClient(address, timeout=60.0) as client:
            response = await client.send_message(A2AClient.text_request(text))
        if response.HasField("message"):
            await updater.artifact(response.message.parts, name=f"from {address}", last_chunk=True)
            await updater.complete()
            return
        task = response.task
        for artifact in task.artifacts:
            await updater.artifact(artifact.parts, name=artifact.name or f"from {address}", last_chunk=True)
        if task.status.state == types.TASK_STATE_COMPLETED:
            await updater.complete(f"delegated task {task.id} completed")
        else:
            await updater.fail(f"delegated task {task.id} ended {types.TaskState.Name(task.status.state)}")
