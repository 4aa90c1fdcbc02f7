"""The REST bridge: the versioned /v1 HTTP API, translated onto the gRPC service."""
