"""Request size: encoded bytes and series per batch -> RESOURCE_EXHAUSTED (too large).

Per-series semantic limits (rows, pred_len, sample_count) are validated by the domain
and answered INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc.aio import ServicerContext
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor


class SizeInterceptor(ScopeInterceptor):
    def __init__(self, metrics: Metrics, max_request_bytes: int, max_batch_items: int):
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.max_batch_items = max_batch_items

    def problem(self, request: Any) -> str | None:
        size = request.ByteSize()
        if size > self.max_request_bytes:
            return f"request is {size} bytes; the limit is {self.max_request_bytes} bytes"
        if isinstance(request, pb.PredictBatchRequest) and len(request.items) > self.max_batch_items:
            return f"items: {len(request.items)} series in one batch; the limit is {self.max_batch_items}"
        return None

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        problem = self.problem(request)
        if problem is not None:
            state = call.current()
            container = state.container if state else "unknown"
            if state is not None:
                state.outcome = "too_large"
            self.metrics.size_rejections.labels(container).inc()
            logger.warning("request too large: {}", problem)
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, problem)
        yield
