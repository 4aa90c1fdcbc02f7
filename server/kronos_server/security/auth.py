"""Who is calling: a container proven by its API key, its client certificate or the network.

Transport-neutral: the gRPC interceptor passes in the ``x-container-name`` and
``authorization`` metadata values (or the client certificate's name) and maps the
errors raised here to status codes. Messages are generic and never echo credentials.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from kronos_server.errors import PermissionDeniedError, UnauthenticatedError
from kronos_server.security.keys import ContainerEntry, KeyStore, hash_key, is_container_name
from kronos_server.security.ratelimit import RateSpec

AuthMode = Literal["key", "trusted", "mtls"]
# longer than any key we issue, short enough that hashing a hostile header costs nothing
MAX_KEY_LENGTH = 512
BEARER_HINT = "expected metadata 'x-container-name: <name>' and 'authorization: Bearer <key>'"


@dataclass(frozen=True)
class Identity:
    """An authenticated caller; ``rate_limit`` None means the server's default."""

    container: str
    mode: AuthMode
    rate_limit: RateSpec | None = None


def bearer_token(authorization: str | None) -> str | None:
    """The key of an ``authorization: Bearer <key>`` value; None if absent or malformed."""
    if authorization is None:
        return None
    parts = authorization.strip().split()
    if len(parts) != 2 or parts[0].lower() != "bearer" or len(parts[1]) > MAX_KEY_LENGTH:
        return None
    return parts[1]


class Authenticator:
    """Checks credentials against the keys file and the trusted-container allow-list.

    * A container in the keys file must present its key (constant-time comparison).
    * A container only in the allow-list is accepted by name alone (trusted network),
      with every method and the default rate limit.
    * Anyone else is refused. Unknown containers cost the same hash and comparison as
      known ones, so timing does not reveal which containers exist.
    """

    def __init__(self, keys: KeyStore | None, trusted_containers: frozenset[str] = frozenset()) -> None:
        self.keys = keys
        self.trusted_containers = frozenset(trusted_containers)
        # compared against when the container is unknown; matches no key
        self._dummy_digest = secrets.token_hex(32)

    def _entry(self, container: str) -> ContainerEntry | None:
        return self.keys.get(container) if self.keys is not None else None

    def authenticate(self, container: str | None, authorization: str | None, method: str) -> Identity:
        """Identify the caller of RPC ``method`` (short name, e.g. ``PredictSingle``)."""
        name = container.strip() if container is not None else ""
        entry = self._entry(name) if is_container_name(name) else None
        if entry is None and name in self.trusted_containers:
            return Identity(name, "trusted", None)
        if authorization is None or not authorization.strip():
            raise UnauthenticatedError(f"missing credentials: {BEARER_HINT}")
        key = bearer_token(authorization)
        if key is None:
            raise UnauthenticatedError(f"malformed authorization metadata: {BEARER_HINT}")
        expected = entry.key_sha256 if entry is not None else self._dummy_digest
        matches = hmac.compare_digest(hash_key(key), expected)
        if entry is None or not matches:
            raise UnauthenticatedError("invalid container name or API key")
        if not entry.allows(method):
            raise PermissionDeniedError(f"container {name!r} may not call {method}")
        return Identity(name, "key", entry.rate_limit)

    def authenticate_mtls(self, common_name: str, method: str) -> Identity:
        """Identify a caller by its verified client certificate's name; no key needed.

        The certificate already proves who the caller is, so a name that is neither in
        the keys file nor in the allow-list is PERMISSION_DENIED, not UNAUTHENTICATED.
        """
        name = common_name.strip()
        entry = self._entry(name) if is_container_name(name) else None
        if entry is not None:
            if not entry.allows(method):
                raise PermissionDeniedError(f"container {name!r} may not call {method}")
            return Identity(name, "mtls", entry.rate_limit)
        if name in self.trusted_containers:
            return Identity(name, "mtls", None)
        raise PermissionDeniedError("client certificate names no known container")
