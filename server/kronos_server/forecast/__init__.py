"""The transport-neutral forecast domain: request types, validation, pre/post-processing."""
