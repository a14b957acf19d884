"""The call seam: every A2A call, whichever front took it, passes through here.

Three things, each written once:

* :data:`METHODS`, the method table, derived from the ``lf.a2a.v1.A2AService`` descriptor: per RPC
  its name, gRPC path, request and response classes and streaming flag. Servers, clients and both
  directions of the bridge read it; none rebuilds it.
* :class:`CallContext`, what a call carries besides its request message: the A2A service
  parameters (version, extensions), headers, tenant, deadline, a call id, the principal and the
  trace context. Each front builds one from what it has (gRPC metadata, the bridge's headers).
* :class:`Service`, the A2A operations behind an ordered chain of :class:`Interceptor` s. A front
  looks up the chain of a method once (:meth:`Service.unary`, :meth:`Service.stream`) and calls it
  with the decoded request and the context; errors come out as exceptions, which the front turns
  into its wire's error form at its one boundary.

Writing an interceptor: subclass :class:`Interceptor`, override :meth:`Interceptor.unary`,
:meth:`Interceptor.stream` or both, and call ``call_next`` (with the same or another request and
context) to go on; raise an :class:`a2a_grpc.errors.A2AError` to refuse the call. A streaming
interceptor is an async generator that wraps the events of ``call_next``; the seam closes every
link of a stream when its reader stops, so ``finally`` blocks run when a client leaves. The first
interceptor of the list is the outermost: it sees the call first and the answer last.

    class Timing(Interceptor):
        async def unary(self, method, request, context, call_next):
            start = time.perf_counter()
            try:
                return await call_next(request, context)
            finally:
                record(method.name, time.perf_counter() - start)

        async def stream(self, method, request, context, call_next):
            async for event in call_next(request, context):
                yield event

    A2AServer(agent, store, ServerSettings(interceptors=[Timing()]))

Writing a front (the gRPC servicer, the in-process bridge and the reverse bridge's gRPC front are
three; the session binding will be one more): decode the request into ``METHODS[name].request``,
build a :class:`CallContext` (:meth:`CallContext.from_headers`), call
``service.unary(name)(request, context)`` or iterate ``service.stream(name)(request, context)``
inside ``contextlib.aclosing``, and encode what comes out.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from a2a_grpc import types

if TYPE_CHECKING:  # the security package builds on this module
    from a2a_grpc.security.identity import ClientCertificate, Principal

__all__ = [
    "ABSENT_VERSION",
    "METHODS",
    "SUPPORTED_VERSIONS",
    "CallContext",
    "EventCursor",
    "EventStream",
    "Interceptor",
    "Method",
    "Operations",
    "Service",
    "StreamCall",
    "UnaryCall",
    "deadline_after",
    "method_table",
    "new_call_id",
    "operation_name",
    "parse_extensions",
    "version_supported",
]

SUPPORTED_VERSIONS = ("1.0",)
"""A2A versions (Major.Minor) this implementation speaks."""
ABSENT_VERSION = "0.3"
"""The version a request without A2A-Version is read as (spec 3.6)."""


def version_supported(version: str) -> bool:
    """Whether ``version`` is one of :data:`SUPPORTED_VERSIONS` (patch numbers ignored, spec 3.6;
    "1" is read as "1.0")."""
    if version in SUPPORTED_VERSIONS:  # every call asks; most send exactly "1.0"
        return True
    parts = version.strip().split(".")
    major_minor = ".".join(([*parts, "0"])[:2]) if parts[0] else ""
    return major_minor in SUPPORTED_VERSIONS


def parse_extensions(value: str | None) -> frozenset[str]:
    """The URIs of an ``a2a-extensions`` value (comma-separated)."""
    if not value:
        return frozenset()
    return frozenset(uri.strip() for uri in value.split(",") if uri.strip())


def operation_name(rpc: str) -> str:
    """The snake_case name of an RPC: ``SendMessage`` -> ``send_message``."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(rpc))


# Unique within the process by the counter, across processes by the random prefix; cheaper than a
# UUID per call (no system call).
_CALL_PREFIX = os.urandom(6).hex()
_CALL_NUMBERS = itertools.count(1)


