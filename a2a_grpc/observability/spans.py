"""OpenTelemetry spans, when ``ObservabilitySettings.spans`` is on (off by default).

The SDK is an optional extra (``pip install a2a-grpc[otel]``) and is imported only here, only when
spans are switched on: a process without spans never loads it.

* A SERVER span per call (``A2AService/SendMessage``), child of the call's ``traceparent`` (a root
  span when it had none, or an invalid one): :class:`SpanLink`, the outermost link of the call
  seam. :data:`~a2a_grpc.observability.context.TRACE` holds the span's context while the call
  runs, so log lines name its trace and every call the agent makes continues it.
* A CLIENT span per outgoing call (our gRPC and session clients, the bridge's upstream calls),
  whose context is the ``traceparent`` sent (:func:`a2a_grpc.observability.trace.traced_unary`).
* Attributes: ``rpc.system`` (``a2a``), ``rpc.service``, ``rpc.method``, ``a2a.front``,
  ``a2a.agent`` (the called agent), ``a2a.caller`` (the principal's id; never a credential),
  ``a2a.skill`` (the ``a2a-grpc-skill`` header, when sent), ``a2a.task.id``,
  ``a2a.task.state``, ``a2a.outcome`` (``ok`` or the error's reason), ``rpc.grpc.status_code``.

Per process, once: :func:`setup` builds a TracerProvider exporting over OTLP/gRPC with a
BatchSpanProcessor (each server that starts with spans on calls it; :func:`release`, called on
stop, flushes and shuts the provider down when the last one stops). Tests and programs that own
their TracerProvider call :func:`install` first (an ``InMemorySpanExporter``'s, say); it is then
used as is, flushed on release, and never shut down by us.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.observability import trace as _trace
from a2a_grpc.observability.context import TRACE, TraceHeaders
from a2a_grpc.observability.settings import ObservabilitySettings
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "OTEL_MISSING",
    "CallerLink",
    "SpanLink",
    "install",
    "otel_context",
    "release",
    "setup",
    "uninstall",
]

OTEL_MISSING = "spans need the OpenTelemetry SDK: pip install a2a-grpc[otel]"
SKILL_HEADER = "a2a-grpc-skill"  # as a2a_grpc.security.delegation names it (not imported: no cycle)
_SERVICE = types.A2A_SERVICE.full_name
_SERVICES = {"A2AService": _SERVICE, "AgentCardService": "a2a_grpc.discovery.v1.AgentCardService"}
_STATE_NAMES = {value: name for name, value in types.TaskState.items()}
_SERVING: ContextVar[Span | None] = ContextVar("a2a_server_span", default=None)
"""The SERVER span of the call being served, for :class:`CallerLink`."""


class _Process:
    """The process's one provider and how many servers use it."""

    provider: TracerProvider | None = None
    owned = False  # built by setup(): shut down by the last release()
    users = 0
    recorder: _Recorder | None = None


def _otel() -> Any:
    try:
        from opentelemetry import trace as otel_trace
    except ImportError as exc:  # pragma: no cover - the extra is installed where tests run
        raise RuntimeError(OTEL_MISSING) from exc
    return otel_trace


def install(provider: TracerProvider) -> None:
    """Record spans with ``provider`` (yours: it is flushed, never shut down, by :func:`release`)
    from now on, whether or not a server has spans on; replaces any provider installed before."""
    _otel()
    _Process.provider, _Process.owned = provider, False
    _Process.recorder = _Recorder(provider.get_tracer("a2a_grpc"))
    _trace.set_recorder(_Process.recorder)


def uninstall() -> None:
    """Stop recording spans (what :func:`install` started); does not shut the provider down."""
    _Process.provider, _Process.owned, _Process.users, _Process.recorder = None, False, 0, None
    _trace.set_recorder(None)


FLUSH_MILLIS = 5_000
"""How long a stopping process waits for its last spans to be exported (a collector that is away
must not hold the stop up for the SDK's own 30 s)."""


