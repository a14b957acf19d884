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
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from a2a_grpc import types

if TYPE_CHECKING:  # the security package builds on the call seam, which builds on this module
    from a2a_grpc.security.identity import Principal

__all__ = ["Agent", "ArtifactWriter", "RequestContext", "TaskUpdater", "new_id", "text_message"]


# new_id runs three times per task (task, context, artifact). uuid.uuid4() builds a UUID object
# to print it (~2.3 µs); this formats the same text from the same source directly (~0.8 µs):
# 16 bytes of os.urandom, version 4, the RFC 9562 variant (10xx) in the fourth group.
_VARIANT_DIGIT = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def new_id() -> str:
    """A random UUID (version 4) as text: task, context, message and artifact ids."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:]}"


def text_message(
    text: str, *, role: types.Role = types.ROLE_AGENT, task_id: str = "", context_id: str = ""
) -> types.Message:
    """A message with one text part (an agent's status explanation, a reply)."""
    return types.Message(
        message_id=new_id(), role=role, task_id=task_id, context_id=context_id, parts=[types.Part(text=text)]
    )


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the agent is asked to do, and how the caller asked."""

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
    configuration: types.SendMessageConfiguration = field(default_factory=types.SendMessageConfiguration)
    """The request's ``SendMessageConfiguration`` as sent (read it; the properties below say the same)."""
    streaming: bool = False
    """Whether the caller follows the task on a stream (SendStreamingMessage), not a single answer."""
    resumed: bool = False
    """Whether this is :meth:`Agent.resume` carrying on after the server stopped (no caller waits)."""
    principal: Principal | None = None
    """Who sent the message, as the server's authentication established it (None without
    authentication, and for a resumed task): an agent may authorize on it (spec 7.5)."""

    @property
    def text(self) -> str:
        """The text parts of the incoming message, joined by newlines."""
        return "\n".join(p.text for p in self.message.parts if p.WhichOneof("content") == "text")

    @property
    def return_immediately(self) -> bool:
        """The caller takes the task as soon as it exists and will poll, subscribe or be notified."""
        return self.configuration.return_immediately

    @property
    def accepted_output_modes(self) -> tuple[str, ...]:
        """Media types the caller can consume; empty means the caller did not say."""
        return tuple(self.configuration.accepted_output_modes)

    @property
    def history_length(self) -> int | None:
        """How many history messages the caller wants back with the task; None: all of them."""
        config = self.configuration
        return config.history_length if config.HasField("history_length") else None

    @property
    def push_config(self) -> types.TaskPushNotificationConfig | None:
        """The webhook sent with the message (already registered for the task), if any."""
        config = self.configuration
        if not config.HasField("task_push_notification_config"):
            return None
        return config.task_push_notification_config


class Reporter(Protocol):
    """What a TaskUpdater reports to: the server's side of one request (``a2a_grpc._execution``)."""

    @property
    def context(self) -> RequestContext: ...

    @property
    def state(self) -> int: ...

    async def status(self, state: int, message: types.Message | None) -> None: ...

    async def artifact(self, event: types.StreamResponse) -> None: ...

    async def reply(self, message: types.Message) -> None: ...

    async def detach(self, updater: TaskUpdater) -> None: ...


class TaskUpdater:
    """Reports an agent's progress on one request. Every method may wait (backpressure).

    Valid while ``execute`` runs; :meth:`detach` keeps it valid afterwards (see there).
    """

    __slots__ = ("__weakref__", "_execution")

    def __init__(self, execution: Reporter) -> None:
        self._execution = execution

    @property
    def task_id(self) -> str:
        return self._execution.context.task_id

    @property
    def context_id(self) -> str:
        return self._execution.context.context_id

    @property
    def state(self) -> int:
        """The task's current state (``TASK_STATE_UNSPECIFIED`` before the task exists)."""
        return self._execution.state

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
        """Add an artifact, or (``append=True``) more parts to one already sent. Returns its id.

        Appending needs the id the first call returned (ValueError otherwise: a chunk without it
        would silently start a new artifact). For content produced piece by piece,
        :meth:`artifact_writer` keeps the id for you.
        """
        if append and not artifact_id:
            raise ValueError(
                "append=True needs artifact_id (the id the first call returned); "
                "updater.artifact_writer() keeps it for you"
            )
        # Built in place inside the event: the run copies it once, into the task it keeps.
        event = types.StreamResponse()
        update = event.artifact_update
        update.append, update.last_chunk = append, last_chunk
        artifact = update.artifact
        artifact.artifact_id = artifact_id or new_id()
        artifact.name, artifact.description = name, description
        artifact.parts.extend(parts)
        if not artifact.parts:
            raise ValueError("an artifact update needs at least one part")
        await self._execution.artifact(event)
        return artifact.artifact_id

    def artifact_writer(self, *, name: str = "", description: str = "") -> ArtifactWriter:
        """One artifact written in chunks: ``await writer.write(parts)``, the last with ``last=True``."""
        return ArtifactWriter(self, name=name, description=description)

    async def reply(self, message: types.Message | str) -> None:
        """Answer with one message and no task. Only valid as the agent's first and only output."""
        if isinstance(message, str):
            message = text_message(message, context_id=self.context_id)
        await self._execution.reply(message)

    async def detach(self) -> TaskUpdater:
        """Keep this updater valid after ``execute`` returns, to finish the task later.

        For work that outlives the call: a background job, or credentials that arrive out of
        band while the task is AUTH_REQUIRED. The task is created now if it does not exist yet
        (SUBMITTED). Keep the returned updater (it is this one) and drive the task to a terminal
        state with it. The server does not fail a detached task when ``execute`` returns; but if
        the updater is dropped (garbage-collected) while the task is SUBMITTED or WORKING, the
        task is failed, saying so: nothing may look alive that nothing runs.
        """
        await self._execution.detach(self)
        return self


class ArtifactWriter:
    """One artifact sent in chunks: the first write creates it, the next ones append to it.

        writer = updater.artifact_writer(name="story")
        async for piece in generate():
            await writer.write([Part(text=piece)])
        await writer.write([Part(text="The end.")], last=True)

    ``last=True`` marks the final chunk (``lastChunk`` on the wire); writing after it is an error.
    """

    __slots__ = ("_closed", "_started", "_updater", "artifact_id", "description", "name")

    def __init__(self, updater: TaskUpdater, *, name: str = "", description: str = "") -> None:
        self._updater = updater
        self.artifact_id = new_id()
        self.name = name
        self.description = description
        self._started = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the last chunk has been written."""
        return self._closed

    async def write(self, parts: Iterable[types.Part] | types.Part | str, *, last: bool = False) -> None:
        """Send one chunk: a part, several parts, or a string (one text part)."""
        if self._closed:
            raise ValueError(f"artifact {self.artifact_id} is complete: its last chunk was written")
        if isinstance(parts, str):
            parts = [types.Part(text=parts)]
        elif isinstance(parts, types.Part):
            parts = [parts]
        await self._updater.artifact(
            parts,
            artifact_id=self.artifact_id,
            name=self.name,
            description=self.description,
            append=self._started,
            last_chunk=last,
        )
        self._started = True
        self._closed = last


class Agent(abc.ABC):
    """An A2A agent. Subclass it, set ``card``, implement ``execute``."""

    card: types.AgentCard
    """The public agent card. The server fills in ``supported_interfaces``."""

    extended_card: types.AgentCard | None = None
    """The card for authenticated callers (GetExtendedAgentCard), if the agent has one."""

    @abc.abstractmethod
    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Handle one incoming message. Raise an ``a2a_grpc.errors.A2AError`` to refuse it."""

    resumable: ClassVar[bool] = False
    """Whether a task this agent was working on when its server stopped or died is resumed when
    a server starts again on the same store (with :meth:`resume`), instead of being failed."""

    async def cancel(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Stop work on a task. The default marks it canceled; the running ``execute`` is cancelled."""
        await updater.cancelled()

    async def resume(self, context: RequestContext, updater: TaskUpdater) -> None:
        """Carry on with a task whose server stopped or died while it was SUBMITTED or WORKING.

        Called at start, for agents that declare ``resumable = True``, once per such task.
        ``context.task`` is the task as it was stored (every artifact part any client was sent
        included), ``context.message`` the last message of its history from the client, and
        ``context.resumed`` is True. The default runs :meth:`execute` again with that context.
        """
        await self.execute(context, updater)

    async def aclose(self) -> None:
        """Release what the agent holds (pooled connections to peers, files): called once when a
        server serving it stops, after every task it ran has ended. The default does nothing."""
        return None
