"""Limits that hold across replicas: the Redis side of :mod:`a2a_grpc.security.quota` (rates and the
counts of what each principal holds) and of :mod:`a2a_grpc._dedupe` (receipts of messages).

* :class:`Outage`: what a shared limit does while Redis does not answer (``Limits.redis_unreachable``),
  one log line when an outage starts and one when it ends, and the count of the calls it decided
  (``a2a_shared_limits_unreachable_total``). While Redis is down, one call per
  ``Limits.redis_timeout_ms`` tries it again; the others go straight to the policy, so that an
  unreachable Redis costs a call nothing.
* :class:`SharedRates`: the rates in the ``limits`` library's Redis storage on redis-py (its
  ``redispy`` implementation, :func:`rate_storage`), keys ``<prefix>:rate:{...}`` (the library's
  hash tag keeps a sliding window's two keys on one Cluster node); in this process's memory while
  Redis does not answer (``local``).
* :class:`SharedCounts` (read by each :class:`SharedCounter` and by the session quota): the
  running tasks, open streams and sessions of each principal, summed over live replicas. Local
  first: a replica counts in its memory as it always did (the hot path pays nothing more than a
  dictionary look-up) and, every ``Limits.shared_counts_sync_ms``, publishes its counts and reads
  the others' in one Lua call. Each replica's counts carry a lease of five periods: those of a
  replica that died vanish when it lapses.

  Every count lives in one hash and one sorted set that share the tag ``{held}`` (one Cluster
  slot: the sync is one script).

  Bound: a replica knows the others' counts as of its last publication, so a principal may pass a
  bound by what it opened on the other replicas since then (within one period), and never by more
  than ``(replicas - 1) x bound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from limits.aio.strategies import SlidingWindowCounterRateLimiter

from a2a_grpc import errors
from a2a_grpc.observability.metrics import SHARED_LIMITS_UNREACHABLE
from a2a_grpc.redisconn import RedisTarget, connect, key, redis_problem, tag
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.quota import _Counter, _Rates
from a2a_grpc.service import CallContext

__all__ = [
    "KINDS",
    "REDIS_ERRORS",
    "Outage",
    "SharedCounter",
    "SharedCounts",
    "SharedRates",
    "rate_storage",
    "redis_client",
    "store_redis",
]

log = logging.getLogger("a2a_grpc.security")

KINDS = ("running", "streams", "sessions")
"""What :class:`SharedCounts` counts, each a word without ``|`` (a field is ``replica|kind|principal``)."""

LEASE_PERIODS = 5
"""A replica's counts outlive its last publication by this many sync periods: a few missed syncs
(a busy loop, a slow Redis) do not make its principals' places vanish."""


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    # OSError: a socket error redis-py did not wrap; asyncio's TimeoutError: a wait we bounded.
    return (RedisError, OSError, asyncio.TimeoutError)


REDIS_ERRORS = _redis_errors()
"""What talking to Redis raises when it does not answer (or answers an error)."""


def store_redis(store: object) -> RedisTarget | None:
    """The Redis a task store keeps its tasks in (its ``target``), if it is a Redis store."""
    target = getattr(store, "target", None)
    return target if isinstance(target, RedisTarget) else None


def redis_client(target: RedisTarget, limits: Limits) -> Any:
    """A client whose commands give up after ``Limits.redis_timeout_ms``."""
    timeout = limits.redis_timeout_ms / 1000
    return connect(target, socket_timeout=timeout, connect_timeout=timeout)


