"""Reading and writing the members of v0.3 JSON objects, strictly, naming the member at fault.

The v0.3 JSON-RPC shapes (:mod:`a2a_grpc.v03.jsonrpc_shapes`, :mod:`a2a_grpc.v03.jsonrpc_methods`)
are read member by member from parsed JSON. Every refusal is one error (a request's
:class:`~a2a_grpc.errors.InvalidParamsError`, an answer's
:class:`~a2a_grpc.errors.InvalidAgentResponseError`) naming the member path (``message.parts[0].kind``)
and what its value must be, in the words of the v1.0 JSON codec. Members we do not know are
ignored (forward compatibility, as on v1.0). Free-form values (``metadata``, data parts) are read
with the v1.0 codec's nesting bound, :data:`MAX_MESSAGE_DEPTH`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc import errors
from a2a_grpc.errors import FieldViolation

__all__ = [
    "ANSWERS",
    "MAX_MESSAGE_DEPTH",
    "STRICT",
    "Reader",
    "at",
    "b64",
    "free_json",
    "index",
    "kind_of",
    "timestamp_json",
]

T = TypeVar("T")

MAX_MESSAGE_DEPTH = 64
"""Deepest message nesting a free-form value may reach: the v1.0 JSON codec's bound
(``a2a_grpc.bridge.transcoding.MAX_MESSAGE_DEPTH``; the core may not import the bridge, and a test
keeps the two equal)."""

INT32 = (-(2**31), 2**31 - 1)


def at(path: str, key: str) -> str:
    """The path of member ``key`` below ``path``."""
    return f"{path}.{key}" if path else key


def index(path: str, i: int) -> str:
    """The path of element ``i`` of the array at ``path``."""
    return f"{path}[{i}]"


def kind_of(value: object) -> str:
    """The JSON type of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def b64(data: bytes) -> str:
    """Bytes as the v0.3 JSON carries them: standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def free_json(message: Message) -> Any:
    """A ``Struct`` or ``Value`` as plain JSON."""
    return json_format.MessageToDict(message)


def timestamp_json(stamp: Message) -> str:
    """A ``Timestamp`` as an ISO-8601 (RFC 3339) string in UTC, ``Z``-suffixed."""
    return str(stamp.ToJsonString())  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Reader:
    """Reads members of parsed JSON; refuses with ``fault``.

    ``lenient`` reads answers: an enum string this version does not know becomes the enum's
    zero value instead of an error (as the v1.0 codec reads an upstream's answers).
    """

    fault: type[errors.A2AError] = errors.InvalidParamsError
    lenient: bool = False

    def refuse(
        self, path: str, description: str, value: object = None, *, show: bool = True
    ) -> errors.A2AError:
        where = path or "params"
        text = f"{description}, not {kind_of(value)}" if show else description
        if show and isinstance(value, str):
            text = f"{description}, not {errors.echo(value)}"
        return self.fault(f"invalid {where}: {text}", field_violations=[FieldViolation(path, description)])

    def obj(self, value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.refuse(path, "must be a JSON object", value)
        return value

    def missing(self, path: str) -> errors.A2AError:
        return self.fault(f"{path} is required", field_violations=[FieldViolation(path, "is required")])

    def string(self, o: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str:
        value = o.get(key)
        if value is None:
            if required:
                raise self.missing(at(path, key))
            return ""
        if not isinstance(value, str):
            raise self.refuse(at(path, key), "must be a string", value)
        return value

    def boolean(self, o: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> bool | None:
        value = o.get(key)
        if value is None:
            if required:
                raise self.missing(at(path, key))
            return None
        if not isinstance(value, bool):
            raise self.refuse(at(path, key), "must be a boolean", value)
        return value

    def int32(self, o: Mapping[str, Any], key: str, path: str) -> int | None:
        value = o.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.refuse(at(path, key), "must be an integer", value)
        if not INT32[0] <= value <= INT32[1]:
            raise self.refuse(at(path, key), "must be a 32-bit integer", value, show=False)
        return value

    def array(self, o: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
        value = o.get(key)
        if value is None:
            if required:
                raise self.missing(at(path, key))
            return []
        if not isinstance(value, list):
            raise self.refuse(at(path, key), "must be an array", value)
        return value

    def strings(self, o: Mapping[str, Any], key: str, path: str) -> list[str]:
        items = self.array(o, key, path)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.refuse(index(at(path, key), i), "must be a string", item)
        return items

    def choice(self, o: Mapping[str, Any], key: str, path: str, table: Mapping[str, T], default: T) -> T:
        """A required enum string; ``default`` for an unknown one when lenient."""
        value = self.string(o, key, path, required=True)
        if value in table:
            return table[value]
        if self.lenient:
            return default
        allowed = ", ".join(repr(k) for k in table)
        raise self.refuse(at(path, key), f"must be one of {allowed}", value)

    def kind(self, o: Mapping[str, Any], path: str, expected: str) -> None:
        """The ``kind`` discriminator, when present, must be ``expected`` (absent: the place says)."""
        value = o.get("kind")
        if value is not None and value != expected:
            raise self.refuse(at(path, "kind"), f"must be {expected!r}", value)

    def free(self, value: object, path: str, target: Message) -> None:
        """A JSON value into a ``Struct`` (``value`` must be an object) or ``Value`` ``target``."""
        if target.DESCRIPTOR.full_name == "google.protobuf.Struct":
            self.obj(value, path)
        try:
            json_format.ParseDict(cast(Any, value), target, max_recursion_depth=MAX_MESSAGE_DEPTH)
        except OverflowError:
            raise self.refuse(
                path, "holds a number beyond the range of a JSON number (a double)", show=False
            ) from None
        except (json_format.ParseError, RecursionError) as exc:
            if isinstance(exc, RecursionError) or "too deep" in str(exc):
                description = f"nests too deeply (more than {MAX_MESSAGE_DEPTH} levels)"
            else:
                description = "must be a JSON value"
            raise self.refuse(path, description, show=False) from None

    def struct(self, o: Mapping[str, Any], key: str, path: str, target: Message) -> None:
        """Member ``key`` (an object), when present and not null, into the ``Struct`` ``target``."""
        value = o.get(key)
        if value is not None:
            self.free(value, at(path, key), target)

    def bytes(self, o: Mapping[str, Any], key: str, path: str) -> bytes:
        """A required base64 member (standard or URL-safe alphabet; padding optional)."""
        text = self.string(o, key, path, required=True)
        try:
            normal = text.replace("-", "+").replace("_", "/")
            return base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise self.refuse(at(path, key), "must be base64", show=False) from None

    def timestamp(self, o: Mapping[str, Any], key: str, path: str, target: Message) -> None:
        """An ISO-8601 string into the ``Timestamp`` ``target``; an instant without offset is UTC."""
        text = self.string(o, key, path)
        if not text:
            return
        try:
            target.FromJsonString(text)  # type: ignore[attr-defined]  # RFC 3339, nanoseconds kept
            return
        except ValueError:
            pass
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise self.refuse(at(path, key), "must be an ISO-8601 date and time", text) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        target.FromDatetime(moment)  # type: ignore[attr-defined]


STRICT = Reader()
"""Reads requests: refuses with InvalidParamsError."""
ANSWERS = Reader(errors.InvalidAgentResponseError, lenient=True)
"""Reads a v0.3 agent's answers: refuses with InvalidAgentResponseError."""
