"""gRPC status -> HTTP response, and the one error body: {error, message, details, request_id}.

The code -> HTTP status table is :data:`kronos_server.errors.HTTP_STATUS`; this module
only adds what the code alone cannot say. RESOURCE_EXHAUSTED has three causes, told apart
by the trailers the gRPC service sets:

* rate limit (``retry-after`` and ``x-ratelimit-*``) -> 429 with Retry-After and
  X-RateLimit-Limit / -Remaining / -Reset;
* engine overload (``retry-after`` only) -> 503 with Retry-After: the server is busy,
  not the caller over its quota;
* size (neither) -> 413.

UNAVAILABLE -> 503 with Retry-After. INVALID_ARGUMENT -> 422 naming the field in REST
terms (the ``kronos-error-field`` trailer, translated). INTERNAL -> 500, generic message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from starlette.responses import JSONResponse

from kronos_bridge.translate import relabel_message, rest_field
from kronos_server.errors import InvalidInputError, http_status
from kronos_server.observability.metrics import STATUS_BY_CODE

GENERIC_INTERNAL = "internal error; the server logged the details"
DEFAULT_RETRY_AFTER_S = "1"
ERROR_FIELD_TRAILER = "kronos-error-field"
RATE_LIMIT_TRAILERS = ("limit", "remaining", "reset")


@dataclass
class HttpError(Exception):
    """An HTTP error answer; ``outcome`` is its kronos_requests_total status label."""

    status: int
    error: str
    message: str
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.message}"


def error_body(error: str, message: str, details: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {"error": error, "message": message, "details": details, "request_id": request_id}


def error_response(exc: HttpError, request_id: str) -> JSONResponse:
    return JSONResponse(
        error_body(exc.error, exc.message, exc.details, request_id), exc.status, headers=exc.headers
    )


def bad_request(message: str) -> HttpError:
    """Malformed JSON (or a body that is not text at all)."""
    return HttpError(400, "bad_request", message, "invalid")


def too_large(message: str, details: dict[str, Any]) -> HttpError:
    return HttpError(413, "too_large", message, "too_large", details)


def invalid(exc: InvalidInputError) -> HttpError:
    """The bridge's own parse errors: already in REST vocabulary."""
    details = dict(exc.details)
    return HttpError(422, "invalid_argument", exc.message, "invalid", details)


def _cause(code: str, trailers: dict[str, str]) -> str | None:
    if code != "RESOURCE_EXHAUSTED":
        return None
    if "x-ratelimit-limit" in trailers:
        return "rate_limited"
    return "overloaded" if "retry-after" in trailers else "too_large"


def _number(text: str | None) -> int | float | str | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def describe(
    code: str, message: str, field_path: str, trailers: dict[str, str], cause: str | None = None
) -> HttpError:
    """A gRPC outcome (code name, message, error field, trailers) as an HTTP error."""
    cause = cause or _cause(code, trailers)
    status = http_status(code, cause)
    error = cause or code.lower()
    outcome = cause or STATUS_BY_CODE.get(code, "error")
    details: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if field_path:
        rest = rest_field(field_path)
        details["field"] = rest
        message = relabel_message(message, rest)
    if status >= 500 and status not in (503, 504):
        message = GENERIC_INTERNAL  # never leak internals, whatever the upstream said
    if status == 429 or status == 503:
        headers["Retry-After"] = trailers.get("retry-after", DEFAULT_RETRY_AFTER_S)
        details["retry_after"] = _number(headers["Retry-After"])
    if cause == "rate_limited":
        for name in RATE_LIMIT_TRAILERS:
            value = trailers.get(f"x-ratelimit-{name}")
            if value is not None:
                headers[f"X-RateLimit-{name.capitalize()}"] = value
                details[name] = _number(value)
    return HttpError(status, error, message, outcome, details, headers)


def from_rpc_error(err: grpc.aio.AioRpcError) -> HttpError:
    trailers: dict[str, str] = {}
    for key, value in err.trailing_metadata() or ():
        if isinstance(value, str):
            trailers[key.lower()] = value
    code = err.code().name if err.code() is not None else "UNKNOWN"
    return describe(code, err.details() or "", trailers.get(ERROR_FIELD_TRAILER, ""), trailers)


def item_error(
    code: str, message: str, field_path: str, series_id: str | None, request_id: str
) -> dict[str, Any]:
    """A failed batch item (from the service's ItemError) for its slot of the response."""
    # rate and size limits apply to the whole call: an item can only be refused by the engine
    cause = "overloaded" if code == "RESOURCE_EXHAUSTED" else None
    exc = describe(code, message, field_path, {}, cause)
    return item_error_body(exc, series_id, request_id)


def item_error_body(exc: HttpError, series_id: str | None, request_id: str) -> dict[str, Any]:
    body = error_body(exc.error, exc.message, exc.details, request_id)
    return {**body, "series_id": series_id, "status": exc.status}
