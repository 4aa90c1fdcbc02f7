"""Request size: encoded bytes and series per batch -> RESOURCE_EXHAUSTED (too large).

Per-series semantic limits (rows, pred_len, sample_count) are validated by the domain
and answered INVALID_ARGUMENT naming the field. A message that does not even parse (random
bytes, a string field with bad UTF-8) is INVALID_ARGUMENT too: without this, grpc answers
UNKNOWN before any interceptor has seen the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc.aio import ServicerContext
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos_server.errors import InvalidInputError, TooLargeError
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor
from kronos_server.rpc.status import abort


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request message that does not parse, so the chain can answer it."""

    message: str


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer``, but a message that does not parse becomes :class:`Undecodable`."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", "protobuf")

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Undecodable(f"request: not a valid {type_name} message ({exc})")

    return decode


class SizeInterceptor(ScopeInterceptor):
    def __init__(self, metrics: Metrics, max_request_bytes: int, max_batch_items: int):
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.max_batch_items = max_batch_items

    def problem(self, request: Any) -> TooLargeError | None:
        size = request.ByteSize()
        if size > self.max_request_bytes:
            return TooLargeError(
                f"request is {size} bytes; the limit is {self.max_request_bytes} bytes",
                details={"limit_bytes": self.max_request_bytes},
            )
        if isinstance(request, pb.PredictBatchRequest) and len(request.items) > self.max_batch_items:
            return TooLargeError(
                f"items: {len(request.items)} series in one batch; the limit is {self.max_batch_items}",
                field="items",
                details={"limit_items": self.max_batch_items},
            )
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await super().intercept_service(continuation, details)
        if handler is None or not self.applies(details.method) or handler.request_deserializer is None:
            return handler
        # the outer interceptors pass this deserializer on to the handler grpc calls
        return handler._replace(request_deserializer=tolerant(handler.request_deserializer))

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        if isinstance(request, Undecodable):
            state = call.current()
            if state is not None:
                state.outcome = "invalid"
            logger.warning("undecodable request: {}", request.message)
            await abort(context, InvalidInputError(request.message, field="request"))
        problem = self.problem(request)
        if problem is not None:
            state = call.current()
            container = state.container if state else "unknown"
            if state is not None:
                state.outcome = "too_large"
            self.metrics.size_rejections.labels(container).inc()
            logger.warning("request too large: {}", problem.message)
            await abort(context, problem)
        yield