class Outage:
    """Whether Redis answers one kind of shared limit (``what``: rates, counts or receipts)."""

    def __init__(
        self, what: str, target: RedisTarget, limits: Limits, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.shown = target.shown
        self.refuse = limits.redis_unreachable == "refuse"
        self.retry = limits.redis_timeout_ms / 1000
        self.clock = clock
        self.since: float | None = None
        """When the outage started (None: Redis answers)."""
        self._next_try = 0.0
        self._decided = SHARED_LIMITS_UNREACHABLE.labels(what)

    def skip(self) -> bool:
        """Whether to go straight to the policy: Redis is unreachable and it is not yet time to
        try it again."""
        return self.since is not None and self.clock() < self._next_try

    def failed(self, exc: BaseException) -> None:
        """Redis did not answer (``exc``): logged when an outage starts."""
        now = self.clock()
        if self.since is None:
            self.since = now
            policy = (
                "refusing the calls that need it (redis_unreachable: refuse)"
                if self.refuse
                else "each replica counting in its own memory (redis_unreachable: local)"
            )
            log.warning(
                "shared %s: Redis at %s is unreachable (%s); %s until it answers",
                self.what,
                self.shown,
                redis_problem(exc),
                policy,
            )
        self._next_try = now + self.retry

    def decide(self) -> None:
        """A call decided without Redis: counted; UnavailableError under ``refuse``."""
        self._decided.inc()
        if self.refuse:
            raise errors.UnavailableError(
                f"the shared {self.what} of this server (Redis) cannot be reached; try again shortly"
            )

    def answered(self) -> None:
        """Redis answered: logged when an outage ends."""
        if self.since is not None:
            log.warning(
                "shared %s: Redis at %s answers again, after %.1f s",
                self.what,
                self.shown,
                self.clock() - self.since,
            )
            self.since = None


def rate_storage(target: RedisTarget, limits: Limits) -> tuple[Any, Any]:
    """The ``limits`` library's asyncio Redis storage for ``target`` on redis-py, and the client
    it uses (to be closed). Keys: ``<prefix>:rate:{LIMITER/...}``."""
    from limits.aio.storage import RedisClusterStorage, RedisStorage

    prefix = key(target.prefix, "rate")
    if target.cluster:
        # The library builds its RedisCluster from the URI's hosts (it takes no client of ours).
        parts = urllib.parse.urlsplit(target.url)
        options: dict[str, Any] = {
            "socket_timeout": limits.redis_timeout_ms / 1000,
            "socket_connect_timeout": limits.redis_timeout_ms / 1000,
        }
        if parts.scheme == "rediss":
            options["ssl"] = True
        cluster = RedisClusterStorage(
            f"async+redis+cluster://{parts.netloc}", implementation="redispy", key_prefix=prefix, **options
        )
        return cluster, cluster.bridge.storage  # type: ignore[attr-defined]
    client = redis_client(target, limits)
    # Our client's pool: the URL grammar (TLS, unix sockets, prefix) is read once, by redisconn.
    storage = RedisStorage(
        "async+redis://", implementation="redispy", key_prefix=prefix, connection_pool=client.connection_pool
    )
    return storage, client


# One call per sync period: publish this replica's counts (absolute; 0 removes one), renew its
# lease, forget replicas whose lease lapsed (and their counts, and malformed fields), and answer
# the others' sums as (kind, principal, count) triples. Redis's clock judges every lease, so the
# replicas' clocks need not agree.
_SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local lease = tonumber(ARGV[2])
if ARGV[3] == 'leave' then
  redis.call('ZREM', KEYS[1], me)
else
  redis.call('ZADD', KEYS[1], now + lease, me)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 4, #ARGV, 2 do
  if ARGV[3] ~= 'leave' and tonumber(ARGV[i + 1]) > 0 then
    redis.call('HSET', KEYS[2], me .. '|' .. ARGV[i], ARGV[i + 1])
  else
    redis.call('HDEL', KEYS[2], me .. '|' .. ARGV[i])
  end
end
local sums = {}
local order = {}
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local field = fields[i]
  local count = tonumber(fields[i + 1])
  local bar = string.find(field, '|', 1, true)
  local owner = bar and string.sub(field, 1, bar - 1)
  if not owner or not count or count < 0 or redis.call('ZSCORE', KEYS[1], owner) == false then
    redis.call('HDEL', KEYS[2], field)
  elseif owner ~= me then
    local what = string.sub(field, bar + 1)
    if sums[what] == nil then
      sums[what] = 0
      order[#order + 1] = what
    end
    sums[what] = sums[what] + count
  end
end
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('PEXPIRE', KEYS[2], lease)
local out = {}
for _, what in ipairs(order) do
  out[#out + 1] = what
  out[#out + 1] = tostring(sums[what])
end
return out
"""


class SharedCounts:
    """What each principal holds on the other live replicas, kept fresh by a background sync (see
    the module doc). ``sources`` maps each of :data:`KINDS` to a function that reads this replica's
    counts (principal key -> count); :attr:`others` holds the others' sums, per kind."""

    def __init__(
        self, target: RedisTarget, limits: Limits, sources: Mapping[str, Callable[[], Mapping[str, int]]]
    ) -> None:
        self.target = target
        self.sources = dict(sources)
        self.replica = uuid.uuid4().hex
        self.period = limits.shared_counts_sync_ms / 1000
        self.lease_ms = limits.shared_counts_sync_ms * LEASE_PERIODS
        self.limits = limits
        self.others: dict[str, dict[str, int]] = {kind: {} for kind in self.sources}
        self.stale = False
        """Set under ``redis_unreachable: refuse`` once the others' counts are older than a lease:
        new places are refused until a sync succeeds."""
        self.outage = Outage("counts", target, limits)
        self._keys = [
            key(target.prefix, "held", tag("held"), "replicas"),
            key(target.prefix, "held", tag("held")),
        ]
        self._pushed: dict[str, set[str]] = {kind: set() for kind in self.sources}
        self._client: Any = None
        self._script: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_sync = time.monotonic()

    async def start(self) -> None:
        """Sync once (bounded by ``redis_timeout_ms``), then every period in the background."""
        if self._task is not None:
            return
        self._client = redis_client(self.target, self.limits)
        self._script = self._client.register_script(_SYNC)
        await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="a2a shared counts")

    def check(self) -> None:
        """Before a place is given: UnavailableError while the others' counts are stale under
        ``refuse``."""
        if self.stale:
            self.outage.decide()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.sync()
            except Exception:  # a bug here must not end the syncs: say it, go on
                log.exception("shared counts: a sync failed")

    async def sync(self, *, leave: bool = False) -> None:
        """Publish this replica's counts and read the others' (``leave``: withdraw them all)."""
        args: list[str | int] = [self.replica, self.lease_ms, "leave" if leave else "stay"]
        now_held: dict[str, set[str]] = {}
        for kind, source in self.sources.items():
            held = dict(source())
            now_held[kind] = {p for p, n in held.items() if n > 0}
            for principal in now_held[kind] | self._pushed[kind]:
                args += [f"{kind}|{principal}", held.get(principal, 0)]
        try:
            answer = await self._script(keys=self._keys, args=args)
        except REDIS_ERRORS as exc:
            self.outage.failed(exc)
            if time.monotonic() - self._last_sync > self.lease_ms / 1000:
                # The others' counts are older than their lease: forget them (local) or stop
                # giving places (refuse) until Redis answers.
                self.stale = self.outage.refuse
                self.others = {kind: {} for kind in self.sources}
            return
        self.outage.answered()
        self._last_sync = time.monotonic()
        self.stale = False
        self._pushed = now_held
        others: dict[str, dict[str, int]] = {kind: {} for kind in self.sources}
        for i in range(0, len(answer) - 1, 2):
            field, count = _text(answer[i]), _text(answer[i + 1])
            kind, _, principal = field.partition("|")
            if kind in others and count.isdigit():
                others[kind][principal] = int(count)
        self.others = others

    async def aclose(self) -> None:
        """Stop syncing and withdraw this replica's counts (best effort: a lease lapses anyway)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._script(
                    keys=self._keys, args=[self.replica, self.lease_ms, "leave", *_all_fields(self._pushed)]
                )
            await self._client.aclose()
            self._client = None


def _all_fields(pushed: Mapping[str, set[str]]) -> list[str | int]:
    out: list[str | int] = []
    for kind, principals in pushed.items():
        for principal in principals:
            out += [f"{kind}|{principal}", 0]
    return out


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class SharedRates(_Rates):
    """The rates counted in Redis, shared by every replica; while Redis does not answer, counted
    in this process's memory (``redis_unreachable: local``) or refused (``refuse``)."""

    def __init__(self, limits: Limits, target: RedisTarget) -> None:
        super().__init__(limits)
        self.target = target
        self.outage = Outage("rates", target, limits)
        self.local = _Rates(limits)
        self._client: Any = None

    @property
    def limiter(self) -> SlidingWindowCounterRateLimiter:
        if self._limiter is None:
            storage, self._client = rate_storage(self.target, self.limits)
            self._limiter = SlidingWindowCounterRateLimiter(storage)
        return self._limiter

    async def check(self, context: CallContext) -> None:
        outage = self.outage
        if not outage.skip():
            try:
                await super().check(context)
            except REDIS_ERRORS as exc:
                outage.failed(exc)
            else:
                outage.answered()
                return
        outage.decide()  # UnavailableError under "refuse"
        await self.local.check(context)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        self._limiter = None
        if client is not None:
            await client.aclose()


class SharedCounter(_Counter):
    """A per-principal count whose bound holds across replicas: what the principal holds on the
    others (as of the last sync, :class:`SharedCounts`) counts too."""

    __slots__ = ("kind", "shared")

    def __init__(self, counter: _Counter, shared: SharedCounts, kind: str) -> None:
        super().__init__(counter.limit, counter.bound, counter.noun, counter.retry_after)
        self.shared = shared
        self.kind = kind

    def acquire(self, key: str) -> Callable[[], None]:
        self.shared.check()
        others = self.shared.others[self.kind].get(key, 0)
        if others:
            held = self.held.get(key, 0) + others
            if held >= self.bound:
                raise self.refusal(held)
        return super().acquire(key)
