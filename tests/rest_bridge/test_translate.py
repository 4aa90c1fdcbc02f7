"""Field paths proto -> REST, and the cause table's decisions (error -> HTTP status, body, headers)."""

from __future__ import annotations

import pytest

from kronos_bridge.errors import http_error
from kronos_bridge.translate import relabel_message, rest_field
from kronos_server.errors import (
    CAUSES,
    HTTP_STATUS,
    CancelledError,
    DeadlineExceededError,
    InternalError,
    InvalidInputError,
    KronosError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitedError,
    TooLargeError,
    UnauthenticatedError,
    UnavailableError,
    error_class,
)


@pytest.mark.parametrize(
    ("proto", "rest"),
    [
        ("history.close[17]", "candles[17].close"),
        ("history.volume[0]", "candles[0].volume"),
        ("history.amount", "candles[*].amount"),
        ("history.timestamps_ms[3]", "timestamps[3]"),
        ("history.timestamps_ms", "timestamps"),
        ("history", "candles"),
        ("prediction_timestamps_ms[2]", "prediction_timestamps[2]"),
        ("sampling.top_p", "overrides.top_p"),
        ("sampling.quantiles[1]", "overrides.quantiles[1]"),
        ("sampling", "overrides"),
        ("pred_len", "overrides.pred_len"),
        ("timezone", "timezone"),
        ("series_id", "series_id"),
        ("items", "items"),
        ("sampling.future_field", "overrides.future_field"),
        ("", ""),
    ],
)
def test_rest_field(proto: str, rest: str) -> None:
    assert rest_field(proto) == rest


def test_relabel_message() -> None:
    assert relabel_message("close[17]: prices must be > 0", "candles[17].close") == (
        "candles[17].close: prices must be > 0"
    )
    assert relabel_message("timezone 'X' is unknown: sorry", "timezone") == "timezone 'X' is unknown: sorry"


RATE = RateLimitedError("spent", retry_after=6.2, limit=2, remaining=0, reset=29.4)


@pytest.mark.parametrize(
    ("error", "status", "name", "outcome"),
    [
        (InvalidInputError("close[3]: bad", field="close[3]"), 422, "invalid_argument", "invalid"),
        (UnauthenticatedError("who"), 401, "unauthenticated", "unauthorized"),
        (PermissionDeniedError("no"), 403, "permission_denied", "forbidden"),
        (RATE, 429, "rate_limited", "rate_limited"),
        (OverloadedError("full"), 503, "overloaded", "overloaded"),
        (TooLargeError("big"), 413, "too_large", "too_large"),
        (UnavailableError("draining"), 503, "unavailable", "unavailable"),
        (DeadlineExceededError("late"), 504, "deadline_exceeded", "timeout"),
        (CancelledError("gone"), 499, "cancelled", "cancelled"),
        (InternalError("details from upstream"), 500, "internal", "error"),
        (error_class(CAUSES["unknown"])("details from upstream"), 500, "unknown", "error"),
        (error_class(CAUSES["unimplemented"])("details from upstream"), 501, "unimplemented", "error"),
    ],
)
def test_status_table(error: KronosError, status: int, name: str, outcome: str) -> None:
    exc = http_error(error)
    assert (exc.status, exc.error, exc.outcome) == (status, name, outcome)
    if status in (429, 503):
        assert exc.headers["Retry-After"] == ("7" if error is RATE else "1")
    if status == 429:
        assert exc.headers["X-RateLimit-Limit"] == "2" and exc.headers["X-RateLimit-Reset"] == "30"
        assert exc.details == {"retry_after": 7, "limit": 2, "remaining": 0, "reset": 30}
    if status == 422:
        assert exc.details == {"field": "candles[3].close"} and exc.message == "candles[3].close: bad"
    if status in (500, 501):
        assert "upstream" not in exc.message


def test_every_grpc_code_has_an_http_status() -> None:
    import grpc

    assert {c.name for c in grpc.StatusCode} <= set(HTTP_STATUS)
