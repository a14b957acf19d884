"""Conversion between a2a-grpc messages and the official SDK's (``a2a.types``).

Both libraries define the same ``lf.a2a.v1`` messages, wire-identical, in two
descriptor pools (see ``a2a_grpc._pool``). A message crosses from one to the
other as its wire bytes: one serialize and one parse, both in protobuf's C
core, with no field-by-field Python code. Unknown fields, if a newer peer sent
any, survive the trip.

The SDK is never imported here: ``to_sdk`` finds the SDK's class in protobuf's
default pool, where ``import a2a.types`` put it.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from a2a_grpc import _pool

__all__ = ["from_sdk", "sdk_class", "to_sdk"]

M = TypeVar("M", bound=Message)

_ours: dict[str, type[Message]] = {}
_theirs: dict[str, type[Message]] = {}


def _our_class(full_name: str) -> type[Message]:
    cls = _ours.get(full_name)
    if cls is None:
        try:
            descriptor = _pool.find_message(full_name)
        except KeyError:
            raise TypeError(f"{full_name} is not an A2A message") from None
        cls = _ours[full_name] = message_factory.GetMessageClass(descriptor)
    return cls


def sdk_class(full_name: str) -> type[Message]:
    """The official SDK's class for an A2A message, by full name."""
    cls = _theirs.get(full_name)
    if cls is None:
        try:
            descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
        except KeyError:
            raise LookupError(
                f"{full_name} is not registered in protobuf's default pool: import a2a.types "
                "(the official a2a-sdk) before converting to its classes"
            ) from None
        cls = _theirs[full_name] = message_factory.GetMessageClass(descriptor)
    return cls


def from_sdk(message: Message) -> Message:
    """An SDK message (``a2a.types.Task``, ...) as the equal a2a-grpc message."""
    if message.DESCRIPTOR.file.pool is _pool.POOL:
        return message
    return _our_class(message.DESCRIPTOR.full_name).FromString(message.SerializeToString())


def to_sdk(message: Message) -> Message:
    """An a2a-grpc message as the equal SDK message (``a2a.types.Task``, ...)."""
    if message.DESCRIPTOR.file.pool is not _pool.POOL:
        return message
    return sdk_class(message.DESCRIPTOR.full_name).FromString(message.SerializeToString())
