"""The limits a server holds every caller to: what one request may hold, what one principal may
hold at once, and how often it may ask.

One frozen :class:`Limits` (``ServerSettings.limits``) names every bound; an error about a bound
names the field here (``LimitExceededError.limit`` / ``RateLimitedError.limit``), so that whoever
meets it knows which setting to respect, or to raise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from limits import parse_many
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

__all__ = ["UNREACHABLE_POLICIES", "GiB", "Limits", "MiB", "is_redis_url"]

MiB = 1024 * 1024
GiB = 1024 * MiB


_OPTIONAL = frozenset(
    {"max_stored_bytes_per_principal", "rate_per_principal", "rate_per_tenant", "rate_storage"}
)
"""The bounds that None switches off."""

UNREACHABLE_POLICIES = ("local", "refuse")
"""The values of ``Limits.redis_unreachable``."""


def is_redis_url(value: str) -> bool:
    """Whether ``rate_storage`` names a Redis of ours (``a2a_grpc.redisconn``'s URL grammar)."""
    return value.startswith(("redis://", "rediss://", "unix://"))


def _check_rate_storage(value: object) -> None:
    if isinstance(value, str) and is_redis_url(value):
        from a2a_grpc.redisconn import parse_redis_url

        try:
            parse_redis_url(value)
        except ValueError as exc:
            raise ValueError(f"rate_storage: {exc}") from None
        return
    # Built once here to be judged (an unknown scheme, a missing client library); the server
    # builds its own when it serves.
    try:
        if not isinstance(value, str) or not value.startswith("async+"):
            raise ConfigurationError("not an asyncio storage")
        storage_from_string(value)
    except ConfigurationError as exc:
        raise ValueError(
            f"rate_storage must be an asyncio storage URI of the limits library (async+memory://) or a "
            f"Redis URL (redis://, rediss://, unix://), not {value!r}: {exc}"
        ) from None


@dataclass(frozen=True, slots=True)
class Limits:
    """Every per-request and per-principal bound of a server. The defaults let one machine serve
    many callers without one of them taking it over; each can be raised or lowered."""

    # -- what one request may hold (every binding, before the operation runs) --------------------
    max_parts: int = 1_000
    """Parts in one message."""
    max_json_depth: int = 64
    """Nesting of a JSON request body (the HTTP bindings), objects and arrays counted alike."""
    max_struct_depth: int = 32
    """Nesting of free-form values (metadata, data parts: ``google.protobuf.Struct``) on every binding."""
    max_history_length: int = 1_000
    """Messages a task's history keeps: the most recent; an older one leaves the task (its event
    stays in the event log while retained). A ``history_length`` asking for more is not refused
    (spec 3.2.4: "at most this many"): it gets what is kept."""
    max_push_configs_per_task: int = 16
    """Push notification configs one task may hold."""
    max_list_page_bytes: int = 32 * MiB
    """Bytes of tasks one ListTasks page may carry: the page ends before the task that would pass
    it, and its ``next_page_token`` goes on from there. A first task larger on its own still comes
    alone, if the answer can be sent (``max_send_message_bytes``); see ``a2a_grpc.tasks.store``."""

    # -- what one principal may hold at once ------------------------------------------------------
    max_running_tasks_per_principal: int = 1024
    """Tasks of one principal being executed at once; one more is refused until one ends."""
    max_streams_per_principal: int = 1024
    """Open streams (SendStreamingMessage, SubscribeToTask, live streams) of one principal, on
    every binding."""
    max_sessions_per_principal: int = 64
    """Open sessions (the session binding) of one principal."""
    max_detached_sessions_per_principal: int = 16
    """Sessions of one principal waiting to be resumed (each keeps its replay); beyond it the
    oldest detached one ends."""
    busy_retry_after_seconds: int = 1
    """The retry hint (gRPC RetryInfo, HTTP Retry-After) of a refusal for holding too much at once
    (``max_running_tasks_per_principal``, ``max_streams_per_principal``,
    ``max_sessions_per_principal``): nobody knows when one ends, so a short one."""
    max_stored_bytes_per_task: int = 64 * MiB
    """Bytes one stored task may take (history, artifacts kept, metadata). A message that would pass
    it is refused; an agent update that would is refused to the agent, whose task then fails."""
    max_stored_bytes_per_principal: int | None = None
    """Bytes the stored tasks of one principal may take together, in each tenant; None: no bound.
    Counted by the serving process from its start (the tasks it created, and what loaded ones grew
    by there). Stored tasks are never removed, so this is a budget for the life of the process:
    off by default, for operators who want one."""

    # -- what a server remembers of the messages it received (``a2a_grpc._dedupe``) -------------
    dedupe_window_seconds: int = 600
    """How long a SendMessage's ``message_id`` is remembered: a message sent again within it (a
    client retrying after a lost answer) gets the first one's task or reply instead of running
    twice."""
    max_remembered_messages: int = 20_000
    """Message ids remembered at once, every caller together (about 750 bytes each); beyond it the
    oldest is forgotten, so at 1,000 messages a second the window is 20 s: still far longer than a
    client's retries take."""
    max_remembered_reply_bytes: int = 64 * MiB
    """Bytes of direct replies (an agent's message, no task) kept for repeats; beyond it the oldest
    receipt is forgotten."""

    # -- how often (the ``limits`` library's notation: "100/second", "20/second;1000/minute") -----
    rate_per_principal: str | None = None
    """Calls one principal may make; None: no rate limit. A call over it gets RateLimitedError
    (RESOURCE_EXHAUSTED / 429) with a ``Retry-After``. Without authentication every caller is the
    same anonymous principal: they share one rate."""
    rate_per_tenant: str | None = None
    """Calls all principals of one tenant may make together; None: no rate limit."""
    rate_storage: str | None = None
    """Where the rate counters live. None (the default): in the task store's Redis when the server
    stores its tasks in Redis (so that its replicas share one budget), else in this process's
    memory. A Redis URL (``redis://``, ``rediss://``, ``unix://``, with ``prefix=`` and
    ``cluster=true`` as for the store; see ``a2a_grpc.redisconn``) puts them there, and shares
    the counts of running tasks, streams and sessions there too; an asyncio storage URI of the
    ``limits`` library (``async+memory://``) names one of its storages (for the rates alone).
    Receipts of messages (``a2a_grpc._dedupe``) are shared only with a Redis task store."""

    # -- limits shared by replicas through Redis (``a2a_grpc.security.shared``) -----------------
    redis_unreachable: str = "local"
    """What the shared limits (rates, counts, receipts kept in Redis) do while Redis does not
    answer: ``local`` (each replica counts and remembers in its own memory until Redis answers
    again: callers keep being served, each replica holding them to the whole budget) or
    ``refuse`` (calls that need Redis are refused with UnavailableError, retryable). Each outage
    is logged once when it starts and once when it ends, and counted in
    ``a2a_shared_limits_unreachable_total``."""
    redis_timeout_ms: int = 1_000
    """How long a call waits for Redis to answer a shared rate or receipt question before
    ``redis_unreachable`` applies; while Redis is unreachable, one call in each such period tries
    it again, the others go straight to the policy."""
    shared_counts_sync_ms: int = 1_000
    """With Redis, how often each replica publishes the running tasks, open streams and sessions
    of its principals and reads the others' (``max_running_tasks_per_principal``,
    ``max_streams_per_principal``, ``max_sessions_per_principal`` hold across replicas). A
    replica's counts vanish five periods after its last publication (a replica that died)."""
    dedupe_pending_seconds: int = 30
    """With Redis, how long a repeat that reaches another replica waits while the first receipt of
    its message is still being started (renewed by the replica starting it, so a receipt left by
    a replica that died lapses within it); a repeat still waiting then is refused with
    UnavailableError (retryable), never run twice."""
    max_shared_reply_bytes: int = 1 * MiB
    """With Redis, the largest direct reply (an agent's message, no task) kept in Redis for repeats
    that reach another replica; the receipt of a larger one says so, and such a repeat is refused
    with LimitExceededError naming this setting instead of running twice."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            if f.name == "rate_storage":
                _check_rate_storage(value)
            elif f.name == "redis_unreachable":
                if value not in UNREACHABLE_POLICIES:
                    raise ValueError(f"redis_unreachable must be 'local' or 'refuse', not {value!r}")
            elif f.name.startswith("rate_"):
                if value is not None:
                    try:
                        parse_many(value)
                    except ValueError as exc:
                        raise ValueError(
                            f"{f.name} must be a rate like '100/second' or '20/second;1000/minute', "
                            f"not {value!r}"
                        ) from exc
            elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{f.name} must be a positive integer, not {value!r}")
