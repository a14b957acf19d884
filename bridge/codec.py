"""The one ProtoJSON codec of a2a-grpc: every JSON body the bridge reads or writes goes through here.

ProtoJSON as the A2A JSON bindings use it (spec sections 5.6, 9, 11):

* out: camelCase member names, enum values by name, int64/uint64 as strings, bytes as base64,
  ``google.protobuf.Struct``/``Value`` as plain JSON, ``Timestamp`` as RFC 3339, default values
  omitted except the REQUIRED fields of a top-level response (``ListTasksResponse.nextPageToken``
  must be present even when empty, spec 3.1.4);
* in: camelCase or proto (snake_case) member names, enum names or numbers, int64 as string or
  number, base64 (standard or URL-safe); an unknown member is an error that names it, not a
  silent loss.

Decoding never raises anything but :class:`a2a_grpc.errors.ParseError` (the bytes are not JSON)
or :class:`a2a_grpc.errors.InvalidParamsError` naming the offending field path, so every binding
reports bad input the same way. Golden files under ``tests/golden/`` pin the encoding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar, cast

import orjson
from google.api import field_behavior_pb2  # type: ignore[import-untyped]
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from a2a_grpc import _pool, errors
from a2a_grpc.errors import FieldViolation

__all__ = [
    "MAX_MESSAGE_DEPTH",
    "decode",
    "dumps",
    "dumps_sorted",
    "encode",
    "from_json",
    "loads",
    "to_json",
]

M = TypeVar("M", bound=Message)

MAX_MESSAGE_DEPTH = 64
"""Deepest nesting of messages (Struct values included) a decoded request may have."""


def loads(body: bytes | str) -> Any:
    """Parse JSON text; :class:`ParseError` (-32700) if it is not JSON or nests past 1,024 levels."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.ParseError(f"invalid JSON: {exc}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def dumps_sorted(obj: Any) -> bytes:
    """JSON with object keys sorted at every level (a stable body, e.g. for an ETag)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


@cache
def _required_defaults(descriptor: Descriptor) -> tuple[tuple[str, Any], ...]:
    """REQUIRED scalar/repeated fields without presence, with the JSON of their default value."""
    out: list[tuple[str, Any]] = []
    for f in descriptor.fields:
        behaviors = f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        if field_behavior_pb2.REQUIRED not in behaviors or f.has_presence:
            continue
        if f.is_repeated:
            default: Any = {} if f.message_type is not None and f.message_type.GetOptions().map_entry else []
        elif f.type == FieldDescriptor.TYPE_STRING:
            default = ""
        elif f.type == FieldDescriptor.TYPE_BOOL:
            default = False
        elif f.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64):
            default = "0"
        elif f.type == FieldDescriptor.TYPE_ENUM:
            assert f.enum_type is not None
            default = f.enum_type.values_by_number[0].name
        elif f.type == FieldDescriptor.TYPE_BYTES:
            default = ""
        else:
            default = 0
        out.append((f.json_name, default))
    return tuple(out)


def encode(message: Message) -> dict[str, Any]:
    """The ProtoJSON object of ``message`` (a top-level response: its REQUIRED fields always appear)."""
    obj: dict[str, Any] = json_format.MessageToDict(message, descriptor_pool=_pool.POOL)
    for name, default in _required_defaults(message.DESCRIPTOR):
        obj.setdefault(name, default)
    return obj


def to_json(message: Message) -> bytes:
    return orjson.dumps(encode(message))


_NO_FIELD = re.compile(r'has no field named "([^"]+)" at "([^"]*)"')
_AT = re.compile(r" at ([\w\[\]]+(?:\.[\w\[\]]+)*)\.*$")
_FAILED = re.compile(r"^Failed to parse (\w+) field: ")


def _violation(exc: json_format.ParseError, root: str) -> FieldViolation:
    """The field path and a short description out of one of json_format's messages."""
    text = str(exc).split("\n", 1)[0]
    if (m := _NO_FIELD.search(text)) is not None:
        where = m.group(2).split(".", 1)[1] if "." in m.group(2) else ""
        path = f"{where}.{m.group(1)}" if where else m.group(1)
        return FieldViolation(_join(root, path), "unknown field")
    chain: list[str] = []
    while (m := _FAILED.match(text)) is not None:
        chain.append(m.group(1))
        text = text[m.end() :]
    if (m := _AT.search(text)) is not None:
        text = text[: m.start()]
        at = m.group(1).split(".", 1)
        if len(at) == 2:
            chain = at[1].split(".")
    text = text.rstrip(".")
    return FieldViolation(_join(root, ".".join(chain)), text or "invalid value")


def _join(root: str, path: str) -> str:
    return f"{root}.{path}" if root and path else root or path


@cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by JSON name and by proto name (both spellings are read)."""
    return {**{f.name: f for f in descriptor.fields}, **{f.json_name: f for f in descriptor.fields}}


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    return _fields(descriptor).get(key)


@cache
def _holds_bytes(descriptor: Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a message can contain a bytes field at any depth (else there is nothing to check)."""
    if descriptor.full_name.startswith("google.protobuf.") or descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    return any(
        f.type == FieldDescriptor.TYPE_BYTES
        or (f.message_type is not None and _holds_bytes(f.message_type, seen))
        for f in descriptor.fields
    )


