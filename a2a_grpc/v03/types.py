"""The A2A v0.3 messages and enums (package ``a2a.v1``), as protobuf classes.

The legacy wire of the gRPC binding (and, as ProtoJSON, of the v0.3 HTTP+JSON binding), compiled
from ``protos/a2a/v1/a2a.proto`` into a2a-grpc's private descriptor pool beside ``lf.a2a.v1``. The
official SDK registers its own copy of ``a2a.v1`` in protobuf's default pool (file
``a2a_v0_3.proto``); ours does not clash with it. Names are the proto's: ``TaskStatus.update``,
``Message.content``, ``TASK_STATE_CANCELLED``. :mod:`a2a_grpc.v03.convert` maps them to
:mod:`a2a_grpc.types`.
"""

from a2a_grpc._gen.a2a.v1 import a2a_pb2 as _pb
from a2a_grpc._gen.a2a.v1.a2a_pb2 import *  # noqa: F403

DESCRIPTOR = _pb.DESCRIPTOR
A2A_SERVICE = _pb.DESCRIPTOR.services_by_name["A2AService"]
"""The ``a2a.v1.A2AService`` service descriptor (v0.3): methods, streaming flags, HTTP rules."""

# The generated module lists its names in __all__ (absent from the .pyi stub).
__all__: list[str] = [*vars(_pb)["__all__"], "A2A_SERVICE"]
