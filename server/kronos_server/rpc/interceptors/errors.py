"""Innermost: the one mapping from the project's errors to gRPC status codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc.aio import ServicerContext
from loguru import logger

from kronos_server.errors import InternalError, KronosError
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor
from kronos_server.rpc.status import GENERIC_INTERNAL, abort


def deadline_slack(budget: float) -> float:
    """How close to its deadline a cancellation counts as the deadline passing.

    The client's deadline fires first: it started the clock before sending, the server only
    on receipt. Its cancellation then reaches the server a little before the server's own
    deadline, and would be counted as a client cancel instead of a timeout.
    """
    return min(1.0, max(0.05, 0.1 * budget))


class ErrorsInterceptor(ScopeInterceptor):
    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        state = call.current()
        budget = context.time_remaining()
        try:
            yield
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            near = budget is not None and remaining is not None and remaining <= deadline_slack(budget)
            if near and state is not None and state.outcome is None:
                state.outcome = "timeout"
            raise
        except KronosError as exc:
            if exc.cause.name == "internal":
                logger.opt(exception=exc).error("internal error")
            if state is not None and state.outcome is None:
                state.outcome = exc.cause.outcome
            await abort(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            logger.exception("unhandled error")
            if state is not None:
                state.outcome = "error"
            await abort(context, InternalError(GENERIC_INTERNAL))
