"""What one operation of each load kind is, with pre-encoded requests and cheap success checks.

* :class:`GrpcUnary`: a generic unary call with bytes in and out (no protobuf work in the client).
* :class:`GrpcStream`: a server-streaming call; units are artifact-update events.
* :class:`GrpcBidi`: one bidirectional stream per worker; each operation is one message round trip.
* :class:`SessionUnary`, :class:`SessionStream`: every worker's calls over ONE session (the session
  binding, our own client); :class:`SessionHandshake`: each operation opens and closes a session.
* :class:`HttpUnary`: one keep-alive HTTP/1.1 connection per worker; JSON-RPC or REST bodies.
* :class:`HttpStream`: the same, reading Server-Sent Events; units are artifact-update events.
* :class:`SubscribeFanOut`: every worker subscribes to ONE task (SubscribeToTask); units are the
  artifact-update events delivered to the subscribers.

Every worker fully decodes and checks its first answer and one in :data:`FULL_CHECK_EVERY`
after that; the others get byte-level checks only (status, leading tag, key names).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import grpc

from a2a_grpc import types
from benchmarks.httpclient import HttpConnection
from benchmarks.load import Operation, WorkloadError
from benchmarks.payload import GRPC_METADATA, Template, check_json_task, check_stream_events, check_task_bytes
from benchmarks.workload import ASK, stream_text

__all__ = [
    "GrpcBidi",
    "GrpcStream",
    "GrpcUnary",
    "HttpStream",
    "HttpUnary",
    "SessionHandshake",
    "SessionStream",
    "SessionUnary",
    "SubscribeFanOut",
    "grpc_channel",
]

FULL_CHECK_EVERY = 64
CALL_TIMEOUT_SECONDS = 30.0
CHANNEL_READY_SECONDS = 10.0
GRPC_MESSAGE_LIMIT = 64 * 1024 * 1024
SEND_MESSAGE = "/lf.a2a.v1.A2AService/SendMessage"
SEND_STREAMING_MESSAGE = "/lf.a2a.v1.A2AService/SendStreamingMessage"
BIDI_ECHO = "/bench.Bare/Echo"

# The first byte of a serialized response names its payload field (field number << 3 | 2).
_TAG_TASK = 0x0A  # SendMessageResponse.task / StreamResponse.task
_TAG_STATUS = 0x1A  # StreamResponse.status_update
_TAG_ARTIFACT = 0x22  # StreamResponse.artifact_update


async def grpc_channel(target: str) -> grpc.aio.Channel:
    """An insecure channel to ``target``, connected (bounded wait)."""
    channel = grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", GRPC_MESSAGE_LIMIT),
            ("grpc.max_send_message_length", GRPC_MESSAGE_LIMIT),
        ],
    )
    try:
        await asyncio.wait_for(channel.channel_ready(), CHANNEL_READY_SECONDS)
    except BaseException:
        await channel.close()
        raise
    return channel


class _Sampler:
    """Tells a worker when to check an answer fully: the first time, then every FULL_CHECK_EVERY."""

    __slots__ = ("_n",)

    def __init__(self) -> None:
        self._n = 0

    def due(self) -> bool:
        self._n += 1
        return self._n % FULL_CHECK_EVERY == 1


class GrpcUnary:
    """SendMessage over gRPC; an answer succeeds if it is a completed task holding the echo."""

    unit = "req"

    def __init__(
        self,
        target: str,
        request: Template,
        path: str = SEND_MESSAGE,
        metadata: tuple[tuple[str, str], ...] = GRPC_METADATA,
    ) -> None:
        self.target, self.request, self.path, self.metadata = target, request, path, metadata
        self._channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        self._channel = await grpc_channel(self.target)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def operation(self, index: int) -> Operation:
        assert self._channel is not None
        call = self._channel.unary_unary(self.path)
        render, sampler, metadata = self.request.render, _Sampler(), self.metadata

        async def send() -> int:
            data: bytes = await call(render(), metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
            if not data or data[0] != _TAG_TASK:
                raise WorkloadError(f"answer is not a task: {data[:40]!r}")
            if sampler.due() and (problem := check_task_bytes(data)):
                raise WorkloadError(problem)
            return 1

        return send


class GrpcStream:
    """SendStreamingMessage over gRPC; units are artifact-update events, ``events`` per call."""

    unit = "event"

    def __init__(self, target: str, request: Template, events: int) -> None:
        self.target, self.request, self.events = target, request, events
        self._channel: grpc.aio.Channel | None = None

    async def open(self) -> None:
        self._channel = await grpc_channel(self.target)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def operation(self, index: int) -> Operation:
        assert self._channel is not None
        stream = self._channel.unary_stream(SEND_STREAMING_MESSAGE)
        render, sampler, expected = self.request.render, _Sampler(), self.events

        async def send() -> int:
            full = sampler.due()
            kept: list[bytes] = []
            artifacts = 0
            last = b""
            async for last in stream(render(), metadata=GRPC_METADATA, timeout=CALL_TIMEOUT_SECONDS):
                if last and last[0] == _TAG_ARTIFACT:
                    artifacts += 1
                if full:
                    kept.append(last)
            if artifacts != expected or not last or last[0] != _TAG_STATUS:
                raise WorkloadError(f"stream had {artifacts}/{expected} artifact events, last {last[:20]!r}")
            if full:
                events = [types.StreamResponse.FromString(m) for m in kept]
                if problem := check_stream_events(events, expected):
                    raise WorkloadError(problem)
            return artifacts

        return send


class GrpcBidi:
    """One bidirectional stream per worker; an operation writes one message and reads its echo."""

    unit = "msg"

    def __init__(self, target: str, request: Template) -> None:
        self.target, self.request = target, request
        self._channel: grpc.aio.Channel | None = None
        self._calls: list[Any] = []

    async def open(self) -> None:
        self._channel = await grpc_channel(self.target)

    async def close(self) -> None:
        for call in self._calls:
            call.cancel()
        if self._channel is not None:
            await self._channel.close()

    async def operation(self, index: int) -> Operation:
        assert self._channel is not None
        call = self._channel.stream_stream(BIDI_ECHO)(metadata=GRPC_METADATA)
        self._calls.append(call)
        render = self.request.render

        async def round_trip() -> int:
            message = render()
            await call.write(message)
            reply = await asyncio.wait_for(call.read(), CALL_TIMEOUT_SECONDS)
            if reply != message:
                raise WorkloadError(f"echo differs: {reply!r:.60}")
            return 1

        return round_trip


class _OneSession:
    """One session on one channel, shared by every worker (the session binding's point)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._client: Any = None
        self.session: Any = None

    async def open(self) -> None:
        from a2a_grpc.client import A2AClient

        self._client = A2AClient(self.target, timeout=CALL_TIMEOUT_SECONDS)
        await self._client.wait_ready(CHANNEL_READY_SECONDS)
        self.session = await self._client.session(agent_name="bench").open()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        if self._client is not None:
            await self._client.close()


class SessionUnary(_OneSession):
    """SendMessage calls, every worker's over one session; a completed task holding the echo succeeds."""

    unit = "req"

    def __init__(self, target: str, request: Template, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(target)
        self.request, self.metadata = request, metadata

    async def operation(self, index: int) -> Operation:
        render, parse, metadata = self.request.render, types.SendMessageRequest.FromString, self.metadata

        async def send() -> int:
            response = await self.session.send_message(
                parse(render()), timeout=CALL_TIMEOUT_SECONDS, metadata=metadata
            )
            if response.task.status.state != types.TASK_STATE_COMPLETED:
                raise WorkloadError(f"task ended {response.task.status.state}")
            return 1

        return send


class SessionStream(_OneSession):
    """SendStreamingMessage calls over one session; units are artifact-update events."""

    unit = "event"

    def __init__(self, target: str, request: Template, events: int) -> None:
        super().__init__(target)
        self.request, self.events = request, events

    async def operation(self, index: int) -> Operation:
        render, parse = self.request.render, types.SendMessageRequest.FromString

        async def stream() -> int:
            seen = 0
            async for event in self.session.send_streaming_message(
                parse(render()), timeout=CALL_TIMEOUT_SECONDS
            ):
                seen += event.HasField("artifact_update")
            if seen != self.events:
                raise WorkloadError(f"{seen} artifact events, not {self.events}")
            return seen

        return stream


class SessionHandshake:
    """Each operation opens a session on the worker's channel (Hello, Welcome) and closes it."""

    unit = "handshake"

    def __init__(self, target: str) -> None:
        self.target = target
        self._clients: list[Any] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def operation(self, index: int) -> Operation:
        from a2a_grpc.client import A2AClient

        client = A2AClient(self.target, timeout=CALL_TIMEOUT_SECONDS)
        self._clients.append(client)
        await client.wait_ready(CHANNEL_READY_SECONDS)

        async def handshake() -> int:
            session = await client.session(agent_name="bench").open()
            await session.close()
            return 1

        return handshake


class HttpUnary:
    """One HTTP request per operation (JSON-RPC or REST); 200 with the echo task means success."""

    unit = "req"

    def __init__(self, host: str, port: int, request: Template, *, jsonrpc: bool) -> None:
        self.host, self.port, self.request, self.jsonrpc = host, port, request, jsonrpc
        self._connections: list[HttpConnection] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections))

    async def operation(self, index: int) -> Operation:
        conn = HttpConnection(self.host, self.port)
        self._connections.append(conn)
        render, sampler, jsonrpc = self.request.render, _Sampler(), self.jsonrpc
        marker = b'"result"' if jsonrpc else b'"task"'

        async def send() -> int:
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                status, body = await conn.request(render())
            if status != 200 or marker not in body or (jsonrpc and b'"error"' in body):
                raise WorkloadError(f"HTTP {status}: {body[:300]!r}")
            if sampler.due():
                obj = json.loads(body)
                if problem := check_json_task(obj["result"] if jsonrpc else obj):
                    raise WorkloadError(problem)
            return 1

        return send


