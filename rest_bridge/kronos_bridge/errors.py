"""A :class:`KronosError` as an HTTP response, and the one error body: {error, message, details, request_id}.

Everything comes from the error's cause (:data:`kronos_server.errors.CAUSES`): the HTTP
status, the ``error`` name, the outcome label. On top of it: the field in REST terms (and
the message naming it so), Retry-After on 429 and 503 (``details.retry_after`` too), the
X-RateLimit-Limit / -Remaining / -Reset headers of a rate limit, and a generic message for
a real fault (500), whatever the error said. An error of a remote gRPC server is first
decoded from its standard details (:func:`kronos_server.rpc.status.error_from_rpc`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import grpc
from starlette.responses import JSONResponse

from kronos_server.errors import (
    DEFAULT_RETRY_AFTER_S,
    KronosError,
    MalformedRequestError,
    RateLimitedError,
    TooLargeError,
    cause_of_code,
    error_class,
    whole_seconds,
)
from kronos_server.forecast.fields import domain_path, relabel_message, rest_path
from kronos_server.rpc.status import GENERIC_INTERNAL as GENERIC_INTERNAL
from kronos_server.rpc.status import error_from_rpc


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


def http_error(error: KronosError) -> HttpError:
    """The HTTP answer to ``error``: status, body and headers, all from its cause."""
    cause = error.cause
    status = cause.http_status
    message = error.message
    details: dict[str, Any] = {k: v for k, v in error.details.items() if k != "field"}
    headers: dict[str, str] = {}
    field_name = error.field or error.details.get("field")
    if isinstance(field_name, str) and field_name:
        rest = rest_path(field_name)
        details = {"field": rest, **details}
        message = relabel_message(message, rest)
    if status >= 500 and status not in (503, 504):
        message, details = GENERIC_INTERNAL, {}  # never leak internals
    if status in (429, 503):
        wait = whole_seconds(error.retry_after_s or DEFAULT_RETRY_AFTER_S)
        headers["Retry-After"] = str(wait)
        details["retry_after"] = wait
    if isinstance(error, RateLimitedError):
        figures = {"limit": error.limit, "remaining": error.remaining, "reset": math.ceil(error.reset)}
        for name, value in figures.items():
            headers[f"X-RateLimit-{name.capitalize()}"] = str(value)
            details[name] = value
    return HttpError(status, cause.name, message, cause.outcome, details, headers)


def bad_request(message: str) -> HttpError:
    """Malformed JSON (or a body that is not text at all)."""
    return http_error(MalformedRequestError(message))


def too_large(message: str, details: dict[str, Any]) -> HttpError:
    figures = {k: v for k, v in details.items() if k != "field"}
    return http_error(TooLargeError(message, field=details.get("field"), details=figures))


def invalid(exc: KronosError) -> HttpError:
    """The bridge's own parse errors: already in REST vocabulary."""
    return http_error(exc)


def from_rpc_error(err: grpc.RpcError) -> HttpError:
    """A remote gRPC server's error (decoded from its standard details) as the HTTP answer."""
    return http_error(error_from_rpc(err))


def item_error(
    code: str | int, message: str, field_path: str, series_id: str | None, request_id: str
) -> dict[str, Any]:
    """A failed batch item (from the service's ItemError) for its slot of the response.

    Rate and size limits apply to the whole call: an item's RESOURCE_EXHAUSTED is overload.
    """
    name = code if isinstance(code, str) else _code_name(code)
    error = error_class(cause_of_code(name))(message, field=domain_path(field_path) if field_path else None)
    return item_error_body(http_error(error), series_id, request_id)


def _code_name(value: int) -> str:
    for status in grpc.StatusCode:
        if status.value[0] == value:
            return str(status.name)
    return "UNKNOWN"


def item_error_body(exc: HttpError, series_id: str | None, request_id: str) -> dict[str, Any]:
    body = error_body(exc.error, exc.message, exc.details, request_id)
    return {**body, "series_id": series_id, "status": exc.status}
