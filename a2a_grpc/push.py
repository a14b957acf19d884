"""Push notifications: POST a task's updates to its registered webhooks (A2A spec §4.3.3, §13.2).

Each delivery is one HTTP POST of the update as a ``StreamResponse`` in ProtoJSON, with
``Content-Type: application/a2a+json`` and ``Authorization: <scheme> <credentials>`` from the
config's ``authentication``, as section 4.3.3 of the specification shows it, plus the config's
``token`` in ``X-A2A-Notification-Token`` (not in the specification; the official SDK's
``BasePushNotificationSender`` sends it, and receivers written for it check it).

``PushNotifier.notify`` only enqueues: encoding and I/O happen in background asyncio tasks, so a
slow or dead receiver never slows the task or the RPC that produced the update. Webhooks are
isolated per target, a target being a URL's scheme, host and port:

* each target has its own queue (``target_queue_size``) and its own budget of deliveries in flight
  (``target_concurrency``), served by workers that exist while it has updates and go away when it
  is idle; at most ``max_targets`` targets are tracked at once, and ``max_connections`` bounds the
  connections of all of them. A slow, dripping or dead target spends only its own budget: other
  targets' deliveries do not wait for it.
* within a target, each webhook (task, config, URL) gets its updates one at a time, in order, and
  webhooks take turns.
* every attempt has an overall deadline (``attempt_deadline``: resolving, connecting, sending,
  reading the answer), then bounded retries with exponential backoff and jitter (``Retry-After``
  respected up to ``max_backoff``). An update given up on is counted in ``failed`` and logged; one
  that finds its queue full is counted in ``dropped`` and logged with its target and the setting.
  Nothing is lost without a count and a log line.
* an update is encoded once for all its webhooks; one that carries content is encoded on a worker
  thread in bounded steps (:mod:`a2a_grpc._push_body`), so a large artifact does not stall the loop.

Every attempt goes through the notifier's :class:`~a2a_grpc.security.webhooks.WebhookPolicy`
(spec §13.2): the host is resolved once and judged, and the request connects to that checked
address (``Host`` and, for https, the TLS server name stay the URL's host), so a name cannot pass
the check with a public address and then be connected to a private one. A refused target is a
failed delivery (counted in ``refused`` and ``failed``, logged), never retried. Redirects are not
followed. With a ``signing_secret`` each attempt carries ``A2A-Grpc-Signature`` (see
:func:`~a2a_grpc.security.webhooks.verify_signature`). Logs name a webhook by
``scheme://host[:port]`` only: paths, queries and user info may hold secrets.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import logging
import math
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

import httpx

from a2a_grpc import types
from a2a_grpc._push_attempt import attempt
from a2a_grpc._push_body import Body, carries_content, encode_in_steps, encode_inline
from a2a_grpc.observability.context import TRACE, TraceHeaders
from a2a_grpc.observability.metrics import WEBHOOK_DELIVERIES, WEBHOOK_RETRIES
from a2a_grpc.security.redact import redact_url
from a2a_grpc.security.webhooks import WebhookPolicy, sign

__all__ = ["TOKEN_HEADER", "PushNotifier", "PushSettings", "PushStats"]

logger = logging.getLogger(__name__)

TOKEN_HEADER: Final = "X-A2A-Notification-Token"
"""The header carrying ``TaskPushNotificationConfig.token``; the name the spec's examples and the SDK use."""

_DROP_LOG_INTERVAL: Final = 1.0  # seconds; an overload must not turn into a log flood
_ENCODER_THREADS: Final = 4  # updates encoded at once: a few, so two huge ones do not hold up small ones
_SIGN_INLINE_BYTES: Final = 1024 * 1024  # a longer body is signed on a worker thread
MIN_SIGNING_SECRET_BYTES: Final = 16
"""Shortest signing secret accepted: an HMAC key shorter than this is guessable."""


_DELIVERING: Final = contextvars.ContextVar("a2a_grpc_push_delivering", default=False)
"""True in the notifier's worker tasks (each runs in a context of its own)."""


