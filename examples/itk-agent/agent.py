"""The behaviour the A2A Integration Test Kit expects of an agent, on a2a-grpc's Agent API.

An incoming message carries an ``itk.Instruction`` (instruction.proto). The agent runs it:

* ``return_response``: its text;
* ``steps``: each step in order, the texts concatenated;
* ``call_agent``: one call to the next agent (:mod:`peer`) over the transport named, with the
  nested instruction, in the behaviour named (send, push notification, resubscribe), collecting
  the text of every agent message the answer carries.

The task goes SUBMITTED, WORKING, then COMPLETED with an agent status message holding the texts
joined by newlines (a status update, so that a streaming caller sees it). With no instruction in
the message the task FAILS with "No valid instruction found in request".

Hold (any ``return_response.hold_task`` in the tree, set by the kit's resubscribe chains): the
result goes out as a WORKING status with the marker ``task-finished`` after it, and the task stays
WORKING for ``hold_seconds`` (10 in the kit's agents) so that a caller that dropped its stream
finds it again with SubscribeToTask. The marker stays in the task's status message (what a
subscription's first event, the task snapshot, shows) until the hold ends; the task then
COMPLETES with the same message. Cancelling the task during the hold ends it CANCELED.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import AsyncIterator

import instruction_pb2 as itk
from google.protobuf.message import DecodeError
from peer import Peer, open_peer

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater, new_id

__all__ = ["FINISHED", "NO_INSTRUCTION", "ItkAgent", "extract_instruction", "texts_of"]

log = logging.getLogger("itk.agent")

NO_INSTRUCTION = "No valid instruction found in request"
FINISHED = "task-finished"
"""The marker a held task's status message ends with: the resubscribing caller reads until it."""
MEDIA_TYPE = "application/x-protobuf"
FILENAME = "instruction.bin"
PUSH_TOKEN = "itk-token"
"""The token of the push configs this agent registers on the calls it makes (the kit's)."""
_TERMINAL_FAILURES = (types.TASK_STATE_FAILED, types.TASK_STATE_REJECTED, types.TASK_STATE_CANCELED)


def _parse(raw: bytes) -> itk.Instruction | None:
    instruction = itk.Instruction()
    try:
        instruction.ParseFromString(raw)
    except DecodeError:
        return None
    # Any bytes may parse as an empty message: an instruction must say what to do.
    return instruction if instruction.WhichOneof("step") else None


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def _parse_raw(raw: bytes) -> itk.Instruction | None:
    """``raw`` as an instruction, or as the ASCII base64 of one: a v0.3 ``file_with_bytes`` that
    came through undecoded (a peer that double-encodes). Base64 text never parses as a step: the
    tags of fields 1 to 3 (0x0a, 0x12, 0x1a) are not base64 characters."""
    found = _parse(raw)
    if found is None and raw.isascii():
        text = _unbase64(raw.decode("ascii"))
        found = _parse(text) if text is not None else None
    return found


def extract_instruction(message: types.Message) -> itk.Instruction | None:
    """The instruction ``message`` carries: the first part marked as one (media type
    application/x-protobuf or file name instruction.bin: its bytes, or its text in base64), else
    the first text part that is one in base64; None if no part holds one.

    A v0.3 caller's FilePart (``file.bytes`` base64, ``mimeType``, ``name``, as the kit's runner
    and v0.3 agents send it) arrives here translated: ``raw`` bytes, ``media_type``, ``filename``."""
    for part in message.parts:
        kind = part.WhichOneof("content")
        if part.media_type == MEDIA_TYPE or part.filename == FILENAME:
            raw = part.raw if kind == "raw" else _unbase64(part.text) if kind == "text" else None
            found = _parse_raw(raw) if raw is not None else None
            if found is not None:
                return found
        if kind == "text":
            raw = _unbase64(part.text)
            found = _parse(raw) if raw is not None else None
            if found is not None:
                return found
    return None


def should_hold(instruction: itk.Instruction) -> bool:
    """Whether any ``return_response`` of this agent's own steps asks to hold the task."""
    step = instruction.WhichOneof("step")
    if step == "return_response":
        return instruction.return_response.hold_task
    if step == "steps":
        return any(should_hold(inner) for inner in instruction.steps.instructions)
    return False


def _message_texts(message: types.Message) -> list[str]:
    return [part.text for part in message.parts if part.WhichOneof("content") == "text" and part.text]


def texts_of(event: types.StreamResponse | types.SendMessageResponse) -> list[str]:
    """The texts of the agent message an answer or stream event carries: a message's, a task's
    status message's, a status update's."""
    kind = event.WhichOneof("payload")
    if kind == "message":
        return _message_texts(event.message)
    if kind == "task" and event.task.status.HasField("message"):
        return _message_texts(event.task.status.message)
    if kind == "status_update" and event.status_update.status.HasField("message"):
        return _message_texts(event.status_update.status.message)
    return []