def setup(settings: ObservabilitySettings, service_name: str) -> None:
    """Spans on for this process, once: a TracerProvider (``service.name``: the settings' or
    ``service_name``) exporting over OTLP/gRPC to ``settings.otlp_endpoint`` in batches. Counted:
    each call needs a :func:`release`. RuntimeError naming the extra if the SDK is missing."""
    if _Process.provider is None:
        _otel()
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise RuntimeError(OTEL_MISSING) from exc
        resource = Resource.create({SERVICE_NAME: settings.service_name or service_name or "a2a-grpc"})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
        install(provider)
        _Process.owned = True
    _Process.users += 1


def release() -> None:
    """One :func:`setup` less: flush; the last one shuts down the provider setup built."""
    provider = _Process.provider
    if provider is None:
        return
    _Process.users = max(_Process.users - 1, 0)
    provider.force_flush(FLUSH_MILLIS)
    if _Process.users == 0 and _Process.owned:
        provider.shutdown()
        uninstall()


def otel_context() -> Context:
    """An OpenTelemetry Context holding the current :data:`TRACE` as the parent, for an agent's own
    spans: ``tracer.start_as_current_span("work", context=otel_context())``."""
    return _parent_context(TRACE.get())


# -- spans ---------------------------------------------------------------------------------------


@functools.cache
def _api() -> Any:
    """The OpenTelemetry API names a span needs, imported once (not in every call)."""
    from opentelemetry import context, trace
    from opentelemetry.trace import span

    return context, trace, span


def _parent_context(parent: TraceHeaders | None) -> Context:
    context, otel, span = _api()
    if parent is None:
        return cast("Context", context.Context())
    _, trace_id, span_id, flags = parent.traceparent.split("-")
    state = span.TraceState.from_header([parent.tracestate]) if parent.tracestate else None
    span_context = otel.SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=otel.TraceFlags(int(flags, 16)),
        trace_state=state,
    )  # fmt: skip
    return cast("Context", otel.set_span_in_context(otel.NonRecordingSpan(span_context)))


def _headers(span: Span, parent: TraceHeaders | None) -> TraceHeaders:
    context = span.get_span_context()
    traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
    return TraceHeaders(traceparent, parent.tracestate if parent is not None else None)


class _ClientSpan:
    __slots__ = ("headers", "span")

    def __init__(self, span: Span, headers: TraceHeaders) -> None:
        self.span, self.headers = span, headers

    def finish(self, error: BaseException | None = None) -> None:
        if error is not None:
            _failed(self.span, error)
        else:
            self.span.set_attribute("a2a.outcome", "ok")
        self.span.end()


class _Recorder:
    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry.trace import SpanKind

        self.tracer = tracer
        self.kinds = SpanKind

    def client_span(self, name: str, parent: TraceHeaders | None, peer: str = "") -> _ClientSpan:
        service, _, rpc = name.partition("/")
        attributes = {"rpc.system": "a2a", "rpc.service": _SERVICES.get(service, service), "rpc.method": rpc}
        if peer:
            attributes["server.address"] = peer
        span = self.tracer.start_span(
            name, context=_parent_context(parent), kind=self.kinds.CLIENT, attributes=attributes
        )
        return _ClientSpan(span, _headers(span, parent))

    def server_span(
        self, method: Method, request: Message, context: CallContext, agent: str
    ) -> tuple[Span, TraceHeaders]:
        parent = None
        if (traceparent := _trace.parse_traceparent(context.traceparent)) is not None:
            parent = TraceHeaders(traceparent, _trace.parse_tracestate(context.tracestate))
        attributes = {
            "rpc.system": "a2a",
            "rpc.service": _SERVICE,
            "rpc.method": method.name,
            "a2a.front": context.front,
            "a2a.call_id": context.call_id,
        }
        if agent:
            attributes["a2a.agent"] = agent
        if context.principal is not None:  # a front that knew it already; else CallerLink says it
            attributes["a2a.caller"] = context.principal.id
        if skill := context.headers.get(SKILL_HEADER):
            attributes["a2a.skill"] = skill[:256]
        if task_id := _task_of_request(method, request):
            attributes["a2a.task.id"] = task_id
        span = self.tracer.start_span(
            f"A2AService/{method.name}",
            context=_parent_context(parent),
            kind=self.kinds.SERVER,
            attributes=attributes,
        )
        return span, _headers(span, parent)


