"""Fair sharing: how often a principal (and a tenant) may call, and how much one principal may hold
at once (running tasks, open streams, sessions), enforced once for every front.

:class:`Quotas` holds the counters of one server (built from its
:class:`~a2a_grpc.security.limits.Limits`). Its :meth:`Quotas.links` join the call seam right after
authentication (:mod:`a2a_grpc.service`), so every call of every binding passes them: gRPC, the
bridge's JSON-RPC and HTTP+JSON, each call of a session, each turn of a live stream.

* Rates (``rate_per_principal``, ``rate_per_tenant``) are counted by the maintained ``limits``
  library, with its sliding window counter (O(1) per key and per call, approximate at the edge
  of a window) in the storage ``Limits.rate_storage`` names: this process's memory by default, or
  Redis (the task store's, or a Redis URL), which lets replicas share one budget. Without a
  configured rate no rate link joins the chain: nothing is paid.
* Open streams are counted by the stream link from the first event it is asked for until the
  stream is closed, whichever way (the end, the reader leaving, an error, a cancellation).
* Running tasks are counted by the request handler (:meth:`Quotas.start_task`), sessions by the
  session host (:class:`SessionQuota`).
* With Redis, the counts hold across replicas too (:mod:`a2a_grpc.security.shared`): each replica
  counts in its memory and syncs with the others periodically.

Who "a principal" is: the authenticated caller (its id, within the tenant its credential binds
it to). Without authentication every caller is the same anonymous principal, as it is for task
ownership: the callers of such a server share one budget (a peer address is no identity: behind a
proxy every caller has the proxy's, and a client opens new connections at will).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Protocol

from google.protobuf.message import Message
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from a2a_grpc import errors
from a2a_grpc.redisconn import RedisTarget, parse_redis_url
from a2a_grpc.security.authentication import owner_key
from a2a_grpc.security.limits import Limits, is_redis_url
from a2a_grpc.service import CallContext, Interceptor, Method, StreamCall, UnaryCall

if TYPE_CHECKING:
    from a2a_grpc.security.shared import SharedCounts

__all__ = ["Quotas", "SessionQuota", "StoredBytesQuota", "principal_key"]

ANONYMOUS = ""
"""The key of every caller of a server without authentication: one shared budget."""


def principal_key(context: CallContext) -> str:
    """Whose budget a call spends: its principal (within the tenant its credential binds it to);
    :data:`ANONYMOUS` without authentication."""
    principal = context.principal
    return ANONYMOUS if principal is None else owner_key(principal, principal.tenant)


def _tenant(context: CallContext) -> str:
    principal = context.principal
    return context.tenant or (principal.tenant if principal is not None else "")


class _Counter:
    """How many of one thing each principal holds, against one bound."""

    __slots__ = ("bound", "held", "limit", "noun", "retry_after")

    def __init__(self, limit: str, bound: int, noun: str, retry_after: int) -> None:
        self.limit = limit
        self.bound = bound
        self.noun = noun
        self.retry_after = retry_after
        self.held: dict[str, int] = {}

    def acquire(self, key: str) -> Callable[[], None]:
        """Count one more for ``key`` (RateLimitedError naming the limit if it holds the bound
        already); the function that releases it, once however often it is called."""
        held = self.held.get(key, 0)
        if held >= self.bound:
            raise self.refusal(held)
        self.held[key] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self.held.get(key, 0) - 1
            if left > 0:
                self.held[key] = left
            else:
                self.held.pop(key, None)

        return release

    def refusal(self, held: int) -> errors.RateLimitedError:
        return errors.RateLimitedError(
            f"this principal already has {held} {self.noun}, its limit ({self.limit}); "
            "try again when one has ended",
            limit=self.limit,
            value=self.bound,
            retry_after=self.retry_after,
        )


def _items(rate: str | None) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(rate)) if rate else ()


class _Rates:
    """``rate_per_principal`` and ``rate_per_tenant`` over one ``limits`` storage."""

    def __init__(self, limits: Limits, storage_uri: str = "async+memory://") -> None:
        self.per_principal = _items(limits.rate_per_principal)
        self.per_tenant = _items(limits.rate_per_tenant)
        self.principal_rate = limits.rate_per_principal
        self.tenant_rate = limits.rate_per_tenant
        self.enabled = bool(self.per_principal or self.per_tenant)
        self.limits = limits
        # Built lazily: an asyncio storage belongs with the loop that serves.
        self._storage_uri = storage_uri
        self._limiter: SlidingWindowCounterRateLimiter | None = None

    @property
    def limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._limiter is None:
            self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(self._storage_uri))
        return self._limiter

    async def aclose(self) -> None:
        """Close what the storage holds outside this process (nothing, in memory)."""

    async def check(self, context: CallContext) -> None:
        """Spend one call of the principal's and the tenant's rates; RateLimitedError naming the
        rate passed, with the seconds until the window lets one more in."""
        limiter = self.limiter
        if self.per_principal:
            key = principal_key(context)
            for item in self.per_principal:
                if not await limiter.hit(item, "principal", key):
                    raise await self._refused(
                        item, "rate_per_principal", self.principal_rate, "principal", key
                    )
        if self.per_tenant:
            tenant = _tenant(context)
            for item in self.per_tenant:
                if not await limiter.hit(item, "tenant", tenant):
                    raise await self._refused(item, "rate_per_tenant", self.tenant_rate, "tenant", tenant)

    async def _refused(
        self, item: RateLimitItem, limit: str, rate: str | None, *identifiers: str
    ) -> errors.RateLimitedError:
        stats = await self.limiter.get_window_stats(item, *identifiers)
        wait = max(stats.reset_time - time.time(), 0.0)
        whose = "this principal" if limit == "rate_per_principal" else "this tenant"
        return errors.RateLimitedError(
            f"{whose} calls more often than {item} ({limit}); try again in {max(1, math.ceil(wait))} s",
            limit=limit,
            value=rate,
            retry_after=wait,
        )


class _RateLink(Interceptor):
    """The rates, for unary calls (streaming calls pay theirs in :class:`_StreamLink`)."""

    def __init__(self, rates: _Rates) -> None:
        self.rates = rates

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        await self.rates.check(context)
        return await call_next(request, context)


class _StreamLink(Interceptor):
    """Counts each principal's open streams (and spends the rates of a streaming call)."""

    def __init__(self, streams: _Counter, rates: _Rates) -> None:
        self.streams = streams
        self.rates = rates

    async def stream(
        self, method: Method, request: Message, context: CallContext, call_next: StreamCall
    ) -> AsyncIterator[Message]:
        if self.rates.enabled:
            await self.rates.check(context)
        release = self.streams.acquire(principal_key(context))
        try:
            async for event in call_next(request, context):
                yield event
        finally:
            release()