def new_call_id() -> str:
    """A new call id, unique to one call."""
    return f"{_CALL_PREFIX}-{next(_CALL_NUMBERS)}"


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a front knows about a call besides its request message.

    Frozen: an interceptor that wants to change it passes ``dataclasses.replace(context, ...)``
    on to ``call_next``.
    """

    version: str | None = None
    """The ``a2a-version`` service parameter, if sent."""
    wire_version: str = ""
    """The A2A version the call arrived in when a front translated it, e.g. ``"0.3"`` for a v0.3
    client served through :mod:`a2a_grpc.v03` (its :attr:`version` is then the version the core
    handles, ``"1.0"``); "" when the call arrived as it is handled. For logs and metrics."""
    extensions: frozenset[str] = frozenset()
    """The ``a2a-extensions`` service parameter, split on commas."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Metadata or headers, lower-case names; a binary (``-bin``) value as unpadded base64."""
    tenant: str = ""
    """The request's tenant ("" for the default one)."""
    deadline: float | None = None
    """When the caller stops waiting, in ``time.monotonic()`` seconds (the clock of asyncio's
    ``loop.time()``, so ``asyncio.timeout_at(deadline)`` works); None: never."""
    call_id: str = field(default_factory=new_call_id)
    """Unique to this call (logs, traces, the session binding's frames)."""
    principal: Principal | None = None
    """Who is calling, once an authentication scheme accepted the call's credentials
    (:mod:`a2a_grpc.security`); None when the server runs without authentication. Every task
    belongs to the principal and tenant that created it."""
    traceparent: str | None = None
    """The W3C ``traceparent`` header as received (no tracing library is involved yet)."""
    tracestate: str | None = None
    """The W3C ``tracestate`` header as received."""
    peer: str = ""
    """Who sent the call, as the front names it (gRPC: ``ipv4:127.0.0.1:5555``); "" if unknown."""
    front: str = ""
    """Which front took the call: ``grpc``, ``http`` (the in-process bridge), later ``session``."""
    client_certificate: ClientCertificate | None = None
    """The certificate the client presented on a mutual-TLS listener, verified by the front
    against its client CA; None on a plain or server-only TLS connection."""
    cursor: EventCursor | None = None
    """Given by a front that numbers a stream's events (the session binding): a streaming
    operation sets ``cursor.seq`` to each event's number in the task's event log before yielding
    it. None: not asked for (and not paid for)."""

    @classmethod
    def from_headers(
        cls,
        headers: Mapping[str, str],
        *,
        tenant: str = "",
        deadline: float | None = None,
        peer: str = "",
        front: str = "",
        client_certificate: ClientCertificate | None = None,
    ) -> CallContext:
        """The context of a call whose service parameters travel as (lower-case) headers or metadata."""
        return cls(
            version=headers.get("a2a-version"),
            extensions=parse_extensions(headers.get("a2a-extensions")),
            headers=headers,
            tenant=tenant,
            deadline=deadline,
            traceparent=headers.get("traceparent"),
            tracestate=headers.get("tracestate"),
            peer=peer,
            front=front,
            client_certificate=client_certificate,
        )

    def time_remaining(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once passed); None without a deadline."""
        return None if self.deadline is None else self.deadline - time.monotonic()


class EventCursor:
    """Where a streaming call is in its task's event log (:attr:`CallContext.cursor`): ``seq`` is
    the number of the event last yielded; for the task snapshot that opens a stream, the number of
    the last event the snapshot includes (0: none yet). None: no number (an event that is no
    task's, a direct Message)."""

    __slots__ = ("seq",)

    def __init__(self) -> None:
        self.seq: int | None = None


def deadline_after(seconds: float | None) -> float | None:
    """The :attr:`CallContext.deadline` of a call that may take ``seconds`` from now (None: no deadline).

    Read from ``time.monotonic()``, the clock of asyncio's event loops (``loop.time()``), rather
    than from the running loop: looking the loop up costs a system call, and this runs every call.
    """
    return None if seconds is None else time.monotonic() + seconds


# -- the method table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Method:
    """One RPC, as the service descriptor defines it."""

    name: str
    """The RPC name (``SendMessage``): the JSON-RPC method name too."""
    path: str
    """The gRPC method path: ``/lf.a2a.v1.A2AService/SendMessage``."""
    request: type[Message]
    response: type[Message]
    streaming: bool
    """Server streaming (the response is a stream of ``response`` messages)."""
    descriptor: MethodDescriptor

    @property
    def operation(self) -> str:
        """The name of the operation that serves it (:class:`Operations`): ``send_message``."""
        return operation_name(self.name)

    @classmethod
    def of(cls, descriptor: MethodDescriptor) -> Method:
        return cls(
            descriptor.name,
            f"/{descriptor.containing_service.full_name}/{descriptor.name}",
            message_factory.GetMessageClass(descriptor.input_type),
            message_factory.GetMessageClass(descriptor.output_type),
            descriptor.server_streaming,
            descriptor,
        )


def method_table(service: ServiceDescriptor) -> Mapping[str, Method]:
    """Every RPC of ``service`` by name, in the order the proto declares them."""
    return {m.name: Method.of(m) for m in service.methods}


METHODS: Mapping[str, Method] = method_table(types.A2A_SERVICE)
"""The A2A RPCs by name: servers, clients, the JSON-RPC method names and every upstream call."""


class Operations(Protocol):
    """The eleven A2A operations, as :class:`a2a_grpc._handler.RequestHandler` serves them."""

    async def send_message(
        self, request: types.SendMessageRequest, call: CallContext
    ) -> types.SendMessageResponse: ...

    def send_streaming_message(
        self, request: types.SendMessageRequest, call: CallContext
    ) -> AsyncIterator[types.StreamResponse]: ...

    async def get_task(self, request: types.GetTaskRequest, call: CallContext) -> types.Task: ...

    async def list_tasks(
        self, request: types.ListTasksRequest, call: CallContext
    ) -> types.ListTasksResponse: ...

    async def cancel_task(self, request: types.CancelTaskRequest, call: CallContext) -> types.Task: ...

    def subscribe_to_task(
        self, request: types.SubscribeToTaskRequest, call: CallContext
    ) -> AsyncIterator[types.StreamResponse]: ...

    async def create_task_push_notification_config(
        self, request: types.TaskPushNotificationConfig, call: CallContext
    ) -> types.TaskPushNotificationConfig: ...

    async def get_task_push_notification_config(
        self, request: types.GetTaskPushNotificationConfigRequest, call: CallContext
    ) -> types.TaskPushNotificationConfig: ...

    async def list_task_push_notification_configs(
        self, request: types.ListTaskPushNotificationConfigsRequest, call: CallContext
    ) -> types.ListTaskPushNotificationConfigsResponse: ...

    async def delete_task_push_notification_config(
        self, request: types.DeleteTaskPushNotificationConfigRequest, call: CallContext
    ) -> None: ...

    async def get_extended_agent_card(
        self, request: types.GetExtendedAgentCardRequest, call: CallContext
    ) -> types.AgentCard: ...


UnaryOperation = Callable[[Any, CallContext], Awaitable[Message | None]]
StreamOperation = Callable[[Any, CallContext], AsyncIterator[Message]]


def _unary_operations(ops: Operations) -> dict[str, UnaryOperation]:
    # Written out rather than looked up by name, so that mypy checks every callee and its kind.
    return {
        "SendMessage": ops.send_message,
        "GetTask": ops.get_task,
        "ListTasks": ops.list_tasks,
        "CancelTask": ops.cancel_task,
        "CreateTaskPushNotificationConfig": ops.create_task_push_notification_config,
        "GetTaskPushNotificationConfig": ops.get_task_push_notification_config,
        "ListTaskPushNotificationConfigs": ops.list_task_push_notification_configs,
        "DeleteTaskPushNotificationConfig": ops.delete_task_push_notification_config,
        "GetExtendedAgentCard": ops.get_extended_agent_card,
    }


def _stream_operations(ops: Operations) -> dict[str, StreamOperation]:
    return {
        "SendStreamingMessage": ops.send_streaming_message,
        "SubscribeToTask": ops.subscribe_to_task,
    }


# -- interceptors -------------------------------------------------------------------------------


class EventStream(Protocol):
    """The events of one streaming call, which its reader closes (``contextlib.aclosing``)."""

    def __aiter__(self) -> AsyncIterator[Message]: ...

    def __anext__(self) -> Awaitable[Message]: ...

    async def aclose(self) -> None: ...


UnaryCall = Callable[[Message, CallContext], Awaitable[Message]]
"""A unary call through the rest of the chain: request and context in, response out."""
StreamCall = Callable[[Message, CallContext], AsyncIterator[Message]]
"""A streaming call through the rest of the chain: request and context in, events out."""


class Interceptor:
    """One link of the chain every call passes through. The defaults pass the call on unchanged;
    override :meth:`unary`, :meth:`stream` or both (only overridden methods join a chain)."""

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        """Serve a unary call: ``await call_next(request, context)`` goes on; raising refuses it."""
        return await call_next(request, context)

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        """Serve a streaming call, usually as an async generator over ``call_next(request, context)``;
        raising before the first event refuses it. When the reader stops early (a client that
        leaves), the generator is closed: its ``finally`` blocks run."""
        return call_next(request, context)


def _overrides(link: Interceptor, name: str) -> bool:
    return getattr(type(link), name) is not getattr(Interceptor, name)


class _ChainStream:
    """The events of one streaming call through interceptors. Closing it closes every link the
    call opened, outermost first: a link that did not close what it read from is closed all the same."""

    __slots__ = ("_head", "_opened")

    def __init__(self, head: AsyncIterator[Message], opened: list[AsyncIterator[Message] | None]) -> None:
        self._head = head
        self._opened = opened

    def __aiter__(self) -> _ChainStream:
        return self

    def __anext__(self) -> Awaitable[Message]:
        return self._head.__anext__()

    async def aclose(self) -> None:
        await _close_all([self._head, *self._opened])


async def _close_all(iterators: Sequence[AsyncIterator[Message] | None]) -> None:
    # One after the other, each even if closing another failed; the first failure is raised.
    failure: BaseException | None = None
    for iterator in iterators:
        close = getattr(iterator, "aclose", None)
        if close is None:
            continue
        try:
            await close()
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


def _unary_link(link: Interceptor, method: Method, call_next: UnaryCall) -> UnaryCall:
    def call(request: Message, context: CallContext) -> Awaitable[Message]:
        return link.unary(method, request, context, call_next)

    return call


def _stream_chain(method: Method, terminal: StreamCall, links: Sequence[Interceptor]) -> StreamCall:
    if not links:

        def direct(request: Message, context: CallContext) -> AsyncIterator[Message]:
            events = terminal(request, context)
            return events if hasattr(events, "aclose") else _ChainStream(events, [])

        return direct
    depth = len(links)

    def start(request: Message, context: CallContext) -> AsyncIterator[Message]:
        opened: list[AsyncIterator[Message] | None] = [None] * depth

        def call_next_of(level: int) -> StreamCall:
            def call_next(req: Message, ctx: CallContext) -> AsyncIterator[Message]:
                if level == depth:
                    events = terminal(req, ctx)
                else:
                    events = links[level].stream(method, req, ctx, call_next_of(level + 1))
                opened[level - 1] = events
                return events

            return call_next

        return _ChainStream(links[0].stream(method, request, context, call_next_of(1)), opened)

    return start


class Service:
    """Endpoints (one per method: the operation, or a forward to another agent) behind an ordered
    chain of interceptors. The chain of each method is composed once, here."""

    def __init__(
        self,
        endpoints: Mapping[str, UnaryCall | StreamCall],
        interceptors: Iterable[Interceptor] = (),
        *,
        methods: Mapping[str, Method] = METHODS,
    ) -> None:
        self.interceptors: tuple[Interceptor, ...] = tuple(interceptors)
        self.methods = methods
        self._endpoints = dict(endpoints)
        unknown = set(self._endpoints) - set(methods)
        missing = set(methods) - set(self._endpoints)
        if unknown or missing:
            raise ValueError(
                f"endpoints must serve exactly the methods of the table: "
                f"missing {sorted(missing) or 'none'}, unknown {sorted(unknown) or 'none'}"
            )
        unary_links = [i for i in self.interceptors if _overrides(i, "unary")]
        stream_links = [i for i in self.interceptors if _overrides(i, "stream")]
        self._unary: dict[str, UnaryCall] = {}
        self._stream: dict[str, StreamCall] = {}
        for name, method in methods.items():
            endpoint = self._endpoints[name]
            if method.streaming:
                self._stream[name] = _stream_chain(method, cast(StreamCall, endpoint), stream_links)
            else:
                call = cast(UnaryCall, endpoint)
                for link in reversed(unary_links):
                    call = _unary_link(link, method, call)
                self._unary[name] = call

    @classmethod
    def serving(cls, operations: Operations, interceptors: Iterable[Interceptor] = ()) -> Service:
        """The A2A operations of ``operations`` (a RequestHandler) behind ``interceptors``."""
        unary, streams = _unary_operations(operations), _stream_operations(operations)
        if set(streams) != {name for name, method in METHODS.items() if method.streaming}:
            raise ValueError("the streaming operations do not match the method table's streaming RPCs")
        endpoints: dict[str, UnaryCall | StreamCall] = dict(streams)
        for name, operation in unary.items():
            response = METHODS[name].response
            if response.DESCRIPTOR.fields:
                endpoints[name] = cast(UnaryCall, operation)
            else:  # google.protobuf.Empty, which the operation answers with None
                endpoints[name] = _empty_for_none(operation, response)
        return cls(endpoints, interceptors)

    def with_outer(self, interceptors: Iterable[Interceptor]) -> Service:
        """The same endpoints with ``interceptors`` in front of this service's own."""
        return Service(self._endpoints, [*interceptors, *self.interceptors], methods=self.methods)

    def unary(self, name: str) -> UnaryCall:
        """The chain of unary method ``name``; KeyError if there is no such unary method."""
        return self._unary[name]

    def stream(self, name: str) -> Callable[[Message, CallContext], EventStream]:
        """The chain of streaming method ``name``; what it returns must be closed by its reader
        (``contextlib.aclosing``), which closes every link. KeyError if there is no such method."""
        return cast(Callable[[Message, CallContext], EventStream], self._stream[name])


def _empty_for_none(operation: UnaryOperation, response: type[Message]) -> UnaryCall:
    """An operation answering ``google.protobuf.Empty`` by returning None, as a call that answers it."""

    async def call(request: Message, context: CallContext) -> Message:
        result = await operation(request, context)
        return response() if result is None else result

    return call
