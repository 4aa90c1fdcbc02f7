"""The one error vocabulary of Kronos Serve.

Every error the domain raises derives from :class:`KronosError` and names its
:class:`Cause`, one row of :data:`CAUSES`. Each transport derives its answer from that row
alone: the gRPC layer the status code and the ``google.rpc.Status`` details
(:mod:`kronos_server.rpc.status`), the REST layer the HTTP status and the ``error`` name of
its body (:mod:`kronos_bridge.errors`). A new cause is one row here and one subclass.
"""

from __future__ import annotations

import math
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
        # codes no error of ours carries, but an upstream (or grpc itself) may answer
        Cause("out_of_range", "OUT_OF_RANGE", 422, "OUT_OF_RANGE", "invalid"),
        Cause("not_found", "NOT_FOUND", 404, "NOT_FOUND", "error"),
        Cause("already_exists", "ALREADY_EXISTS", 409, "ALREADY_EXISTS", "error"),
        Cause("aborted", "ABORTED", 409, "ABORTED", "error"),
        Cause("unimplemented", "UNIMPLEMENTED", 501, "UNIMPLEMENTED", "error"),
        Cause("unknown", "UNKNOWN", 500, "UNKNOWN", "error"),
        Cause("data_loss", "DATA_LOSS", 500, "DATA_LOSS", "error"),
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
# itself): each code's first cause in CAUSES. RESOURCE_EXHAUSTED alone is taken as overload,
# the one cause a batch item can have.
CAUSE_BY_CODE: dict[str, Cause] = {}
for _cause in CAUSES.values():
    CAUSE_BY_CODE.setdefault(_cause.grpc_code, _cause)
CAUSE_BY_CODE["RESOURCE_EXHAUSTED"] = CAUSES["overloaded"]

#: the HTTP status of every gRPC status code name (the status of its cause)
HTTP_STATUS: dict[str, int] = {"OK": 200, **{code: c.http_status for code, c in CAUSE_BY_CODE.items()}}


def cause_of_code(code: str) -> Cause:
    """The cause a bare gRPC code name stands for (UNKNOWN's for a name grpc does not have)."""
    return CAUSE_BY_CODE.get(code, CAUSES["unknown"])


def error_class(cause: Cause) -> type[KronosError]:
    """The error class of ``cause`` (one is made for a cause no error of ours carries)."""
    cls = ERROR_CLASSES.get(cause.name)
    if cls is None:
        name = "".join(part.capitalize() for part in cause.name.split("_")) + "Error"
        cls = ERROR_CLASSES[cause.name] = type(name, (KronosError,), {"cause": cause})
    return cls


def whole_seconds(seconds: float) -> int:
    """A wait as the whole seconds of a Retry-After header (at least 1: 0 would invite a storm)."""
    return max(1, math.ceil(seconds))
