"""The A2A v1.0 messages and enums (package ``lf.a2a.v1``), as protobuf classes.

These are the wire types every binding speaks. They live in a2a-grpc's private
descriptor pool, so they coexist with the official SDK's ``a2a.types`` in one
process; ``a2a_grpc.interop`` converts between the two.
"""

from google.protobuf import struct_pb2, timestamp_pb2

from a2a_grpc import _pool
from a2a_grpc._gen.lf.a2a.v1 import a2a_pb2 as _pb
from a2a_grpc._gen.lf.a2a.v1.a2a_pb2 import *  # noqa: F403

DESCRIPTOR = _pb.DESCRIPTOR
A2A_SERVICE = _pb.DESCRIPTOR.services_by_name["A2AService"]
"""The ``lf.a2a.v1.A2AService`` service descriptor: methods, streaming flags, HTTP rules."""

# The well-known types as our messages take them (the standard struct_pb2 / timestamp_pb2 classes
# belong to protobuf's default pool and are refused by our fields; a2a_grpc.parts converts them).
# Typed as the standard classes: same fields, same helpers.
Value: type[struct_pb2.Value] = _pool.message_class_by_name("google.protobuf.Value")  # type: ignore[assignment]
Struct: type[struct_pb2.Struct] = _pool.message_class_by_name("google.protobuf.Struct")  # type: ignore[assignment]
ListValue: type[struct_pb2.ListValue] = _pool.message_class_by_name("google.protobuf.ListValue")  # type: ignore[assignment]
Timestamp: type[timestamp_pb2.Timestamp] = _pool.message_class_by_name("google.protobuf.Timestamp")  # type: ignore[assignment]

# The generated module lists its names in __all__ (absent from the .pyi stub).
__all__: list[str] = [*vars(_pb)["__all__"], "A2A_SERVICE", "ListValue", "Struct", "Timestamp", "Value"]
