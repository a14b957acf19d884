"""ProtoJSON <-> proto from the descriptors: every JSON body the bridge reads or writes goes through here.

ProtoJSON as the A2A JSON bindings use it (spec sections 5.6, 9, 11):

* out: camelCase member names, enum values by name, int64/uint64 as strings, bytes as base64,
  ``google.protobuf.Struct``/``Value`` as plain JSON, ``Timestamp`` as RFC 3339, default values
  omitted except the REQUIRED fields of a top-level response (``ListTasksResponse.nextPageToken``
  must be present even when empty, spec 3.1.4);
* in: camelCase or proto (snake_case) member names, enum names or numbers, int64 as string or
  number, base64 (standard or URL-safe). A member the message does not define is ignored, at any
  depth (spec 5.7: "Implementations SHOULD ignore unrecognized fields"); everything else that
  does not fit is refused: a wrong JSON type, an unknown enum name or an out-of-range number, a
  string that is not base64, a non-object where a message belongs, two members of one oneof,
  nesting past :data:`MAX_MESSAGE_DEPTH`, an enum number that is not an int32, an integer beyond a
  double's range in free-form JSON (``Struct``).

Decoding never raises anything but :class:`a2a_grpc.errors.ParseError` (the bytes are not JSON)
or :class:`a2a_grpc.errors.InvalidParamsError` naming the offending field path and what its value
must be, in our words (never the parser's), so every binding reports bad input the same way.
Golden files under ``tests/golden/`` pin the encoding.
"""

from __future__ import annotations

import asyncio
import json
import math
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
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_DEPTH",
    "decode",
    "decode_body",
    "dumps",
    "dumps_sorted",
    "encode",
    "encode_answer",
    "from_json",
    "json_kind",
    "loads",
    "parse_body",
    "quote",
    "to_json",
]

M = TypeVar("M", bound=Message)

MAX_MESSAGE_DEPTH = 64
"""Deepest nesting of messages (Struct values included) a decoded request may have."""


MAX_JSON_DEPTH = 1024
"""Deepest nesting of arrays and objects the JSON parser reads (orjson's fixed limit)."""


