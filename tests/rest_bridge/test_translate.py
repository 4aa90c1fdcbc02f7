"""Field paths proto -> REST, and the status table's decisions (code, trailers) -> HTTP."""

from __future__ import annotations

import pytest

from kronos_bridge.errors import describe
from kronos_bridge.translate import relabel_message, rest_field
from kronos_server.errors import HTTP_STATUS


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


RATE = {"retry-after": "7", "x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}


@pytest.mark.parametrize(
    ("code", "trailers", "status", "error", "outcome"),
    [
        ("INVALID_ARGUMENT", {}, 422, "invalid_argument", "invalid"),
        ("UNAUTHENTICATED", {}, 401, "unauthenticated", "unauthorized"),
        ("PERMISSION_DENIED", {}, 403, "permission_denied", "forbidden"),
        ("RESOURCE_EXHAUSTED", RATE, 429, "rate_limited", "rate_limited"),
        ("RESOURCE_EXHAUSTED", {"retry-after": "1"}, 503, "overloaded", "overloaded"),
        ("RESOURCE_EXHAUSTED", {}, 413, "too_large", "too_large"),
        ("UNAVAILABLE", {}, 503, "unavailable", "unavailable"),
        ("DEADLINE_EXCEEDED", {}, 504, "deadline_exceeded", "timeout"),
        ("CANCELLED", {}, 499, "cancelled", "cancelled"),
        ("INTERNAL", {}, 500, "internal", "error"),
        ("UNKNOWN", {}, 500, "unknown", "error"),
        ("UNIMPLEMENTED", {}, 501, "unimplemented", "error"),
    ],
)
def test_status_table(code: str, trailers: dict[str, str], status: int, error: str, outcome: str) -> None:
    exc = describe(code, "details from upstream", "", trailers)
    assert (exc.status, exc.error, exc.outcome) == (status, error, outcome)
    if status in (429, 503):
        assert exc.headers["Retry-After"] == trailers.get("retry-after", "1")
    if status == 429:
        assert exc.headers["X-RateLimit-Limit"] == "2" and exc.headers["X-RateLimit-Reset"] == "30"
        assert exc.details == {"retry_after": 7, "limit": 2, "remaining": 0, "reset": 30}
    if status in (500, 501):
        assert "upstream" not in exc.message


def test_every_grpc_code_has_an_http_status() -> None:
    import grpc

    assert {c.name for c in grpc.StatusCode} <= set(HTTP_STATUS)
