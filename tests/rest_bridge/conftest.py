"""A real gRPC server (tiny parity model) and the REST bridge in front of it, as `serve` wires it."""

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
from kronos_server.app import build_bridge_app
from tests.servers import RunningServer, start_server


@dataclass
class Bridged:
    running: RunningServer
    client: TestClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Container-Name": self.running.container, "Authorization": f"Bearer {self.running.key}"}

    def count(self, name: str, **labels: str) -> float:
        return self.running.metrics.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def bridge(tmp: Path, **overrides: Any) -> Iterator[Bridged]:
    """Start a server with a bridge token, the in-process app over it, a TestClient (lifespan on)."""
    token = secrets.token_urlsafe(16)
    running = start_server(tmp, bridge_token=token, **overrides)
    try:
        app = build_bridge_app(running.settings, running.server, token)
        assert app is not None
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Bridged(running, client, token)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridged]:
    with bridge(tmp_path_factory.mktemp("bridge")) as b:
        yield b


@contextmanager
def served_over_http(tmp: Path, **overrides: Any) -> Iterator[tuple[RunningServer, int]]:
    """A server and the in-process app on real uvicorn (127.0.0.1, a free port): (server, port)."""
    token = secrets.token_urlsafe(16)
    running = start_server(tmp, bridge_token=token, **overrides)
    try:
        app = build_bridge_app(running.settings, running.server, token)
        assert app is not None
        http = HttpServer(app, "127.0.0.1", 0, grace=1)
        port = running.call(http.start())
        try:
            yield running, port
        finally:
            running.call(http.stop())
    finally:
        running.stop()