def _failed(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    if isinstance(error, errors.A2AError):
        reason = error.spec.reason or error.spec.name
        span.set_attribute("a2a.outcome", reason)
        span.set_attribute("rpc.grpc.status_code", error.grpc_code.value[0])
        span.set_status(Status(StatusCode.ERROR, error.spec.name))
    elif isinstance(error, GeneratorExit):  # the reader left: not the call's failure
        span.set_attribute("a2a.outcome", "closed")
    else:
        span.set_attribute(
            "a2a.outcome", "cancelled" if type(error).__name__ == "CancelledError" else "error"
        )
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def _task_of_request(method: Method, request: Message) -> str:
    if isinstance(request, types.SendMessageRequest):
        return request.message.task_id
    task_id = getattr(request, "task_id", "") or (
        getattr(request, "id", "") if method.name.endswith("Task") else ""
    )
    return task_id if isinstance(task_id, str) else ""


def _noted(message: Message) -> dict[str, str]:
    """The task id and state a response or stream event names, as span attributes."""
    task: Any = None
    if isinstance(message, types.Task):
        task = message
    elif isinstance(message, types.SendMessageResponse):
        if message.HasField("task"):
            task = message.task
        elif message.HasField("message") and message.message.task_id:
            return {"a2a.task.id": message.message.task_id}
    elif isinstance(message, types.StreamResponse):
        kind = message.WhichOneof("payload")
        if kind == "task":
            task = message.task
        elif kind == "status_update":
            update = message.status_update
            state = _STATE_NAMES.get(update.status.state, "")
            return {"a2a.task.id": update.task_id, "a2a.task.state": state}
    if task is None:
        return {}
    return {"a2a.task.id": task.id, "a2a.task.state": _STATE_NAMES.get(task.status.state, "")}


class SpanLink(Interceptor):
    """A SERVER span per call (what :class:`a2a_grpc.observability.trace.TraceLink` does, and
    more). ``agent`` names the called agent (read at each call: known once the server has
    started). Without a recorder (spans never set up in this process) it only propagates."""

    def __init__(self, agent: Callable[[], str] = lambda: "") -> None:
        self.agent = agent
        self._propagate = _trace.TraceLink()

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        recorder = _Process.recorder
        if recorder is None:
            return await self._propagate.unary(method, request, context, call_next)
        span, headers = recorder.server_span(method, request, context, self.agent())
        TRACE.set(headers)  # set, not reset: see TraceLink
        serving = _SERVING.set(span)
        try:
            response = await call_next(request, context)
        except BaseException as exc:
            _failed(span, exc)
            span.end()
            raise
        finally:
            _SERVING.reset(serving)
        span.set_attributes({**_noted(response), "a2a.outcome": "ok"})  # one lock, not one per value
        span.end()
        return response

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        recorder = _Process.recorder
        if recorder is None:
            return self._propagate.stream(method, request, context, call_next)
        return self._stream(recorder, method, request, context, call_next)

    async def _stream(
        self,
        recorder: _Recorder,
        method: Method,
        request: Message,
        context: CallContext,
        call_next: StreamCall,
    ) -> AsyncIterator[Message]:
        span, headers = recorder.server_span(method, request, context, self.agent())
        TRACE.set(headers)  # the call's own task: see TraceLink
        _SERVING.set(span)
        failure: BaseException | None = None
        try:
            async for event in call_next(request, context):
                if noted := _noted(event):
                    span.set_attributes(noted)
                yield event
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if failure is None:
                span.set_attribute("a2a.outcome", "ok")
            else:
                _failed(span, failure)
            span.end()


class CallerLink(Interceptor):
    """Names the caller (``a2a.caller``: the principal's id) on the call's span. Right after
    authentication in the chain, which is where the principal becomes known (the span starts
    before it, so that a refused call has one too)."""

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        _name_caller(context)
        return await call_next(request, context)

    def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        _name_caller(context)
        return call_next(request, context)


def _name_caller(context: CallContext) -> None:
    span = _SERVING.get()
    if span is not None and context.principal is not None:
        span.set_attribute("a2a.caller", context.principal.id)
