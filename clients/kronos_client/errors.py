"""KronosClientError: one exception for every failed call, with what the server said.

What the server said is read from the standard ``google.rpc.Status`` details
(``grpc-status-details-bin``): the cause from ``ErrorInfo.reason``, the field from the
``BadRequest`` violation, the wait from ``RetryInfo``. A server older than those details
is read from its custom trailers (``kronos-error-field``, ``retry-after``), which servers
still send, deprecated, until v2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"


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


@dataclass(frozen=True)
class StatusDetails:
    """The standard details of a failed call (empty where the server sent none)."""

    reason: str | None = None  # ErrorInfo.reason: RATE_LIMITED, TOO_LARGE, OVERLOADED, ...
    domain: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    field: str | None = None  # the first BadRequest field violation
    retry_after: float | None = None  # RetryInfo.retry_delay, seconds


def status_details(trailing_metadata: Iterable[Any] | None) -> StatusDetails:
    """Decode ``grpc-status-details-bin`` (nothing but the google.rpc protos)."""
    raw = next((v for k, v in trailing_metadata or () if k == DETAILS_KEY and isinstance(v, bytes)), None)
    if raw is None:
        return StatusDetails()
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:  # a corrupt details blob must not hide the call's own error
        return StatusDetails()
    reason = domain = culprit = retry_after = None
    metadata: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            culprit = bad.field_violations[0].field if bad.field_violations else None
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    return StatusDetails(reason, domain, metadata, culprit or metadata.get("field"), retry_after)


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
        reason: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.request_id = request_id
        self.trailers = dict(trailers or {})
        #: the server's ErrorInfo reason (RATE_LIMITED, TOO_LARGE, OVERLOADED, ...), if sent
        self.reason = reason

    @property
    def code_name(self) -> str:
        return str(self.code.name)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, request_id: str | None = None) -> KronosClientError:
        """Build from a sync or aio ``RpcError``; prefers the request id the server echoed."""
        code = getattr(error, "code", lambda: grpc.StatusCode.UNKNOWN)()
        details = getattr(error, "details", lambda: "")() or ""
        raw = getattr(error, "trailing_metadata", lambda: None)()
        trailers = metadata_dict(raw)
        rich = status_details(raw)
        initial = metadata_dict(getattr(error, "initial_metadata", lambda: None)())
        retry_after = rich.retry_after
        if retry_after is None:
            retry_after = parse_retry_after(trailers.get("retry-after"))
        return cls(
            code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
            details,
            field=rich.field or trailers.get("kronos-error-field"),
            retry_after=retry_after,
            request_id=initial.get("x-request-id") or request_id or rich.metadata.get("request_id"),
            trailers=trailers,
            reason=rich.reason,
        )


class InvalidInputError(KronosClientError, ValueError):
    """The client refused the input before sending it (INVALID_ARGUMENT, ``field`` set)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message, field=field)