class _RedactDeliveryUrls(logging.Filter):
    """httpx logs every request's whole URL at INFO; a webhook's URL may carry its secret in the path
    or query, so while a worker delivers, the URL in those records becomes ``scheme://host[:port]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _DELIVERING.get() and isinstance(record.args, tuple):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactDeliveryUrls())


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Delivery settings, validated on construction."""

    max_attempts: int = 5
    """Attempts per update, the first included; at least 1."""
    initial_backoff: float = 0.2
    """Seconds before the first retry, doubled on each further retry (with jitter)."""
    max_backoff: float = 5.0
    """Cap, in seconds, on any wait between attempts, ``Retry-After`` included."""
    timeout: float = 10.0
    """Seconds for each of connect, write, read and pool wait (spec recommends 10-30 s)."""
    queue_size: int = 10_000
    """Updates waiting or in flight across all targets (a memory bound); beyond it updates are
    dropped and counted. Each target also has its own, smaller bound: ``target_queue_size``."""
    attempt_deadline: float = 30.0
    """Seconds one attempt may take in all: resolving the host, connecting, sending the body and
    reading the answer. Ends a receiver that trickles its answer, which ``timeout`` (per read) never
    would; the attempt then counts as failed and is retried."""
    target_queue_size: int = 1_000
    """Updates waiting or in flight for one target (scheme, host and port); beyond it that target's
    new updates are dropped and counted, other targets' are not."""
    target_concurrency: int = 8
    """Deliveries in flight at once to one target: its budget of connections."""
    max_targets: int = 1_000
    """Targets with updates waiting or in flight at once; an update for one more is dropped and counted."""
    max_connections: int = 512
    """Connections open at once across all targets (each one a file descriptor). A target holds at most
    ``target_concurrency`` of them, so it takes ``max_connections / target_concurrency`` targets that
    hold theirs (each for at most ``attempt_deadline``) before others wait for one."""
    keepalive_connections: int = 100
    """Idle connections kept open for the next delivery, across all targets (at most
    ``max_connections`` of them); 0: every delivery opens its own."""
    close_seconds: float = 5.0
    """On stop: how long the updates queued or in flight still get to be delivered; then the rest
    are cancelled, logged and counted as failed."""

    def __post_init__(self) -> None:
        counts = ("max_attempts", "queue_size", "target_queue_size", "target_concurrency", "max_targets")
        for name in (*counts, "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        value = self.keepalive_connections
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"keepalive_connections must be an integer >= 0, got {value!r}")
        for name in ("initial_backoff", "max_backoff", "timeout", "attempt_deadline", "close_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        for name in ("initial_backoff", "close_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff!r}) must be >= initial_backoff ({self.initial_backoff!r})"
            )
        for name in ("timeout", "attempt_deadline"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


_DELIVERED = WEBHOOK_DELIVERIES.labels("delivered")
_FAILED = WEBHOOK_DELIVERIES.labels("failed")
_DROPPED = WEBHOOK_DELIVERIES.labels("dropped")
_DEFAULTS: Final = PushSettings()
"""The notifier's keyword defaults: written once, in PushSettings."""


@dataclass(slots=True)
class PushStats:
    """Counters since construction. ``retried`` counts extra attempts, not updates; ``failed``
    counts updates given up on, ``refused`` those of them whose target the webhook policy refused;
    ``dropped`` counts updates never queued (a full queue, too many targets, a closed notifier);
    ``timed_out`` counts attempts ended by ``attempt_deadline``."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    refused: int = 0
    timed_out: int = 0


@dataclass(slots=True)
class _Payload:
    """One update, encoded once for every webhook it goes to (120 configs: one encoding)."""

    event: types.StreamResponse
    users: int = 0  # queue entries holding it
    body: asyncio.Future[Body] | None = None
    trace: TraceHeaders | None = None  # of the call (or the task's execution) that produced it


_Key = tuple[str, str, str]  # task id, config id, URL: one webhook
_Entry = tuple[types.TaskPushNotificationConfig, _Payload]


@dataclass(slots=True)
class _Lane:
    """One webhook's updates, delivered one at a time and in order."""

    key: _Key
    pending: collections.deque[_Entry] = field(default_factory=collections.deque)


@dataclass(slots=True)
class _DropLog:
    """Drop warnings at most once a second per target: an overload must not turn into a log flood."""

    last: float = -math.inf
    unlogged: int = 0

    def due(self) -> int:
        """How many drops to report now (0: not yet)."""
        self.unlogged += 1
        now = time.monotonic()
        if now - self.last < _DROP_LOG_INTERVAL:
            return 0
        count, self.last, self.unlogged = self.unlogged, now, 0
        return count


@dataclass(slots=True)
class _Target:
    """Everything queued for one (scheme, host, port): its own queue, workers and connection budget."""

    name: str
    """``scheme://host[:port]``: what logs call it (never a path, query or user info)."""
    lanes: dict[_Key, _Lane] = field(default_factory=dict)
    ready: collections.deque[_Lane] = field(default_factory=collections.deque)
    """Lanes with updates and no worker on them, served in turn (one webhook cannot starve another)."""
    size: int = 0  # updates queued or in flight
    workers: set[asyncio.Task[None]] = field(default_factory=set)
    drops: _DropLog = field(default_factory=_DropLog)


class PushNotifier:
    """Delivers task updates to webhooks in the background; see the module docstring."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = _DEFAULTS.max_attempts,
        initial_backoff: float = _DEFAULTS.initial_backoff,
        max_backoff: float = _DEFAULTS.max_backoff,
        timeout: float = _DEFAULTS.timeout,
        queue_size: int = _DEFAULTS.queue_size,
        attempt_deadline: float = _DEFAULTS.attempt_deadline,
        target_queue_size: int = _DEFAULTS.target_queue_size,
        target_concurrency: int = _DEFAULTS.target_concurrency,
        max_targets: int = _DEFAULTS.max_targets,
        max_connections: int = _DEFAULTS.max_connections,
        keepalive_connections: int = _DEFAULTS.keepalive_connections,
        close_seconds: float = _DEFAULTS.close_seconds,
        policy: WebhookPolicy | None = None,
        signing_secret: bytes | str | None = None,
    ) -> None:
        """``policy``: which targets may be reached (default: public addresses only, see
        :class:`WebhookPolicy`). ``signing_secret``: when given (at least 16 bytes), every attempt
        is signed in ``A2A-Grpc-Signature``. ``client``: an HTTP client of the caller's (left open),
        used instead of the notifier's own; its connection pool is shared by every target (and
        ``max_connections`` does not apply to it), so give it room for many targets' budgets."""
        self.settings = PushSettings(
            max_attempts,
            initial_backoff,
            max_backoff,
            timeout,
            queue_size,
            attempt_deadline,
            target_queue_size,
            target_concurrency,
            max_targets,
            max_connections,
            keepalive_connections,
            close_seconds,
        )
        self.policy = policy if policy is not None else WebhookPolicy()
        if not isinstance(self.policy, WebhookPolicy):
            raise TypeError(f"policy must be a WebhookPolicy, got {type(policy).__name__}")
        secret = signing_secret.encode() if isinstance(signing_secret, str) else signing_secret
        if secret is not None and len(secret) < MIN_SIGNING_SECRET_BYTES:
            raise ValueError(f"signing_secret must have at least {MIN_SIGNING_SECRET_BYTES} bytes")
        self._signing_key = secret
        self.stats = PushStats()
        if client is None:
            # Room for many targets' whole budgets: the per-target cap is what keeps one target from
            # taking the pool; the pool's own bound keeps the process within its file descriptors.
            idle = min(max_connections, keepalive_connections)
            limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=idle)
            # Redirects are never followed (also forced per request, for a caller's client): a 3xx
            # could bounce the credentials and the payload to a host the client never registered.
            client = httpx.AsyncClient(follow_redirects=False, limits=limits)
            self._owns_client = True
        else:
            self._owns_client = False
        self._client = client
        self._timeout = httpx.Timeout(timeout)
        self._targets: dict[str, _Target] = {}
        self._payloads: dict[int, _Payload] = {}  # by id() of the event: its notify calls share one
        self._size = 0  # updates queued or in flight, across all targets
        self._closed = False
        self._drops = _DropLog()  # drops that no target's queue caused
        self._encoder: concurrent.futures.ThreadPoolExecutor | None = None
        self._rng = random.Random()

    async def __aenter__(self) -> PushNotifier:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def notify(self, config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> None:
        """Queue ``event`` for ``config``'s webhook and return at once; must run on the event loop.

        The messages are kept by reference and encoded later, so do not mutate them afterwards.
        Never raises for a full queue or a closed notifier: the update is dropped, logged and counted.
        """
        loop = asyncio.get_running_loop()  # RuntimeError outside a loop: workers need one
        settings = self.settings
        name = _target_name(config.url)
        if self._closed:
            self._drop(config, event, name, self._drops, "notifier closed")
            return
        if self._size >= settings.queue_size:
            self._drop(config, event, name, self._drops, f"queue full (queue_size={settings.queue_size})")
            return
        target = self._targets.get(name)
        if target is None:
            if len(self._targets) >= settings.max_targets:
                reason = f"too many webhook targets at once (max_targets={settings.max_targets})"
                self._drop(config, event, name, self._drops, reason)
                return
            target = self._targets[name] = _Target(name)
        elif target.size >= settings.target_queue_size:
            reason = f"target queue full (target_queue_size={settings.target_queue_size})"
            self._drop(config, event, name, target.drops, reason)
            return
        key = (config.task_id, config.id, config.url)
        lane = target.lanes.get(key)
        if lane is None:
            lane = target.lanes[key] = _Lane(key)
            target.ready.append(lane)
            # A worker for each lane waiting, up to the target's budget; a running worker takes
            # the lanes that arrive while the budget is spent (it stops only when none wait).
            if len(target.workers) < settings.target_concurrency:
                worker = loop.create_task(self._work(target), name=f"a2a-push {name}")
                target.workers.add(worker)
        lane.pending.append((config, self._payload(event)))
        target.size += 1
        self._size += 1

    def targets(self) -> dict[str, int]:
        """Each target (``scheme://host[:port]``) with updates queued or in flight, and how many."""
        return {name: target.size for name, target in self._targets.items()}

    # A drain deadline, not a cancel scope: after it, undelivered updates must still be counted.
    async def aclose(self, timeout: float | None = None) -> None:
        """Stop accepting updates, drain for up to ``timeout`` seconds (default:
        ``PushSettings.close_seconds``), then cancel what is left."""
        if timeout is None:
            timeout = self.settings.close_seconds
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        self._closed = True
        workers = [w for target in self._targets.values() for w in target.workers]
        if workers:
            _, late = await asyncio.wait(workers, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for target in list(self._targets.values()):
            self._abandon(target)
        self._targets.clear()
        if self._encoder is not None:
            self._encoder.shutdown(wait=False, cancel_futures=True)
        if self._owns_client:
            await self._client.aclose()

    # -- queues ----------------------------------------------------------------------------------

    def _payload(self, event: types.StreamResponse) -> _Payload:
        payload = self._payloads.get(id(event))
        if payload is None or payload.event is not event:
            # The update's trace is taken now, where it was produced (the task's execution runs in
            # the context of the call that started it): a delivery made later continues it.
            payload = self._payloads[id(event)] = _Payload(event, trace=TRACE.get())
        payload.users += 1
        return payload

    def _release(self, target: _Target, payload: _Payload, count: int = 1) -> None:
        target.size -= count
        self._size -= count
        payload.users -= count
        if payload.users <= 0 and self._payloads.get(id(payload.event)) is payload:
            del self._payloads[id(payload.event)]
            if payload.body is not None and not payload.body.done():
                payload.body.cancel()

    def _drop(
        self,
        config: types.TaskPushNotificationConfig,
        event: types.StreamResponse,
        target: str,
        log: _DropLog,
        reason: str,
    ) -> None:
        self.stats.dropped += 1
        _DROPPED.inc()
        count = log.due()
        if count:
            logger.warning(
                "push notification dropped, %s: target=%s task=%s config=%s (%d dropped since last warning)",
                reason,
                target,
                _task_id(config, event),
                config.id,
                count,
            )

    async def _work(self, target: _Target) -> None:
        # Workers of one target share its lanes; a lane is served by one worker at a time, so its
        # updates keep their order. The item leaves the lane only once handled.
        _DELIVERING.set(True)  # this task's own context: see _RedactDeliveryUrls
        worker = asyncio.current_task()
        try:
            while target.ready:
                lane = target.ready.popleft()
                config, payload = lane.pending[0]
                try:
                    await self._deliver(target, config, payload)
                except Exception:  # a bug or a malformed config must not wedge the queue
                    self.stats.failed += 1
                    _FAILED.inc()
                    logger.exception(
                        "push notification failed: task=%s config=%s target=%s",
                        _task_id(config, payload.event),
                        config.id,
                        target.name,
                    )
                lane.pending.popleft()
                self._release(target, payload)
                if lane.pending:
                    target.ready.append(lane)
                else:
                    del target.lanes[lane.key]
        finally:
            # No await since `ready` was seen empty: notify() cannot have added a lane meanwhile.
            target.workers.discard(worker)
            if not target.workers and not target.lanes and self._targets.get(target.name) is target:
                del self._targets[target.name]  # idle: its worker and its queue go away

    def _abandon(self, target: _Target) -> None:
        left = sum(len(lane.pending) for lane in target.lanes.values())
        if not left:
            return
        self.stats.failed += left
        _FAILED.inc(left)
        config, payload = next(lane.pending[0] for lane in target.lanes.values() if lane.pending)
        logger.error(
            "push notifier closed with %d undelivered update(s): task=%s config=%s url=%s (%d webhook(s))",
            left,
            _task_id(config, payload.event),
            config.id,
            redact_url(config.url),
            len(target.lanes),
        )
        for lane in target.lanes.values():
            while lane.pending:
                self._release(target, lane.pending.popleft()[1])
        target.lanes.clear()
        target.ready.clear()

    # -- delivery --------------------------------------------------------------------------------

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        # Our own threads, not the loop's default executor: getaddrinfo runs there, and a big
        # encoding must not keep every delivery's name resolution waiting.
        if self._encoder is None:
            self._encoder = concurrent.futures.ThreadPoolExecutor(
                max_workers=_ENCODER_THREADS, thread_name_prefix="a2a-push-encode"
            )
        return self._encoder

    async def _body(self, payload: _Payload) -> Body:
        if payload.body is None:
            loop = asyncio.get_running_loop()
            if carries_content(payload.event):
                payload.body = loop.run_in_executor(self._executor(), encode_in_steps, payload.event)
            else:
                payload.body = loop.create_future()
                payload.body.set_result(encode_inline(payload.event))
        # Shielded: a delivery cancelled while waiting must not cancel the encoding others share.
        return await asyncio.shield(payload.body)

    async def _signature(self, body: Body, size: int) -> str:
        assert self._signing_key is not None
        if size <= _SIGN_INLINE_BYTES:
            return sign(self._signing_key, body)
        return await asyncio.get_running_loop().run_in_executor(
            self._executor(), sign, self._signing_key, body
        )

    async def _deliver(
        self, target: _Target, config: types.TaskPushNotificationConfig, payload: _Payload
    ) -> None:
        body = await self._body(payload)
        headers = {"Content-Type": "application/a2a+json"}
        auth = config.authentication
        if auth.scheme and auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
        if config.token:
            headers[TOKEN_HEADER] = config.token
        if payload.trace is not None:
            headers["traceparent"] = payload.trace.traceparent
            if payload.trace.tracestate:
                headers["tracestate"] = payload.trace.tracestate
        settings = self.settings
        last = "no attempt"
        signer = self._signature if self._signing_key is not None else None
        for number in range(1, settings.max_attempts + 1):
            outcome = await attempt(
                self._client,
                self.policy,
                config.url,
                body,
                headers,
                timeout=self._timeout,
                deadline=settings.attempt_deadline,
                signer=signer,
            )
            self.stats.refused += outcome.refused
            self.stats.timed_out += outcome.timed_out
            if outcome.delivered:
                self.stats.delivered += 1
                _DELIVERED.inc()
                return
            last = outcome.last
            if outcome.final or number == settings.max_attempts:
                break
            wait = outcome.retry_after
            if wait is None:
                # Exponential backoff with equal jitter, so many webhooks do not retry in lockstep.
                step = min(settings.max_backoff, settings.initial_backoff * 2 ** (number - 1))
                wait = step / 2 + self._rng.uniform(0, step / 2)
            self.stats.retried += 1
            WEBHOOK_RETRIES.inc()
            await asyncio.sleep(min(wait, settings.max_backoff))
        self.stats.failed += 1
        _FAILED.inc()
        logger.error(
            "push notification failed after %d attempt(s): task=%s config=%s url=%s last=%s",
            number,
            _task_id(config, payload.event),
            config.id,
            redact_url(config.url),
            last,
        )


def _target_name(url: str) -> str:
    """The target a webhook URL names, as ``scheme://host[:port]``: the unit of isolation."""
    return redact_url(url).removesuffix("/…")


def _task_id(config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> str:
    """The task an update is about, for logs: from the payload, else from the registration."""
    kind = event.WhichOneof("payload")
    inner = getattr(event, kind) if kind else None
    found: str = "" if inner is None else inner.id if kind == "task" else inner.task_id
    return found or config.task_id