def loads(body: bytes | str) -> Any:
    """Parse JSON text; :class:`ParseError` (-32700) if it is not JSON or nests past 1,024 levels."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.ParseError(_not_json(body, exc)) from None


async def parse_body(body: bytes, in_thread_above: int) -> Any:
    """:func:`loads` for a request body; one over ``in_thread_above`` bytes is parsed in a worker
    thread by a parser that lets the event loop run meanwhile (:func:`_parse_yielding`).

    orjson parses a 15 MiB body of a million small objects in about half a second holding the GIL
    throughout, so a thread alone would not help: every other caller would wait as long. The
    standard library's parser, called back per object, gives the GIL up every few milliseconds;
    it is about twice as slow, which only the large body's own sender pays.
    """
    if len(body) <= in_thread_above or _SURROGATE_ESCAPE.search(body):
        # A surrogate escape: the two parsers differ on lone ones; orjson's verdict stays the rule.
        return loads(body)
    return await asyncio.to_thread(_parse_yielding, body)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _NotJson(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A Python function on purpose: the interpreter may hand the GIL to the event loop between objects.
    return dict(pairs)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # as orjson: a number too large for a double is not read
        raise _NotJson("a number is too large")
    return value


def _int(text: str) -> int | float:
    value = int(text)
    # As orjson: an integer beyond 64 bits is read as a double.
    return value if -(2**63) <= value < 2**64 else float(value)


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON value")


_YIELDING = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_float, parse_int=_int, parse_constant=_constant
)


def _parse_yielding(body: bytes) -> Any:
    """The JSON of ``body``, read as orjson reads it (ParseError for what orjson refuses), by a
    parser that calls Python code for each object (see :func:`parse_body`)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ParseError("invalid JSON: the body is not UTF-8 text") from None
    try:
        return _YIELDING.decode(text)
    except json.JSONDecodeError as exc:
        raise errors.ParseError(
            f"invalid JSON: a syntax error at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:  # past Python's recursion limit, near orjson's depth: orjson decides
        return loads(body)
    except _NotJson as exc:
        raise errors.ParseError(f"invalid JSON: {exc}") from None
    except ValueError:  # an integer of more digits than Python reads
        raise errors.ParseError("invalid JSON: a number has too many digits") from None


def _not_json(body: bytes | str, exc: orjson.JSONDecodeError) -> str:
    # The parser's own words name its internals; ours say what is wrong and where.
    if not body.strip():
        return "invalid JSON: the body is empty"
    if "depth" in exc.msg:
        return f"invalid JSON: arrays and objects nest more than {MAX_JSON_DEPTH} levels deep"
    if "UTF-8" in exc.msg:
        return "invalid JSON: the body is not UTF-8 text"
    return f"invalid JSON: a syntax error at line {exc.lineno}, column {exc.colno}"


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


def encode(message: Message, *, fault: type[errors.A2AError] = errors.InvalidParamsError) -> dict[str, Any]:
    """The ProtoJSON object of ``message`` (a top-level response: its REQUIRED fields always appear).

    A value ProtoJSON cannot write (a Timestamp outside years 1-9999, a NaN in a Struct) is a
    ``fault`` naming the field path: InvalidParamsError for a request a caller gave us,
    InvalidAgentResponseError for an agent's answer.
    """
    try:
        obj: dict[str, Any] = json_format.MessageToDict(message, descriptor_pool=_pool.POOL)
    except (json_format.SerializeToJsonError, ValueError) as exc:
        path = _unwritable(message, "")
        description = "holds a value that cannot be written as JSON"
        reason = errors.echo(str(exc).rsplit(": ", 1)[-1].rstrip("."), limit=160)
        raise fault(
            f"{path or message.DESCRIPTOR.name} {description}: {reason}",
            field_violations=[FieldViolation(path, description)],
        ) from None
    for name, default in _required_defaults(message.DESCRIPTOR):
        obj.setdefault(name, default)
    return obj


def _unwritable(message: Message, path: str) -> str:
    """The JSON path of the value ``message`` cannot be written at (runs only when it cannot)."""
    for field, value in message.ListFields():
        sub = field.message_type
        if sub is None:
            continue
        at = _join(path, field.json_name)
        if sub.GetOptions().map_entry:
            if sub.fields_by_name["value"].message_type is None:
                continue
            elements = [(f"{at}[{key}]", item) for key, item in value.items()]
        elif field.is_repeated:
            elements = [(f"{at}[{i}]", item) for i, item in enumerate(value)]
        else:
            elements = [(at, value)]
        for where, element in elements:
            try:
                json_format.MessageToDict(element, descriptor_pool=_pool.POOL)
            except (json_format.SerializeToJsonError, ValueError):  # ValueError: a well-known type's own
                if element.DESCRIPTOR.full_name.startswith("google.protobuf."):
                    return where
                return _unwritable(element, where)
    return path


async def encode_answer(
    message: Message, in_thread_above: int, *, fault: type[errors.A2AError] = errors.InvalidParamsError
) -> dict[str, Any]:
    """:func:`encode`; in a worker thread for a message over ``in_thread_above`` bytes (a task
    holding large parts: json_format writes it in Python code, during which the thread lets the
    event loop serve others). Measuring the size is one fast C pass."""
    if message.ByteSize() > in_thread_above:
        return await asyncio.to_thread(encode, message, fault=fault)
    return encode(message, fault=fault)


def to_json(message: Message) -> bytes:
    return orjson.dumps(encode(message))


def _join(root: str, path: str) -> str:
    return f"{root}.{path}" if root and path else root or path


@cache
def _fields(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    """A message's fields by JSON name and by proto name (both spellings are read)."""
    return {**{f.name: f for f in descriptor.fields}, **{f.json_name: f for f in descriptor.fields}}


def _field(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    return _fields(descriptor).get(key)


@cache
def _needs_check(descriptor: Descriptor) -> bool:
    """Whether a message can hold a bytes or enum field at any depth (else :func:`_check_values`
    has nothing to look at). Asked for every message of every request: worked out once per type."""
    return _can_hold_checked(descriptor, frozenset())


def _can_hold_checked(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name.startswith("google.protobuf.") or descriptor.full_name in seen:
        return False
    seen = seen | {descriptor.full_name}
    return any(
        f.type in (FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_ENUM)
        or (f.message_type is not None and _can_hold_checked(f.message_type, seen))
        for f in descriptor.fields
    )


def _known(data: object, descriptor: Descriptor) -> Any:
    """``data`` without the members ``descriptor`` does not define, at every depth (spec 5.7)."""
    if not isinstance(data, Mapping) or descriptor.full_name.startswith("google.protobuf."):
        return data  # not ours to trim: a type error for json_format, or free-form JSON (Struct)
    out: dict[str, Any] = {}
    for key, item in data.items():
        field = _field(descriptor, key)
        if field is None:
            continue
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            values = sub.fields_by_name["value"].message_type
            if values is not None and isinstance(item, Mapping):
                item = {k: _known(v, values) for k, v in item.items()}
        elif sub is not None and field.is_repeated and isinstance(item, list):
            item = [_known(element, sub) for element in item]
        elif sub is not None:
            item = _known(item, sub)
        out[key] = item
    return out


def _fits(descriptor: Descriptor, members: dict[str, Any], lenient: bool) -> bool:
    try:
        json_format.ParseDict(
            members,
            message_factory.GetMessageClass(descriptor)(),
            ignore_unknown_fields=lenient,
            descriptor_pool=_pool.POOL,
            max_recursion_depth=MAX_MESSAGE_DEPTH,
        )
    except (json_format.ParseError, RecursionError, OverflowError):
        return False
    return True


_Fault = tuple[str, str, object]
"""Where a value does not fit (field path), what it must be, and the value (:data:`_WHOLE` if moot)."""
_WHOLE = object()


def _locate(data: object, descriptor: Descriptor, path: str, lenient: bool) -> _Fault:
    """The member that makes ``data`` fail to parse, found by parsing it piece by piece.

    json_format's messages lose list indexes (``parts.text`` for ``parts[0].text``) and speak of
    Python internals, so the failing member is narrowed down member by member, element by element,
    and described from its field's type. Only runs on bad input.
    """
    if not isinstance(data, Mapping) or descriptor.full_name.startswith("google.protobuf."):
        return path, _message_shape(descriptor), data
    for key, item in data.items():
        if _fits(descriptor, {key: item}, lenient):
            continue
        at = _join(path, key)
        field = _field(descriptor, key)
        if field is None:
            return at, "is not a field of " + descriptor.name, _WHOLE
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            if not isinstance(item, Mapping):
                return at, "must be a JSON object", item
            value_field = sub.fields_by_name["value"]
            for k, v in item.items():
                if not _fits(descriptor, {key: {k: v}}, lenient):
                    return _element(value_field, v, f"{at}[{k}]", lenient)
            return at, "has an invalid key", _WHOLE
        if field.is_repeated:
            if not isinstance(item, list):
                return at, "must be an array", item
            for i, element in enumerate(item):
                if not _fits(descriptor, {key: [element]}, lenient):
                    return _element(field, element, f"{at}[{i}]", lenient)
            return at, "is invalid", _WHOLE
        return _element(field, item, at, lenient)
    return path, _conflict(descriptor, data), _WHOLE  # every member parses alone: they exclude each other


def _element(field: FieldDescriptor, value: object, at: str, lenient: bool) -> _Fault:
    """The fault of one value of ``field`` (a singular value, an element, a map value)."""
    if value is None:
        return at, "must not be null", _WHOLE
    if field.message_type is not None:
        return _locate(value, field.message_type, at, lenient)
    return at, _scalar_shape(field), value


def _conflict(descriptor: Descriptor, data: Mapping[str, Any]) -> str:
    for oneof in descriptor.oneofs:
        names = [f.json_name for f in oneof.fields]
        given = [f.json_name for f in oneof.fields if data.get(f.json_name, data.get(f.name)) is not None]
        if len(given) > 1:
            return f"sets {', '.join(given)}: only one of {', '.join(names)} may be set"
    return "is invalid"


_INT_RANGES = {
    **dict.fromkeys(
        (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32),
        (-(2**31), 2**31 - 1),
    ),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys(
        (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64),
        (-(2**63), 2**63 - 1),
    ),
    **dict.fromkeys((FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64), (0, 2**64 - 1)),
}
_WKT_SHAPES = {
    "google.protobuf.Timestamp": 'must be an RFC 3339 timestamp string, e.g. "2025-10-28T10:30:00Z"',
    "google.protobuf.Duration": 'must be a duration string in seconds, e.g. "1.5s"',
    "google.protobuf.FieldMask": "must be a string of comma-separated field names",
    "google.protobuf.ListValue": "must be an array",
}


def _message_shape(descriptor: Descriptor) -> str:
    """What the JSON of a message must look like, in words."""
    if descriptor.full_name in _WKT_SHAPES:
        return _WKT_SHAPES[descriptor.full_name]
    if descriptor.full_name.startswith("google.protobuf.") and descriptor.full_name.endswith("Value"):
        value = descriptor.fields_by_name.get("value")  # the wrappers: their value's JSON
        if value is not None:
            return _scalar_shape(value)
    return "must be a JSON object"


def _scalar_shape(field: FieldDescriptor) -> str:
    """What the JSON of one scalar or enum value must look like, in words."""
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        names = ", ".join(v.name for v in enum.values if v.number != 0)
        return f"must be a {enum.name} name ({names}) or number"
    if field.type in _INT_RANGES:
        low, high = _INT_RANGES[field.type]
        return f"must be an integer from {low} to {high}"
    return {
        FieldDescriptor.TYPE_BOOL: "must be true or false",
        FieldDescriptor.TYPE_STRING: "must be a string",
        FieldDescriptor.TYPE_BYTES: "must be a base64 string",
    }.get(field.type, "must be a number")


def json_kind(value: object) -> str:
    """What a decoded JSON value is, in JSON's words ("an array", "a string", ...)."""
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in (
        (Mapping, "an object"),
        (list, "an array"),
        (str, "a string"),
        (int | float, "a number"),
    ):
        if isinstance(value, kind):
            return name
    return "null"


def quote(value: object) -> str:
    """A caller's JSON value as an error message quotes it: short, in JSON's terms."""
    if isinstance(value, str):
        return errors.echo(value)
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return errors.echo(value).strip("'")
    return json_kind(value)


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_INT32 = _INT_RANGES[FieldDescriptor.TYPE_INT32]


def _refuse(where: str, description: str, value: object) -> errors.InvalidParamsError:
    return errors.InvalidParamsError(
        f"invalid {where}: {description}, not {quote(value)}",
        field_violations=[FieldViolation(where, description)],
    )


def _check_scalar(field: FieldDescriptor, value: object, where: str) -> None:
    """Refuse what json_format takes but changes: a string that is not base64 where bytes are
    expected (decoded to junk), an enum number that is fractional or outside int32 (truncated or
    wrapped: 2^40 became 0, 1.5 became 1)."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        if isinstance(value, str) and (not _BASE64.fullmatch(value) or len(value.rstrip("=")) % 4 == 1):
            raise _refuse(where, "must be a base64 string", value)
    elif field.type == FieldDescriptor.TYPE_ENUM and not _enum_number_fits(value):
        raise _refuse(where, _scalar_shape(field), value)


def _enum_number_fits(value: object) -> bool:
    """Whether an enum given as a JSON number is a whole int32 (a name or other type: json_format's call)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if isinstance(value, float) and not value.is_integer():
        return False
    return _INT32[0] <= value <= _INT32[1]


def _check_values(data: object, descriptor: Descriptor, path: str) -> None:
    """:func:`_check_scalar` over every bytes and enum value of ``data``, at any depth."""
    if descriptor.full_name.startswith("google.protobuf.") or not isinstance(data, Mapping):
        return
    for key, item in data.items():
        field = _field(descriptor, key)
        if field is None or item is None:
            continue
        at = _join(path, key)
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            value_field = sub.fields_by_name["value"]
            if isinstance(item, Mapping):
                for k, v in item.items():
                    _check_element(value_field, v, f"{at}[{k}]")
            continue
        elements = enumerate(item) if field.is_repeated and isinstance(item, list) else [(None, item)]
        for i, element in elements:
            _check_element(field, element, at if i is None else f"{at}[{i}]")


def _check_element(field: FieldDescriptor, value: object, where: str) -> None:
    if field.message_type is not None:
        if _needs_check(field.message_type):
            _check_values(value, field.message_type, where)
    else:
        _check_scalar(field, value, where)


_DOUBLE_MAX = 1.7976931348623157e308


def _too_large(data: object, path: str) -> str | None:
    """Where ``data`` holds an integer no JSON number (a double) can be, if anywhere."""
    if isinstance(data, int) and not isinstance(data, bool):
        return path if abs(data) > _DOUBLE_MAX else None
    items = data.items() if isinstance(data, Mapping) else enumerate(data) if isinstance(data, list) else ()
    for key, item in items:
        at = f"{path}[{key}]" if isinstance(key, int) else _join(path, str(key))
        if (found := _too_large(item, at)) is not None:
            return found
    return None


def decode(data: object, cls: type[M], *, where: str = "", lenient: bool = False) -> M:
    """The ``cls`` message a decoded JSON value describes.

    Members the message does not define are ignored at every depth (spec 5.7: forward
    compatibility). Everything else is strict: :class:`InvalidParamsError` naming the field path
    (``where`` prefixes it) and what the value must be, for a wrong type, an enum name or number
    out of range, bad base64, a non-object where an object belongs, two members of one oneof, or
    nesting past :data:`MAX_MESSAGE_DEPTH`. ``lenient`` reads what an upstream agent answers:
    an enum name this proto does not know becomes the enum's zero value instead of an error, so a
    newer agent's answer stays usable.
    """
    if not isinstance(data, Mapping):
        name = where or "the request"
        raise errors.InvalidParamsError(
            f"{name} must be a JSON object, not {json_kind(data)}",
            field_violations=[FieldViolation(where, f"must be a JSON object ({cls.DESCRIPTOR.full_name})")],
        )
    message = cls()
    descriptor = cast(Descriptor, cls.DESCRIPTOR)
    members = _known(data, descriptor)
    try:
        json_format.ParseDict(
            members,
            message,
            ignore_unknown_fields=lenient,
            descriptor_pool=_pool.POOL,
            max_recursion_depth=MAX_MESSAGE_DEPTH,
        )
    except OverflowError:  # a Struct number: an integer beyond a double's range
        path = _too_large(members, where) or where
        description = "holds a number beyond the range of a JSON number (a double)"
        raise errors.InvalidParamsError(
            f"invalid {path or cls.DESCRIPTOR.name}: {description}",
            field_violations=[FieldViolation(path, description)],
        ) from None
    except (json_format.ParseError, RecursionError) as exc:
        path, description, value = _locate(members, descriptor, where, lenient)
        if isinstance(exc, RecursionError) or "too deep" in str(exc):
            description, value = f"nests too deeply (more than {MAX_MESSAGE_DEPTH} levels)", _WHOLE
        text = description if value is _WHOLE else f"{description}, not {quote(value)}"
        raise errors.InvalidParamsError(
            f"invalid {path or cls.DESCRIPTOR.name}: {text}",
            field_violations=[FieldViolation(path, description)],
        ) from None
    if _needs_check(descriptor):
        _check_values(members, descriptor, where)
    return message


async def decode_body(data: object, cls: type[M], *, in_thread: bool) -> M:
    """:func:`decode`; in a worker thread when ``in_thread`` (a large body: json_format reads it in
    Python code, seconds for a few MiB of data parts, during which the thread lets the event loop
    serve others)."""
    if in_thread:
        return await asyncio.to_thread(decode, data, cls)
    return decode(data, cls)


def from_json(body: bytes | str, cls: type[M]) -> M:
    """``decode(loads(body), cls)``."""
    return decode(loads(body), cls)