class HttpStream:
    """A streaming request over HTTP (SSE); units are artifact-update events, ``events`` per call."""

    unit = "event"

    def __init__(self, host: str, port: int, request: Template, events: int, *, jsonrpc: bool) -> None:
        self.host, self.port, self.request, self.events, self.jsonrpc = host, port, request, events, jsonrpc
        self._connections: list[HttpConnection] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections))

    async def operation(self, index: int) -> Operation:
        conn = HttpConnection(self.host, self.port)
        self._connections.append(conn)
        render, sampler, expected, jsonrpc = self.request.render, _Sampler(), self.events, self.jsonrpc

        async def send() -> int:
            full = sampler.due()
            artifacts, last, kept = 0, b"", []
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                async for last in conn.events(render()):
                    if b'"artifactUpdate"' in last:
                        artifacts += 1
                    elif jsonrpc and b'"error"' in last:
                        raise WorkloadError(f"error event: {last[:300]!r}")
                    if full:
                        kept.append(last)
            if artifacts != expected or b"TASK_STATE_COMPLETED" not in last:
                raise WorkloadError(f"stream had {artifacts}/{expected} artifact events, last {last[:120]!r}")
            if full:
                _check_json_stream(kept, expected, jsonrpc)
            return artifacts

        return send


def _check_json_stream(events: list[bytes], expected: int, jsonrpc: bool) -> None:
    decoded = [json.loads(e) for e in events]
    payloads = [d["result"] if jsonrpc else d for d in decoded]
    kinds = [next(iter(p), "") for p in payloads]
    if kinds[:1] != ["task"] or kinds.count("artifactUpdate") != expected or kinds[-1] != "statusUpdate":
        raise WorkloadError(f"unexpected event sequence {kinds[:3]}...{kinds[-2:]}")


