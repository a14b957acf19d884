"""The limits a server holds every caller to: what one request may hold, what one principal may
hold at once, and how often it may ask.

One frozen :class:`Limits` (``ServerSettings.limits``) names every bound; an error about a bound
names the field here (``LimitExceededError.limit`` / ``RateLimitedError.limit``), so that whoever
meets it knows which setting to respect, or to raise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from limits import parse_many

__all__ = ["GiB", "Limits", "MiB"]

MiB = 1024 * 1024
GiB = 1024 * MiB


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

    # -- what one principal may hold at once ------------------------------------------------------
    max_running_tasks_per_principal: int = 256
    """Tasks of one principal being executed at once; one more is refused until one ends."""
    max_streams_per_principal: int = 256
    """Open streams (SendStreamingMessage, SubscribeToTask, live streams) of one principal, on
    every binding."""
    max_sessions_per_principal: int = 64
    """Open sessions (the session binding) of one principal."""
    max_detached_sessions_per_principal: int = 16
    """Sessions of one principal waiting to be resumed (each keeps its replay); beyond it the
    oldest detached one ends."""
    max_stored_bytes_per_task: int = 64 * MiB
    """Bytes one stored task may take (history, artifacts kept, metadata)."""
    max_stored_bytes_per_principal: int = 1 * GiB
    """Bytes the stored tasks of one principal may take together."""

    # -- how often (the ``limits`` library's notation: "100/second", "20/second;1000/minute") -----
    rate_per_principal: str | None = None
    """Calls one principal may make; None: no rate limit. A call over it gets RateLimitedError
    (RESOURCE_EXHAUSTED / 429) with a ``Retry-After``."""
    rate_per_tenant: str | None = None
    """Calls all principals of one tenant may make together; None: no rate limit."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("rate_"):
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
