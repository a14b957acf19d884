"""The session binding: many A2A calls between two agents over one bidirectional gRPC stream
(``a2a_grpc.session.v1``, docs/session-binding.md)."""
