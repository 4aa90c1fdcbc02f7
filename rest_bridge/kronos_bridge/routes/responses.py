"""The documented error answers of the routes (every one has the same body)."""

from __future__ import annotations

from typing import Any

from kronos_bridge.schemas import ErrorBody

_WHY = {
    400: "Malformed JSON",
    401: "Missing or wrong credentials (X-Container-Name, Authorization: Bearer <key>)",
    403: "The container may not call this",
    413: "The body or the batch is over the size limit",
    415: "The body is not declared as JSON (Content-Type other than application/json)",
    422: "Invalid input; details.field names it (candles[17].close, overrides.top_p)",
    429: "Rate limit spent: Retry-After, X-RateLimit-Limit / -Remaining / -Reset",
    499: "The request was cancelled",
    500: "A fault of the server (generic message)",
    503: "Not ready, draining or overloaded: Retry-After",
    504: "The inference timeout passed",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}