SUBSCRIBE_TO_TASK = "/lf.a2a.v1.A2AService/SubscribeToTask"
FANOUT_GATHER_SECONDS = 10.0
"""How long a round waits for every subscriber (one that left at the end of the run is not waited for)."""


class SubscribeFanOut:
    """SubscribeToTask fan-out: every worker subscribes to ONE task, which then streams ``events``
    artifact events; units are events delivered to subscribers (``events`` per worker per round).

    A round: worker 0 creates a task that waits for input (``!ask``), every worker subscribes to it
    and reads its snapshot, then worker 0 sends the task's next message (``!stream N``); each
    subscriber reads the N events and the final status. Workers run the rounds in step.
    """

    unit = "event"

    def __init__(self, target: str, events: int) -> None:
        self.target, self.events = target, events
        self._channel: grpc.aio.Channel | None = None
        self._workers = 0
        self._rounds: dict[int, asyncio.Future[str]] = {}
        self._joined: dict[int, int] = {}
        self._all_in: dict[int, asyncio.Event] = {}

    async def open(self) -> None:
        self._channel = await grpc_channel(self.target)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def _round(self, n: int) -> asyncio.Future[str]:
        if n not in self._rounds:
            self._rounds[n] = asyncio.get_running_loop().create_future()
            self._all_in[n] = asyncio.Event()
            self._joined[n] = 0
            self._rounds.pop(n - 2, None)  # rounds two behind are over for every worker
            self._all_in.pop(n - 2, None)
            self._joined.pop(n - 2, None)
        return self._rounds[n]

    async def operation(self, index: int) -> Operation:
        assert self._channel is not None
        self._workers += 1
        send = self._channel.unary_unary(SEND_MESSAGE)
        subscribe = self._channel.unary_stream(SUBSCRIBE_TO_TASK)
        expected, leader = self.events, index == 0
        state = {"round": 0}

        async def follow(task_id: str, n: int) -> int:
            request = types.SubscribeToTaskRequest(id=task_id).SerializeToString()
            artifacts, first, last = 0, True, b""
            async for last in subscribe(request, metadata=GRPC_METADATA, timeout=CALL_TIMEOUT_SECONDS):
                if first:
                    first = False
                    if not last or last[0] != _TAG_TASK:
                        raise WorkloadError(f"a subscription began with {last[:20]!r}, not the task")
                    self._joined[n] += 1
                    if self._joined[n] >= self._workers:
                        self._all_in[n].set()
                elif last and last[0] == _TAG_ARTIFACT:
                    artifacts += 1
            if artifacts != expected or not last or last[0] != _TAG_STATUS:
                raise WorkloadError(
                    f"subscriber got {artifacts}/{expected} artifact events, last {last[:20]!r}"
                )
            return artifacts

        async def lead(n: int) -> int:
            ask = _message_request(ASK)
            answer = types.SendMessageResponse.FromString(
                await send(ask, metadata=GRPC_METADATA, timeout=CALL_TIMEOUT_SECONDS)
            )
            if answer.task.status.state != types.TASK_STATE_INPUT_REQUIRED:
                raise WorkloadError(f"the !ask task is {types.TaskState.Name(answer.task.status.state)}")
            task_id = answer.task.id
            self._round(n).set_result(task_id)
            own = asyncio.ensure_future(follow(task_id, n))
            with contextlib.suppress(TimeoutError):  # the others may have left: the run is over
                await asyncio.wait_for(self._all_in[n].wait(), FANOUT_GATHER_SECONDS)
            go = _message_request(stream_text(expected), task_id=task_id, context_id=answer.task.context_id)
            await send(go, metadata=GRPC_METADATA, timeout=CALL_TIMEOUT_SECONDS)
            return await own

        async def run() -> int:
            n = state["round"] = state["round"] + 1
            if leader:
                return await lead(n)
            try:
                task_id = await asyncio.wait_for(asyncio.shield(self._round(n)), FANOUT_GATHER_SECONDS)
            except TimeoutError:
                state["round"] = n - 1  # the leader has left (the run is over): nothing done
                return 0
            return await follow(task_id, n)

        return run


def _message_request(text: str, *, task_id: str = "", context_id: str = "") -> bytes:
    request = types.SendMessageRequest()
    message = request.message
    message.message_id = uuid.uuid4().hex
    message.role = types.ROLE_USER
    message.task_id = task_id
    message.context_id = context_id
    message.parts.add(text=text)
    return request.SerializeToString()
