"""The benchmark agent for the official a2a-sdk: :class:`SdkEchoExecutor`, twin of ``EchoAgent``.

It reports through the SDK's own ``TaskUpdater``, the way an SDK user writes an
agent, and does what :mod:`benchmarks.workload` describes.
"""

from __future__ import annotations

from a2a.helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.tasks import TaskUpdater
from a2a.types import a2a_pb2 as sdk

from benchmarks.workload import parse_command

__all__ = ["SdkEchoExecutor", "sdk_card"]


def sdk_card() -> sdk.AgentCard:
    card = sdk.AgentCard(
        name="bench-echo-sdk",
        description="Echoes its input as one artifact (benchmark agent, a2a-sdk)",
        version="1.0.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[sdk.AgentSkill(id="echo", name="Echo", description="echo the text", tags=["echo"])],
    )
    card.capabilities.streaming = True
    return card


class SdkEchoExecutor(AgentExecutor):
    """Echo (one artifact), ``!stream N`` (N artifact events) or ``!blob TOTAL CHUNK`` (raw bytes)."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        text = context.get_user_input()
        if not text.startswith("!"):
            await updater.add_artifact([sdk.Part(text=text)], name="echo", last_chunk=True)
            await updater.complete()
            return
        command = parse_command(text)
        if command.kind == "stream":
            for i in range(command.count):
                await updater.add_artifact(
                    [sdk.Part(text=command.text)],
                    artifact_id="stream",
                    name="stream",
                    append=i > 0,
                    last_chunk=i == command.count - 1,
                )
        else:
            chunk = b"\xa5" * command.chunk
            sent = 0
            while sent < command.count:
                piece = chunk if command.count - sent >= len(chunk) else chunk[: command.count - sent]
                sent += len(piece)
                await updater.add_artifact(
                    [sdk.Part(raw=piece)],
                    artifact_id="blob",
                    name="blob",
                    append=sent > len(piece),
                    last_chunk=sent == command.count,
                )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id or "", context.context_id or "").cancel()
