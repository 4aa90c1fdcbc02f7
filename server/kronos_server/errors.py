"""The one error taxonomy of Kronos Serve.

Every error the domain raises derives from :class:`KronosError` and carries a stable
``code`` (the name of a gRPC status code). Transports map it once: the gRPC layer uses
the code directly, the REST bridge through :data:`HTTP_STATUS`.
"""

from __future__ import annotations

from typing import Any


class KronosError(Exception):
    """Base class; ``code`` is a gRPC status code name, ``field`` names the culprit."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)

    def __str__(self) -> str:
        return self.message


class InvalidInputError(KronosError):
    """The client sent something we refuse: the message names the field."""

    code = "INVALID_ARGUMENT"


class OverloadedError(KronosError):
    """Admission limit reached: the request was not queued."""

    code = "RESOURCE_EXHAUSTED"


class UnauthenticatedError(KronosError):
    """Missing, malformed or wrong credentials; the message never echoes them."""

    code = "UNAUTHENTICATED"


class PermissionDeniedError(KronosError):
    """The caller is known but may not call this method."""

    code = "PERMISSION_DENIED"


class RateLimitedError(KronosError):
    """The caller's rate limit is spent; ``retry_after`` seconds until it may retry."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float, limit: int, remaining: int, reset: float):
        super().__init__(
            message,
            details={"limit": limit, "remaining": remaining, "reset": reset, "retry_after": retry_after},
        )
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset = reset


class CancelledError(KronosError):
    """The request was cancelled before it finished."""

    code = "CANCELLED"


class DeadlineExceededError(KronosError):
    """The request ran past its deadline; its rows were freed."""

    code = "DEADLINE_EXCEEDED"


class UnavailableError(KronosError):
    """The engine is not running (starting up or draining)."""

    code = "UNAVAILABLE"


class CheckpointError(KronosError):
    """A model directory is missing, unreadable or does not match the architecture."""

    code = "FAILED_PRECONDITION"


class InternalError(KronosError):
    """A real fault of ours; transports answer with a generic message."""

    code = "INTERNAL"


# The single mapping from status code name to HTTP status, used by the REST bridge.
HTTP_STATUS: dict[str, int] = {
    "OK": 200,
    "INVALID_ARGUMENT": 422,
    "OUT_OF_RANGE": 422,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 503,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
}

# RESOURCE_EXHAUSTED has three causes that need different HTTP answers; the code alone
# cannot tell them apart (the bridge reads the cause from the trailers)
RESOURCE_EXHAUSTED_HTTP: dict[str, int] = {
    "rate_limited": 429,  # the caller's rate limit: Retry-After and X-RateLimit-*
    "too_large": 413,  # a size limit: retrying the same request cannot succeed
    "overloaded": 503,  # the engine's admission limit: the server is busy, Retry-After
}


def http_status(code: str, cause: str | None = None) -> int:
    """The HTTP status of a gRPC status code name (and, for RESOURCE_EXHAUSTED, its cause)."""
    if code == "RESOURCE_EXHAUSTED" and cause in RESOURCE_EXHAUSTED_HTTP:
        return RESOURCE_EXHAUSTED_HTTP[cause]
    return HTTP_STATUS.get(code, 500)
