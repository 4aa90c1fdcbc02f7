"""The gRPC server's interceptors: one, the adapter of the call gate (which runs, in order:
request id, accounting and access log outermost, then authentication, rate limit, size)."""

from __future__ import annotations

import grpc

from kronos_server.forecast.limits import Limits
from kronos_server.gate import Gate
from kronos_server.rpc.interceptors.gate import GateInterceptor


def build_interceptors(gate: Gate, limits: Limits | None = None) -> list[grpc.aio.ServerInterceptor]:
    """``limits``: the server's, by which a backtest's origins are charged to the caller."""
    return [GateInterceptor(gate, limits)]