def _fits(descriptor: Descriptor, members: dict[str, Any], ignore_unknown: bool) -> bool:
    try:
        json_format.ParseDict(
            members,
            message_factory.GetMessageClass(descriptor)(),
            ignore_unknown_fields=ignore_unknown,
            descriptor_pool=_pool.POOL,
            max_recursion_depth=MAX_MESSAGE_DEPTH,
        )
    except (json_format.ParseError, RecursionError):
        return False
    return True


def _locate(data: object, descriptor: Descriptor, path: str, ignore_unknown: bool) -> str:
    """The path of the member that makes ``data`` fail to parse, found by parsing it piece by piece.

    json_format's messages lose list indexes (``parts.text`` for ``parts[0].text``), so the failing
    member is narrowed down member by member, element by element. Only runs on bad input.
    """
    if descriptor.full_name.startswith("google.protobuf.") or not isinstance(data, Mapping):
        return path
    for key, item in data.items():
        if _fits(descriptor, {key: item}, ignore_unknown):
            continue
        at = _join(path, key)
        field = _field(descriptor, key)
        if field is None or (field.message_type is None and not field.is_repeated):
            return at
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_type = field.message_type.fields_by_name["value"].message_type
            if isinstance(item, Mapping) and value_type is not None:
                for k, v in item.items():
                    if not _fits(descriptor, {key: {k: v}}, ignore_unknown):
                        return _locate(v, value_type, f"{at}[{k}]", ignore_unknown)
            return at
        if field.is_repeated:
            if not isinstance(item, list):
                return at
            for i, element in enumerate(item):
                if not _fits(descriptor, {key: [element]}, ignore_unknown):
                    sub = field.message_type
                    where = f"{at}[{i}]"
                    return _locate(element, sub, where, ignore_unknown) if sub is not None else where
            return at
        return _locate(item, field.message_type, at, ignore_unknown) if field.message_type else at
    return path  # every member parses alone: they conflict (two members of one oneof)


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


def _check_bytes(data: object, descriptor: Descriptor, path: str) -> None:
    """Refuse strings that are not base64 where bytes are expected (json_format decodes them to junk)."""
    if descriptor.full_name.startswith("google.protobuf.") or not isinstance(data, Mapping):
        return
    for key, item in data.items():
        field = _field(descriptor, key)
        if field is None or item is None:
            continue
        if field.type != FieldDescriptor.TYPE_BYTES and (
            field.message_type is None or field.message_type.GetOptions().map_entry
        ):
            continue
        at = _join(path, key)
        elements = enumerate(item) if field.is_repeated and isinstance(item, list) else [(None, item)]
        for i, element in elements:
            where = at if i is None else f"{at}[{i}]"
            if field.type == FieldDescriptor.TYPE_BYTES:
                if isinstance(element, str) and (
                    not _BASE64.fullmatch(element) or len(element.rstrip("=")) % 4 == 1
                ):
                    raise errors.InvalidParamsError(
                        f"invalid {where}: not base64", field_violations=[FieldViolation(where, "not base64")]
                    )
            elif field.message_type is not None:
                _check_bytes(element, field.message_type, where)


def decode(data: object, cls: type[M], *, where: str = "", ignore_unknown: bool = False) -> M:
    """The ``cls`` message a decoded JSON value describes.

    ``where`` prefixes field paths in errors. Raises :class:`InvalidParamsError` naming the field
    for anything that does not fit the message. Requests are read strictly (an unknown member is
    a typo to report); ``ignore_unknown`` reads what an upstream agent answers leniently, since a
    newer agent or an SDK's compatibility members (a card's v0.3 ``preferredTransport``) must not
    make its answer unusable.
    """
    if not isinstance(data, Mapping):
        kind = "an array" if isinstance(data, list) else type(data).__name__ if data is not None else "null"
        name = where or cls.DESCRIPTOR.name
        raise errors.InvalidParamsError(
            f"{name} must be a JSON object, not {kind}",
            field_violations=[FieldViolation(where, f"must be a JSON object ({cls.DESCRIPTOR.full_name})")],
        )
    message = cls()
    members = dict(data)
    descriptor = cast(Descriptor, cls.DESCRIPTOR)
    try:
        json_format.ParseDict(
            members,
            message,
            ignore_unknown_fields=ignore_unknown,
            descriptor_pool=_pool.POOL,
            max_recursion_depth=MAX_MESSAGE_DEPTH,
        )
    except (json_format.ParseError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            description = "nests too deeply"
        else:
            description = _violation(exc, "").description
        path = _locate(members, descriptor, where, ignore_unknown) or where
        if "must be in a dict" in description or description.startswith("Failed to parse"):
            description = "must be a JSON object"
        raise errors.InvalidParamsError(
            f"invalid {path or cls.DESCRIPTOR.name}: {description}",
            field_violations=[FieldViolation(path, description)],
        ) from None
    if _holds_bytes(descriptor):
        _check_bytes(members, descriptor, where)
    return message


def from_json(body: bytes | str, cls: type[M]) -> M:
    """``decode(loads(body), cls)``."""
    return decode(loads(body), cls)
