"""Which process runs which task: owners, leases, orphans and cancel signals.

A server that starts working on a task *claims* it: the registry records the server's owner id
beside the task, under a lease the owner renews while it lives (:meth:`TaskRegistry.renew`,
every ``lease_seconds / 3``). A task at rest (waiting for input, or terminal) is *released*:
nothing runs it, and nothing needs to. At start, a server asks for the *orphans*: tasks of its
store that are SUBMITTED or WORKING while no live owner holds them (the lease lapsed, the owner
is this server's own previous life, or nobody ever claimed them), and gives each a truthful end
(see ``RequestHandler.recover``). A *cancel signal* reaches the owner of a task wherever it runs:
the owner sees it at its next renewal.

Backends: :class:`InMemoryRegistry` (one process; everything it knows dies with it, so it never
has orphans) and the SQLite store's (``a2a_grpc.tasks.sqlite``), shared by every process that
opens the same file, and the Redis store's (``a2a_grpc.tasks.redis_registry``), shared by every
replica that opens the same Redis.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Protocol

from a2a_grpc.tasks.settings import StoreSettings

__all__ = ["InMemoryRegistry", "TaskRegistry", "new_owner_id"]

_DEFAULTS = StoreSettings()


def new_owner_id() -> str:
    """This process's owner id: host, process id and a random part (one life of one process)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class TaskRegistry(Protocol):
    """The live tasks of one store, and who runs them."""

    owner: str
    """This process's owner id (see :func:`new_owner_id`)."""
    lease_seconds: float
    """How long a claim lives without renewal."""

    async def claim(self, tenant: str, task_id: str) -> bool:
        """This owner runs the task now; False (and nothing claimed) when another live owner holds
        it: two replicas given the same task at once, only one runs it."""
        ...

    async def release(self, tenant: str, task_id: str) -> None:
        """This owner no longer runs the task (it is at rest, or handed on)."""
        ...

    async def renew(self) -> list[tuple[str, str]]:
        """Extend every claim of this owner; the tasks of this owner a cancel signal was raised for."""
        ...

    async def orphans(self) -> list[tuple[str, str]]:
        """(tenant, task id) of the SUBMITTED or WORKING tasks no live owner holds."""
        ...

    async def signal_cancel(self, tenant: str, task_id: str) -> bool:
        """Ask the task's owner, wherever it runs, to cancel it; False if no live owner holds it."""
        ...

    async def owner_of(self, tenant: str, task_id: str) -> str | None:
        """The live owner of the task, if any."""
        ...


class InMemoryRegistry:
    """A registry for one process and a store that dies with it (``memory``): no orphans, ever."""

    def __init__(self, owner: str | None = None, lease_seconds: float = _DEFAULTS.lease_seconds) -> None:
        self.owner = owner or new_owner_id()
        self.lease_seconds = lease_seconds
        self._claims: set[tuple[str, str]] = set()
        self._cancels: set[tuple[str, str]] = set()

    async def claim(self, tenant: str, task_id: str) -> bool:
        self._claims.add((tenant, task_id))
        return True

    async def release(self, tenant: str, task_id: str) -> None:
        self._claims.discard((tenant, task_id))
        self._cancels.discard((tenant, task_id))

    async def renew(self) -> list[tuple[str, str]]:
        signalled = sorted(self._cancels & self._claims)
        self._cancels -= set(signalled)
        return signalled

    async def orphans(self) -> list[tuple[str, str]]:
        return []

    async def signal_cancel(self, tenant: str, task_id: str) -> bool:
        if (tenant, task_id) not in self._claims:
            return False
        self._cancels.add((tenant, task_id))
        return True

    async def owner_of(self, tenant: str, task_id: str) -> str | None:
        return self.owner if (tenant, task_id) in self._claims else None
