"""The gRPC transport: protobuf <-> domain conversion, servicer, interceptors, server."""
