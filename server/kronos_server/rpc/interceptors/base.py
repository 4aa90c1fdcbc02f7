"""A server interceptor that wraps each call's behaviour in an async context manager.

Subclasses implement :meth:`scope`; code before its ``yield`` runs before the servicer
(and may abort the call), code after it sees the result or the exception. Wrapping the
behaviour (rather than the handler lookup) gives every interceptor the call's context and
keeps it in the call's own task (where the gate's call context variable lives).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc
from grpc.aio import ServicerContext


class ScopeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    #: infrastructure calls (health, reflection) pass through untouched unless True
    applies_to_infrastructure = False

    def scope(self, method: str, request: Any, context: ServicerContext) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def applies(self, method: str) -> bool:
        from kronos_server.rpc.context import is_infrastructure

        return self.applies_to_infrastructure or not is_infrastructure(method)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or not self.applies(method):
            return handler
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: ServicerContext) -> Any:
                async with self.scope(method, request, context):
                    return await inner_unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            # A coroutine writing each message, not an async generator: when the call is
            # cancelled while grpc sends a message, an async generator would be left suspended
            # at its yield and closed later by the garbage collector, in another task (the
            # scopes then saw GeneratorExit, counted the call as an error and failed to reset
            # their context variables, and the stream's engine rows ran on until then). Here the
            # CancelledError reaches the scopes in the call's own task, and the inner stream
            # is closed at once.
            async def stream(request: Any, context: ServicerContext) -> None:
                async with self.scope(method, request, context):
                    inner = inner_stream(request, context)
                    if not isinstance(inner, AsyncGenerator):  # an inner interceptor's coroutine
                        await inner
                        return
                    try:
                        async for item in inner:
                            await context.write(item)
                    finally:
                        await inner.aclose()

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client-streaming shapes are not part of our API
