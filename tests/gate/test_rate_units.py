"""The gate charges a call's rate_units (a backtest's origins) against the caller's bucket."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from kronos_server.errors import RateLimitedError
from kronos_server.gate import Call, Gate
from kronos_server.observability.metrics import Metrics
from kronos_server.security.auth import Identity
from kronos_server.security.ratelimit import RateLimiter, RateSpec


def gate() -> Gate:
    limiter = RateLimiter(RateSpec.parse("10/hour"), clock=lambda: 0.0)
    return Gate(
        Metrics(CollectorRegistry()),
        authenticator=None,
        limiter=limiter,
        max_request_bytes=1 << 20,
        max_batch_items=4,
    )


def call(**kw: int) -> Call:
    c = Call(method="Backtest", route="/kronos.v1.KronosPredictor/Backtest", **kw)  # type: ignore[arg-type]
    c.identity = Identity("team", "key")
    return c


def test_rate_units_are_charged_and_beat_batch_items() -> None:
    g = gate()
    g.rate_limit(call(rate_units=7))  # 7 of 10
    with pytest.raises(RateLimitedError):
        g.rate_limit(call(rate_units=4))
    g.rate_limit(call(rate_units=3, batch_items=9))  # rate_units wins: 3, the last of the 10
    with pytest.raises(RateLimitedError):
        g.rate_limit(call())  # an ordinary call costs one


def test_rate_units_are_not_a_batch_size() -> None:
    # a backtest's 100 origins are charged, but are not "items" of the batch size limit (4)
    g = Gate(
        Metrics(CollectorRegistry()),
        authenticator=None,
        limiter=RateLimiter(RateSpec.parse("1000/hour"), clock=lambda: 0.0),
        max_request_bytes=1 << 20,
        max_batch_items=4,
    )
    c = call(rate_units=100)
    g.check_size(c)
    g.rate_limit(c)
