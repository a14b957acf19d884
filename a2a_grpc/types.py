"""The A2A v1.0 messages and enums (package ``lf.a2a.v1``), as protobuf classes.

These are the wire types every binding speaks. They live in a2a-grpc's private
descriptor pool, so they coexist with the official SDK's ``a2a.types`` in one
process; ``a2a_grpc.interop`` converts between the two.
"""

from a2a_grpc._gen.lf.a2a.v1 import a2a_pb2 as _pb
from a2a_grpc._gen.lf.a2a.v1.a2a_pb2 import *  # noqa: F403

DESCRIPTOR = _pb.DESCRIPTOR
A2A_SERVICE = _pb.DESCRIPTOR.services_by_name["A2AService"]
"""The ``lf.a2a.v1.A2AService`` service descriptor: methods, streaming flags, HTTP rules."""

# The generated module lists its names in __all__ (absent from the .pyi stub).
__all__: list[str] = [*vars(_pb)["__all__"], "A2A_SERVICE"]
