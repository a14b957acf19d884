"""The live stream: one bidirectional gRPC call bound to one task, open through its interrupted
states (``a2a_grpc.live.v1.LiveService/SendLiveMessage``, protos/a2a_grpc/live/v1/live.proto).

It is a2a-grpc's take on the bidirectional streaming proposed upstream for A2A (pull request
2153's ``SendLiveMessage``, with pull request 1549's reconnect semantics), kept in its own proto
package and declared in the card as the extension :data:`LIVE_EXTENSION`, so that adopting the
upstream method later is a mapping, not a break. A turn is the same operation the unary binding
runs (SendStreamingMessage through the call seam: authentication, ownership, interceptors), so
its events are the same events; between turns the call stays open while the task waits for input.

    async with client.live(A2AClient.text_request("book a table").message) as live:
        async for event in live:
            if event.status_update.status.state == types.TASK_STATE_INPUT_REQUIRED:
                await live.send("for two, at eight")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import grpc

from a2a_grpc import errors, types
from a2a_grpc._gen.a2a_grpc.live.v1 import live_pb2 as pb
from a2a_grpc._gen.a2a_grpc.live.v1.live_pb2 import LiveRequest
from a2a_grpc._operations import task_id_of
from a2a_grpc.agent import new_id
from a2a_grpc.service import CallContext, Service
from a2a_grpc.status import abort, from_rpc_error
from a2a_grpc.tasks.lifecycle import INTERRUPTED_STATES

__all__ = ["LIVE_EXTENSION", "LiveHost", "LiveRequest", "LiveStream", "live_extension"]

LIVE_EXTENSION = "urn:a2a-grpc:extension:live:v1"
"""The URI under which a card's ``capabilities.extensions`` declares the live stream."""
LIVE_SERVICE = pb.DESCRIPTOR.services_by_name["LiveService"]
SEND_LIVE = f"/{LIVE_SERVICE.full_name}/SendLiveMessage"


def live_extension() -> types.AgentExtension:
    """The card's declaration of the live stream."""
    return types.AgentExtension(
        uri=LIVE_EXTENSION,
        description="a2a-grpc live stream: a2a_grpc.live.v1.LiveService/SendLiveMessage, one "
        "bidirectional call per task, open through input-required (upstream's proposed SendLiveMessage)",
        required=False,
    )


def _task_and_state(event: types.StreamResponse) -> tuple[str, int | None]:
    """The event's task (:func:`task_id_of`) and the state it reports, if it reports one."""
    kind = event.WhichOneof("payload")
    if kind == "task":
        return event.task.id, event.task.status.state
    if kind == "status_update":
        return event.status_update.task_id, event.status_update.status.state
    return task_id_of(event), None


