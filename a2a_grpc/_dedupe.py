"""Repeated messages: a SendMessage that arrives again with the same ``message_id`` (a client
trying again after losing the first answer) is answered from the first receipt, never run twice.

A2A 1.0.1 section 3.3.1 lets an agent use the message id to detect duplicates; a2a-grpc does, so
that its client may retry a send (:mod:`a2a_grpc.resilience`). A receipt is remembered by the
caller's owner key (principal and tenant: one caller's ids never meet another's) and message id,
for ``Limits.dedupe_window_seconds``, at most ``Limits.max_remembered_messages`` receipts and
``Limits.max_remembered_reply_bytes`` of direct replies; past any of them the oldest is forgotten
first (a repeat of it then runs as a new message). In the memory of one process; with Redis (the
task store's), receipts are also written there (``a2a_grpc._shared_dedupe``), so that a repeat
reaching another replica is recognized too.

A repeat gets what the first receipt became:

* while the first is being started, it waits for it (if the first fails before a task or a reply
  exists, the repeat is handled as a first receipt itself);
* a direct reply: the same message;
* a task: SendMessage answers it as the first call would (after it settles, unless the repeat asks
  to return immediately); SendStreamingMessage streams it from now until it settles (or its
  snapshot alone, if it already has).

A repeat whose message differs from the first's in its task, context, role or number of parts is
refused (InvalidParamsError naming ``message.message_id``): the id was reused for another message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, cast

from a2a_grpc import errors, types
from a2a_grpc._validation import invalid
from a2a_grpc.security.limits import Limits
from a2a_grpc.tasks.lifecycle import SETTLED_STATES

if TYPE_CHECKING:
    from a2a_grpc._execution import Execution
    from a2a_grpc._handler import RequestHandler
    from a2a_grpc.redisconn import RedisTarget
    from a2a_grpc.service import CallContext
    from a2a_grpc.tasks.run import TaskRun

__all__ = ["Earlier", "Receipt", "Repeats", "repeats_for"]

_Shape = tuple[str, str, int, int]


_PENDING = object()
"""The outcome of a first receipt still being started."""


class _Entry:
    # Thousands are held (Limits.max_remembered_messages): plain slots, no Future of their own
    # unless a repeat arrives while the first is being started (every object held is one more for
    # the garbage collector to walk, which each call paid for in throughput).
    __slots__ = ("at", "outcome", "settled", "shape", "size", "waiter")

    def __init__(self, at: float, shape: _Shape) -> None:
        self.at = at
        self.shape = shape
        self.outcome: object = _PENDING
        """The task id or the direct reply; None: the first receipt failed before either existed."""
        self.waiter: asyncio.Future[None] | None = None
        """Set when a repeat waits for the outcome."""
        self.settled: asyncio.Future[None] | None = None
        self.size = 0

    def decided(self, outcome: str | types.Message | None) -> None:
        self.outcome = outcome
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Earlier:
    """What the first receipt of a message became (see the module doc). ``remote``: the first was
    received by another replica (``a2a_grpc._shared_dedupe``), whose task is followed through the
    shared store until it settles."""

    def __init__(
        self, outcome: str | types.Message, settled: asyncio.Future[None] | None, *, remote: bool = False
    ) -> None:
        self.task_id = outcome if isinstance(outcome, str) else ""
        self.reply = outcome if isinstance(outcome, types.Message) else None
        self.settled = settled
        self.remote = remote

    def _settled(self) -> bool:
        return not self.remote and (self.settled is None or self.settled.done())

    async def response(
        self, handler: RequestHandler, request: types.SendMessageRequest, call: CallContext
    ) -> types.SendMessageResponse:
        """SendMessage's answer to the repeat."""
        if self.reply is not None:
            return types.SendMessageResponse(message=self.reply)
        config = request.configuration
        if not config.return_immediately and self.settled is not None:
            await asyncio.shield(self.settled)
        elif not config.return_immediately and self.remote:
            events = cast(AsyncGenerator[types.StreamResponse, None], self.events(handler, request, call))
            async with contextlib.aclosing(events):
                async for _event in events:  # until it settles
                    pass
        ask = types.GetTaskRequest(id=self.task_id, tenant=request.tenant)
        if config.HasField("history_length"):
            ask.history_length = config.history_length
        return types.SendMessageResponse(task=await handler.get_task(ask, call))

    async def events(
        self, handler: RequestHandler, request: types.SendMessageRequest, call: CallContext
    ) -> AsyncIterator[types.StreamResponse]:
        """SendStreamingMessage's answer to the repeat."""
        if self.reply is not None:
            yield types.StreamResponse(message=self.reply)
            return
        snapshot = types.GetTaskRequest(id=self.task_id, tenant=request.tenant)
        if self._settled():
            yield types.StreamResponse(task=await handler.get_task(snapshot, call))
            return
        watch = types.SubscribeToTaskRequest(id=self.task_id, tenant=request.tenant)
        # The operation is an async generator: closed here, whoever stops reading.
        stream = cast(AsyncGenerator[types.StreamResponse, None], handler.subscribe_to_task(watch, call))
        async with contextlib.aclosing(stream):
            try:
                first = await anext(stream)
            except (errors.UnsupportedOperationError, StopAsyncIteration):  # it finished meanwhile
                yield types.StreamResponse(task=await handler.get_task(snapshot, call))
                return
            yield first
            if first.HasField("task") and first.task.status.state in SETTLED_STATES:
                return  # it settled meanwhile (waiting for input: no status update will come)
            async for event in stream:
                yield event
                if event.HasField("status_update") and event.status_update.status.state in SETTLED_STATES:
                    return


