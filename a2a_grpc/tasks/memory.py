"""An in-process task store: dictionaries, no persistence.

Built for the hot path: ``save`` and ``get`` are one protobuf copy plus a dict operation,
with no locks (each coroutine step runs alone on the event loop) and no thread hops.
Listing scans the tenant's tasks, which is fine for the sizes a process-local store holds.
"""

from __future__ import annotations

import heapq
from collections.abc import Awaitable
from typing import NamedTuple

from a2a_grpc import types
from a2a_grpc.tasks.eventlog import EventSink
from a2a_grpc.tasks.registry import InMemoryRegistry
from a2a_grpc.tasks.store import (
    STORED,
    PushConfigPage,
    copy_push_config,
    copy_task,
    encode_push_cursor,
    encode_task_cursor,
    parse_list_request,
    parse_push_query,
    timestamp_micros,
    trim_task_in_place,
)

__all__ = ["InMemoryTaskStore"]


class _Entry(NamedTuple):
    # The filter/sort columns are extracted once at save time so listing never re-reads
    # nested messages.
    key: tuple[int, str]  # (status timestamp µs, id)
    context_id: str
    state: int
    task: types.Task
    seq: int  # the event position the snapshot includes


class InMemoryTaskStore:
    """A :class:`~a2a_grpc.tasks.store.TaskStore` kept in memory; lost when the process exits.

    Its companion :attr:`registry` is an in-memory registry: with nothing surviving the process,
    no task is ever an orphan. It keeps no events (:attr:`event_sink` is None): a task's events
    live in the server's in-memory event log only.
    """

    event_sink: EventSink | None = None

    def __init__(self) -> None:
        self.registry = InMemoryRegistry()
        self._tasks: dict[str, dict[str, _Entry]] = {}
        self._push: dict[tuple[str, str], dict[str, types.TaskPushNotificationConfig]] = {}
        self._closed = False

    async def get(self, tenant: str, task_id: str) -> types.Task | None:
        self._check_open()
        bucket = self._tasks.get(tenant)
        entry = bucket.get(task_id) if bucket is not None else None
        return copy_task(entry.task) if entry is not None else None

    async def load(self, tenant: str, task_id: str) -> tuple[types.Task, int] | None:
        self._check_open()
        bucket = self._tasks.get(tenant)
        entry = bucket.get(task_id) if bucket is not None else None
        return (copy_task(entry.task), entry.seq) if entry is not None else None

    def save(self, tenant: str, task: types.Task, *, seq: int = 0) -> Awaitable[None]:
        # Copied now (see TaskStore.save); nothing to wait for afterwards.
        if self._closed:
            self._check_open()
        if not task.id:
            raise ValueError("cannot save a task without an id")
        bucket = self._tasks.get(tenant)
        if bucket is None:
            bucket = self._tasks[tenant] = {}
        # The previous copy goes before the new one is made: a task keeping megabytes of artifacts
        # is then held twice at most (the run's and the store's), not three times. Nothing awaits
        # in between, so no reader sees the task missing.
        bucket.pop(task.id, None)
        copy = copy_task(task)
        status = copy.status
        key = (timestamp_micros(status.timestamp), copy.id)
        bucket[copy.id] = _Entry(key, copy.context_id, status.state, copy, seq)
        return STORED

    async def list(self, tenant: str, request: types.ListTasksRequest) -> types.ListTasksResponse:
        self._check_open()
        query = parse_list_request(tenant, request)
        bucket = self._tasks.get(tenant, {})
        matching = [e for e in bucket.values() if query.matches(e.context_id, e.state, e.key[0])]
        after = matching
        if query.cursor is not None:
            cursor = query.cursor
            after = [e for e in matching if e.key < cursor]
        # One extra row tells whether another page exists without a second pass.
        page = heapq.nlargest(query.page_size + 1, after, key=lambda e: e.key)
        response = types.ListTasksResponse(page_size=query.page_size, total_size=len(matching))
        if len(page) > query.page_size:
            page = page[: query.page_size]
            response.next_page_token = encode_task_cursor(query, page[-1].key)
        for entry in page:
            out = response.tasks.add()
            out.CopyFrom(entry.task)
            trim_task_in_place(out, query.history_length, query.include_artifacts)
        return response

    async def put_push_config(self, tenant: str, config: types.TaskPushNotificationConfig) -> None:
        self._check_open()
        if not config.task_id or not config.id:
            raise ValueError("a push notification config needs both task_id and id to be stored")
        bucket = self._push.get((tenant, config.task_id))
        if bucket is None:
            bucket = self._push[(tenant, config.task_id)] = {}
        bucket[config.id] = copy_push_config(config)

    async def get_push_config(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None:
        self._check_open()
        config = self._push.get((tenant, task_id), {}).get(config_id)
        return copy_push_config(config) if config is not None else None

    async def list_push_configs(
        self, tenant: str, task_id: str, page_size: int, page_token: str
    ) -> PushConfigPage:
        self._check_open()
        query = parse_push_query(tenant, task_id, page_size, page_token)
        bucket = self._push.get((tenant, task_id), {})
        ids = sorted(i for i in bucket if query.after_id is None or i > query.after_id)
        token = ""
        if len(ids) > query.page_size:
            ids = ids[: query.page_size]
            token = encode_push_cursor(query, ids[-1])
        return [copy_push_config(bucket[i]) for i in ids], token

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        self._check_open()
        bucket = self._push.get((tenant, task_id))
        if bucket is None or bucket.pop(config_id, None) is None:
            return False
        if not bucket:
            del self._push[(tenant, task_id)]
        return True

    async def close(self) -> None:
        # Drop the data so a closed store does not keep memory alive.
        self._closed = True
        self._tasks.clear()
        self._push.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("InMemoryTaskStore is closed")
