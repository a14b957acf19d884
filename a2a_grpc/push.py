"""Push notifications: POST a task's updates to its registered webhooks (A2A spec §4.3.3, §13.2).

Each delivery is one HTTP POST of the update as a ``StreamResponse`` in ProtoJSON, with
``Content-Type: application/a2a+json`` and ``Authorization: <scheme> <credentials>`` from the
config's ``authentication``, as section 4.3.3 of the specification shows it, plus the config's
``token`` in ``X-A2A-Notification-Token`` (not in the specification; the official SDK's
``BasePushNotificationSender`` sends it, and receivers written for it check it).

``PushNotifier.notify`` only enqueues: encoding and I/O happen in background asyncio tasks, one
per webhook, so a slow or dead receiver never slows the task or the RPC that produced the update,
and updates to one webhook arrive in order.

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
import contextvars
import email.utils
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

import httpx
from google.protobuf import json_format

from a2a_grpc import types
from a2a_grpc.security.redact import redact_url
from a2a_grpc.security.webhooks import (
    SIGNATURE_HEADER,
    WebhookPolicy,
    WebhookRefusedError,
    WebhookResolveError,
    sign,
)

__all__ = ["TOKEN_HEADER", "PushNotifier", "PushSettings", "PushStats"]

logger = logging.getLogger(__name__)

TOKEN_HEADER: Final = "X-A2A-Notification-Token"
"""The header carrying ``TaskPushNotificationConfig.token``; the name the spec's examples and the SDK use."""

_DROP_LOG_INTERVAL: Final = 1.0  # seconds; an overload must not turn into a log flood
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
    """Updates waiting or in flight across all webhooks; beyond it updates are dropped and counted."""

    def __post_init__(self) -> None:
        for name in ("max_attempts", "queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("initial_backoff", "max_backoff", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        if self.initial_backoff < 0:
            raise ValueError(f"initial_backoff must be >= 0, got {self.initial_backoff!r}")
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"max_backoff ({self.max_backoff!r}) must be >= initial_backoff ({self.initial_backoff!r})"
            )
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout!r}")


