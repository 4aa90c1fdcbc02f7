"""Security building blocks of the service, free of any transport: API keys, the
authenticator, the development key and per-container rate limits."""

from kronos_server.security.auth import Authenticator, AuthMode, Identity, bearer_token
from kronos_server.security.devkey import DevKey, ensure_dev_key
from kronos_server.security.keys import (
    DEFAULT_KEYS_FILE,
    RPC_METHODS,
    ContainerEntry,
    KeysFileError,
    KeyStore,
    add_key,
    generate_key,
    hash_key,
    load_keys,
    validate_container_name,
)
from kronos_server.security.ratelimit import Decision, RateLimiter, RateSpec, TokenBucket

__all__ = [
    "DEFAULT_KEYS_FILE",
    "RPC_METHODS",
    "AuthMode",
    "Authenticator",
    "ContainerEntry",
    "Decision",
    "DevKey",
    "Identity",
    "KeyStore",
    "KeysFileError",
    "RateLimiter",
    "RateSpec",
    "TokenBucket",
    "add_key",
    "bearer_token",
    "ensure_dev_key",
    "generate_key",
    "hash_key",
    "load_keys",
    "validate_container_name",
]