class Receipt:
    """The first receipt of a message: :meth:`started` runs it and remembers what it becomes."""

    def __init__(self, repeats: Repeats | None, key: tuple[str, str], entry: _Entry | None) -> None:
        self.earlier: Earlier | None = None
        """Set on a repeat: answer from it instead of running the message."""
        self._repeats = repeats
        self._key = key
        self._entry = entry

    async def started(self, start: Awaitable[Execution]) -> Execution:
        """Await ``start`` (the message's execution being started) and remember its outcome."""
        entry, repeats = self._entry, self._repeats
        try:
            execution = await start
        except BaseException:
            if entry is not None and repeats is not None:
                repeats.drop(self._key, entry)
            raise
        if entry is not None and repeats is not None:
            entry.settled = execution.settled
            execution.first.add_done_callback(lambda first: repeats.known(self._key, entry, first))
        return execution


class Repeats:
    """The receipts of one server (see the module doc); ``clock`` reads monotonic seconds."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        # Oldest first. An OrderedDict, not a dict: a dict used as a queue (added at the end,
        # removed at the front) finds its first item by skipping every removed one before it.
        self._entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        self._reply_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def aclose(self) -> None:
        """Release what the receipts hold outside this process (nothing, in memory)."""

    async def receive(self, owner: str, message: types.Message) -> Receipt:
        """A message arrives from ``owner`` (its owner key): a :class:`Receipt` whose ``earlier``
        is set if it repeats one remembered."""
        if not message.message_id:
            return Receipt(None, ("", ""), None)  # refused by validation; nothing to remember
        key = (owner, message.message_id)
        shape = (message.task_id, message.context_id, message.role, len(message.parts))
        while True:
            now = self.clock()
            self._forget_old(now, room=1)
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(now, shape)
                self._entries[key] = entry
                return Receipt(self, key, entry)
            if entry.shape != shape:
                raise invalid(
                    "message.message_id",
                    f"{errors.echo(message.message_id)} was used by another message within the last "
                    f"{self.limits.dedupe_window_seconds} s (dedupe_window_seconds): ids must be unique",
                )
            while entry.outcome is _PENDING:
                if entry.waiter is None:
                    entry.waiter = asyncio.get_running_loop().create_future()
                await asyncio.shield(entry.waiter)
            outcome = entry.outcome
            if outcome is None:
                continue  # the first failed and was forgotten: this one goes in its place
            receipt = Receipt(None, key, None)
            receipt.earlier = Earlier(cast("str | types.Message", outcome), entry.settled)
            return receipt

    def known(
        self, key: tuple[str, str], entry: _Entry, first: asyncio.Future[types.Message | TaskRun]
    ) -> None:
        """The first receipt's execution produced its task or reply (or failed before either)."""
        if first.cancelled() or first.exception() is not None:
            self.drop(key, entry)
            return
        result = first.result()
        if isinstance(result, types.Message):
            entry.size = result.ByteSize()
            self._reply_bytes += entry.size if self._entries.get(key) is entry else 0
            entry.decided(result)
            self._forget_old(self.clock(), room=0)  # within max_remembered_reply_bytes
        else:
            entry.decided(result.task.id)

    def drop(self, key: tuple[str, str], entry: _Entry) -> None:
        """Forget a first receipt that failed: waiting repeats are handled as first receipts."""
        if self._entries.get(key) is entry:
            del self._entries[key]
            self._reply_bytes -= entry.size
        if entry.outcome is _PENDING:
            entry.decided(None)

    def _forget_old(self, now: float, room: int) -> None:
        """Forget the oldest receipts until every bound holds with ``room`` more receipts."""
        limits, entries = self.limits, self._entries
        oldest = now - limits.dedupe_window_seconds
        most = limits.max_remembered_messages - room
        while entries:
            key, entry = next(iter(entries.items()))
            if (
                entry.at > oldest
                and len(entries) <= most
                and self._reply_bytes <= limits.max_remembered_reply_bytes
            ):
                return
            del entries[key]
            self._reply_bytes -= entry.size


def repeats_for(limits: Limits, redis: RedisTarget | None) -> Repeats:
    """The receipts of a server: in its memory, and also in ``redis``, the Redis its tasks are
    stored in (a repeat reaching another replica is answered with the task from that store)."""
    if redis is None:
        return Repeats(limits)
    from a2a_grpc._shared_dedupe import SharedRepeats

    return SharedRepeats(limits, redis)
