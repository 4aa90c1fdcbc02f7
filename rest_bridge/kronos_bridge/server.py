"""uvicorn inside an event loop we own, and the standalone ``kronos-serve bridge`` command.

uvicorn's own signal handling is turned off: the process's SIGTERM handler drains the
bridge and the gRPC server in order (readyz 503 first, then KRONOS_DRAIN_DELAY of serving on,
then the listeners close).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from loguru import logger

from kronos_bridge.app import create_app, start_draining
from kronos_server.settings import Settings


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the caller handles SIGTERM/SIGINT


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it; asyncio sets it only on sockets whose proto is TCP,
    # and without it a response's separate writes wait ~40 ms for the client's delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def serve_while_draining(stop: asyncio.Event, delay: float) -> None:
    """KRONOS_DRAIN_DELAY: after the signal that set ``stop``, keep serving for ``delay`` seconds
    while readiness already says not ready, so pollers see it before the listeners close.

    A second SIGTERM/SIGINT ends the wait early."""
    if delay <= 0:
        return
    logger.info("signal received: readiness reports not ready; still serving for {}s", delay)
    stop.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


class HttpServer:
    """The app on ``host:port`` (0 = any free port) until :meth:`stop`."""

    def __init__(self, app: FastAPI, host: str, port: int, grace: float):
        self.app = app
        self.host = host
        self.requested_port = port
        self.grace = grace
        self.port = 0
        self.task: asyncio.Task[None] | None = None
        self._server: _Uvicorn | None = None

    async def start(self) -> int:
        """Bind, serve in a task, wait until the app's lifespan has started; the bound port."""
        sock = _bind(self.host, self.requested_port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=max(1, round(self.grace)),
        )
        self._server = server = _Uvicorn(config)
        self.task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self.task.done():
                sock.close()
                raise RuntimeError("the HTTP server did not start (see the log above)")
            await asyncio.sleep(0.01)
        logger.info("HTTP listening on {}:{} (REST API under /v1)", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish within the grace, close the channel."""
        if self._server is None or self.task is None:
            return
        start_draining(self.app)
        self._server.should_exit = True
        await self.task
        logger.info("HTTP server stopped")


async def run_bridge(settings: Settings, grpc_target: str) -> int:
    """The standalone bridge: until SIGTERM/SIGINT, then drain and return 0."""
    app = create_app(settings, grpc_target=grpc_target)
    http = HttpServer(app, settings.host, settings.http_port, settings.shutdown_grace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await http.start()
    logger.info("REST bridge for the gRPC service at {}", grpc_target)
    assert http.task is not None
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({stopper, http.task}, return_when=asyncio.FIRST_COMPLETED)
    if not stopper.done():
        stopper.cancel()
        logger.error("the HTTP server stopped unexpectedly")
        return 1
    start_draining(app)
    await serve_while_draining(stop, settings.drain_delay)
    logger.info("signal received: draining for up to {}s", settings.shutdown_grace)
    await http.stop()
    return 0
