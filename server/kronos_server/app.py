"""Wiring for `kronos-serve serve`: settings -> security, metrics, the call gate, the gRPC
server, and the REST API on KRONOS_HTTP_PORT in the same process and event loop. Both
transports call the same dataplane through the same gate (one authenticator, one set of rate
limits, one set of metrics)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from typing import TYPE_CHECKING

from loguru import logger

from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.dataplane import Dataplane, ModelInfo
from kronos_server.errors import KronosError, UnavailableError
from kronos_server.forecast.types import Forecast, SeriesInput
from kronos_server.gate import Gate
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.server import GrpcServer
from kronos_server.security.keys import KeysFileError
from kronos_server.security.ratelimit import RateLimiter
from kronos_server.security_setup import build_security
from kronos_server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kronos_bridge.plane import ModelVersions
    from kronos_bridge.server import HttpServer


def build_gate(settings: Settings, metrics: Metrics) -> Gate:
    """The gate both transports of this process share."""
    security = build_security(settings)
    return Gate(
        metrics,
        authenticator=security.authenticator,
        limiter=RateLimiter(settings.rate_limit_spec()),
        max_request_bytes=settings.max_request_bytes,
        max_batch_items=settings.max_batch_items,
        mtls=settings.tls_client_ca_file is not None,
    )


def build_grpc_server(settings: Settings, metrics: Metrics | None = None) -> GrpcServer:
    metrics = metrics or Metrics()
    return GrpcServer(settings, metrics, build_gate(settings, metrics))


class ServedPlane:
    """The running server's dataplane, for the in-process REST routes: unavailable until the
    model is loaded, ready while the gRPC readiness says so."""

    def __init__(self, server: GrpcServer):
        self.server = server

    def _dp(self) -> Dataplane:
        dp = self.server.dataplane
        if dp is None:
            raise UnavailableError("the model is still loading; retry shortly")
        return dp

    async def predict(
        self, series: SeriesInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast:
        return await self._dp().predict(series, timeout=timeout, request_id=request_id)

    async def predict_batch(
        self, items: list[SeriesInput], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[Forecast | KronosError]:
        return await self._dp().predict_batch(items, timeout=timeout, request_id=request_id)

    async def backtest(
        self, request: BacktestInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        return await self._dp().backtest(request, timeout=timeout, request_id=request_id)

    async def model_info(self) -> ModelInfo:
        info = await self._dp().model_info()
        return dataclasses.replace(info, max_request_bytes=self.server.settings.max_request_bytes)

    async def ready(self) -> bool:
        return self.server.health.serving and self.server.dataplane is not None

    def versions_of(self, forecast: Forecast) -> tuple[str, str]:
        return self._dp().versions_of(forecast)

    async def versions(self) -> ModelVersions | None:
        from kronos_bridge.plane import ModelVersions

        dp = self.server.dataplane
        return ModelVersions.of(dp.info()) if dp is not None else None


def build_rest_app(settings: Settings, server: GrpcServer) -> FastAPI:
    """The in-process REST app: the /v1 routes over the server's dataplane and gate."""
    from kronos_bridge.app import create_app

    return create_app(settings, plane=ServedPlane(server), gate=server.gate)


def build_http_server(settings: Settings, server: GrpcServer) -> HttpServer:
    """The in-process REST API on KRONOS_HTTP_PORT (not yet started)."""
    from kronos_bridge.server import HttpServer

    app = build_rest_app(settings, server)
    return HttpServer(app, settings.host, settings.http_port, settings.shutdown_grace)


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
    server.metrics.event_loop.watch(loop)  # gRPC, REST and /v1/metrics all run on it
    await server.start()
    http: HttpServer | None = None
    try:
        http = build_http_server(settings, server)
        await http.start()
    except (OSError, RuntimeError, SettingsError) as exc:
        logger.error("cannot start the HTTP server on port {}: {}", settings.http_port, exc)
        await server.stop(0)
        return 2 if isinstance(exc, SettingsError) else 1
    loader = asyncio.create_task(server.load())
    stopper = asyncio.create_task(stop.wait())
    watched = {loader, stopper} | ({http.task} if http is not None and http.task is not None else set())
    while not stopper.done():
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        watched -= done
        failure = loader.exception() if loader in done else None
        if failure is not None:
            logger.error("model failed to load: {}", failure)
            stopper.cancel()
            await _stop_all(server, http, 0)
            return 2 if isinstance(failure, KronosError) and failure.code == "INVALID_ARGUMENT" else 1
        if http is not None and http.task in done:
            logger.error("the HTTP server stopped unexpectedly")
            stopper.cancel()
            loader.cancel()
            await _stop_all(server, None, 0)
            return 1
    if not loader.done():
        loader.cancel()
    await _report_draining(server, http)
    from kronos_bridge.server import serve_while_draining

    await serve_while_draining(stop, settings.drain_delay)
    logger.info("signal received: draining for up to {}s", settings.shutdown_grace)
    await _stop_all(server, http, settings.shutdown_grace)
    return 0


async def _report_draining(server: GrpcServer, http: HttpServer | None) -> None:
    """readyz 503 and gRPC readiness NOT_SERVING; both ports still serve calls."""
    if http is not None:
        from kronos_bridge.app import start_draining

        start_draining(http.app)
    await server.start_draining()


async def _stop_all(server: GrpcServer, http: HttpServer | None, grace: float) -> None:
    """Both drain together: readyz and gRPC readiness report not ready first, then in-flight
    calls of both get ``grace`` to finish; the dataplane closes once both have stopped."""
    started = time.monotonic()
    await _report_draining(server, http)
    await asyncio.gather(server.stop_serving(grace), http.stop() if http is not None else asyncio.sleep(0))
    await server.close(max(0.0, grace - (time.monotonic() - started)))
