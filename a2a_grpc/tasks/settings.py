"""The settings of a task store: :class:`StoreSettings` (``serve`` reads them from its section ``store``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["StoreSettings"]


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """How a durable task store (SQLite) waits, commits and leases its tasks."""

    busy_timeout: float = 5.0
    """Seconds a statement waits for another process's lock on the file before failing (at open
    too: a file another process holds locked is refused after it)."""
    lease_seconds: float = 10.0
    """How long this process's claim on a running task lasts unless renewed (every third of it):
    a task whose owner stopped renewing is known to be orphaned this long after."""
    commit_delay: float = 0.002
    """Under concurrent load: seconds a write may wait for others to share its transaction (one
    commit, the costly part, for all); 0: no wait beyond the current step of the event loop."""

    def __post_init__(self) -> None:
        for name, least in (("busy_timeout", 0.0), ("commit_delay", 0.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not least <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
        value = self.lease_seconds
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"lease_seconds must be a finite number of seconds > 0, not {value!r}")
