"""Wiring for `kronos-serve serve`: settings -> security, metrics, interceptors, gRPC server."""

from __future__ import annotations

import asyncio
import signal

from loguru import logger

from kronos_server.errors import KronosError
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.interceptors import build_interceptors
from kronos_server.rpc.server import GrpcServer
from kronos_server.security.keys import KeysFileError
from kronos_server.security.ratelimit import RateLimiter
from kronos_server.security_setup import build_security
from kronos_server.settings import Settings


def build_grpc_server(settings: Settings, metrics: Metrics | None = None) -> GrpcServer:
    metrics = metrics or Metrics()
    security = build_security(settings)
    interceptors = build_interceptors(
        metrics=metrics,
        authenticator=security.authenticator,
        limiter=RateLimiter(settings.rate_limit_spec()),
        max_request_bytes=settings.max_request_bytes,
        max_batch_items=settings.max_batch_items,
        mtls=settings.tls_client_ca_file is not None,
    )
    return GrpcServer(settings, metrics, interceptors)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then drain within KRONOS_SHUTDOWN_GRACE and return 0."""
    try:
        server = build_grpc_server(settings)
    except KeysFileError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    loader = asyncio.create_task(server.load())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({loader, stopper}, return_when=asyncio.FIRST_COMPLETED)
    failure = loader.exception() if loader in done else None
    if failure is not None:
        logger.error("model failed to load: {}", failure)
        stopper.cancel()
        await server.stop(0)
        return 2 if isinstance(failure, KronosError) and failure.code == "INVALID_ARGUMENT" else 1
    await stopper
    logger.info("signal received: draining for up to {}s", settings.shutdown_grace)
    if not loader.done():
        loader.cancel()
    await server.stop(settings.shutdown_grace)
    return 0
