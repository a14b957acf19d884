"""The private descriptor pool every a2a-grpc message class lives in.

The official SDK registers the same ``lf.a2a.v1`` symbols in protobuf's
*default* pool from a differently serialized file. Two registrations of one
symbol in one pool fail ("Couldn't build proto file into descriptor pool"),
so our generated modules (``a2a_grpc/_gen``) build into this pool instead.
Both libraries then import into one process in either order, and a message
crosses between them as its wire bytes (see ``a2a_grpc.interop``).

Well-known types and ``google.api`` annotations are copied into this pool
from the modules that already define them, so their helpers (``Struct.update``,
``Timestamp.FromDatetime``) and options (``google.api.http``) work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FileDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

POOL = descriptor_pool.DescriptorPool()


def _has_file(name: str) -> bool:
    try:
        POOL.FindFileByName(name)
    except KeyError:
        return False
    return True


def _copy_in(dep: FileDescriptor) -> None:
    """Copy a file of another pool, and what it imports, into ours."""
    if dep.pool is POOL or _has_file(dep.name):
        return
    for sub in dep.dependencies:
        _copy_in(sub)
    POOL.AddSerializedFile(dep.serialized_pb)


def include(file: FileDescriptor) -> None:
    """Make a file of the default pool (e.g. grpc.health.v1) visible in ours, for server reflection."""
    _copy_in(file)


def add_file(serialized: bytes, dependencies: Iterable[FileDescriptor]) -> FileDescriptor:
    """Register one generated file, after the files it imports."""
    for dep in dependencies:
        _copy_in(dep)
    return POOL.AddSerializedFile(serialized)


def message_class(file: FileDescriptor, name: str) -> type[Message]:
    return message_factory.GetMessageClass(file.message_types_by_name[name])


def message_class_by_name(full_name: str) -> type[Message]:
    """The class of a message of our pool by full name (``google.protobuf.Value``)."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def enum_type(file: FileDescriptor, name: str) -> EnumTypeWrapper:
    return EnumTypeWrapper(file.enum_types_by_name[name])


def find_message(full_name: str) -> Descriptor:
    """The descriptor of a message of ours, by full name (``lf.a2a.v1.Task``)."""
    return POOL.FindMessageTypeByName(full_name)


def find_enum(full_name: str) -> EnumDescriptor:
    return POOL.FindEnumTypeByName(full_name)
