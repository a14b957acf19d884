"""The benchmark agent for our runtime (``benchmarks.agents:EchoAgent`` for ``a2a-grpc serve``).

It does exactly what :mod:`benchmarks.workload` describes and nothing else, so
that the numbers measure the transport and the task machinery, not the agent.
``benchmarks.sdk_agent`` is its twin for the official SDK.
"""

from __future__ import annotations

from a2a_grpc import types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from benchmarks.workload import ASK, parse_command

__all__ = ["EchoAgent"]


def _card() -> types.AgentCard:
    card = types.AgentCard(
        name="bench-echo",
        description="Echoes its input as one artifact (benchmark agent)",
        version="1.0.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    card.capabilities.streaming = True
    card.skills.add(id="echo", name="Echo", description="echo the text as an artifact", tags=["echo"])
    return card


class EchoAgent(Agent):
    """Echo (one artifact), ``!stream N`` (N artifact events), ``!blob TOTAL CHUNK`` (raw bytes), or
    ``!ask`` (the task waits for input; the next message of the task is one of the others)."""

    card = _card()

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        text = context.text
        if text == ASK and context.task is None:  # SubscribeToTask fan-out: subscribers gather here
            await updater.require_input("go on")
            return
        if not text.startswith("!"):
            await updater.artifact([types.Part(text=text)], name="echo")
            await updater.complete()
            return
        command = parse_command(text)
        if command.kind == "stream":
            part = types.Part(text=command.text)
            for i in range(command.count):
                await updater.artifact(
                    [part],
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
                await updater.artifact(
                    [types.Part(raw=piece)],
                    artifact_id="blob",
                    name="blob",
                    append=sent > len(piece),
                    last_chunk=sent == command.count,
                )
        await updater.complete()
