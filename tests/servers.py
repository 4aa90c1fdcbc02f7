"""Real servers for tests: the gRPC server on port 0, on its own event-loop thread."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kronos_server.app import build_grpc_server
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc.server import GrpcServer
from kronos_server.security.keys import add_key
from kronos_server.settings import Settings, load_settings
from tests.conftest import PARITY

CONTAINER = "tester"


@dataclass
class RunningServer:
    """A started, loaded server; call from any thread."""

    server: GrpcServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    settings: Settings
    metrics: Metrics
    container: str
    key: str

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-container-name", self.container), ("authorization", f"Bearer {self.key}"))

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 5) -> None:
        if self.loop.is_running():
            self.call(self.server.stop(grace))
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def parity_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for the tiny parity model on a free port, with a keys file in ``tmp``."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "grpc_port": 0,
        "model_path": PARITY / "predictor",
        "tokenizer_path": PARITY / "tokenizer",
        "max_context": 64,
        "rate_limit": "100000/second",
        "log_level": "WARNING",
        "dev_keys_dir": tmp / "dev",
    }
    values.update(overrides)
    return load_settings(**values)


def start_server(
    tmp: Path,
    *,
    load: bool = True,
    key_name: str = CONTAINER,
    **overrides: Any,
) -> RunningServer:
    """Start a real server; unless overridden, its keys file holds one container ``key_name``."""
    key = ""
    if "api_keys_file" not in overrides and "trusted_containers" not in overrides:
        keys_file = tmp / "api-keys.json"
        key = add_key(keys_file, key_name)
        overrides["api_keys_file"] = keys_file
    settings = parity_settings(tmp, **overrides)
    metrics = Metrics()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="grpc-test-server", daemon=True)
    thread.start()

    async def build() -> GrpcServer:
        server = build_grpc_server(settings, metrics)
        await server.start()
        if load:
            await server.load()
        return server

    server = asyncio.run_coroutine_threadsafe(build(), loop).result(60)
    return RunningServer(server, loop, thread, settings, metrics, key_name, key)
