"""The JSON-over-HTTP bridge of a2a-grpc, both directions.

* HTTP in front of gRPC: :mod:`a2a_grpc.bridge.app` serves the JSON-RPC (spec section 9) and HTTP+JSON
  (section 11) bindings over any :class:`a2a_grpc.bridge.upstream.Upstream`: the request handler in the
  same process, or a gRPC agent elsewhere.
* gRPC in front of JSON: :mod:`a2a_grpc.bridge.grpcfront` serves ``lf.a2a.v1.A2AService`` over an agent
  that speaks JSON-RPC or HTTP+JSON (:mod:`a2a_grpc.bridge.outbound`).

Everything is derived from the proto: JSON-RPC method names from the service descriptor, REST
routes from its ``google.api.http`` rules (:mod:`a2a_grpc.bridge.routes`), JSON from one ProtoJSON
transcoder (:mod:`a2a_grpc.bridge.transcoding`), errors from the one table in :mod:`a2a_grpc.errors`, each
binding with its own error codec (:mod:`a2a_grpc.bridge.jsonrpc`, :mod:`a2a_grpc.bridge.rest`).
"""
