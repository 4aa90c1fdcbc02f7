"""A real gRPC server (tiny parity model) and the REST API over its dataplane, as `serve` wires it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kronos_bridge.server import HttpServer
from kronos_server.app import build_rest_app
from tests.servers import RunningServer, start_server


@dataclass
class Bridged:
    running: RunningServer
    client: TestClient
    # a value for x-kronos-bridge, the header the loopback bridge of earlier releases marked
    # its calls with: nothing may honour it now
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Container-Name": self.running.container, "Authorization": f"Bearer {self.running.key}"}

    def count(self, name: str, **labels: str) -> float:
        return self.running.metrics.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def bridge(tmp: Path, **overrides: Any) -> Iterator[Bridged]:
    """Start a server, the in-process REST app over its dataplane, a TestClient (lifespan on)."""
    running = start_server(tmp, **overrides)
    try:
        app = build_rest_app(running.settings, running.server)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Bridged(running, client, secrets.token_urlsafe(16))
    finally:
        running.stop()


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridged]:
    with bridge(tmp_path_factory.mktemp("bridge")) as b:
        yield b


@contextmanager
def served_over_http(tmp: Path, **overrides: Any) -> Iterator[tuple[RunningServer, int]]:
    """A server and the in-process app on real uvicorn (127.0.0.1, a free port): (server, port)."""
    running = start_server(tmp, **overrides)
    try:
        app = build_rest_app(running.settings, running.server)
        http = HttpServer(app, "127.0.0.1", 0, grace=1)
        port = running.call(http.start())
        try:
            yield running, port
        finally:
            running.call(http.stop())
    finally:
        running.stop()
