"""The settings of a task store: :class:`StoreSettings` (``serve`` reads them from its section ``store``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["StoreSettings"]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """How a durable task store (SQLite, Redis) waits, commits, connects and leases its tasks."""

    busy_timeout: float = 5.0
    """Seconds a statement waits for another process's lock on the file before failing (at open
    too: a file another process holds locked is refused after it)."""
    lease_seconds: float = 10.0
    """How long this process's claim on a running task lasts unless renewed (every third of it):
    a task whose owner stopped renewing is known to be orphaned this long after."""
    commit_delay: float = 0.002
    """Under concurrent load: seconds a write may wait for others to share its transaction (one
    commit, the costly part, for all); 0: no wait beyond the current step of the event loop."""
    redis_socket_timeout: float = 5.0
    """Redis store: seconds one command may wait for its answer before the call fails as unavailable
    (a follower's blocking read waits 1 s at a time, well within it)."""
    redis_connect_timeout: float = 5.0
    """Redis store: seconds to wait for a connection to Redis (at start too: a Redis that does not
    answer in this time, at most 5 s there, fails the start)."""
    redis_max_connections: int = 64
    """Redis store: the most connections this process's calls share (a call waits for a free one, up
    to ``redis_socket_timeout``); the followers of other replicas' tasks have a pool of their own."""

    def __post_init__(self) -> None:
        for name, least in (("busy_timeout", 0.0), ("commit_delay", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not least <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
        for name in ("lease_seconds", "redis_socket_timeout", "redis_connect_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
        count = self.redis_max_connections
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"redis_max_connections must be an integer >= 1, not {count!r}")
