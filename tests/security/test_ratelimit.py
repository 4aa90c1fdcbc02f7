"""Rate specs, the token bucket on a fake clock, and the per-container limiter."""

from __future__ import annotations

import threading

import pytest

from kronos_server.errors import RateLimitedError
from kronos_server.security.ratelimit import RateLimiter, RateSpec, TokenBucket


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("100/minute", 100, 60.0),
        ("10/second", 10, 1.0),
        ("5/hour", 5, 3600.0),
        ("1/day", 1, 86400.0),
        ("10/s", 10, 1.0),
        ("10/m", 10, 60.0),
        ("3/h", 3, 3600.0),
        ("2/d", 2, 86400.0),
        ("50/30s", 50, 30.0),
        ("7/5minutes", 7, 300.0),
        (" 20 / Minute ", 20, 60.0),
        ("4/seconds", 4, 1.0),
        ("9/min", 9, 60.0),
        ("5/0.5s", 5, 0.5),
    ],
)
def test_rate_spec_parse(text: str, limit: int, period: float) -> None:
    assert RateSpec.parse(text) == RateSpec(limit, period)


@pytest.mark.parametrize(
    "text",
    ["", "100", "minute", "100/", "100/fortnight", "0/minute", "10/0s", "-1/s", "1.5/s", "10/ms", "a/s"],
)
def test_rate_spec_rejects_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rate limit") as info:
        RateSpec.parse(text)
    assert repr(text) in str(info.value)


def test_rate_spec_round_trips_through_str() -> None:
    for text in ("100/minute", "10/second", "5/hour", "1/day", "50/30s"):
        assert str(RateSpec.parse(text)) == text
    assert RateSpec.parse(str(RateSpec(3, 2.5))) == RateSpec(3, 2.5)


def test_bucket_allows_a_burst_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, 60.0, clock=clock)  # 3/minute: one token per 20 s
    remaining = [bucket.try_acquire().remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    refused = bucket.try_acquire()
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.reset_after == pytest.approx(60.0)
    assert refused.limit == 3


def test_bucket_refills_over_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, 60.0, clock=clock)
    for _ in range(3):
        assert bucket.try_acquire().allowed
    clock.advance(10.0)  # half a token
    half = bucket.try_acquire()
    assert not half.allowed and half.retry_after == pytest.approx(10.0)
    clock.advance(10.0)
    assert bucket.try_acquire().allowed
    clock.advance(3600.0)  # refill is capped at the capacity
    assert bucket.tokens == pytest.approx(3.0)


def test_bucket_refill_tolerates_float_rounding() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(100, 60.0, clock=clock)  # one token every 0.6 s
    assert bucket.try_acquire(100).allowed
    for _ in range(50):
        clock.advance(0.6)
        assert bucket.try_acquire().allowed


def test_bucket_cost_and_reset_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 10.0, clock=clock)  # 1 token/s
    first = bucket.try_acquire(4)
    assert (first.allowed, first.remaining, first.retry_after) == (True, 6, 0.0)
    assert first.reset_after == pytest.approx(4.0)
    refused = bucket.try_acquire(8)
    assert not refused.allowed
    assert refused.remaining == 6  # a refusal takes nothing
    assert refused.retry_after == pytest.approx(2.0)


def test_cost_above_capacity_is_never_satisfiable() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, 5.0, clock=clock)  # 1 token/s
    assert bucket.try_acquire(2).allowed
    decision = bucket.try_acquire(6)
    assert not decision.allowed
    # retry_after is the time to fill the bucket completely
    assert decision.retry_after == pytest.approx(2.0)
    clock.advance(100.0)
    again = bucket.try_acquire(6)
    assert not again.allowed and again.retry_after == 0.0 and again.remaining == 5


def test_cost_zero_and_negative() -> None:
    bucket = TokenBucket(1, 1.0, clock=FakeClock())
    assert bucket.try_acquire(1).allowed
    assert bucket.try_acquire(0).allowed
    with pytest.raises(ValueError, match="cost"):
        bucket.try_acquire(-1)


def test_decision_error_carries_the_details() -> None:
    bucket = TokenBucket(1, 60.0, clock=FakeClock())
    bucket.try_acquire()
    error = bucket.try_acquire().error()
    assert isinstance(error, RateLimitedError)
    assert error.code == "RESOURCE_EXHAUSTED"
    assert error.retry_after == pytest.approx(60.0)
    assert error.details == {
        "limit": 1,
        "remaining": 0,
        "reset": pytest.approx(60.0),
        "retry_after": error.retry_after,
    }


def test_limiter_keeps_one_bucket_per_container() -> None:
    limiter = RateLimiter(RateSpec(2, 60.0), clock=FakeClock())
    assert limiter.try_acquire("a").allowed and limiter.try_acquire("a").allowed
    assert not limiter.try_acquire("a").allowed
    assert limiter.try_acquire("b").allowed  # b has its own bucket
    assert len(limiter) == 2


def test_limiter_overrides_and_given_spec() -> None:
    limiter = RateLimiter(RateSpec(1, 60.0), {"big": RateSpec(3, 60.0)}, clock=FakeClock())
    assert limiter.spec_for("small") == RateSpec(1, 60.0)
    assert limiter.spec_for("big") == RateSpec(3, 60.0)
    assert [limiter.try_acquire("big").allowed for _ in range(4)] == [True, True, True, False]
    assert [limiter.try_acquire("small").allowed for _ in range(2)] == [True, False]
    # a spec from the keys file (passed by the caller) wins over both
    keyed = RateSpec(5, 60.0)
    assert limiter.spec_for("big", keyed) == keyed
    assert [limiter.try_acquire("k", spec=keyed).allowed for _ in range(6)] == [True] * 5 + [False]


def test_limiter_spec_change_keeps_what_was_left() -> None:
    limiter = RateLimiter(RateSpec(10, 60.0), clock=FakeClock())
    for _ in range(9):
        limiter.try_acquire("a")
    # the operator raised the limit: the spent tokens stay spent, no fresh burst
    decision = limiter.try_acquire("a", spec=RateSpec(100, 60.0))
    assert decision.allowed and decision.remaining == 0 and decision.limit == 100


def test_limiter_evicts_the_least_recently_used() -> None:
    limiter = RateLimiter(RateSpec(1, 60.0), max_buckets=3, clock=FakeClock())
    for name in ("a", "b", "c"):
        limiter.try_acquire(name)
    limiter.try_acquire("a")  # a is now the most recent
    limiter.try_acquire("d")
    assert len(limiter) == 3
    assert "b" not in limiter
    assert all(name in limiter for name in ("a", "c", "d"))
    with pytest.raises(ValueError):
        RateLimiter(RateSpec(1, 1.0), max_buckets=0)


def test_limiter_is_thread_safe() -> None:
    limiter = RateLimiter(RateSpec(1000, 3600.0), clock=FakeClock())
    allowed: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [limiter.try_acquire("shared").allowed for _ in range(300)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1000
