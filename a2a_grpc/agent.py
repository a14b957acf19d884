"""The API an agent author implements: a card, ``execute`` and (optionally) ``cancel``.

The same agent is served unchanged by every binding (gRPC, JSON-RPC, HTTP+JSON).
``execute`` receives a :class:`RequestContext` (the incoming message and the
task it continues, if any) and a :class:`TaskUpdater` through which it reports
progress: status changes, artifacts, or one direct reply message.

    class Echo(Agent):
        card = AgentCard(name="echo", ...)

        async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
            await updater.artifact([Part(text=ctx.text)], name="echo")
            await updater.complete()

A task comes into being with the first status or artifact the agent reports;
an agent that answers with :meth:`TaskUpdater.reply` creates no task at all.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from a2a_grpc import types

if TYPE_CHECKING:
    from a2a_grpc.taskrun import Execution

__all__ = ["Agent", "RequestContext", "TaskUpdater", "new_id", "text_message"]


def new_id() -> str:
    return str(uuid.uuid4())


def text_message(
    text: str, *, role: types.Role = types.ROLE_AGENT, task_id: str = "", context_id: str = ""
) -> types.Message:
    """A message with one text part (an agent's status explanation, a reply)."""
    return types.Message(
        message_id=new_id(), role=role, task_id=task_id, context_id=context_id, parts=[types.Part(text=text)]
    )


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the agent is asked to do."""

    message: types.Message
    """The incoming message (its task_id and context_id are filled in)."""
    task_id: str
    context_id: str
    task: types.Task | None
    """The task this message continues, as it stood before the message; None for a new task."""
    tenant: str = ""
    metadata: Mapping[str, object] = field(default_factory=dict)
    """The request's free-form metadata (``SendMessageRequest.metadata``)."""
    extensions: frozenset[str] = frozenset()
    """Extension URIs the caller asked for (``a2a-extensions``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Call metadata (gRPC metadata or allow-listed HTTP headers), lower-case keys."""

    @property
    def text(self) -> str:
        """The text parts of the incoming message, joined by newlines."""
        return "\n".join(p.text for p in self.message.parts if p.WhichOneof("content") == "text")


class TaskUpdater:
    """Reports an agent's progress on one request. Every method may wait (backpressure)."""

    __slots__ = ("_execution",)

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    @property
    def task_id(self) -> str:
        return self._execution.context.task_id

    @property
    def context_id(self) -> str:
        return self._execution.context.context_id

    def message(self, text: str) -> types.Message:
        """An agent message of this task with one text part."""
        return text_message(text, task_id=self.task_id, context_id=self.context_id)

    async def status(self, state: int, message: types.Message | str | None = None) -> None:
        """Move the task to ``state``; refused (InvalidTransitionError) if the lifecycle forbids it."""
        if isinstance(message, str):
            message = self.message(message)
        await self._execution.status(state, message)

    async def working(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_WORKING, message)

    async def complete(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_COMPLETED, message)

    async def fail(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_FAILED, message)

    async def reject(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_REJECTED, message)

    async def require_input(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_INPUT_REQUIRED, message)

    async def require_auth(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_AUTH_REQUIRED, message)

    async def cancelled(self, message: types.Message | str | None = None) -> None:
        await self.status(types.TASK_STATE_CANCELED, message)

    async def artifact(
        self,
        parts: Iterable[types.Part],
        *,
        artifact_id: str | None = None,
        name: str = "",
        description: str = "",
        append: bool = False,
        last_chunk: bool = False,
    ) -> str:
        """Add an artifact, or (``append=True``) more parts to one already sent. Returns its id."""
        # Built in place inside the event: the run copies it once, into the task it keeps.
        event = types.StreamResponse()
        update = event.artifact_update
        update.append, update.last_chunk = append, last_chunk
        artifact = update.artifact
        artifact.artifact_id = artifact_id or new_id()
        artifact.name, artifact.description = name, description
        artifact.parts.extend(parts)
        await self._execution.artifact(event)
        return artifact.artifact_id

    async def reply(self, message: types.Message | str) -> None:
        """Answer with one message and no task. Only valid as the agent's first and only output."""
        if isinstance(message, str):
            message = text_message(message, context_id=self.context_id)
        await self._execution.reply(message)


class Agent(abc.ABC):
    """An A2A agent. Subclass it, set ``card``, implement ``execute``."""

    card: types.AgentCard
    """The public agent card. The server fills in ``supported_interfaces``."""

    extended_card: types.AgentCard | None = None
    """The card for authenticated callers (GetExtendedAgentCard), if the agent has one."""

    @abc.abstractmethod
    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Handle one incoming message. Raise an ``a2a_grpc.errors.A2AError`` to refuse it."""

    async def cancel(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Stop work on a task. The default marks it canceled; the running ``execute`` is cancelled."""
        await updater.cancelled()
