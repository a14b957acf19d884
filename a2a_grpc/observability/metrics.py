"""Prometheus metrics of a process: the collectors, and the call seam's link that feeds most of them.

The collectors are created once, at import, in prometheus-client's default registry, so that an
agent's own metrics are exposed beside ours by the same ``/metrics`` (:mod:`a2a_grpc.bridge.ops`
serves it). Every name starts with ``a2a_`` and carries its unit; docs/metrics.md lists them.

:class:`Metrics` is one :class:`~a2a_grpc.service.Interceptor`, the outermost link of a server's
call seam (``GrpcService.seam_chain``), so it sees every call of every binding: gRPC, the session
binding, the live stream and the in-process bridge's JSON-RPC and HTTP+JSON, which share that seam.
It counts requests, their latency, the calls in flight, the events streamed, the bytes in and out,
the errors by code and the calls refused by a rate or count limit. The rest are counted where they
happen: session handshakes and sessions (:mod:`a2a_grpc.session.server`), task durations and tasks
in flight (:class:`TaskMetrics`, the request handler's), subscriber lag and readers cut off
(:mod:`a2a_grpc.tasks.eventlog`), webhook deliveries (:mod:`a2a_grpc.push`), the bridge's upstream
calls (:mod:`a2a_grpc.bridge.upstream`, :mod:`a2a_grpc.bridge.outbound`).

Label values come only from closed sets: the method table, the five bindings, the error table's
reasons and gRPC status names, the names of the ``Limits`` settings, the agent card's skill ids,
the task states. Nothing a caller sends (a method name over HTTP, an error message, an id) becomes
a label: an unknown value is counted as ``other``. No task, session, context, call or principal id
is ever a label.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge, Histogram

from a2a_grpc import errors, types
from a2a_grpc.security.limits import Limits
from a2a_grpc.service import METHODS, CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = [
    "BINDINGS",
    "CALLS_IN_FLIGHT",
    "ERRORS",
    "EVENTS_NOT_RETAINED",
    "HANDSHAKE_DURATION",
    "HANDSHAKE_OUTCOMES",
    "HTTP_BINDING",
    "RATE_LIMITED",
    "RECEIVED_BYTES",
    "REQUESTS",
    "REQUEST_DURATION",
    "SENT_BYTES",
    "SESSIONS_ACTIVE",
    "STREAM_EVENTS",
    "SUBSCRIBER_LAG",
    "TASKS_IN_FLIGHT",
    "TASK_DURATION",
    "UPSTREAM_DURATION",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_RETRIES",
    "Metrics",
    "TaskMetrics",
    "error_code",
    "handshake_observed",
    "upstream_timer",
]

BINDINGS = ("grpc", "jsonrpc", "rest", "session", "live", "other")
"""The values of every ``binding`` label: how the call reached this process."""

HTTP_BINDING: ContextVar[str] = ContextVar("a2a_http_binding", default="other")
"""Which JSON binding the in-process bridge is serving the current request over (``jsonrpc`` or
``rest``): set by :class:`a2a_grpc.bridge.app.BridgeApp` before it dispatches, read here for a
call whose ``CallContext.front`` is ``http``. (Every HTTP request runs in its own asyncio task, so
the value is the request's own.)"""

_FRONTS = {"grpc": "grpc", "session": "session", "live": "live"}

# Latency buckets from half a millisecond (an in-process call) to a minute (a long stream).
_CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Tasks run from milliseconds (an echo) to hours (a task that waits for input).
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400)
_HANDSHAKE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_LAG_BUCKETS = (0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)

