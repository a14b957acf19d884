"""The top-level fields of an encoded Task, found without parsing it.

The SQLite store keeps a task's history and artifacts apart from the rest of it (so that a
ListTasks reads only what it returns): :func:`split_task` cuts an encoded task into those three
parts by reading only the tags and lengths of its top-level fields, and :func:`history_tail` finds
the most recent messages of an encoded history the same way. Parsing the parts in turn gives the
task back: a protobuf message is the concatenation of its fields, and a repeated field's entries
append.
"""

from __future__ import annotations

from a2a_grpc import types

__all__ = ["ARTIFACTS_FIELD", "HISTORY_FIELD", "Blob", "history_tail", "split_task"]

ARTIFACTS_FIELD = types.Task.DESCRIPTOR.fields_by_name["artifacts"].number
HISTORY_FIELD = types.Task.DESCRIPTOR.fields_by_name["history"].number
Blob = bytes | memoryview
"""Bytes, or a view into bytes (what SQLite and protobuf parsing take alike)."""


def _varint(data: bytes | memoryview, at: int) -> tuple[int, int]:
    """The varint at ``at`` and where it ends."""
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _fields(data: bytes | memoryview) -> list[tuple[int, int, int]]:
    """(field number, start, end) of each top-level field of an encoded message: only the tags and
    lengths are read, never what the fields hold."""
    out: list[tuple[int, int, int]] = []
    at, end = 0, len(data)
    while at < end:
        start = at
        key = data[at]
        if key < 0x80:  # the tag of a field numbered up to 15: one byte (every field of a Task)
            at += 1
        else:
            key, at = _varint(data, at)
        wire = key & 7
        if wire == 2:
            size = data[at] if at < end else 0x80
            if size < 0x80:
                at += 1 + size
            else:
                size, at = _varint(data, at)
                at += size
        elif wire == 0:
            _, at = _varint(data, at)
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:  # groups: nothing of a Task
            raise ValueError(f"unexpected wire type {wire}")
        if at > end:
            raise ValueError("truncated field")
        out.append((key >> 3, start, at))
    return out


def split_task(data: bytes) -> tuple[Blob, Blob, Blob]:
    """An encoded Task as (the rest, its history fields, its artifacts fields), which parsed in turn
    give the task back. The encoder writes fields in number order, so history and artifacts are
    each one run: views into ``data``, not copies (the rest, a few small fields, is joined)."""
    spans: dict[int, list[tuple[int, int]]] = {HISTORY_FIELD: [], ARTIFACTS_FIELD: [], 0: []}
    for number, start, end in _fields(data):
        runs = spans.get(number, spans[0])
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    view = memoryview(data)

    def part(runs: list[tuple[int, int]]) -> Blob:
        if len(runs) == 1:
            return view[runs[0][0] : runs[0][1]]
        return b"".join(view[a:b] for a, b in runs)

    return part(spans[0]), part(spans[HISTORY_FIELD]), part(spans[ARTIFACTS_FIELD])


def history_tail(history: bytes, history_length: int | None) -> Blob:
    """The encoded history fields of the ``history_length`` most recent messages (None = all),
    found by their lengths alone: the messages dropped are never parsed."""
    if history_length is None:
        return history
    if history_length <= 0:
        return b""
    fields = _fields(history)
    if len(fields) <= history_length:
        return history
    return memoryview(history)[fields[-history_length][1] :]
