"""The gRPC adapter of the call gate: describe each call of our service, run it through
:class:`~kronos_server.gate.Gate`, answer a refusal or an error with its status.

Health and reflection pass untouched (always reachable, never authenticated or counted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc.aio import ServicerContext
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos_server.backtest.origins import charged_origins
from kronos_server.errors import InvalidInputError, KronosError
from kronos_server.forecast.limits import Limits
from kronos_server.gate import Call, Gate, Headers
from kronos_server.observability.metrics import STATUS_BY_CODE
from kronos_server.rpc.context import route_of
from kronos_server.rpc.interceptors.base import ScopeInterceptor
from kronos_server.rpc.interceptors.decode import Undecodable, tolerant
from kronos_server.rpc.status import abort


def client_cert_name(context: ServicerContext) -> str | None:
    """The verified client certificate's common name (mTLS), if any."""
    names = (context.auth_context() or {}).get("x509_common_name") or []
    return names[0].decode("utf-8", "replace") if names else None


def code_name(context: ServicerContext) -> str:
    code = context.code()
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return str(grpc.StatusCode(code).name) if isinstance(code, tuple) else str(code)


def backtest_units(request: pb.BacktestRequest, limits: Limits) -> int:
    """A backtest's cost against the caller's rate limit: its origins, from its fields as sent."""
    return charged_origins(
        rows=len(request.history.timestamps_ms),
        horizon=request.horizon or None,
        context=request.context if request.HasField("context") else None,
        origins=request.origins if request.HasField("origins") else None,
        origin_step=request.origin_step if request.HasField("origin_step") else None,
        limits=limits,
    )


def describe(
    method: str, request: Any, context: ServicerContext, mtls: bool, limits: Limits | None = None
) -> Call:
    """The gate's view of one call (``limits``: to count a backtest's origins)."""
    route, short = route_of(method)
    decoded = not isinstance(request, Undecodable)
    call = Call(
        method=short,
        route=route,
        headers=Headers(context.invocation_metadata() or ()),
        peer_common_name=client_cert_name(context) if mtls else None,
        size_bytes=request.ByteSize() if decoded else None,
        batch_items=len(request.items) if isinstance(request, pb.PredictBatchRequest) else None,
        time_remaining=context.time_remaining,
    )
    if isinstance(request, pb.BacktestRequest) and limits is not None:
        call.rate_units = backtest_units(request, limits)

    def answered(exc: BaseException) -> str | None:
        # an abort below the gate (the servicer's own): its code decides the outcome
        if not isinstance(exc, grpc.aio.AbortError):
            return None
        call.code = code_name(context)
        return STATUS_BY_CODE.get(call.code, "error")

    call.answered = answered
    return call


class GateInterceptor(ScopeInterceptor):
    def __init__(self, gate: Gate, limits: Limits | None = None):
        """``limits``: the server's, by which a backtest's origins are counted (else it costs 1)."""
        self.gate = gate
        self.limits = limits

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await super().intercept_service(continuation, details)
        if handler is None or not self.applies(details.method) or handler.request_deserializer is None:
            return handler
        # a message that does not parse reaches the gate (and is answered INVALID_ARGUMENT)
        # instead of grpc answering UNKNOWN before any of our code has seen the call
        return handler._replace(request_deserializer=tolerant(handler.request_deserializer))

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        call = describe(method, request, context, self.gate.mtls, self.limits)
        try:
            async with self.gate.scope(call):
                await context.send_initial_metadata((("x-request-id", call.request_id),))
                with self.gate.admitted(call, size=False):
                    if isinstance(request, Undecodable):
                        logger.warning("undecodable request: {}", request.message)
                        raise InvalidInputError(request.message, field="request")
                    self.gate.check_size(call)
                    yield
        except KronosError as exc:
            await abort(context, exc, call.request_id)