REQUESTS = Counter("a2a_requests", "A2A calls received, by method and binding.", ["method", "binding"])
REQUEST_DURATION = Histogram(
    "a2a_request_duration_seconds",
    "Time from a call's arrival in the call seam to its answer (a stream: to its last event).",
    ["method", "binding"],
    buckets=_CALL_BUCKETS,
)
CALLS_IN_FLIGHT = Gauge("a2a_calls_in_flight", "Calls being served now (streams included).", ["binding"])
ERRORS = Counter(
    "a2a_errors",
    "Calls that ended with an error, by its code (the A2A error reason, else the gRPC status name).",
    ["error_code"],
)
STREAM_EVENTS = Counter(
    "a2a_stream_events",
    "Events sent on streams (SendStreamingMessage, SubscribeToTask).",
    ["method", "binding"],
)
RECEIVED_BYTES = Counter(
    "a2a_received_bytes", "Requests received, in bytes of their protobuf encoding.", ["binding"]
)
SENT_BYTES = Counter(
    "a2a_sent_bytes", "Answers and stream events sent, in bytes of their protobuf encoding.", ["binding"]
)
RATE_LIMITED = Counter(
    "a2a_rate_limited",
    "Calls refused by a rate or count limit (RateLimitedError), by the Limits setting that refused.",
    ["limit"],
)
HANDSHAKE_DURATION = Histogram(
    "a2a_handshake_duration_seconds",
    "Session handshakes: from the stream's arrival to the Welcome (or the refusal), by outcome.",
    ["outcome"],
    buckets=_HANDSHAKE_BUCKETS,
)
HANDSHAKE_OUTCOMES = ("opened", "resumed", "refused", "timeout", "failed")
"""``opened``: a new session; ``resumed``: a session taken over by a new connection; ``refused``:
a typed error (negotiation, credentials, a limit, a bad token); ``timeout``: no Hello in time;
``failed``: anything else (the peer left, a malformed first frame)."""
SESSIONS_ACTIVE = Gauge(
    "a2a_sessions_active", "Sessions open now (attached to a connection or waiting to be resumed)."
)
TASK_DURATION = Histogram(
    "a2a_task_duration_seconds",
    "Tasks created here, from creation to their terminal state, by skill and final state.",
    ["skill", "state"],
    buckets=_TASK_BUCKETS,
)
TASKS_IN_FLIGHT = Gauge(
    "a2a_tasks_in_flight",
    "Executions running now: the agent working on one incoming message (or a cancel, or a task "
    "resumed after a restart), from its start until execute returns.",
)
SUBSCRIBER_LAG = Histogram(
    "a2a_subscriber_lag_events",
    "How many events a subscriber (a reader other than the task's own caller) is behind after "
    "each event it reads.",
    buckets=_LAG_BUCKETS,
)
EVENTS_NOT_RETAINED = Counter(
    "a2a_events_not_retained",
    "Readers cut off because they fell behind the retained window (EventsNotRetainedError).",
)
WEBHOOK_DELIVERIES = Counter(
    "a2a_webhook_deliveries",
    "Push notifications, by outcome: delivered, failed (given up after its attempts, or refused by "
    "the webhook policy), dropped (never queued).",
    ["outcome"],
)
WEBHOOK_RETRIES = Counter("a2a_webhook_retries", "Push notification attempts made again after a failure.")
UPSTREAM_DURATION = Histogram(
    "a2a_bridge_upstream_duration_seconds",
    "The bridge's calls to the agent behind it: a unary call until its answer, a stream until its "
    "first event (gRPC) or its response headers (JSON), by transport and method.",
    ["transport", "method"],
    buckets=_CALL_BUCKETS,
)

_METHOD_NAMES = frozenset(METHODS) | {"GetAgentCard"}
_LIMIT_NAMES = frozenset(f.name for f in dataclasses.fields(Limits)) | {"max_receive_message_bytes"}
_REASONS = frozenset(
    spec.reason for spec in (*errors.ERROR_TABLE, *errors.OUR_ERRORS, *errors.TRANSPORT_ERRORS) if spec.reason
)
_HANDSHAKES = {outcome: HANDSHAKE_DURATION.labels(outcome) for outcome in HANDSHAKE_OUTCOMES}
_RATE_LIMITED: dict[str, Any] = {}
_ERRORS: dict[str, Any] = {}


def error_code(exc: BaseException) -> str:
    """The ``error_code`` label of a call that raised ``exc``: the A2A error's reason
    (``TASK_NOT_FOUND``), for one without a reason its gRPC status name, ``INTERNAL`` for an
    exception that is not an A2A error. Always one of a closed set."""
    if isinstance(exc, errors.A2AError):
        reason = exc.spec.reason
        if reason in _REASONS:
            return reason
        return str(errors.wire_grpc_code(exc).name)
    return "INTERNAL"


def _count_error(exc: BaseException) -> None:
    code = error_code(exc)
    child = _ERRORS.get(code)
    if child is None:
        child = _ERRORS[code] = ERRORS.labels(code)
    child.inc()
    if isinstance(exc, errors.RateLimitedError):
        limit = exc.metadata.get(errors.LIMIT_KEY, "")
        limit = limit if limit in _LIMIT_NAMES else "other"
        limited = _RATE_LIMITED.get(limit)
        if limited is None:
            limited = _RATE_LIMITED[limit] = RATE_LIMITED.labels(limit)
        limited.inc()


def handshake_observed(outcome: str, started: float) -> None:
    """One session handshake that began at ``started`` (``time.perf_counter()``) ended with
    ``outcome`` (one of :data:`HANDSHAKE_OUTCOMES`)."""
    _HANDSHAKES.get(outcome, _HANDSHAKES["failed"]).observe(time.perf_counter() - started)