def _check_not_failed(event: types.StreamResponse | types.SendMessageResponse, who: str) -> None:
    """A nested task that failed fails this one, saying where (rather than passing its text on)."""
    kind = event.WhichOneof("payload")
    status = (
        event.task.status
        if kind == "task"
        else event.status_update.status
        if kind == "status_update"
        else None
    )
    if status is not None and status.state in _TERMINAL_FAILURES:
        said = " ".join(_message_texts(status.message)) or "no message"
        raise errors.InternalError(
            f"the agent at {who} ended its task {types.TaskState.Name(status.state)}: {said}"
        )


def nested_request(call: itk.CallAgent) -> types.SendMessageRequest:
    """The message to the next agent: its instruction as one binary part, as the kit sends it."""
    request = types.SendMessageRequest()
    message = request.message
    message.message_id, message.role = new_id(), types.ROLE_USER
    message.parts.append(
        types.Part(raw=call.instruction.SerializeToString(), media_type=MEDIA_TYPE, filename=FILENAME)
    )
    if call.WhichOneof("behavior") == "push_notification":
        url = call.push_notification.url
        if not url:
            raise errors.InvalidParamsError("push_notification behaviour without a url")
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        push = request.configuration.task_push_notification_config
        push.url, push.token = url.rstrip("/") + "/notifications", PUSH_TOKEN
    return request


async def _first_task_id(events: AsyncIterator[types.StreamResponse]) -> str:
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            kind = event.WhichOneof("payload")
            if kind == "task":
                return event.task.id
            if kind == "status_update":
                return event.status_update.task_id
            break
    raise errors.InvalidAgentResponseError("the stream's first event names no task")


def _finished_in_history(event: types.StreamResponse) -> str | None:
    if event.WhichOneof("payload") != "task":
        return None
    for message in event.task.history:
        if message.role == types.ROLE_AGENT:
            for text in _message_texts(message):
                if FINISHED in text:
                    return text
    return None


async def resubscribe(peer: Peer, request: types.SendMessageRequest, who: str) -> list[str]:
    """Stream, drop the stream after the first event, subscribe again, read until the marker;
    cancel the task if it never comes."""
    task_id = await _first_task_id(peer.stream(request))
    results: list[str] = []
    finished = False
    events = peer.subscribe(task_id)
    async with contextlib.aclosing(events):  # type: ignore[type-var]
        async for event in events:
            _check_not_failed(event, who)
            kept = _finished_in_history(event)
            texts = [kept] if kept is not None else texts_of(event)
            results.extend(text.replace(FINISHED, "") for text in texts)
            if any(FINISHED in text for text in texts):
                finished = True
                break
    if not finished:
        log.info("task %s at %s never said %s: cancelling it", task_id, who, FINISHED)
        await peer.cancel(task_id)
    return results


class ItkAgent(Agent):
    """The kit's agent. ``card`` is served as given (main.py builds it with this process's ports);
    ``hold_seconds`` is how long a held task stays WORKING; ``call_timeout`` bounds each outbound call."""

    def __init__(
        self, card: types.AgentCard, *, hold_seconds: float = 10.0, call_timeout: float = 60.0
    ) -> None:
        self.card = card
        self.hold_seconds = hold_seconds
        self.call_timeout = call_timeout

    async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
        await updater.working()  # the task comes into being SUBMITTED, then goes WORKING
        instruction = extract_instruction(ctx.message)
        if instruction is None:
            await updater.fail(NO_INSTRUCTION)
            return
        try:
            text = "\n".join(await self.run(instruction))
        except errors.A2AError as exc:
            log.warning("task %s failed: %s", ctx.task_id, exc.message)
            await updater.fail(exc.message)
            return
        if not should_hold(instruction):
            await updater.complete(text)
            return
        held = updater.message(f"{text}\n{FINISHED}")
        await updater.working(held)
        await asyncio.sleep(self.hold_seconds)  # a CancelTask cancels this; the core records CANCELED
        await updater.complete(held)

    async def run(self, instruction: itk.Instruction) -> list[str]:
        """The texts ``instruction`` produces, in order."""
        step = instruction.WhichOneof("step")
        if step == "return_response":
            return [instruction.return_response.response]
        if step == "steps":
            out: list[str] = []
            for inner in instruction.steps.instructions:
                out.extend(await self.run(inner))
            return out
        if step == "call_agent":
            return await self.call(instruction.call_agent)
        raise errors.InvalidParamsError("an instruction with no step")

    async def call(self, call: itk.CallAgent) -> list[str]:
        """One call to the next agent, in the behaviour ``call`` names; the texts it answered."""
        who = call.agent_card_uri
        request = nested_request(call)
        peer = await open_peer(call.transport, who, timeout=self.call_timeout)
        try:
            # gRPC callers stream (as the kit's agents do); resubscribing needs a stream to drop.
            streaming = call.streaming or peer.binding == "GRPC"
            if call.WhichOneof("behavior") == "resubscribe":
                if not streaming:
                    raise errors.InvalidParamsError("the resubscribe behaviour needs streaming")
                return await resubscribe(peer, request, who)
            if not streaming:
                answer = await peer.send(request)
                _check_not_failed(answer, who)
                return texts_of(answer)
            results: list[str] = []
            events = peer.stream(request)
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    _check_not_failed(event, who)
                    results.extend(texts_of(event))
            return results
        finally:
            await peer.aclose()
