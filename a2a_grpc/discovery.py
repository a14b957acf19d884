"""``a2a_grpc.discovery.v1``: an agent's public card over gRPC (ours; not part of A2A).

A2A publishes the public card over HTTP (``/.well-known/agent-card.json``); an agent served only
over gRPC has nowhere to put it. Every a2a-grpc gRPC server therefore also serves
``a2a_grpc.discovery.v1.AgentCardService/GetAgentCard`` (see ``protos/a2a_grpc/discovery/v1``),
which ``A2AClient.get_agent_card``, ``a2a-grpc card HOST:PORT`` and the bridge use.
"""

from __future__ import annotations

from a2a_grpc._gen.a2a_grpc.discovery.v1 import discovery_pb2 as _pb
from a2a_grpc._gen.a2a_grpc.discovery.v1.discovery_pb2 import GetAgentCardRequest, GetAgentCardResponse

__all__ = ["CARD_SERVICE", "GET_AGENT_CARD", "GetAgentCardRequest", "GetAgentCardResponse"]

CARD_SERVICE = _pb.DESCRIPTOR.services_by_name["AgentCardService"]
"""The ``a2a_grpc.discovery.v1.AgentCardService`` descriptor."""
GET_AGENT_CARD = f"/{CARD_SERVICE.full_name}/GetAgentCard"
"""The method path a client calls."""
