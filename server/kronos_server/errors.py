"""The one error vocabulary of Kronos Serve.

Every error the domain raises derives from :class:`KronosError` and names its
:class:`Cause`, one row of :data:`CAUSES`. Each transport derives its answer from that row
alone: the gRPC layer the status code and the ``google.rpc.Status`` details
(:mod:`kronos_server.rpc.status`), the REST layer the HTTP status and the ``error`` name of
its body (:mod:`kronos_bridge.errors`). A new cause is one row here and one subclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

#: ErrorInfo.domain of every error this server raises: the API's proto package
ERROR_DOMAIN = "kronos.v1"


@dataclass(frozen=True)
class Cause:
    """Why a call failed, and how each transport says it."""

    name: str  # REST body's "error" and the cause's key in CAUSES
    grpc_code: str  # grpc.StatusCode name
    http_status: int
    reason: str  # google.rpc.ErrorInfo.reason (UPPER_SNAKE, stable)
    outcome: str  # kronos_requests_total status label
    retryable: bool = False  # whether a RetryInfo (and Retry-After) goes with it


CAUSES: dict[str, Cause] = {
    c.name: c
    for c in (
        Cause("invalid_argument", "INVALID_ARGUMENT", 422, "INVALID_ARGUMENT", "invalid"),
        # a body that is not JSON at all (REST only; gRPC's undecodable message is invalid_argument)
        Cause("bad_request", "INVALID_ARGUMENT", 400, "MALFORMED_REQUEST", "invalid"),
        Cause("unauthenticated", "UNAUTHENTICATED", 401, "UNAUTHENTICATED", "unauthorized"),
        Cause("permission_denied", "PERMISSION_DENIED", 403, "PERMISSION_DENIED", "forbidden"),
        Cause("rate_limited", "RESOURCE_EXHAUSTED", 429, "RATE_LIMITED", "rate_limited", retryable=True),
        # a size limit: retrying the same request cannot succeed
        Cause("too_large", "RESOURCE_EXHAUSTED", 413, "TOO_LARGE", "too_large"),
        # the engine's admission limit: the server is busy, not the caller over its quota
        Cause("overloaded", "RESOURCE_EXHAUSTED", 503, "OVERLOADED", "overloaded", retryable=True),
        Cause("unavailable", "UNAVAILABLE", 503, "UNAVAILABLE", "unavailable", retryable=True),
        Cause("failed_precondition", "FAILED_PRECONDITION", 503, "FAILED_PRECONDITION", "unavailable"),
        Cause("deadline_exceeded", "DEADLINE_EXCEEDED", 504, "DEADLINE_EXCEEDED", "timeout"),
        Cause("cancelled", "CANCELLED", 499, "CANCELLED", "cancelled"),
        Cause("internal", "INTERNAL", 500, "INTERNAL", "error"),
    )
}
CAUSE_BY_REASON: dict[str, Cause] = {c.reason: c for c in CAUSES.values()}

#: the wait a retryable error suggests when it knows no better (seconds)
DEFAULT_RETRY_AFTER_S = 1.0


class KronosError(Exception):
    """Base class; ``cause`` says why (and so each transport's answer), ``field`` names the culprit."""

    cause: ClassVar[Cause] = CAUSES["internal"]
    code: ClassVar[str] = "INTERNAL"  # cause.grpc_code, kept for callers that switch on it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "cause" in cls.__dict__:
            cls.code = cls.cause.grpc_code

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)

    def __str__(self) -> str:
        return self.message

    @property
    def retry_after_s(self) -> float | None:
        """Seconds the caller should wait before retrying; None where retrying cannot help."""
        if not self.cause.retryable:
            return None
        value = self.details.get("retry_after")
        return float(value) if isinstance(value, int | float) else DEFAULT_RETRY_AFTER_S


class InvalidInputError(KronosError):
    """The client sent something we refuse: the message names the field."""

    cause = CAUSES["invalid_argument"]


class MalformedRequestError(InvalidInputError):
    """The request does not parse at all (REST: not JSON)."""

    cause = CAUSES["bad_request"]


class TooLargeError(KronosError):
    """A size limit (bytes, series per batch): the same request can never succeed."""

    cause = CAUSES["too_large"]


class OverloadedError(KronosError):
    """Admission limit reached: the request was not queued."""

    cause = CAUSES["overloaded"]


class UnauthenticatedError(KronosError):
    """Missing, malformed or wrong credentials; the message never echoes them."""

    cause = CAUSES["unauthenticated"]


class PermissionDeniedError(KronosError):
    """The caller is known but may not call this method."""

    cause = CAUSES["permission_denied"]


class RateLimitedError(KronosError):
    """The caller's rate limit is spent; ``retry_after`` seconds until it may retry."""

    cause = CAUSES["rate_limited"]

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        limit: int,
        remaining: int,
        reset: float,
        container: str | None = None,
    ):
        super().__init__(
            message,
            details={"limit": limit, "remaining": remaining, "reset": reset, "retry_after": retry_after},
        )
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining
        self.reset = reset
        self.container = container


class CancelledError(KronosError):
    """The request was cancelled before it finished."""

    cause = CAUSES["cancelled"]


class DeadlineExceededError(KronosError):
    """The request ran past its deadline; its rows were freed."""

    cause = CAUSES["deadline_exceeded"]


class UnavailableError(KronosError):
    """The engine is not running (starting up or draining)."""

    cause = CAUSES["unavailable"]


class CheckpointError(KronosError):
    """A model directory is missing, unreadable or does not match the architecture."""

    cause = CAUSES["failed_precondition"]


class InternalError(KronosError):
    """A real fault of ours; transports answer with a generic message."""

    cause = CAUSES["internal"]


#: the error class of each cause (a decoded remote error is raised as this class)
ERROR_CLASSES: dict[str, type[KronosError]] = {
    cls.cause.name: cls
    for cls in (
        InvalidInputError,
        MalformedRequestError,
        TooLargeError,
        OverloadedError,
        UnauthenticatedError,
        PermissionDeniedError,
        RateLimitedError,
        CancelledError,
        DeadlineExceededError,
        UnavailableError,
        CheckpointError,
        InternalError,
    )
}

# The cause of a bare gRPC code (an error from a server that sent no ErrorInfo, or from grpc
# itself): RESOURCE_EXHAUSTED alone is taken as overload, the one cause an item can have.
CAUSE_BY_CODE: dict[str, Cause] = {
    "INVALID_ARGUMENT": CAUSES["invalid_argument"],
    "OUT_OF_RANGE": CAUSES["invalid_argument"],
    "UNAUTHENTICATED": CAUSES["unauthenticated"],
    "PERMISSION_DENIED": CAUSES["permission_denied"],
    "RESOURCE_EXHAUSTED": CAUSES["overloaded"],
    "UNAVAILABLE": CAUSES["unavailable"],
    "FAILED_PRECONDITION": CAUSES["failed_precondition"],
    "DEADLINE_EXCEEDED": CAUSES["deadline_exceeded"],
    "CANCELLED": CAUSES["cancelled"],
}

# The HTTP status of every gRPC code name, for codes no cause of ours produces (an upstream's
# NOT_FOUND, UNIMPLEMENTED, ...).
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


def cause_of_code(code: str) -> Cause:
    """The cause a bare gRPC code name stands for (INTERNAL for anything unknown)."""
    return CAUSE_BY_CODE.get(code, CAUSES["internal"])


def http_status(code: str, cause: str | None = None) -> int:
    """The HTTP status of a cause name, else of a gRPC status code name."""
    if cause in CAUSES:
        return CAUSES[cause].http_status
    return HTTP_STATUS.get(code, 500)
