"""KronosClientError: one exception for every failed call, with what the server said."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc


def metadata_dict(pairs: Iterable[Any] | None) -> dict[str, str]:
    """gRPC metadata (sync tuples or aio ``Metadata``) -> lower-case keys, text values."""
    out: dict[str, str] = {}
    for key, value in pairs or ():
        if isinstance(value, str):
            out[str(key).lower()] = value
    return out


def parse_retry_after(value: str | None) -> float | None:
    """``retry-after`` seconds; None if absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class KronosClientError(Exception):
    """A call failed. ``code`` is the gRPC status; ``field`` names the culprit input."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.request_id = request_id
        self.trailers = dict(trailers or {})

    @property
    def code_name(self) -> str:
        return str(self.code.name)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, request_id: str | None = None) -> KronosClientError:
        """Build from a sync or aio ``RpcError``; prefers the request id the server echoed."""
        code = getattr(error, "code", lambda: grpc.StatusCode.UNKNOWN)()
        details = getattr(error, "details", lambda: "")() or ""
        trailers = metadata_dict(getattr(error, "trailing_metadata", lambda: None)())
        initial = metadata_dict(getattr(error, "initial_metadata", lambda: None)())
        return cls(
            code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
            details,
            field=trailers.get("kronos-error-field"),
            retry_after=parse_retry_after(trailers.get("retry-after")),
            request_id=initial.get("x-request-id") or request_id,
            trailers=trailers,
        )


class InvalidInputError(KronosClientError, ValueError):
    """The client refused the input before sending it (INVALID_ARGUMENT, ``field`` set)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message, field=field)