class _Holder:
    """One live stream, as the holder of its task: ``taken`` is set when a reattaching stream takes
    the task over, and this one ends."""

    __slots__ = ("taken",)

    def __init__(self) -> None:
        self.taken = asyncio.Event()

    def check(self, task_id: str) -> None:
        if self.taken.is_set():
            raise errors.LiveStreamActiveError(
                f"another live stream reattached to task {task_id!r}: this one ends",
                metadata={"task_id": task_id},
            )

    async def next_or_taken(self, frames: AsyncIterator[LiveRequest], task_id: str) -> LiveRequest | None:
        """The client's next request (None when it half-closed), unless the task is taken over
        meanwhile (LiveStreamActiveError)."""
        request = asyncio.ensure_future(anext(frames, None))
        taken = asyncio.ensure_future(self.taken.wait())
        try:
            await asyncio.wait({request, taken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            taken.cancel()
            if not request.done():
                request.cancel()
        self.check(task_id)
        return request.result()


class _Checked:
    """The requests of a call, each passed to ``check`` (which raises for one that was not read)
    as it is taken. A plain iterator, not a generator: a pending read is cancelled freely."""

    def __init__(self, requests: AsyncIterator[Any], check: Callable[[Any], None]) -> None:
        self._requests = aiter(requests)
        self._check = check

    def __aiter__(self) -> _Checked:
        return self

    async def __anext__(self) -> LiveRequest:
        request = await anext(self._requests)
        self._check(request)
        return request  # type: ignore[no-any-return]


class LiveHost:
    """Serves ``SendLiveMessage`` over ``service`` (the call seam); ``context_of`` gives a call's
    base context from its gRPC context and first request. One live stream per task: the streams
    holding a task are kept by (tenant, task id). ``first_request_seconds``: how long a new stream
    may take to send its first request (``ServerSettings.live_first_request_seconds``)."""

    def __init__(
        self,
        service: Service,
        context_of: Callable[[grpc.aio.ServicerContext, Any], CallContext],
        *,
        first_request_seconds: float,
    ) -> None:
        self.service = service
        self.context_of = context_of
        self.first_request_seconds = first_request_seconds
        self.holders: dict[tuple[str, str], _Holder] = {}
        """The live stream that holds each task, by (tenant, task id)."""
        self._check: Callable[[Any], None] = lambda request: None

    def handler(
        self,
        deserialize: Callable[[bytes], Any] = LiveRequest.FromString,
        check: Callable[[Any], None] = lambda request: None,
        serialize: Callable[[Any], bytes] = types.StreamResponse.SerializeToString,
    ) -> grpc.GenericRpcHandler:
        """``deserialize`` reads a request's bytes; ``check`` raises the typed error of what it
        could not read (the server's: a request over ``max_receive_message_bytes``, or not a
        LiveRequest), so that a bad request ends its stream with that error, never UNKNOWN;
        ``serialize`` writes an event (the server's counts the bytes for its metrics)."""
        self._check = check
        method = grpc.stream_stream_rpc_method_handler(
            self._serve,
            request_deserializer=deserialize,
            response_serializer=serialize,
        )
        return grpc.method_handlers_generic_handler(LIVE_SERVICE.full_name, {"SendLiveMessage": method})

    async def _serve(self, requests: AsyncIterator[LiveRequest], context: grpc.aio.ServicerContext) -> None:
        frames = _Checked(requests, self._check)
        held: list[tuple[str, str]] = []
        me = _Holder()
        try:
            try:
                async with asyncio.timeout(self.first_request_seconds):
                    first = await anext(frames)
            except (TimeoutError, StopAsyncIteration):
                raise errors.InvalidRequestError(
                    f"a live stream sends its first request within {self.first_request_seconds:g} s"
                ) from None
            base = self.context_of(context, first)
            tenant = first.tenant
            task_id = first.task_id or (first.message.task_id if first.HasField("message") else "")
            if first.HasField("message"):
                if task_id:
                    held.append(self._hold(me, tenant, task_id, take_over=False))
                state, task_id = await self._turn(me, first.message, task_id, tenant, base, context, held)
            elif task_id:
                held.append(self._hold(me, tenant, task_id, take_over=True))
                state = await self._reattach(me, task_id, tenant, base, context)
            else:
                raise errors.InvalidRequestError(
                    "a live stream's first request carries a message, or a task_id to reattach to"
                )
            while state in INTERRUPTED_STATES:
                request = await me.next_or_taken(frames, task_id)
                if request is None:  # the client half-closed while the task waits: done
                    return
                if not request.HasField("message"):
                    raise errors.InvalidRequestError(
                        "after the first, every request of a live stream carries a message"
                    )
                named = {request.task_id, request.message.task_id} - {""}
                if named - {task_id}:
                    raise errors.InvalidRequestError(
                        f"this live stream is bound to task {task_id!r}; a message for another task "
                        "needs a stream of its own"
                    )
                state, _ = await self._turn(me, request.message, task_id, tenant, base, context, held)
        except errors.A2AError as exc:
            await abort(context, exc)
        finally:
            for key in held:
                if self.holders.get(key) is me:
                    del self.holders[key]

    def _hold(self, me: _Holder, tenant: str, task_id: str, *, take_over: bool) -> tuple[str, str]:
        key = (tenant, task_id)
        holder = self.holders.get(key)
        if holder is not None and holder is not me:
            if not take_over:
                raise errors.LiveStreamActiveError(
                    f"another live stream holds task {task_id!r}: one live stream per task "
                    "(reattach with a request that carries only the task_id to take it over)",
                    metadata={"task_id": task_id},
                )
            holder.taken.set()  # its client is gone, or has come back on this stream: it ends
        self.holders[key] = me
        return key

    async def _turn(
        self,
        me: _Holder,
        message: types.Message,
        task_id: str,
        tenant: str,
        base: CallContext,
        context: grpc.aio.ServicerContext,
        held: list[tuple[str, str]],
    ) -> tuple[int | None, str]:
        """One message's events, as SendStreamingMessage gives them; the task's last state."""
        turn = types.Message()
        turn.CopyFrom(message)
        if task_id:
            turn.task_id = task_id
        request = types.SendMessageRequest(message=turn, tenant=tenant)
        state: int | None = None
        stream = self.service.stream("SendStreamingMessage")(request, base)
        async with contextlib.aclosing(stream) as events:
            async for produced in events:
                event = cast(types.StreamResponse, produced)
                event_task, event_state = _task_and_state(event)
                if event_task and not task_id:  # a new task: held from its first event on
                    task_id = event_task
                    held.append(self._hold(me, tenant, task_id, take_over=False))
                if event_state is not None:
                    state = event_state
                me.check(task_id)
                await context.write(event)
        return state, task_id

    async def _reattach(
        self, me: _Holder, task_id: str, tenant: str, base: CallContext, context: grpc.aio.ServicerContext
    ) -> int | None:
        """The task's events from now (its snapshot first), or its state as it stands when nothing
        more will happen to it without a message (over, or waiting for input)."""
        request = types.SubscribeToTaskRequest(id=task_id, tenant=tenant)
        state: int | None = None
        try:
            stream = self.service.stream("SubscribeToTask")(request, base)
            async with contextlib.aclosing(stream) as events:
                async for produced in events:
                    event = cast(types.StreamResponse, produced)
                    _, event_state = _task_and_state(event)
                    if event_state is not None:
                        state = event_state
                    me.check(task_id)
                    await context.write(event)
                    if state in INTERRUPTED_STATES:  # a subscription waits on; the turn is the client's
                        break
        except errors.UnsupportedOperationError:  # nothing runs it now: its state as it stands
            got = await self.service.unary("GetTask")(types.GetTaskRequest(id=task_id, tenant=tenant), base)
            task = cast(types.Task, got)
            await context.write(types.StreamResponse(task=task))
            state = task.status.state
        return state


class LiveStream:
    """The client's side of a live stream (``A2AClient.live(...)``): iterate it for the task's
    events across turns; :meth:`send` the next message when the task asks for input."""

    def __init__(
        self, channel: grpc.aio.Channel, first: LiveRequest, metadata: list[tuple[str, str]]
    ) -> None:
        self._channel = channel
        self._first = first
        self._metadata = metadata
        self._call: Any = None
        self.task_id = first.task_id or (first.message.task_id if first.HasField("message") else "")
        """The task the stream is bound to (known from the first event of a new task)."""
        self.tenant = first.tenant

    async def __aenter__(self) -> LiveStream:
        stub = self._channel.stream_stream(
            SEND_LIVE,
            request_serializer=LiveRequest.SerializeToString,
            response_deserializer=types.StreamResponse.FromString,
        )
        self._call = stub(metadata=self._metadata or None)
        await self._write(self._first)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End the stream (the task goes on: a live stream's end is not the task's)."""
        if self._call is not None:
            self._call.cancel()
            self._call = None

    async def send(self, message: types.Message | str) -> None:
        """The task's next message (a turn), e.g. the input it asked for."""
        if isinstance(message, str):
            message = types.Message(
                message_id=new_id(), role=types.ROLE_USER, parts=[types.Part(text=message)]
            )
        await self._write(LiveRequest(task_id=self.task_id, tenant=self.tenant, message=message))

    async def _write(self, request: LiveRequest) -> None:
        if self._call is None:
            raise errors.UnavailableError("the live stream is closed")
        try:
            await self._call.write(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        except asyncio.InvalidStateError:
            raise errors.UnavailableError("the live stream has ended") from None

    async def __aiter__(self) -> AsyncIterator[types.StreamResponse]:
        call = self._call
        if call is None:
            raise errors.UnavailableError("the live stream is closed")
        try:
            while True:
                event = await call.read()
                if event is grpc.aio.EOF:
                    return
                if not self.task_id:
                    self.task_id = task_id_of(event)
                yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
