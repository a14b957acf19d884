"""URL query parameters of the HTTP+JSON routes that have no body (spec section 11.5).

:func:`query_to_json` reads them as the JSON members of the request: camelCase names (snake_case
also read), booleans ``true`` / ``false``, numbers in decimal, enums by name
(``TASK_STATE_WORKING``, or ``working`` for short), repeated fields by repetition or commas, no
nested messages except the well-known scalar-like ones (``Timestamp``, ``Duration``, wrappers) in
their JSON string form. A parameter that names no field is ignored, like an unknown JSON member
(section 5.7). :func:`encode_query` writes ProtoJSON members as a query (the reverse bridge).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor

from a2a_grpc import errors
from a2a_grpc.errors import FieldViolation

__all__ = ["encode_query", "query_to_json"]

_SCALAR_WKT = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.StringValue",
        "google.protobuf.BoolValue",
        "google.protobuf.Int32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
    }
)


def encode_query(members: Mapping[str, Any]) -> str:
    """``key=value`` pairs of ProtoJSON ``members``, percent-encoded; a list is one pair per element."""
    pairs: list[str] = []
    for key, value in members.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            pairs.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(pairs)


def _enum_value(field: FieldDescriptor, text: str, name: str) -> str:
    enum = field.enum_type
    assert enum is not None
    if text in enum.values_by_name:
        return text
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    long = prefix + text.upper()
    if long in enum.values_by_name:
        return long
    if text.lstrip("-").isdigit():
        return text
    names = ", ".join(v.name for v in enum.values if v.number != 0)
    expected = f"must be a {enum.name} name ({names}), short name or number"
    raise errors.InvalidParamsError(
        f"invalid {name}: {expected}, not {errors.echo(text)}",
        field_violations=[FieldViolation(name, expected)],
    )


def _scalar(field: FieldDescriptor, text: str, name: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text in ("true", "false"):
            return text == "true"
        raise errors.InvalidParamsError(
            f"invalid {name}: must be true or false, not {errors.echo(text)}",
            field_violations=[FieldViolation(name, "must be true or false")],
        )
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_value(field, text, name)
    if field.message_type is not None and field.message_type.full_name not in _SCALAR_WKT:
        raise errors.InvalidParamsError(
            f"{name} is a message: send it in a request body, not a query parameter",
            field_violations=[FieldViolation(name, "nested messages cannot be query parameters")],
        )
    return text  # ProtoJSON reads numbers, int64 and well-known types from strings


def query_to_json(method: MethodDescriptor, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The JSON members that the URL query parameters of a request stand for (section 11.5).

    A parameter that names no field of the request is ignored, as unknown JSON members are
    (spec 5.7); a known one with a value that does not fit is refused, naming it.
    """
    fields = method.input_type.fields_by_name
    by_json = {f.json_name: f for f in method.input_type.fields}
    out: dict[str, Any] = {}
    for key, text in query:
        field = by_json.get(key) or fields.get(key)
        if field is None:
            continue
        if field.is_repeated:
            items = out.setdefault(field.json_name, [])
            items.extend(_scalar(field, t, key) for t in text.split(",") if t)
        elif field.json_name in out:
            raise errors.InvalidParamsError(
                f"query parameter {errors.echo(key)} given twice",
                field_violations=[FieldViolation(key, "given more than once")],
            )
        else:
            out[field.json_name] = _scalar(field, text, key)
    return out
