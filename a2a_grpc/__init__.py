"""a2a-grpc: a gRPC-native transport for the A2A protocol v1.0."""
