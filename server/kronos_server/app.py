"""Wiring for `kronos-serve serve`: settings -> security, metrics, interceptors, gRPC server,
and the REST bridge on KRONOS_HTTP_PORT in the same process and event loop."""

from __future__ import annotations

import asyncio
import secrets
import signal
from typing import TYPE_CHECKING

from loguru import logger

from kronos_server.errors import KronosError
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.interceptors import build_interceptors
from kronos_server.rpc.server import GrpcServer
from kronos_server.security.keys import KeysFileError
from kronos_server.security.ratelimit import RateLimiter
from kronos_server.security_setup import build_security
from kronos_server.settings import Settings, SettingsError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kronos_bridge.server import HttpServer
    from kronos_bridge.upstream import ModelVersions


def build_grpc_server(
    settings: Settings, metrics: Metrics | None = None, bridge_token: str | None = None
) -> GrpcServer:
    metrics = metrics or Metrics()
    security = build_security(settings)
    interceptors = build_interceptors(
        metrics=metrics,
        authenticator=security.authenticator,
        limiter=RateLimiter(settings.rate_limit_spec()),
        max_request_bytes=settings.max_request_bytes,
        max_batch_items=settings.max_batch_items,
        mtls=settings.tls_client_ca_file is not None,
        bridge_token=bridge_token,
    )
    return GrpcServer(settings, metrics, interceptors)


def loopback_target(host: str, port: int) -> str:
    """Where this process reaches its own gRPC server."""
    if host in ("", "0.0.0.0", "*"):
        return f"127.0.0.1:{port}"
    if host in ("::", "[::]"):
        return f"[::1]:{port}"
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def build_bridge_app(settings: Settings, server: GrpcServer, bridge_token: str) -> FastAPI | None:
    """The in-process REST app over a loopback channel to ``server``; None when gRPC needs TLS."""
    from kronos_bridge.app import create_app
    from kronos_bridge.upstream import ModelVersions

    if settings.tls_cert_file is not None:
        logger.warning(
            "gRPC TLS is on: the in-process REST bridge is not started (it would call over plain "
            "loopback); run `kronos-serve bridge --grpc-target HOST:PORT` behind your TLS proxy"
        )
        return None

    def versions() -> ModelVersions | None:
        dp = server.dataplane
        if dp is None:
            return None
        info = dp.info()
        return ModelVersions(
            info.model_name, info.model_version, info.tokenizer_name, info.tokenizer_version, info.device
        )

    return create_app(
        settings,
        grpc_target=loopback_target(settings.host, server.port),
        metrics=server.metrics,
        model_info_provider=versions,
        bridge_token=bridge_token,
    )


def build_http_bridge(settings: Settings, server: GrpcServer, bridge_token: str) -> HttpServer | None:
    """The in-process REST bridge on KRONOS_HTTP_PORT (not yet started)."""
    from kronos_bridge.server import HttpServer

    app = build_bridge_app(settings, server, bridge_token)
    if app is None:
        return None
    return HttpServer(app, settings.host, settings.http_port, settings.shutdown_grace)


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then drain within KRONOS_SHUTDOWN_GRACE and return 0."""
    # the in-process bridge's calls carry this token so the gRPC metrics do not count them twice
    bridge_token = secrets.token_urlsafe(32)
    try:
        server = build_grpc_server(settings, bridge_token=bridge_token)
    except KeysFileError as exc:
        logger.error("cannot start: {}", exc)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server.metrics.event_loop.watch(loop)  # gRPC, the REST bridge and /v1/metrics all run on it
    await server.start()
    try:
        http = build_http_bridge(settings, server, bridge_token)
        if http is not None:
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
    calls get ``grace`` to finish (a REST call whose gRPC call is running finishes too)."""
    await _report_draining(server, http)
    await asyncio.gather(server.stop(grace), http.stop() if http is not None else asyncio.sleep(0))
