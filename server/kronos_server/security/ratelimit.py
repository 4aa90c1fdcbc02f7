"""Per-container rate limits: a token bucket per container, created on first use.

A :class:`RateSpec` such as ``100/minute`` means a bucket of 100 tokens that refills
at 100 tokens per minute, so a client may burst up to 100 calls and then sustain one
call every 0.6 s. Clocks are injectable so tests run without sleeping.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kronos_server.errors import RateLimitedError

Clock = Callable[[], float]

UNIT_SECONDS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
# plurals of the long names only: "ms" must not read as "m"
UNIT_SECONDS.update({f"{name}s": seconds for name, seconds in list(UNIT_SECONDS.items()) if len(name) > 1})
_UNIT_NAMES = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([A-Za-z]+)\s*")
# float refills are not exact (0.6 s at 100/minute is 0.9999999999 tokens), so a bucket
# short by less than this counts as full enough
_EPSILON = 1e-9


@dataclass(frozen=True)
class RateSpec:
    """``limit`` calls per ``period`` seconds; also the bucket's burst capacity."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate limit must allow at least 1 call, got {self.limit}")
        if not self.period > 0:
            raise ValueError(f"rate limit period must be > 0 seconds, got {self.period}")

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        """``N/second|minute|hour|day`` (or ``s``/``m``/``h``/``d``, plural, ``N/30s`` multiples)."""
        match = _SPEC.fullmatch(text)
        unit = match.group(3).lower() if match else ""
        if match is None or unit not in UNIT_SECONDS:
            raise ValueError(
                f"invalid rate limit {text!r}: expected N/UNIT with UNIT second, minute, hour or day "
                "(or s, m, h, d, optionally with a multiple, e.g. 100/minute, 10/s, 50/30s)"
            )
        limit = int(match.group(1))
        multiple = float(match.group(2)) if match.group(2) is not None else 1.0
        if limit < 1 or multiple <= 0:
            raise ValueError(f"invalid rate limit {text!r}: the count must be at least 1, the period above 0")
        return cls(limit=limit, period=multiple * UNIT_SECONDS[unit])

    @property
    def per_second(self) -> float:
        return self.limit / self.period

    def __str__(self) -> str:
        unit = _UNIT_NAMES.get(self.period)
        if unit is not None:
            return f"{self.limit}/{unit}"
        if self.period.is_integer():
            return f"{self.limit}/{int(self.period)}s"
        return f"{self.limit}/{self.period:g}s"


@dataclass(frozen=True)
class Decision:
    """The outcome of one acquire; times are seconds from now."""

    allowed: bool
    remaining: int  # whole tokens left after this call
    retry_after: float  # 0 when allowed; otherwise when the same cost could first succeed
    reset_after: float  # until the bucket is full again
    limit: int  # the bucket's capacity, for RateLimit-style headers

    def error(self, container: str | None = None) -> RateLimitedError:
        """The error a transport raises for ``container``'s refused decision."""
        return RateLimitedError(
            f"rate limit exceeded ({self.limit} calls per window); retry in {self.retry_after:.2f}s",
            retry_after=self.retry_after,
            limit=self.limit,
            remaining=self.remaining,
            reset=self.reset_after,
            container=container,
        )


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``capacity`` per ``period`` seconds.

    Not thread-safe on its own; :class:`RateLimiter` serialises access.
    """

    def __init__(
        self,
        capacity: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        tokens: float | None = None,
    ) -> None:
        self.spec = RateSpec(capacity, period)
        self._clock = clock
        self._tokens = float(capacity) if tokens is None else min(float(capacity), max(0.0, tokens))
        self._updated = clock()

    @classmethod
    def from_spec(
        cls, spec: RateSpec, *, clock: Clock = time.monotonic, tokens: float | None = None
    ) -> TokenBucket:
        return cls(spec.limit, spec.period, clock=clock, tokens=tokens)

    @property
    def capacity(self) -> int:
        return self.spec.limit

    @property
    def tokens(self) -> float:
        """Tokens available now (refilled up to the present)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(float(self.capacity), self._tokens + elapsed * self.spec.per_second)
        # a clock that went backwards (only possible with an injected one) refills nothing
        self._updated = max(self._updated, now)

    def _seconds_for(self, tokens: float) -> float:
        return max(0.0, tokens / self.spec.per_second)

    def try_acquire(self, cost: int = 1) -> Decision:
        """Take ``cost`` tokens if available; never blocks.

        A cost larger than the capacity can never be satisfied: the answer is always
        ``allowed=False`` with ``retry_after`` the time to fill the bucket completely
        (the transport maps it to RESOURCE_EXHAUSTED; retrying will not help). A cost
        of 0 consumes nothing and is always allowed.
        """
        if cost < 0:
            raise ValueError(f"cost must be >= 0, got {cost}")
        self._refill()
        capacity = self.capacity
        if cost > capacity:
            missing = capacity - self._tokens
            wait = self._seconds_for(missing)
            return Decision(False, self._remaining(), wait, wait, capacity)
        if self._tokens + _EPSILON >= cost:
            self._tokens = max(0.0, self._tokens - cost)
            reset = self._seconds_for(capacity - self._tokens)
            return Decision(True, self._remaining(), 0.0, reset, capacity)
        retry = self._seconds_for(cost - self._tokens)
        reset = self._seconds_for(capacity - self._tokens)
        return Decision(False, self._remaining(), retry, reset, capacity)

    def _remaining(self) -> int:
        return max(0, math.floor(self._tokens + _EPSILON))


class RateLimiter:
    """One token bucket per container, thread-safe, at most ``max_buckets`` of them.

    The spec of a container is, in order: the one passed to :meth:`try_acquire` (from
    its keys-file entry), ``overrides[container]``, ``default``. Call it only for
    containers that have authenticated, so clients cannot grow it with made-up names;
    beyond ``max_buckets`` the least recently used bucket is dropped (that container
    starts again with a full bucket).
    """

    def __init__(
        self,
        default: RateSpec,
        overrides: Mapping[str, RateSpec] | None = None,
        *,
        max_buckets: int = 10_000,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be >= 1, got {max_buckets}")
        self.default = default
        self.overrides = dict(overrides or {})
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def spec_for(self, container: str, spec: RateSpec | None = None) -> RateSpec:
        if spec is not None:
            return spec
        return self.overrides.get(container, self.default)

    def try_acquire(self, container: str, cost: int = 1, spec: RateSpec | None = None) -> Decision:
        """Charge ``cost`` to the container's bucket; see :meth:`TokenBucket.try_acquire`."""
        wanted = self.spec_for(container, spec)
        with self._lock:
            bucket = self._buckets.get(container)
            if bucket is None or bucket.spec != wanted:
                # a changed spec (rotation with a new limit) keeps what was left, capped
                left = None if bucket is None else bucket.tokens
                bucket = TokenBucket.from_spec(wanted, clock=self._clock, tokens=left)
                self._buckets[container] = bucket
            self._buckets.move_to_end(container)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
            return bucket.try_acquire(cost)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def __contains__(self, container: object) -> bool:
        with self._lock:
            return container in self._buckets
