"""A :class:`KronosError` as a gRPC status: code, message and ``google.rpc.Status`` details.

The details travel in ``grpc-status-details-bin``, which gRPC libraries of every language
decode (Go's ``status.Details()``, Java's ``StatusProto.fromThrowable``):

* every error: ``ErrorInfo`` (reason from the cause table, domain ``kronos.v1``, metadata
  with the request id, the field and the cause's figures);
* invalid argument and too large: ``BadRequest`` with one ``FieldViolation`` (the field as
  a ``PredictRequest`` path, e.g. ``history.close[17]``);
* rate limited: ``QuotaFailure`` (subject ``container:NAME``) and ``RetryInfo``;
* overloaded and unavailable: ``RetryInfo``.

The custom trailers of earlier releases (``kronos-error-field``, ``retry-after``,
``x-ratelimit-*``) are sent as well, deprecated: they go in v2.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc.aio import ServicerContext
from grpc_status import rpc_status

from kronos_server.errors import (
    CAUSE_BY_REASON,
    ERROR_DOMAIN,
    Cause,
    KronosError,
    RateLimitedError,
    cause_of_code,
    error_class,
    whole_seconds,
)
from kronos_server.forecast.fields import domain_path, proto_path

GENERIC_INTERNAL = "internal error; the server logged the details"

GRPC_DETAILS_KEY = "grpc-status-details-bin"

# deprecated trailers, still sent in this release for clients that read them
ERROR_FIELD_TRAILER = "kronos-error-field"
RETRY_AFTER_TRAILER = "retry-after"
RATE_LIMIT_TRAILERS = ("limit", "remaining", "reset")


def public_message(error: KronosError) -> str:
    """What the caller is told: the message, except for a real fault of ours."""
    return GENERIC_INTERNAL if error.cause.name == "internal" else error.message


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _duration(seconds: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(max(0, round(seconds * 1e9)))
    return out


def _metadata_value(value: Any) -> str:
    return str(value) if not isinstance(value, float) or not value.is_integer() else str(int(value))


def error_field(error: KronosError) -> str | None:
    """The error's field as a PredictRequest path (the domain names it in its own terms)."""
    return proto_path(error.field) if error.field else None


def details_of(error: KronosError, request_id: str | None = None) -> list[Any]:
    """The standard detail messages for ``error`` (not yet packed)."""
    cause = error.cause
    field = error_field(error)
    info = error_details_pb2.ErrorInfo(reason=cause.reason, domain=ERROR_DOMAIN)
    if request_id:
        info.metadata["request_id"] = request_id
    if field:
        info.metadata["field"] = field
    if cause.name != "internal":
        for key, value in error.details.items():
            if key != "field" and isinstance(value, str | int | float) and not isinstance(value, bool):
                info.metadata[key] = _metadata_value(value)
    out: list[Any] = [info]
    if field and cause.name in ("invalid_argument", "bad_request", "too_large"):
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=error.message)
        out.append(error_details_pb2.BadRequest(field_violations=[violation]))
    if isinstance(error, RateLimitedError):
        subject = f"container:{error.container}" if error.container else "container"
        out.append(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=subject, description=f"{error.limit} calls per window"
                    )
                ]
            )
        )
    retry_after = error.retry_after_s
    if retry_after is not None:
        out.append(error_details_pb2.RetryInfo(retry_delay=_duration(retry_after)))
    return out


def legacy_trailers(error: KronosError) -> list[tuple[str, str]]:
    """The custom trailers earlier releases sent (deprecated; removed in v2)."""
    out: list[tuple[str, str]] = []
    field = error_field(error)
    if field:
        out.append((ERROR_FIELD_TRAILER, field))
    retry_after = error.retry_after_s
    if retry_after is not None:
        out.append((RETRY_AFTER_TRAILER, str(whole_seconds(retry_after))))
    if isinstance(error, RateLimitedError):
        out.append(("x-ratelimit-limit", str(error.limit)))
        out.append(("x-ratelimit-remaining", str(error.remaining)))
        out.append(("x-ratelimit-reset", str(math.ceil(error.reset))))
    return out


def rich_status(error: KronosError, request_id: str | None = None) -> status_pb2.Status:
    """``error`` as a ``google.rpc.Status`` message."""
    code = grpc.StatusCode[error.cause.grpc_code]
    return status_pb2.Status(
        code=code.value[0],
        message=public_message(error),
        details=[_pack(d) for d in details_of(error, request_id)],
    )


def to_rpc_status(error: KronosError, request_id: str | None = None) -> grpc.Status:
    """``error`` as the grpc.Status to abort with: details plus the deprecated trailers."""
    status = rpc_status.to_status(rich_status(error, request_id))
    trailers = tuple(legacy_trailers(error)) + tuple(status.trailing_metadata)
    return status._replace(trailing_metadata=trailers)


async def abort(context: ServicerContext, error: KronosError, request_id: str | None = None) -> NoReturn:
    """End the call with ``error``'s status; every gRPC abort path goes through here."""
    if request_id is None:
        from kronos_server.rpc import context as call

        state = call.current()
        request_id = state.request_id if state is not None else None
    await context.abort_with_status(to_rpc_status(error, request_id))
    raise AssertionError("unreachable: abort_with_status raises")  # pragma: no cover


# --- the way back: a remote server's status as the error it was --------------------------


def rich_status_of(trailing_metadata: Any) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` in a call's trailers, if it sent a readable one."""
    for key, value in trailing_metadata or ():
        if key == GRPC_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


def _number(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def error_from_rpc(err: grpc.RpcError) -> KronosError:
    """A failed call's status as the :class:`KronosError` the server raised.

    The cause comes from the ``ErrorInfo`` reason (of our domain), the field from the
    ``BadRequest`` violation, the wait from ``RetryInfo``; a status without our details (an
    older server, or grpc itself: a deadline, a broken connection) is read from its code.
    """
    code = err.code().name if err.code() is not None else "UNKNOWN"
    message = err.details() or ""
    rich = rich_status_of(err.trailing_metadata())
    cause: Cause | None = None
    metadata: dict[str, str] = {}
    field: str | None = None
    retry_after: float | None = None
    container: str | None = None
    for detail in rich.details if rich is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            known = CAUSE_BY_REASON.get(info.reason) if info.domain == ERROR_DOMAIN else None
            if known is not None and known.grpc_code == code:
                cause, metadata = known, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                field = bad.field_violations[0].field
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
        elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            subject = quota.violations[0].subject if quota.violations else ""
            container = subject.partition(":")[2] or None
    if cause is None:
        cause = cause_of_code(code)
    field = field or metadata.get("field")
    details: dict[str, Any] = {k: _number(v) for k, v in metadata.items() if k not in ("field", "request_id")}
    if retry_after is not None:
        details["retry_after"] = retry_after
    if cause.name == "rate_limited":
        return RateLimitedError(
            message,
            retry_after=float(details.get("retry_after", 0.0)),
            limit=int(details.get("limit", 0)),
            remaining=int(details.get("remaining", 0)),
            reset=float(details.get("reset", 0.0)),
            container=container,
        )
    return error_class(cause)(message, field=domain_path(field) if field else None, details=details)
