"""Per-container token bucket; a batch costs its number of series."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpc.aio import ServicerContext
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor
from kronos_server.rpc.status import abort
from kronos_server.security.ratelimit import RateLimiter


def cost_of(request: Any) -> int:
    return max(1, len(request.items)) if isinstance(request, pb.PredictBatchRequest) else 1


class RateLimitInterceptor(ScopeInterceptor):
    def __init__(self, limiter: RateLimiter, metrics: Metrics):
        self.limiter = limiter
        self.metrics = metrics

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        state = call.current()
        identity = getattr(state, "identity", None)
        if state is not None and identity is not None:
            decision = self.limiter.try_acquire(identity.container, cost_of(request), identity.rate_limit)
            if not decision.allowed:
                state.outcome = "rate_limited"
                self.metrics.rate_limit_hits.labels(identity.container).inc()
                error = decision.error(identity.container)
                logger.warning("rate limit hit: {}", error.message)
                await abort(context, error)
        yield
