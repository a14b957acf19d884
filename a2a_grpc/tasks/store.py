"""The task store interface, plus the pure helpers both backends share.

ListTasks semantics (specification §3.1.4, ``ListTasksRequest`` in ``a2a.proto``, §6.5):

* ``page_size`` 1..100; unset means 50; anything else, an explicit 0 included, is refused (§6.5
  shows 150 as a validation error, "Must be between 1 and 100 inclusive"; the field is
  ``optional``, so an absent size and a 0 are told apart).
* ``history_length`` unset = all history, 0 = none, N = the N most recent messages (§3.2.4);
  negative is refused.
* ``include_artifacts`` false (the default) drops artifacts entirely.
* ``status_timestamp_after``: only tasks whose status timestamp is >= that instant.
* Order: most recently updated first (§3.1.4 "Ordering"), i.e. by status timestamp
  descending, then task id descending as a tie-break so the order is total.
* Cursor-based pagination (§3.1.4 "Pagination Strategy"): the token carries the sort key of
  the last task returned and the next page starts strictly after it. A task added or updated
  while a client pages moves to the front, so it never shows up twice nor shifts the rest.
* ``total_size`` counts every task matching the filters, across all pages.
* A byte budget per page (``max_bytes``, the server's ``Limits.max_list_page_bytes``): a page
  stops before the task that would take its tasks past the budget, and its ``next_page_token``
  resumes at that task, so a page may hold fewer than ``page_size`` tasks with more to come
  (``ListTasksRequest.page_size`` is a maximum: "the service may return fewer than this value").
  A page's first task always comes, so paging always moves on, even alone over the budget, as
  long as the answer can be sent (``max_answer_bytes``, the server's ``max_send_message_bytes``);
  a task too large for any answer is refused with :class:`~a2a_grpc.errors.LimitExceededError`
  naming it and ``max_send_message_bytes``. The budget counts what is returned (artifacts only
  when asked for, history trimmed), and a store reads no more than that: the artifacts of a list
  without them are neither read nor copied (the SQLite store keeps them apart from the rest of a
  task; the memory store copies field by field, :func:`copy_listed`).

Page tokens are opaque: urlsafe base64 (no padding) of
``version | kind | filter fingerprint (8) | cursor | checksum (8)``. The fingerprint binds a
token to its tenant and filters, so one cannot be replayed against another query; the
checksum catches truncation and edits. The checksum is not a secret MAC: a forged cursor can
only move the starting point inside the caller's own, already authorised result set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections.abc import Awaitable, Generator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from google.protobuf.timestamp_pb2 import Timestamp

from a2a_grpc import errors, types
from a2a_grpc.tasks._encoded import ARTIFACTS_FIELD, HISTORY_FIELD
from a2a_grpc.tasks._errors import InvalidListRequestError, InvalidPageTokenError

__all__ = [
    "ANSWER_ROOM",
    "DEFAULT_LIST_ANSWER_BYTES",
    "DEFAULT_LIST_PAGE_BYTES",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "PUSH_DEFAULT_PAGE_SIZE",
    "PUSH_MAX_PAGE_SIZE",
    "STORED",
    "PageBudget",
    "PushConfigPage",
    "PushQuery",
    "TaskQuery",
    "TaskStore",
    "copy_listed",
    "copy_push_config",
    "copy_task",
    "encode_push_cursor",
    "encode_task_cursor",
    "field_bytes",
    "parse_list_request",
    "parse_push_query",
    "task_sort_key",
    "timestamp_micros",
    "trim_task",
    "trim_task_in_place",
]

MiB = 1024 * 1024
DEFAULT_LIST_PAGE_BYTES = 32 * MiB
"""The default byte budget of one ListTasks page (``Limits.max_list_page_bytes``)."""
ANSWER_ROOM = 64 * 1024
"""Room an answer keeps beside its tasks (page size, total size, the next page's token)."""
DEFAULT_LIST_ANSWER_BYTES = 64 * MiB - ANSWER_ROOM
"""The default bound on a page's tasks whatever the budget: the server's default send limit
(``ServerSettings.max_send_message_bytes``) less :data:`ANSWER_ROOM`."""
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# The spec gives no bounds for push configs; a task rarely has more than a handful.
PUSH_DEFAULT_PAGE_SIZE = 100
PUSH_MAX_PAGE_SIZE = 100

PushConfigPage = tuple[list[types.TaskPushNotificationConfig], str]
"""One page of push configs and the token of the next page ("" on the last page)."""

_VALID_STATES = frozenset(types.TaskState.values())


class _Stored:
    """An awaitable that is done already (see :data:`STORED`)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield

    def done(self) -> bool:
        return True


STORED: Awaitable[None] = _Stored()
"""What :meth:`TaskStore.save` returns when the snapshot is stored by the time it returns (an
in-memory store): awaiting it returns at once, and callers on a hot path may skip the await."""


@runtime_checkable
class TaskStore(Protocol):
    """Where tasks and their push-notification configs live, partitioned by tenant.

    Every method copies: what ``save``/``put_push_config`` receive and what the getters
    return are never shared with the store, so callers may mutate them freely.
    The tenant ``""`` is the default tenant.
    """

    async def get(self, tenant: str, task_id: str) -> types.Task | None:
        """The full task (all history and artifacts), or None."""
        ...

    def save(self, tenant: str, task: types.Task, *, seq: int = 0) -> Awaitable[None]:
        """Insert or replace the task by ``task.id`` with this full snapshot.

        The snapshot is taken when ``save`` is called, not when its result is awaited: a caller
        may go on changing ``task`` at once, and await the result later to know it is stored.
        ``seq`` is the position in the task's event log that the snapshot includes (0: none), so
        that a store which also keeps the events can rebuild the task from the snapshot and the
        events after it. A store that has stored the snapshot when ``save`` returns returns
        :data:`STORED`.
        """
        ...

    async def load(self, tenant: str, task_id: str) -> tuple[types.Task, int] | None:
        """The full task and the event position its snapshot includes (see :meth:`save`), or None."""
        ...

    async def list(
        self,
        tenant: str,
        request: types.ListTasksRequest,
        *,
        max_bytes: int = DEFAULT_LIST_PAGE_BYTES,
        max_answer_bytes: int = DEFAULT_LIST_ANSWER_BYTES,
    ) -> types.ListTasksResponse:
        """One page of ListTasks; raises InvalidListRequestError / InvalidPageTokenError.

        ``request.tenant`` is ignored: the caller resolves the tenant and passes it. The page's
        tasks take at most ``max_bytes`` encoded, except a first task alone, which may take up to
        ``max_answer_bytes``; beyond that it raises LimitExceededError (see the module doc).
        """
        ...

    async def put_push_config(self, tenant: str, config: types.TaskPushNotificationConfig) -> None:
        """Insert or replace the config keyed by (``config.task_id``, ``config.id``), both required."""
        ...

    async def get_push_config(
        self, tenant: str, task_id: str, config_id: str
    ) -> types.TaskPushNotificationConfig | None: ...

    async def list_push_configs(
        self, tenant: str, task_id: str, page_size: int, page_token: str
    ) -> PushConfigPage:
        """The task's configs ordered by id; ``page_size`` 0 means the default (100)."""
        ...

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        """Remove the config; True if it existed (deleting twice is harmless)."""
        ...

    async def close(self) -> None:
        """Release resources; the store is unusable afterwards. Idempotent."""
        ...


# ---------------------------------------------------------------- copying and trimming


def copy_task(task: types.Task) -> types.Task:
    out = types.Task()
    out.CopyFrom(task)
    return out


def copy_push_config(config: types.TaskPushNotificationConfig) -> types.TaskPushNotificationConfig:
    out = types.TaskPushNotificationConfig()
    out.CopyFrom(config)
    return out


def trim_task_in_place(task: types.Task, history_length: int | None, include_artifacts: bool) -> None:
    """Keep the ``history_length`` most recent messages (None = all) and drop artifacts unless asked."""
    if history_length is not None:
        if history_length <= 0:
            task.ClearField("history")
        elif len(task.history) > history_length:
            del task.history[: len(task.history) - history_length]
    if not include_artifacts:
        task.ClearField("artifacts")


def trim_task(task: types.Task, history_length: int | None, include_artifacts: bool = True) -> types.Task:
    """A trimmed copy of ``task``; the argument is left untouched (also for GetTask)."""
    out = copy_task(task)
    trim_task_in_place(out, history_length, include_artifacts)
    return out


def copy_listed(
    out: types.Task, task: types.Task, history_length: int | None, include_artifacts: bool
) -> None:
    """Copy into the empty ``out`` what a listing of ``task`` returns, and nothing more: the
    ``history_length`` most recent messages (None = all), artifacts only if asked for.

    When something is left out, field by field, so that it is never copied (``trim_task`` copies
    the whole task first: megabytes of artifacts, for a listing that drops them); otherwise in one
    copy, which is faster for the small tasks most listings hold.
    """
    trimmed = history_length is not None and len(task.history) > history_length
    if not trimmed and (include_artifacts or not task.artifacts):
        out.CopyFrom(task)
        return
    for field, value in task.ListFields():
        number = field.number
        if number == ARTIFACTS_FIELD:
            if include_artifacts:
                out.artifacts.MergeFrom(value)
        elif number == HISTORY_FIELD:
            if not trimmed:
                out.history.MergeFrom(value)
            elif history_length:
                out.history.extend(value[-history_length:])
        elif field.is_repeated:
            getattr(out, field.name).MergeFrom(value)
        elif field.message_type is not None:
            getattr(out, field.name).CopyFrom(value)
        else:
            setattr(out, field.name, value)


def field_bytes(size: int) -> int:
    """Bytes a length-delimited field of ``size`` bytes takes in its message (numbers up to 15:
    one byte of tag, the length as a varint, the content): a task's share of a ListTasksResponse."""
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


class PageBudget:
    """A ListTasks page being filled: which tasks still fit (see the module doc)."""

    __slots__ = ("_answer", "_limit", "used")

    def __init__(self, max_bytes: int, max_answer_bytes: int) -> None:
        for name, value in (("max_bytes", max_bytes), ("max_answer_bytes", max_answer_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        self._limit = min(max_bytes, max_answer_bytes)
        self._answer = max_answer_bytes
        self.used = 0

    def admits(self, task_id: str, size: int) -> bool:
        """Whether the task of ``size`` encoded bytes joins the page (counted if so); False ends the
        page before it. Raises LimitExceededError for a first task no answer can carry."""
        framed = field_bytes(size)
        if self.used + framed <= self._limit:
            self.used += framed
            return True
        if self.used:
            return False
        if framed > self._answer:
            raise errors.LimitExceededError(
                f"task {errors.echo(task_id)} takes {size} bytes as listed, more than one answer may "
                f"carry ({self._answer} bytes, max_send_message_bytes): list it without "
                "include_artifacts or with a smaller history_length",
                limit="max_send_message_bytes",
                value=self._answer,
                metadata={"task_id": task_id},
            )
        self.used = framed  # alone over the budget, but sendable: paging must move on
        return True


MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799
"""google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z."""


def timestamp_micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


def task_sort_key(task: types.Task) -> tuple[int, str]:
    """(status timestamp in µs, id): ListTasks returns tasks in descending order of this key."""
    return timestamp_micros(task.status.timestamp), task.id


# ---------------------------------------------------------------- ListTasks parameters


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A validated, normalised ListTasks request."""

    tenant: str
    context_id: str  # "" = any
    status: int  # TASK_STATE_UNSPECIFIED = any
    after_micros: int | None  # status timestamp lower bound, inclusive
    page_size: int
    history_length: int | None
    include_artifacts: bool
    cursor: tuple[int, str] | None  # sort key of the last task already returned
    fingerprint: bytes

    def matches(self, context_id: str, state: int, ts_micros: int) -> bool:
        """Whether a task passes the filters (not the cursor)."""
        return (
            (not self.context_id or context_id == self.context_id)
            and (not self.status or state == self.status)
            and (self.after_micros is None or ts_micros >= self.after_micros)
        )


def parse_list_request(tenant: str, request: types.ListTasksRequest) -> TaskQuery:
    """Validate and normalise a ListTasksRequest; raises InvalidListRequestError subclasses."""
    page_size = request.page_size if request.HasField("page_size") else DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidListRequestError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE} inclusive, got {page_size}", field="page_size"
        )
    history_length: int | None = None
    if request.HasField("history_length"):
        history_length = request.history_length
        if history_length < 0:
            raise InvalidListRequestError(
                f"history_length must be a non-negative integer, got {history_length}", field="history_length"
            )
    status = int(request.status)
    if status not in _VALID_STATES:
        raise InvalidListRequestError(f"status {status} is not a known TaskState", field="status")
    after: int | None = None
    if request.HasField("status_timestamp_after"):
        stamp = request.status_timestamp_after
        if not (MIN_TIMESTAMP_SECONDS <= stamp.seconds <= MAX_TIMESTAMP_SECONDS and 0 <= stamp.nanos < 10**9):
            raise InvalidListRequestError(
                "status_timestamp_after must be a time from 0001-01-01 to 9999-12-31 (RFC 3339), "
                f"not {stamp.seconds} s and {stamp.nanos} ns from 1970",
                field="status_timestamp_after",
            )
        after = timestamp_micros(stamp)
    fingerprint = _fingerprint(_KIND_TASKS, tenant, request.context_id, status, after)
    cursor: tuple[int, str] | None = None
    if request.page_token:
        body = _decode_token(request.page_token, _KIND_TASKS, fingerprint)
        if len(body) < 8:
            raise InvalidPageTokenError("page_token is malformed")
        (ts,) = struct.unpack_from(">q", body)
        cursor = (ts, _decode_id(body[8:]))
    return TaskQuery(
        tenant=tenant,
        context_id=request.context_id,
        status=status,
        after_micros=after,
        page_size=page_size,
        history_length=history_length,
        include_artifacts=request.include_artifacts,
        cursor=cursor,
        fingerprint=fingerprint,
    )


def encode_task_cursor(query: TaskQuery, last_key: tuple[int, str]) -> str:
    """The next_page_token resuming after the task whose sort key is ``last_key``."""
    return _encode_token(
        _KIND_TASKS, query.fingerprint, struct.pack(">q", last_key[0]) + last_key[1].encode()
    )


# ---------------------------------------------------------------- push-config paging


@dataclass(frozen=True, slots=True)
class PushQuery:
    """A validated ListTaskPushNotificationConfigs page request."""

    tenant: str
    task_id: str
    page_size: int
    after_id: str | None  # id of the last config already returned
    fingerprint: bytes


def parse_push_query(tenant: str, task_id: str, page_size: int, page_token: str) -> PushQuery:
    if page_size < 0:
        raise InvalidListRequestError(f"page_size must not be negative, got {page_size}", field="page_size")
    # Clamped rather than refused: the spec sets no upper bound for this operation.
    size = min(page_size, PUSH_MAX_PAGE_SIZE) if page_size else PUSH_DEFAULT_PAGE_SIZE
    fingerprint = _fingerprint(_KIND_PUSH, tenant, task_id)
    after_id = _decode_id(_decode_token(page_token, _KIND_PUSH, fingerprint)) if page_token else None
    return PushQuery(
        tenant=tenant, task_id=task_id, page_size=size, after_id=after_id, fingerprint=fingerprint
    )


def encode_push_cursor(query: PushQuery, last_id: str) -> str:
    return _encode_token(_KIND_PUSH, query.fingerprint, last_id.encode())


# ---------------------------------------------------------------- token codec

_TOKEN_VERSION = 1
_KIND_TASKS = 0x54  # "T"
_KIND_PUSH = 0x50  # "P"
_FP_LEN = 8
_SUM_LEN = 8
_HEADER_LEN = 2 + _FP_LEN
_MAX_TOKEN_CHARS = 2048  # ids are short; anything longer is not ours
_SUM_KEY = b"a2a-grpc/page-token"


def _fingerprint(kind: int, *parts: object) -> bytes:
    # JSON keeps the encoding of the parts unambiguous ("a","bc" differs from "ab","c").
    data = json.dumps([kind, *parts], separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=_FP_LEN, person=b"a2a-fp").digest()


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_SUM_LEN, key=_SUM_KEY).digest()


def _encode_token(kind: int, fingerprint: bytes, body: bytes) -> str:
    payload = bytes((_TOKEN_VERSION, kind)) + fingerprint + body
    return base64.urlsafe_b64encode(payload + _checksum(payload)).rstrip(b"=").decode("ascii")


def _decode_token(token: str, kind: int, fingerprint: bytes) -> bytes:
    """The cursor body of a token, after checking its integrity, kind and query binding."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise InvalidPageTokenError("page_token is malformed (too long)")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPageTokenError("page_token is malformed (not base64url)") from None
    if len(raw) < _HEADER_LEN + _SUM_LEN:
        raise InvalidPageTokenError("page_token is malformed (truncated)")
    payload, digest = raw[:-_SUM_LEN], raw[-_SUM_LEN:]
    if not hmac.compare_digest(digest, _checksum(payload)):
        raise InvalidPageTokenError("page_token is malformed (corrupted or modified)")
    if payload[0] != _TOKEN_VERSION:
        raise InvalidPageTokenError(f"page_token has unsupported version {payload[0]}")
    if payload[1] != kind:
        raise InvalidPageTokenError("page_token was issued by a different list operation")
    if payload[2:_HEADER_LEN] != fingerprint:
        raise InvalidPageTokenError("page_token was issued for a different tenant or different filters")
    return payload[_HEADER_LEN:]


def _decode_id(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise InvalidPageTokenError("page_token is malformed (bad id)") from None
