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

import bisect
import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from typing import Any

from google.protobuf.message import Message
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from a2a_grpc import errors, types
from a2a_grpc.security.limits import Limits
from a2a_grpc.service import METHODS, CallContext, Interceptor, Method, StreamCall, UnaryCall

__all__ = [
    "BINDINGS",
    "ERRORS",
    "EVENTS_NOT_RETAINED",
    "HANDSHAKE_DURATION",
    "HANDSHAKE_OUTCOMES",
    "HTTP_BINDING",
    "RATE_LIMITED",
    "SESSIONS_ACTIVE",
    "SHARED_LIMITS_UNREACHABLE",
    "SUBSCRIBER_LAG",
    "TASKS_IN_FLIGHT",
    "UPSTREAM_DURATION",
    "WEBHOOK_DELIVERIES",
    "WEBHOOK_RETRIES",
    "WIRES",
    "Metrics",
    "TaskMetrics",
    "counting_deserializer",
    "counting_serializer",
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

ERRORS = Counter(
    "a2a_errors",
    "Calls that ended with an error, by its code (the A2A error reason, else the gRPC status name).",
    ["error_code"],
)
RATE_LIMITED = Counter(
    "a2a_rate_limited",
    "Calls refused by a rate or count limit (RateLimitedError), by the Limits setting that refused.",
    ["limit"],
)
SHARED_LIMITS_UNREACHABLE = Counter(
    "a2a_shared_limits_unreachable",
    "Decisions made by Limits.redis_unreachable because Redis did not answer, by what asked: rates, "
    "counts (running tasks, streams, sessions of other replicas) or receipts (repeated messages).",
    ["what"],
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


# -- what is counted per call, per task and per event --------------------------------------------
#
# Kept as plain numbers and exposed by a collector of our own (_SeamCollector), not as
# prometheus-client's Counter/Gauge/Histogram: each of those updates takes a lock, about 1 us apiece,
# and a call made six of them (9.5 us per call through the seam, measured against 3.4 us for the
# call itself); an attribute increment costs about 0.05 us. Only the event loop's thread writes
# these (the seam, the handler, the event log run there); a scrape from another thread reads a
# value at most one update old. Rare events (errors, handshakes, webhooks) keep prometheus-client's
# own collectors.


class _Histogram:
    """A histogram's counts as plain numbers: ``observe`` puts a value in the first bucket whose
    bound is at least the value (Prometheus's ``le``), the last one being +Inf."""

    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1

    def points(self) -> list[tuple[str, float]]:
        """The cumulative buckets, as ``HistogramMetricFamily.add_metric`` takes them."""
        out, running = [], 0
        for le, count in zip(_le(self.bounds), self.buckets, strict=True):
            running += count
            out.append((le, float(running)))
        return out


@functools.cache
def _le(bounds: tuple[float, ...]) -> tuple[str, ...]:
    return (*(str(floatToGoString(b)) for b in bounds), "+Inf")  # type: ignore[no-untyped-call]


class _Level:
    """A gauge as a plain number."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


_CALL_BOUNDS = tuple(float(b) for b in _CALL_BUCKETS)
_TASK_BOUNDS = tuple(float(b) for b in _TASK_BUCKETS)
TASKS_IN_FLIGHT = _Level()
"""``a2a_tasks_in_flight``: executions running now (the request handler counts them)."""
SUBSCRIBER_LAG = _Histogram(tuple(float(b) for b in _LAG_BUCKETS))
"""``a2a_subscriber_lag_events`` (the event log observes it for every reader but the primary)."""
_TASK_DURATIONS: dict[tuple[str, str], _Histogram] = {}


class _Wire:
    """One binding's calls in flight and bytes in and out."""

    __slots__ = ("in_flight", "received", "sent")

    def __init__(self) -> None:
        self.in_flight = 0
        self.received = 0
        self.sent = 0


WIRES: dict[str, _Wire] = {binding: _Wire() for binding in BINDINGS}
"""Each binding's counts; :func:`counting_deserializer` and friends add the bytes."""


class _Calls:
    """One (method, binding) pair's requests, latency histogram and stream events."""

    __slots__ = ("duration", "events", "requests", "wire")

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.requests = 0
        self.events = 0
        self.duration = _Histogram(_CALL_BOUNDS)


_CALLS: dict[tuple[str, str], _Calls] = {}
"""Every (method, binding) pair seen, process-wide (the registry is the process's too)."""


class _SeamCollector(Collector):
    """Exposes the plain counts: a2a_requests_total, a2a_request_duration_seconds,
    a2a_calls_in_flight, a2a_stream_events_total, a2a_received_bytes_total, a2a_sent_bytes_total,
    a2a_task_duration_seconds, a2a_tasks_in_flight, a2a_subscriber_lag_events."""

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "a2a_requests", "A2A calls received, by method and binding.", labels=["method", "binding"]
        )
        duration = HistogramMetricFamily(
            "a2a_request_duration_seconds",
            "Time from a call's arrival in the call seam to its answer (a stream: to its last event).",
            labels=["method", "binding"],
        )
        events = CounterMetricFamily(
            "a2a_stream_events",
            "Events sent on streams (SendStreamingMessage, SubscribeToTask), by method and binding.",
            labels=["method", "binding"],
        )
        for (method, binding), calls in list(_CALLS.items()):
            labels = [method, binding]
            requests.add_metric(labels, calls.requests)
            duration.add_metric(labels, calls.duration.points(), calls.duration.total)
            if calls.events:
                events.add_metric(labels, calls.events)
        in_flight = GaugeMetricFamily(
            "a2a_calls_in_flight",
            "Calls being served now (streams included), by binding.",
            labels=["binding"],
        )
        received = CounterMetricFamily(
            "a2a_received_bytes",
            "Bytes received: gRPC messages, session frames, JSON request bodies, by binding.",
            labels=["binding"],
        )
        sent = CounterMetricFamily(
            "a2a_sent_bytes",
            "Bytes sent: gRPC messages, session frames, JSON and SSE response bodies, by binding.",
            labels=["binding"],
        )
        for binding, wire in WIRES.items():
            in_flight.add_metric([binding], wire.in_flight)
            received.add_metric([binding], wire.received)
            sent.add_metric([binding], wire.sent)
        tasks = HistogramMetricFamily(
            "a2a_task_duration_seconds",
            "Tasks created here, from creation to their terminal state, by skill and final state.",
            labels=["skill", "state"],
        )
        for (skill, state), histogram in list(_TASK_DURATIONS.items()):
            tasks.add_metric([skill, state], histogram.points(), histogram.total)
        running = GaugeMetricFamily(
            "a2a_tasks_in_flight",
            "Executions running now: the agent working on one incoming message (or a cancel, or a "
            "task resumed after a restart), from its start until execute returns.",
            value=TASKS_IN_FLIGHT.value,
        )
        lag = HistogramMetricFamily(
            "a2a_subscriber_lag_events",
            "How many events a subscriber (a reader other than the task's own caller) is behind "
            "after each event it reads.",
            buckets=SUBSCRIBER_LAG.points(),
            sum_value=SUBSCRIBER_LAG.total,
        )
        return [requests, duration, events, in_flight, received, sent, tasks, running, lag]


REGISTRY.register(_SeamCollector())


_LOOKUP: dict[tuple[str, str], _Calls] = {}
"""The same, by the method name as called (any name not in the method table shares ``other``)."""


def _calls_of(method: str, binding: str) -> _Calls:
    calls = _LOOKUP.get((method, binding))
    if calls is None:  # once per pair: label values are looked up and checked once, not per call
        name = method if method in _METHOD_NAMES else "other"
        calls = _CALLS.get((name, binding))
        if calls is None:
            calls = _CALLS[(name, binding)] = _Calls(WIRES[binding])
        _LOOKUP[(method, binding)] = calls
    return calls


def counting_deserializer(binding: str, deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserialize``, adding the bytes it reads to ``binding``'s ``a2a_received_bytes_total``."""
    wire = WIRES[binding]

    def counted(data: bytes) -> Any:
        wire.received += len(data)
        return deserialize(data)

    return counted


def counting_serializer(binding: str, serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """``serialize``, adding the bytes it writes to ``binding``'s ``a2a_sent_bytes_total``."""
    wire = WIRES[binding]

    def counted(message: Any) -> bytes:
        data = serialize(message)
        wire.sent += len(data)
        return data

    return counted


_QUIET = (GeneratorExit,)
"""How a stream ends when its reader stops reading (a client that left): not an error."""


def _started(method: Method, context: CallContext) -> _Calls:
    """The counts of the call's method and binding, with the call counted in."""
    front = context.front
    binding = HTTP_BINDING.get() if front == "http" else _FRONTS.get(front, "other")
    calls = _calls_of(method.name, binding)
    calls.requests += 1
    calls.wire.in_flight += 1
    return calls


class Metrics(Interceptor):
    """The call seam's metrics link (see the module doc): the outermost link of a server's seam,
    present only while ``ObservabilitySettings.metrics`` is on. Bytes are counted where they are
    (de)serialized, not here: sizing a protobuf message costs as much as encoding it."""

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        calls = _started(method, context)
        wire = calls.wire
        start = time.perf_counter()
        try:
            return await call_next(request, context)
        except BaseException as exc:
            if not isinstance(exc, _QUIET):
                _count_error(exc)
            raise
        finally:
            calls.duration.observe(time.perf_counter() - start)
            wire.in_flight -= 1

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        calls = _started(method, context)
        wire = calls.wire
        start = time.perf_counter()
        try:
            async for event in call_next(request, context):
                calls.events += 1
                yield event
        except BaseException as exc:
            if not isinstance(exc, _QUIET):
                _count_error(exc)
            raise
        finally:
            calls.duration.observe(time.perf_counter() - start)
            wire.in_flight -= 1


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
        self._children: dict[tuple[str, int], _Histogram] = {}

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
            histogram = children.get((skill, state))
            if histogram is None:
                key = (skill, _STATE_NAMES.get(state, "other"))
                histogram = _TASK_DURATIONS.get(key)
                if histogram is None:
                    histogram = _TASK_DURATIONS[key] = _Histogram(_TASK_BOUNDS)
                children[(skill, state)] = histogram
            histogram.observe(time.perf_counter() - start)

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