class _Endable(Protocol):
    """A session as :class:`SessionQuota` sees it: something it can end."""

    def end(self, reason: str) -> None: ...


class SessionQuota:
    """``max_sessions_per_principal`` and ``max_detached_sessions_per_principal`` for a session host.

    A session counts from its handshake until it ends, attached or waiting to be resumed; one more
    is refused at its handshake. Of the detached ones the oldest ends (as if it expired: resuming it
    says SessionExpiredError) when one more detaches than the bound allows.
    """

    def __init__(self, limits: Limits) -> None:
        self.max_sessions = limits.max_sessions_per_principal
        self.max_detached = limits.max_detached_sessions_per_principal
        self.retry_after = limits.busy_retry_after_seconds
        self._keys: dict[_Endable, str] = {}
        self._open: dict[str, int] = {}
        self._detached: dict[str, collections.OrderedDict[_Endable, None]] = {}
        self.shared: SharedCounts | None = None
        """With Redis: the sessions of each principal on the other replicas count too."""

    def open(self, session: _Endable, context: CallContext) -> None:
        """Count a session being opened by ``context``'s principal, or refuse it."""
        key = principal_key(context)
        held = self._open.get(key, 0)
        if self.shared is not None:
            self.shared.check()
            held += self.shared.others["sessions"].get(key, 0)
        if held >= self.max_sessions:
            raise errors.RateLimitedError(
                f"this principal already has {held} open sessions, its limit "
                "(max_sessions_per_principal); end one (Goodbye) or try again later",
                limit="max_sessions_per_principal",
                value=self.max_sessions,
                retry_after=self.retry_after,
            )
        self._open[key] = self._open.get(key, 0) + 1
        self._keys[session] = key

    def detached(self, session: _Endable) -> None:
        """``session`` lost its connection and waits to be resumed; the oldest waiting session of
        its principal past the bound ends."""
        key = self._keys.get(session)
        if key is None:
            return
        waiting = self._detached.setdefault(key, collections.OrderedDict())
        waiting[session] = None
        while len(waiting) > self.max_detached:
            oldest, _ = waiting.popitem(last=False)
            oldest.end(
                f"ended: its principal has more than {self.max_detached} sessions waiting to be "
                "resumed (max_detached_sessions_per_principal), and it was the oldest"
            )

    def attached(self, session: _Endable) -> None:
        """``session`` was resumed."""
        key = self._keys.get(session)
        waiting = self._detached.get(key) if key is not None else None
        if waiting is not None:
            waiting.pop(session, None)

    def ended(self, session: _Endable) -> None:
        """``session`` ended (or never opened): it no longer counts. Safe to call more than once."""
        key = self._keys.pop(session, None)
        if key is None:
            return
        waiting = self._detached.get(key)
        if waiting is not None:
            waiting.pop(session, None)
            if not waiting:
                del self._detached[key]
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def held(self, context: CallContext) -> tuple[int, int]:
        """Open and detached sessions of ``context``'s principal (for tests and metrics)."""
        key = principal_key(context)
        return self._open.get(key, 0), len(self._detached.get(key, ()))


