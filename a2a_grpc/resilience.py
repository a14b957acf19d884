"""How a client survives a peer that fails in parts: which failed calls are tried again, after
how long, and a circuit breaker per peer that stops calling one that keeps failing.

:class:`ResiliencePolicy` (``ClientSettings.resilience``) is the data; :class:`CircuitBreaker` the
state machine; :func:`retry_delay` the decision after a failed attempt. The client's call loop
(:class:`a2a_grpc.client.A2AClient`) puts them together, reading time from a :class:`Clock` that
tests replace.

What is tried again (A2A 1.0.1 section 3.3.1 says which operations are idempotent):

* reads (GetTask, ListTasks, GetExtendedAgentCard, the push-config reads, our GetAgentCard),
  SubscribeToTask, DeleteTaskPushNotificationConfig (idempotent by the specification) and
  CancelTask (idempotent in effect: a retry that finds the task already canceled by the attempt
  whose answer was lost returns that task);
* CreateTaskPushNotificationConfig when the config names its ``id`` (the same id replaces itself);
* SendMessage and SendStreamingMessage when the message carries a ``message_id`` and
  ``retry_send_message`` is on: an a2a-grpc server answers a repeated message id from the first
  receipt instead of running it again (within its ``Limits.dedupe_window_seconds``);
* streams only before their first event (after it, the caller has seen part of the answer).

Only on failures that say the peer did not do it: UNAVAILABLE, and RESOURCE_EXHAUSTED when the
server said when to come back (a ``google.rpc.RetryInfo``, as a
:class:`~a2a_grpc.errors.RateLimitedError` carries), waiting what it said. Never on an A2A error
(TaskNotFound, InvalidParams...): asking again gets the same answer.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import json
import time

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed

from a2a_grpc import errors
from a2a_grpc.status import STATUS_DETAILS_KEY

__all__ = [
    "ALWAYS_RETRIED",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ResiliencePolicy",
    "counts_against_peer",
    "full_jitter",
    "may_repeat",
    "retry_advice",
    "retry_delay",
    "retry_service_config",
]

ALWAYS_RETRIED = frozenset(
    {
        "GetTask",
        "ListTasks",
        "GetExtendedAgentCard",
        "GetTaskPushNotificationConfig",
        "ListTaskPushNotificationConfigs",
        "DeleteTaskPushNotificationConfig",
        "CancelTask",
        "SubscribeToTask",
        "GetAgentCard",
    }
)
"""The operations whose repeat has the effect of one call, whatever they carry."""


READS = ALWAYS_RETRIED - {"CancelTask", "DeleteTaskPushNotificationConfig"}
"""The operations that change nothing: the ones gRPC's own retry policy may repeat blindly (a
repeated cancel or delete needs the answer read, which only our loop does)."""
GRPC_MAX_ATTEMPTS = 5
"""gRPC caps a retry policy's ``maxAttempts`` at 5 (its gRFC A6)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """Retries and circuit breakers of a client (``ClientSettings.resilience``). The defaults: up to
    4 attempts, backoff with full jitter from 100 ms doubling up to 10 s, a breaker that opens after
    5 failures in a row or half of the last 20 calls failing, and probes after 5 s."""

    max_attempts: int = 4
    """Attempts of one call, the first included (1: no retries)."""
    backoff_base: float = 0.1
    """Seconds: the ceiling of the first retry's delay; each next retry doubles it."""
    backoff_cap: float = 10.0
    """Seconds: no delay ceiling grows past it, and a server's ``retry_after`` beyond it is not
    waited for (the error is raised)."""
    retry_send_message: bool = True
    """Send a message again (same ``message_id``) after UNAVAILABLE. An a2a-grpc server runs it
    once; a server that does not de-duplicate message ids (the specification lets it) may run it
    twice: turn this off for such peers."""
    breaker_failures: int = 5
    """Failures in a row that open a peer's breaker."""
    breaker_window: int = 20
    """The last calls whose failure ratio is watched (once that many were made)."""
    breaker_failure_ratio: float = 0.5
    """The share of failures in the window that opens the breaker (0 < ratio <= 1)."""
    breaker_cooldown: float = 5.0
    """Seconds an open breaker refuses every call before it lets one probe through."""

    def __post_init__(self) -> None:
        for name in ("max_attempts", "breaker_failures", "breaker_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.max_attempts > 20:
            raise ValueError(f"max_attempts must be at most 20, not {self.max_attempts}")
        for name in ("backoff_base", "backoff_cap", "breaker_cooldown"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive seconds, not {getattr(self, name)!r}")
        if self.backoff_cap < self.backoff_base:
            raise ValueError(f"backoff_cap ({self.backoff_cap}) must not be below backoff_base")
        if not 0 < self.breaker_failure_ratio <= 1:
            raise ValueError(f"breaker_failure_ratio must be in (0, 1], not {self.breaker_failure_ratio!r}")

    def backoff(self, retry: int, chance: float) -> float:
        """The delay before retry number ``retry`` (1 for the first): :func:`full_jitter` with
        ``backoff_base`` and ``backoff_cap``."""
        return full_jitter(retry, self.backoff_base, self.backoff_cap, chance)


def full_jitter(retry: int, base: float, cap: float, chance: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first): ``chance`` (uniform in
    [0, 1)) times the ceiling ``min(cap, base * 2 ** (retry - 1))``. Every wait of the library
    before dialling again (a call's retry, a session's resume, a pool reopening a peer) is this.

    Full jitter rather than equal or decorrelated jitter: callers that failed together (10,000
    agents whose peer restarted) spread their next attempt evenly over the whole window, the
    lowest peak a window allows, and the window doubles while they keep failing; it needs no
    state but the attempt's number (decorrelated jitter carries the last wait from one attempt to
    the next, and spreads the herd no better), and it is what gRPC's own retry policy does. The
    price, an occasional wait near zero, costs one early attempt."""
    ceiling = min(cap, base * 2 ** min(max(retry, 1) - 1, 64))
    return float(ceiling * min(max(chance, 0.0), 1.0))


class Clock:
    """Time as retries and breakers read it: monotonic seconds and sleeping. Tests pass their own."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def may_repeat(method: str, request: Message, policy: ResiliencePolicy) -> bool:
    """Whether sending ``request`` to ``method`` again has the effect of sending it once (see the
    module doc)."""
    if method in ALWAYS_RETRIED:
        return True
    if method in ("SendMessage", "SendStreamingMessage"):
        return policy.retry_send_message and bool(request.message.message_id)  # type: ignore[attr-defined]
    if method == "CreateTaskPushNotificationConfig":
        return bool(request.id)  # type: ignore[attr-defined]
    return False


def retry_advice(failure: grpc.RpcError) -> float | None:
    """The wait a failed call's ``google.rpc.RetryInfo`` advises, in seconds (any server's: the
    rich status in the ``grpc-status-details-bin`` trailer), if it carries one."""
    trailers = getattr(failure, "trailing_metadata", None)
    for key, value in (trailers() if callable(trailers) else None) or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:  # undecodable: no advice (the error itself is decoded elsewhere)
            return None
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                delay = info.retry_delay
                return max(0.0, float(delay.seconds) + float(delay.nanos) / 1e9)
    return None


def retry_delay(
    method: str,
    request: Message,
    error: errors.A2AError,
    attempts: int,
    policy: ResiliencePolicy,
    chance: float,
    advised: float | None = None,
) -> float | None:
    """Seconds to wait before trying ``method`` again after its attempt number ``attempts``
    failed with ``error`` (``advised``: the wait its RetryInfo asked for, :func:`retry_advice`);
    None: do not try again (the error stands)."""
    if attempts >= policy.max_attempts or isinstance(error, CircuitOpenError):
        return None
    if not may_repeat(method, request, policy):
        return None
    if advised is None and error.retry_after is not None:  # our servers' hint (a limit, a drain)
        advised = float(error.retry_after)
    if isinstance(error, errors.UnavailableError):
        # A draining server says when to come back; sooner would only be refused again (behind a
        # load balancer the next attempt may reach another replica, which the wait costs little).
        backoff = policy.backoff(attempts, chance)
        return max(backoff, advised) if advised is not None and advised <= policy.backoff_cap else backoff
    if error.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Only on the server's advice (a limit without it fails again), as long as we are
        # willing to wait that long.
        return advised if advised is not None and advised <= policy.backoff_cap else None
    return None


def counts_against_peer(error: BaseException) -> bool:
    """Whether a failed call says its peer is unwell (what a breaker counts): unreachable or
    refusing (UNAVAILABLE), or broken (INTERNAL, UNKNOWN). An A2A answer, a deadline the caller
    chose too short, or the caller's own limits say nothing about the peer's health."""
    if isinstance(error, CircuitOpenError):
        return False
    if isinstance(error, errors.UnavailableError | errors.InternalError):
        return True
    return isinstance(error, errors.TransportError) and error.grpc_code == grpc.StatusCode.UNKNOWN


class CircuitOpenError(errors.UnavailableError):
    """A call refused by the client itself: the peer's circuit breaker is open (it failed too
    often lately), or half-open with its probe call in flight. ``metadata["breaker"]`` names the
    peer. Nothing was sent."""


class BreakerState(enum.Enum):
    CLOSED = "closed"
    """Calls go through; outcomes are counted."""
    OPEN = "open"
    """Calls are refused at once (CircuitOpenError) until the cool-down has passed."""
    HALF_OPEN = "half-open"
    """One probe call goes through: its success closes the breaker, its failure opens it again."""


class CircuitBreaker:
    """The breaker of one peer (``name``: its address), as ``policy`` says; ``clock`` reads time.

    Closed, it opens after ``breaker_failures`` failures in a row, or when at least
    ``breaker_failure_ratio`` of the last ``breaker_window`` calls failed. Open, it refuses every
    call for ``breaker_cooldown`` seconds, then turns half-open and lets one probe call through;
    the probe's success closes it (counts start afresh), its failure opens it again. A call with no
    verdict (cancelled by its caller, or out of time) frees the probe's place without judging the
    peer.
    """

    def __init__(self, name: str, policy: ResiliencePolicy, clock: Clock | None = None) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock or Clock()
        self._state = BreakerState.CLOSED
        self._in_a_row = 0
        self._window: collections.deque[bool] = collections.deque(maxlen=policy.breaker_window)
        self._failed_in_window = 0
        self._opened_at = 0.0
        self._why = ""
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state as of now (an open breaker whose cool-down passed reads half-open)."""
        if (
            self._state is BreakerState.OPEN
            and self.clock.now() - self._opened_at >= self.policy.breaker_cooldown
        ):
            self._state, self._probing = BreakerState.HALF_OPEN, False
        return self._state

    def admit(self) -> None:
        """Let a call through, or raise CircuitOpenError. Every admitted call must end in exactly
        one of :meth:`record` or :meth:`release`."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        if state is BreakerState.OPEN:
            left = self.policy.breaker_cooldown - (self.clock.now() - self._opened_at)
            when = f"it lets a probe call through in {left:.1f} s"
        else:
            when = "its probe call is in flight"
        raise CircuitOpenError(
            f"the circuit breaker of {self.name} is open ({self._why}); {when}",
            metadata={"breaker": self.name, "breaker_state": state.value},
        )

    def record(self, error: BaseException | None) -> None:
        """The verdict of an admitted call: None (or an answer that says nothing about the peer's
        health) is a success. A deadline that passed is no verdict: the caller may have chosen it
        too short for the work (see :meth:`release`)."""
        if isinstance(error, errors.DeadlineExceededError):
            self.release()
            return
        failed = error is not None and counts_against_peer(error)
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False
            if failed:
                self._open("its probe call failed")
            else:
                self._close()
            return
        if self._state is BreakerState.OPEN:
            return  # a call admitted before the breaker opened: already judged by the others
        self._in_a_row = self._in_a_row + 1 if failed else 0
        if len(self._window) == self._window.maxlen and self._window[0]:
            self._failed_in_window -= 1
        self._window.append(failed)
        self._failed_in_window += failed
        if self._in_a_row >= self.policy.breaker_failures:
            self._open(f"{self._in_a_row} failures in a row")
        elif len(
            self._window
        ) == self._window.maxlen and self._failed_in_window >= self.policy.breaker_failure_ratio * len(
            self._window
        ):
            self._open(f"{self._failed_in_window} of its last {len(self._window)} calls failed")

    def release(self) -> None:
        """An admitted call ended without a verdict (its caller cancelled it)."""
        if self._state is BreakerState.HALF_OPEN:
            self._probing = False

    def _open(self, why: str) -> None:
        self._state, self._opened_at, self._why = BreakerState.OPEN, self.clock.now(), why

    def _close(self) -> None:
        self._state, self._in_a_row, self._failed_in_window = BreakerState.CLOSED, 0, 0
        self._window.clear()


def retry_service_config(policy: ResiliencePolicy, services: dict[str, str]) -> str | None:
    """A gRPC service config (JSON) whose ``retryPolicy`` repeats the reads (:data:`READS`) on
    UNAVAILABLE with the policy's attempts and backoff (gRPC's backoff has full jitter too, and
    never passes the call's deadline); None when the policy makes one attempt. ``services`` maps
    each operation's name to its gRPC service. For channels that no loop of ours drives (the
    bridge's gRPC upstream): :class:`a2a_grpc.client.A2AClient` retries itself, and the two must
    not multiply."""
    if policy.max_attempts == 1:
        return None
    names = [{"service": services[op], "method": op} for op in sorted(READS) if op in services]
    retry = {
        "maxAttempts": min(policy.max_attempts, GRPC_MAX_ATTEMPTS),
        "initialBackoff": f"{policy.backoff_base:.3f}s",
        "maxBackoff": f"{policy.backoff_cap:.3f}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": retry}]})
