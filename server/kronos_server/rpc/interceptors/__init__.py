"""The interceptor chain of the gRPC server, in order: the first is the outermost."""

from __future__ import annotations

import grpc

from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.interceptors.auth import AuthInterceptor
from kronos_server.rpc.interceptors.errors import ErrorsInterceptor
from kronos_server.rpc.interceptors.metrics import MetricsInterceptor
from kronos_server.rpc.interceptors.ratelimit import RateLimitInterceptor
from kronos_server.rpc.interceptors.request_context import RequestContextInterceptor
from kronos_server.rpc.interceptors.size import SizeInterceptor
from kronos_server.security.auth import Authenticator
from kronos_server.security.ratelimit import RateLimiter


def build_interceptors(
    *,
    metrics: Metrics,
    authenticator: Authenticator,
    limiter: RateLimiter,
    max_request_bytes: int,
    max_batch_items: int,
    mtls: bool,
    bridge_token: str | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """``bridge_token``: the in-process REST bridge's token; its calls are counted by the bridge."""
    return [
        # 1. metrics: outermost, so every call is counted and timed, rejected ones included
        MetricsInterceptor(metrics, bridge_token),
        # 2. request context: x-request-id in and out, bound to every log line; access log
        RequestContextInterceptor(),
        # 3. auth: container identity (key, trusted allow-list or mTLS) and method permission
        AuthInterceptor(authenticator, metrics, mtls),
        # 4. rate limit: per-container token bucket, after auth so buckets exist only for real callers
        RateLimitInterceptor(limiter, metrics),
        # 5. size: message bytes and series per batch
        SizeInterceptor(metrics, max_request_bytes, max_batch_items),
        # 6. errors: innermost, maps the project's errors raised by the servicer to status codes
        ErrorsInterceptor(),
    ]
