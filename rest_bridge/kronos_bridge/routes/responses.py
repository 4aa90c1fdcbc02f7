"""What the routes document alike: the error answers (every one has the same body) and the
credentials the calls to the gRPC service need."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

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


# components.securitySchemes of the document (app._openapi adds them): the two headers the
# gRPC service checks, forwarded by the bridge as metadata
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "containerName": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Container-Name",
        "description": "The calling container's name (the NAME of `kronos-serve keys add NAME`)",
    },
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The container's key: Authorization: Bearer <key>",
    },
}
# openapi_extra of a route that needs credentials: one requirement naming both schemes (AND)
CREDENTIALS: dict[str, Any] = {"security": [{name: [] for name in SECURITY_SCHEMES}]}


class FastJSONResponse(JSONResponse):
    """A JSONResponse written by orjson (a forecast body in ~5 us, json.dumps ~30 us): the same
    JSON values, compact as JSONResponse writes them, exponents as ``1e20`` rather than
    ``1e+20``. What orjson refuses (integers beyond 64 bits, lone surrogates, keys that are no
    strings) is written by JSONResponse, as before."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError
            return super().render(content)