class _Series:
    """The labelled children one (method, binding) pair updates, looked up once."""

    __slots__ = ("duration", "events", "in_flight", "received", "requests", "sent")

    def __init__(self, method: str, binding: str) -> None:
        self.requests = REQUESTS.labels(method, binding)
        self.duration = REQUEST_DURATION.labels(method, binding)
        self.in_flight = CALLS_IN_FLIGHT.labels(binding)
        self.events = STREAM_EVENTS.labels(method, binding)
        self.received = RECEIVED_BYTES.labels(binding)
        self.sent = SENT_BYTES.labels(binding)


_QUIET = (GeneratorExit,)
"""How a stream ends when its reader stops reading (a client that left): not an error."""


class Metrics(Interceptor):
    """The call seam's metrics link (see the module doc): the outermost link of a server's seam,
    present only while ``ObservabilitySettings.metrics`` is on."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}

    def _of(self, method: Method, context: CallContext) -> _Series:
        front = context.front
        binding = HTTP_BINDING.get() if front == "http" else _FRONTS.get(front, "other")
        series = self._series.get((method.name, binding))
        if series is None:  # once per pair: the label lookups are not paid per call
            name = method.name if method.name in _METHOD_NAMES else "other"
            series = self._series[(method.name, binding)] = _Series(name, binding)
        return series

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        series = self._of(method, context)
        series.requests.inc()
        series.received.inc(request.ByteSize())
        in_flight = series.in_flight
        in_flight.inc()
        start = time.perf_counter()
        try:
            response = await call_next(request, context)
        except BaseException as exc:
            if not isinstance(exc, _QUIET):
                _count_error(exc)
            raise
        finally:
            series.duration.observe(time.perf_counter() - start)
            in_flight.dec()
        series.sent.inc(response.ByteSize())
        return response

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        series = self._of(method, context)
        series.requests.inc()
        series.received.inc(request.ByteSize())
        in_flight = series.in_flight
        in_flight.inc()
        start = time.perf_counter()
        events, sent = series.events, series.sent
        try:
            async for event in call_next(request, context):
                events.inc()
                sent.inc(event.ByteSize())
                yield event
        except BaseException as exc:
            if not isinstance(exc, _QUIET):
                _count_error(exc)
            raise
        finally:
            series.duration.observe(time.perf_counter() - start)
            in_flight.dec()


_STATE_NAMES = {
    value: types.TaskState.Name(value).removeprefix("TASK_STATE_").lower()
    for value in types.TaskState.values()
}


class TaskMetrics:
    """Task durations (``a2a_task_duration_seconds``) for one request handler:
    ``skill`` is the ``a2a-grpc-skill`` service parameter of the message that created the task when
    the card has a skill by that id, ``other`` when it names another, "" when there is none.
    (``a2a_tasks_in_flight`` is counted by the handler around each execution.)"""

    def __init__(self, card: types.AgentCard, terminal: Iterable[int]) -> None:
        self.skills = frozenset(skill.id for skill in card.skills)
        self.terminal = frozenset(terminal)
        self._children: dict[tuple[str, int], Any] = {}

    def skill(self, declared: str | None) -> str:
        if not declared:
            return ""
        return declared if declared in self.skills else "other"

    def started(self, declared_skill: str | None) -> Callable[[int], None]:
        """A task was created now: the listener (``TaskRun.listeners``) that records its duration
        when it reaches a terminal state, once. A task whose run leaves memory before it ends (it
        waited for input with nobody watching) is not recorded: its start is not kept anywhere."""
        skill = self.skill(declared_skill)
        start = time.perf_counter()
        done = False
        terminal, children = self.terminal, self._children

        def listener(state: int) -> None:
            nonlocal done
            if done or state not in terminal:
                return
            done = True
            child = children.get((skill, state))
            if child is None:
                name = _STATE_NAMES.get(state, "other")
                child = children[(skill, state)] = TASK_DURATION.labels(skill, name)
            child.observe(time.perf_counter() - start)

        return listener


_UPSTREAM: dict[tuple[str, str], Any] = {}


def upstream_timer(transport: str, method: str) -> Any:
    """The histogram child of the bridge's upstream calls of ``method`` over ``transport`` (``grpc``,
    ``jsonrpc``, ``rest``), looked up once per pair; ``.observe(seconds)`` it."""
    child = _UPSTREAM.get((transport, method))
    if child is None:
        name = method if method in _METHOD_NAMES else "other"
        child = _UPSTREAM[(transport, method)] = UPSTREAM_DURATION.labels(transport, name)
    return child