@dataclass(slots=True)
class PushStats:
    """Counters since construction. ``retried`` counts extra attempts, not updates; ``failed``
    counts updates given up on, ``refused`` those of them whose target the webhook policy refused."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    refused: int = 0


@dataclass(slots=True)
class _Webhook:
    pending: collections.deque[tuple[types.TaskPushNotificationConfig, types.StreamResponse]] = field(
        default_factory=collections.deque
    )
    worker: asyncio.Task[None] | None = None


class PushNotifier:
    """Delivers task updates to webhooks in the background; see the module docstring."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        initial_backoff: float = 0.2,
        max_backoff: float = 5.0,
        timeout: float = 10.0,
        queue_size: int = 10_000,
        policy: WebhookPolicy | None = None,
        signing_secret: bytes | str | None = None,
    ) -> None:
        """``policy``: which targets may be reached (default: public addresses only, see
        :class:`WebhookPolicy`). ``signing_secret``: when given (at least 16 bytes), every attempt
        is signed in ``A2A-Grpc-Signature``."""
        self.settings = PushSettings(max_attempts, initial_backoff, max_backoff, timeout, queue_size)
        self.policy = policy if policy is not None else WebhookPolicy()
        if not isinstance(self.policy, WebhookPolicy):
            raise TypeError(f"policy must be a WebhookPolicy, got {type(policy).__name__}")
        secret = signing_secret.encode() if isinstance(signing_secret, str) else signing_secret
        if secret is not None and len(secret) < MIN_SIGNING_SECRET_BYTES:
            raise ValueError(f"signing_secret must have at least {MIN_SIGNING_SECRET_BYTES} bytes")
        self._signing_key = secret
        self.stats = PushStats()
        # Redirects are never followed (also forced per request, for a caller's client): a 3xx
        # could bounce the credentials and the payload to a host the client never registered.
        self._client = client if client is not None else httpx.AsyncClient(follow_redirects=False)
        self._owns_client = client is None
        self._timeout = httpx.Timeout(timeout)
        self._hooks: dict[tuple[str, str, str], _Webhook] = {}
        self._size = 0  # updates queued or in flight, across all webhooks
        self._closed = False
        self._last_drop_log = -math.inf
        self._drops_unlogged = 0
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
        if self._closed or self._size >= self.settings.queue_size:
            self._drop(config, event)
            return
        key = (config.task_id, config.id, config.url)
        hook = self._hooks.get(key)
        if hook is None:
            hook = self._hooks[key] = _Webhook()
        hook.pending.append((config, event))
        self._size += 1
        if hook.worker is None:
            hook.worker = loop.create_task(self._run(key, hook), name=f"a2a-push {config.id}")

    # A drain deadline, not a cancel scope: after it, undelivered updates must still be counted.
    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop accepting updates, drain for up to ``timeout`` seconds, then cancel what is left."""
        if timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout!r}")
        self._closed = True
        workers = [h.worker for h in self._hooks.values() if h.worker is not None]
        if workers:
            _, late = await asyncio.wait(workers, timeout=timeout)
            for task in late:
                task.cancel()  # the worker counts and logs its own undelivered updates
            await asyncio.gather(*late, return_exceptions=True)
        for hook in list(self._hooks.values()):  # workers cancelled before their first step
            self._abandon(hook)
        self._hooks.clear()
        if self._owns_client:
            await self._client.aclose()

    def _drop(self, config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> None:
        self.stats.dropped += 1
        self._drops_unlogged += 1
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            reason = "notifier closed" if self._closed else f"queue full ({self.settings.queue_size})"
            logger.warning(
                "push notification dropped, %s: task=%s config=%s (%d dropped since last warning)",
                reason,
                _task_id(config, event),
                config.id,
                self._drops_unlogged,
            )
            self._last_drop_log, self._drops_unlogged = now, 0

    async def _run(self, key: tuple[str, str, str], hook: _Webhook) -> None:
        # One worker per webhook, alive while it has updates: per-webhook order with no
        # head-of-line blocking between webhooks. The item leaves the deque only once handled.
        _DELIVERING.set(True)  # this task's own context: see _RedactDeliveryUrls
        try:
            while hook.pending:
                config, event = hook.pending[0]
                try:
                    await self._deliver(config, event)
                except Exception:  # a bug or a malformed config must not wedge the queue
                    self.stats.failed += 1
                    logger.exception(
                        "push notification failed: task=%s config=%s", _task_id(config, event), config.id
                    )
                hook.pending.popleft()
                self._size -= 1
        except asyncio.CancelledError:
            self._abandon(hook)
            raise
        finally:
            # No await since the deque was seen empty, so notify() cannot have added to it.
            self._hooks.pop(key, None)

    def _abandon(self, hook: _Webhook) -> None:
        if not hook.pending:
            return
        left = len(hook.pending)
        self.stats.failed += left
        self._size -= left
        config, event = hook.pending[0]
        logger.error(
            "push notifier closed with %d undelivered update(s): task=%s config=%s url=%s",
            left,
            _task_id(config, event),
            config.id,
            redact_url(config.url),
        )
        hook.pending.clear()

    async def _deliver(self, config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> None:
        payload = json_format.MessageToDict(event)  # camelCase ProtoJSON: the A2A JSON form
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/a2a+json"}
        auth = config.authentication
        if auth.scheme and auth.credentials:
            headers["Authorization"] = f"{auth.scheme} {auth.credentials}"
        if config.token:
            headers[TOKEN_HEADER] = config.token
        settings = self.settings
        last = "no attempt"
        for attempt in range(1, settings.max_attempts + 1):
            wait: float | None = None
            try:
                # Resolved and judged on every attempt, and the connection goes to the address that
                # was judged: no window for DNS rebinding between the check and the connection.
                target = await self.policy.resolve(config.url)
            except WebhookRefusedError as exc:
                self.stats.refused += 1
                last = f"refused: {exc.reason}"  # reasons name the host, never the path or user info
                break
            except WebhookResolveError as exc:
                last = str(exc)
            else:
                pinned = dict(headers, Host=target.host_header)
                if self._signing_key is not None:
                    pinned[SIGNATURE_HEADER] = sign(self._signing_key, body)
                sni = target.sni_hostname
                try:
                    request = self._client.build_request(
                        "POST",
                        target.url,
                        content=body,
                        headers=pinned,
                        timeout=self._timeout,
                        extensions={"sni_hostname": sni} if sni else None,
                    )
                    # Streamed so the receiver's response body is never read: only its status matters.
                    response = await self._client.send(request, stream=True, follow_redirects=False)
                    await response.aclose()
                except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                    last = type(exc).__name__  # not str(exc): it may quote the URL, credentials and all
                    break  # retrying cannot fix the URL
                except httpx.TransportError as exc:  # connect/read/write errors and timeouts
                    last = type(exc).__name__
                else:
                    if response.is_success:
                        self.stats.delivered += 1
                        return
                    last = f"HTTP {response.status_code}"
                    if response.status_code != 429 and response.status_code < 500:
                        break  # 3xx (never followed) and 4xx: the receiver will not change its mind
                    wait = _retry_after(response.headers.get("Retry-After"))
            if attempt == settings.max_attempts:
                break
            if wait is None:
                # Exponential backoff with equal jitter, so many webhooks do not retry in lockstep.
                step = min(settings.max_backoff, settings.initial_backoff * 2 ** (attempt - 1))
                wait = step / 2 + self._rng.uniform(0, step / 2)
            self.stats.retried += 1
            await asyncio.sleep(min(wait, settings.max_backoff))
        self.stats.failed += 1
        logger.error(
            "push notification failed after %d attempt(s): task=%s config=%s url=%s last=%s",
            attempt,
            _task_id(config, event),
            config.id,
            redact_url(config.url),
            last,
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or HTTP-date), or None if unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _task_id(config: types.TaskPushNotificationConfig, event: types.StreamResponse) -> str:
    """The task an update is about, for logs: from the payload, else from the registration."""
    kind = event.WhichOneof("payload")
    inner = getattr(event, kind) if kind else None
    found: str = "" if inner is None else inner.id if kind == "task" else inner.task_id
    return found or config.task_id
