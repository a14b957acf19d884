"""An in-process task store: dictionaries, no persistence.

Built for the hot path: ``save`` and ``get`` are one protobuf copy plus a dict operation,
with no locks (each coroutine step runs alone on the event loop) and no thread hops.
Listing scans the tenant's tasks, which is fine for the sizes a process-local store holds.
A listing copies only what it returns: never the artifacts of a listing without them, nor the
messages a ``history_length`` drops (:func:`~a2a_grpc.tasks.store.copy_listed`). A listing with
them copies up to a page's byte budget, and lets other coroutines run after each few megabytes.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable

from a2a_grpc import types
from a2a_grpc.tasks.eventlog import EventSink
from a2a_grpc.tasks.registry import InMemoryRegistry
from a2a_grpc.tasks.store import (
    DEFAULT_LIST_ANSWER_BYTES,
    DEFAULT_LIST_PAGE_BYTES,
    STORED,
    PageBudget,
    PushConfigPage,
    copy_listed,
    copy_push_config,
    copy_task,
    encode_push_cursor,
    encode_task_cursor,
    field_bytes,
    parse_list_request,
    parse_push_query,
    timestamp_micros,
)

__all__ = ["InMemoryTaskStore"]

_COPY_SLICE = 4 * 1024 * 1024
"""Bytes of artifacts a listing copies before it lets the event loop run (about 2 ms of copying)."""


class _Entry:
    """One stored task. The filter/sort columns are extracted once at save time so listing never
    re-reads nested messages."""

    __slots__ = ("artifact_bytes", "context_id", "key", "seq", "state", "task")

    def __init__(self, task: types.Task, seq: int) -> None:
        status = task.status
        self.key = (timestamp_micros(status.timestamp), task.id)  # (status timestamp µs, id)
        self.context_id = task.context_id
        self.state = status.state
        self.task = task  # never changed: a save makes a new entry
        self.seq = seq  # the event position the snapshot includes
        # The artifacts' encoded size, once a listing with them asked: measuring encodes them, as
        # costly as a copy, so the hot path (save) never does.
        self.artifact_bytes: int | None = None


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
        bucket[task.id] = _Entry(copy_task(task), seq)
        return STORED

    async def list(
        self,
        tenant: str,
        request: types.ListTasksRequest,
        *,
        max_bytes: int = DEFAULT_LIST_PAGE_BYTES,
        max_answer_bytes: int = DEFAULT_LIST_ANSWER_BYTES,
    ) -> types.ListTasksResponse:
        self._check_open()
        query = parse_list_request(tenant, request)
        budget = PageBudget(max_bytes, max_answer_bytes)
        bucket = self._tasks.get(tenant, {})
        matching = [e for e in bucket.values() if query.matches(e.context_id, e.state, e.key[0])]
        after = matching
        if query.cursor is not None:
            cursor = query.cursor
            after = [e for e in matching if e.key < cursor]
        # One extra row tells whether another page exists without a second pass.
        page = heapq.nlargest(query.page_size + 1, after, key=lambda e: e.key)
        response = types.ListTasksResponse(page_size=query.page_size, total_size=len(matching))
        more = len(page) > query.page_size
        last = page[0].key if page else (0, "")
        copied = 0
        for entry in page[: query.page_size]:
            out = response.tasks.add()
            copy_listed(out, entry.task, query.history_length, include_artifacts=False)
            size = out.ByteSize()
            artifact_bytes = 0
            if query.include_artifacts:
                if entry.artifact_bytes is None:
                    entry.artifact_bytes = sum(field_bytes(a.ByteSize()) for a in entry.task.artifacts)
                    copied += entry.artifact_bytes
                artifact_bytes = entry.artifact_bytes
                size += artifact_bytes
            if not budget.admits(entry.key[1], size):
                del response.tasks[-1]  # the next page starts with it
                more = True
                break
            if query.include_artifacts:
                # Entries are replaced by a save, never changed: a pause leaves the page the same.
                if copied >= _COPY_SLICE:
                    copied = 0
                    await asyncio.sleep(0)
                out.artifacts.MergeFrom(entry.task.artifacts)
                copied += artifact_bytes
                if copied >= _COPY_SLICE:
                    copied = 0
                    await asyncio.sleep(0)
            last = entry.key
        if more:
            response.next_page_token = encode_task_cursor(query, last)
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
