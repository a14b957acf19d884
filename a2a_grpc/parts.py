"""Parts from plain Python values: text, structured data and files, and the data back out.

a2a_grpc's messages live in a private descriptor pool (``a2a_grpc._pool``), so their
``google.protobuf.Value`` and ``Struct`` fields take a2a_grpc's own classes, not the ones of
``google.protobuf.struct_pb2``. These helpers accept what you have: JSON-like Python values
(dict, list, str, int, float, bool, None) and the standard protobuf ``Value``, ``Struct`` and
``ListValue`` messages alike.

    from a2a_grpc.parts import data_part, file_part, text_part, part_data

    parts = [
        text_part("the forecast"),
        data_part({"city": "Paris", "celsius": [18, 21, 19]}),
        file_part(raw=png_bytes, filename="chart.png", media_type="image/png"),
        file_part(url="https://example.com/report.pdf", media_type="application/pdf"),
    ]
    part_data(parts[1])  # {'city': 'Paris', 'celsius': [18.0, 21.0, 19.0]}

Numbers in a ``Value`` are doubles (JSON numbers), so integers come back as floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from a2a_grpc import types

__all__ = ["data_part", "file_part", "part_data", "text_part", "to_struct", "to_value"]

_WKT = ("google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue")


def to_value(value: object) -> struct_pb2.Value:
    """``value`` as a2a_grpc's ``google.protobuf.Value`` (typed as the standard class: same API).

    Takes a JSON-like Python value or a ``Value`` / ``Struct`` / ``ListValue`` message of any
    descriptor pool (the standard ``struct_pb2`` ones included). TypeError names what cannot be
    represented (bytes, datetimes, sets, objects: convert them to JSON values first).
    """
    if isinstance(value, Message):
        name = value.DESCRIPTOR.full_name
        if name not in _WKT:
            raise TypeError(f"a data part holds a JSON value, not a {name} message")
        if name == "google.protobuf.Value":
            return types.Value.FromString(value.SerializeToString())
        # Struct and ListValue: the same bytes are field 5 or 6 of a Value.
        out = types.Value()
        target = out.struct_value if name == "google.protobuf.Struct" else out.list_value
        target.MergeFromString(value.SerializeToString())
        return out
    out = types.Value()
    try:
        json_format.ParseDict(cast(Any, _jsonable(value, "value")), out)
    except json_format.ParseError as exc:  # pragma: no cover - _jsonable admits only JSON values
        raise TypeError(f"not a JSON value: {exc}") from None
    return out


def to_struct(mapping: Mapping[str, Any] | Message) -> struct_pb2.Struct:
    """``mapping`` as a2a_grpc's ``google.protobuf.Struct`` (for ``metadata`` fields)."""
    value = to_value(mapping)
    if value.WhichOneof("kind") != "struct_value":
        raise TypeError("a Struct holds a JSON object (a mapping of str to JSON values)")
    return value.struct_value


def _jsonable(value: object, where: str, depth: int = 0) -> object:
    """Check ``value`` is JSON data, naming the first member that is not."""
    if depth > 100:
        raise TypeError(f"{where}: nests more than 100 levels deep")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: object keys must be str, not {type(key).__name__}")
            _jsonable(item, f"{where}[{key!r}]", depth + 1)
        return value
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _jsonable(item, f"{where}[{i}]", depth + 1)
        return list(value)
    raise TypeError(
        f"{where}: {type(value).__name__} is not a JSON value (use dict, list, str, int, float, bool or None)"
    )


def text_part(text: str, *, media_type: str = "", metadata: Mapping[str, Any] | None = None) -> types.Part:
    """A part holding ``text``."""
    part = types.Part(text=text, media_type=media_type)
    if metadata:
        part.metadata.CopyFrom(to_struct(metadata))
    return part


def data_part(
    value: object, *, media_type: str = "application/json", metadata: Mapping[str, Any] | None = None
) -> types.Part:
    """A part holding structured data: any JSON-like value, or a protobuf ``Value`` / ``Struct``."""
    part = types.Part(media_type=media_type)
    part.data.CopyFrom(to_value(value))
    if metadata:
        part.metadata.CopyFrom(to_struct(metadata))
    return part


def file_part(
    *,
    raw: bytes | None = None,
    url: str | None = None,
    filename: str = "",
    media_type: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> types.Part:
    """A file: its bytes inline (``raw``) or a link to it (``url``), exactly one of the two."""
    if (raw is None) == (url is None):
        raise ValueError("a file part needs exactly one of raw= (the bytes) or url= (a link)")
    part = types.Part(filename=filename, media_type=media_type)
    if raw is not None:
        part.raw = raw
    else:
        assert url is not None
        part.url = url
    if metadata:
        part.metadata.CopyFrom(to_struct(metadata))
    return part


def part_data(part: types.Part) -> Any:
    """The Python value a data part holds (dicts, lists, str, float, bool, None)."""
    if part.WhichOneof("content") != "data":
        raise ValueError(f"not a data part: it holds {part.WhichOneof('content') or 'nothing'}")
    return json_format.MessageToDict(part.data)
