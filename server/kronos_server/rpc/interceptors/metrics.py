"""Outermost: counts and times every call of our service, rejected ones included.

Calls made by the in-process REST bridge carry ``x-kronos-bridge: <token>``, a random
token of this process: the bridge has counted them already under their REST route, so
they are not counted twice. A wrong or absent token is counted like any other call.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from grpc.aio import ServicerContext

from kronos_server.observability.metrics import STATUS_BY_CODE, Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc.interceptors.base import ScopeInterceptor, metadata

BRIDGE_METADATA = "x-kronos-bridge"


def code_name(context: ServicerContext) -> str:
    code = context.code()
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return str(grpc.StatusCode(code).name) if isinstance(code, tuple) else str(code)


def final_status(state: call.CallState, code: str) -> str:
    return state.outcome or STATUS_BY_CODE.get(code, "error")


class MetricsInterceptor(ScopeInterceptor):
    def __init__(self, metrics: Metrics, bridge_token: str | None = None):
        self.metrics = metrics
        self.bridge_token = bridge_token

    def from_bridge(self, context: ServicerContext) -> bool:
        """True for a call of the in-process REST bridge (which counts it itself)."""
        if not self.bridge_token:
            return False
        sent = metadata(context).get(BRIDGE_METADATA)
        return sent is not None and hmac.compare_digest(sent.encode(), self.bridge_token.encode())

    @asynccontextmanager
    async def scope(self, method: str, request: Any, context: ServicerContext) -> AsyncIterator[None]:
        route, short = call.route_of(method)
        state = call.CallState(route=route, method=short)
        token = call.begin(state)
        if self.from_bridge(context):
            try:
                yield
            finally:
                call.end(token)
            return
        m = self.metrics
        m.concurrent.inc()
        started = time.perf_counter()
        code = "OK"
        try:
            yield
            code = code_name(context)
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            code = "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
            raise
        except grpc.aio.AbortError:
            code = code_name(context)
            raise
        except BaseException:
            code = "INTERNAL"
            raise
        finally:
            status = final_status(state, code)
            m.requests.labels(route, status).inc()
            m.request_duration.labels(route).observe(time.perf_counter() - started)
            if status == "timeout":
                m.timeouts.labels(short or route).inc()
            m.concurrent.dec()
            call.end(token)
