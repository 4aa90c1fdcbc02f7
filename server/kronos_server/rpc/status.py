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
from google.rpc import error_details_pb2, status_pb2
from grpc.aio import ServicerContext
from grpc_status import rpc_status

from kronos_server.errors import ERROR_DOMAIN, KronosError, RateLimitedError
from kronos_server.forecast.fields import proto_path

GENERIC_INTERNAL = "internal error; the server logged the details"

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
        out.append((RETRY_AFTER_TRAILER, str(max(1, math.ceil(retry_after)))))
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