class StoredBytesQuota:
    """``max_stored_bytes_per_task`` and ``max_stored_bytes_per_principal``: the bytes tasks keep in
    the store (history, kept artifacts, metadata), counted where they are added
    (:class:`a2a_grpc.tasks.run.TaskRun`), by owner (a principal within a tenant).

    The total per owner is this process's: the tasks it created, and what tasks loaded from the
    store grew by here. It starts from zero when the process starts (reading every stored task to
    sum them would make a start as slow as the store is large).
    """

    def __init__(self, limits: Limits) -> None:
        self.per_task = limits.max_stored_bytes_per_task
        self.per_principal = limits.max_stored_bytes_per_principal
        self.totals: dict[str, int] = {}

    def admit(self, owner: str, size: int) -> None:
        """Whether a new task whose record starts at ``size`` bytes may be stored for ``owner``."""
        self._check(owner, 0, size)

    def grow(self, owner: str, held: int, size: int, *, force: bool = False) -> None:
        """Count ``size`` more bytes for a task of ``owner`` holding ``held``; refused past a bound
        unless ``force`` (a final status)."""
        if not force:
            self._check(owner, held, size)
        self.totals[owner] = self.totals.get(owner, 0) + size

    def _check(self, owner: str, held: int, size: int) -> None:
        if held + size > self.per_task:
            raise errors.LimitExceededError(
                f"the task's stored record would take {held + size} bytes, more than "
                f"max_stored_bytes_per_task ({self.per_task})",
                limit="max_stored_bytes_per_task",
                value=self.per_task,
            )
        total = self.totals.get(owner, 0)
        if self.per_principal is not None and total + size > self.per_principal:
            raise errors.LimitExceededError(
                f"this principal's stored tasks would take {total + size} bytes, more than "
                f"max_stored_bytes_per_principal ({self.per_principal})",
                limit="max_stored_bytes_per_principal",
                value=self.per_principal,
            )


class Quotas:
    """The rate and concurrency bounds of one server (see the module doc).

    ``redis``: the Redis of the server's task store, if it has one: the rates default to it
    (``Limits.rate_storage`` None) and the counts of running tasks, streams and sessions are shared
    through it, so that the bounds hold across the replicas that share that store. A Redis URL in
    ``rate_storage`` does the same without a Redis store."""

    def __init__(self, limits: Limits, redis: RedisTarget | None = None) -> None:
        self.limits = limits
        uri = limits.rate_storage
        if uri is not None and is_redis_url(uri):
            redis = parse_redis_url(uri)
        self.redis = redis
        """Where the limits are shared across replicas (None: this process alone)."""
        if redis is not None and (uri is None or is_redis_url(uri)):
            from a2a_grpc.security.shared import SharedRates

            self._rates: _Rates = SharedRates(limits, redis)
        else:
            self._rates = _Rates(limits, uri or "async+memory://")
        busy = limits.busy_retry_after_seconds
        self.streams = _Counter(
            "max_streams_per_principal", limits.max_streams_per_principal, "open streams", busy
        )
        self.running = _Counter(
            "max_running_tasks_per_principal", limits.max_running_tasks_per_principal, "running tasks", busy
        )
        self.sessions = SessionQuota(limits)
        self.stored = StoredBytesQuota(limits)
        self.shared: SharedCounts | None = None
        """With Redis: what each principal holds on the other replicas (started by :meth:`start`)."""
        if redis is not None:
            from a2a_grpc.security.shared import SharedCounter, SharedCounts

            sessions = self.sessions
            self.shared = SharedCounts(
                redis,
                limits,
                {
                    "running": lambda: self.running.held,
                    "streams": lambda: self.streams.held,
                    "sessions": lambda: sessions._open,
                },
            )
            self.streams = SharedCounter(self.streams, self.shared, "streams")
            self.running = SharedCounter(self.running, self.shared, "running")
            sessions.shared = self.shared

    async def start(self) -> None:
        """With Redis: read the other replicas' counts once, then keep them fresh in the background
        (a server calls it when it starts; without it this replica's bounds hold for its own
        counts only)."""
        if self.shared is not None:
            await self.shared.start()

    async def aclose(self) -> None:
        """Stop sharing: withdraw this replica's counts and close the Redis clients."""
        if self.shared is not None:
            await self.shared.aclose()
        await self._rates.aclose()

    def links(self) -> tuple[Interceptor, ...]:
        """The links for the call seam, right after authentication: the stream count (with the
        rates of streaming calls) and, when a rate is configured, the rates of unary calls."""
        stream: Interceptor = _StreamLink(self.streams, self._rates)
        return (stream, _RateLink(self._rates)) if self._rates.enabled else (stream,)

    def start_task(self, context: CallContext) -> Callable[[], None]:
        """Count one more running task of ``context``'s principal (RateLimitedError naming
        ``max_running_tasks_per_principal`` beyond it); the function that releases it."""
        return self.running.acquire(principal_key(context))
