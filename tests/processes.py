"""`kronos-serve` subprocesses for the tests that need a whole process (signals, start-up, replicas).

The server logs the ports it bound (``gRPC listening on HOST:PORT``, ``HTTP listening on ...``);
the tests start it on port 0 and read the real ports from that line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kronos_server.security.keys import add_key
from tests.conftest import PARITY

PORT_LINE = re.compile(r"(gRPC|HTTP) listening on [\d.]+:(\d+)")
READINESS = "kronos.v1.KronosPredictor"


def parity_env(keys_file: Path) -> dict[str, str]:
    """Settings for a loopback server on free ports with the tiny parity model and a keys file."""
    return {
        "KRONOS_HOST": "127.0.0.1",
        "KRONOS_GRPC_PORT": "0",
        "KRONOS_HTTP_PORT": "0",
        "KRONOS_MODEL_PATH": str(PARITY / "predictor"),
        "KRONOS_TOKENIZER_PATH": str(PARITY / "tokenizer"),
        "KRONOS_MAX_CONTEXT": "64",
        "KRONOS_API_KEYS_FILE": str(keys_file),
        "KRONOS_LOG_FORMAT": "json",
        "KRONOS_SHUTDOWN_GRACE": "30",
    }


def make_keys(tmp: Path, container: str = "tester") -> tuple[Path, str]:
    """A keys file with one container; returns (path, the container's key)."""
    keys = tmp / "keys.json"
    return keys, add_key(keys, container)


class ServerProcess:
    """One `kronos-serve <command>` subprocess, its output lines and the ports it logged."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str],
        cwd: Path | None = None,
        command: Sequence[str] = (sys.executable, "-m", "kronos_server.cli"),
        inherit_env: bool = True,
    ) -> None:
        """``command *args`` (default: ``python -m kronos_server.cli serve``) with ``env`` added to
        this process's environment, or as the whole environment when ``inherit_env`` is false."""
        self.proc = subprocess.Popen(
            [*command, *(args or ("serve",))],
            env={**os.environ, **env} if inherit_env else env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ports: dict[str, int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = PORT_LINE.search(line)
            if match:
                self.ports[match.group(1)] = int(match.group(2))

    def port(self, kind: str = "gRPC", timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while kind not in self.ports:
            assert self.proc.poll() is None and time.monotonic() < end, "".join(self.lines)
            time.sleep(0.05)
        return self.ports[kind]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port('gRPC')}"

    def wait_ready(self, timeout: float = 90) -> None:
        """Until readiness says SERVING (model loaded and warm)."""
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            end = time.monotonic() + timeout
            while True:
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(service=READINESS), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                assert self.proc.poll() is None and time.monotonic() < end, "".join(self.lines)
                time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
