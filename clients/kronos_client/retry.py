"""Which failures are retried, how long to wait, and the overall deadline of a call."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field

import grpc

from kronos_client.config import ClientConfig
from kronos_client.errors import KronosClientError


def new_request_id() -> str:
    return uuid.uuid4().hex


def retryable(error: KronosClientError) -> bool:
    """UNAVAILABLE always; RESOURCE_EXHAUSTED only when the server said when to come back.

    The server answers RESOURCE_EXHAUSTED with a wait (``RetryInfo``; from older servers
    the ``retry-after`` trailer) for rate limits and overload, and without one for requests
    that are simply too large (reason TOO_LARGE: retrying those cannot help). Every other
    code (INVALID_ARGUMENT, UNAUTHENTICATED, ...) is final.
    """
    if error.code == grpc.StatusCode.UNAVAILABLE:
        return True
    return error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.retry_after is not None


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base: float = 0.25
    cap: float = 10.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def from_config(cls, config: ClientConfig) -> RetryPolicy:
        return cls(config.retries, config.backoff_base, config.backoff_max)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempt))."""
        return self.rng.uniform(0.0, min(self.cap, self.base * 2.0**attempt))

    def delay(self, attempt: int, error: KronosClientError, remaining: float) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up now.

        Waits at least the server's ``retry-after``; gives up when retries are spent,
        the error is final, or the wait would run past the call's deadline.
        """
        if attempt >= self.retries or not retryable(error):
            return None
        wait = self.backoff(attempt)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait if wait < remaining else None


class Deadline:
    """The overall deadline of one call: every attempt and every wait fit inside it."""

    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())
