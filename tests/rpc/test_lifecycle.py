"""The `kronos-serve serve` process: health transitions, SIGTERM drain, start-up failures."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx2 as httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.processes import ServerProcess, make_keys, parity_env
from tests.rest_bridge.helpers import body
from tests.rpc.helpers import request

SERVICE = "kronos.v1.KronosPredictor"


class Process(ServerProcess):
    """`kronos-serve serve` with the parity model and a keys file holding the container "tester"."""

    def __init__(self, tmp: Path, **env: str):
        self.keys, self.key = make_keys(tmp)
        super().__init__("serve", env={**parity_env(self.keys), **env})

    def wait_port(self, timeout: float = 60) -> int:
        return self.port("gRPC", timeout)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-container-name", "tester"), ("authorization", f"Bearer {self.key}"))


@pytest.fixture
def process(tmp_path: Path) -> Iterator[Process]:
    p = Process(tmp_path)
    yield p
    p.stop()


def test_health_transitions_and_sigterm_loses_nothing(process: Process) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{process.wait_port()}")
    health = health_pb2_grpc.HealthStub(channel)
    seen: list[int] = []

    def watch() -> None:
        try:
            for reply in health.Watch(health_pb2.HealthCheckRequest(service=SERVICE)):
                if not seen or seen[-1] != reply.status:
                    seen.append(reply.status)
        except grpc.RpcError:
            pass

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.monotonic() + 60
    while health.Check(health_pb2.HealthCheckRequest(service=SERVICE)).status != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert health.Check(health_pb2.HealthCheckRequest(service="")).status == 1
    stub = pb_grpc.KronosPredictorStub(channel)
    futures = [
        stub.PredictSingle.future(
            request(60, 64, start=i * 50, sample_count=4, seed=i), metadata=process.metadata
        )
        for i in range(4)
    ]
    time.sleep(0.3)
    process.proc.send_signal(signal.SIGTERM)
    results = [f.result(timeout=60) for f in futures]
    assert all(len(r.forecast.close) == 64 for r in results)  # nothing accepted is lost
    assert process.proc.wait(60) == 0
    assert (
        seen[0] == health_pb2.HealthCheckResponse.NOT_SERVING
        or seen[0] == health_pb2.HealthCheckResponse.SERVING
    )
    assert health_pb2.HealthCheckResponse.SERVING in seen
    logs = [json.loads(line) for line in process.lines if line.startswith("{")]
    assert any("draining" in entry["message"] for entry in logs)


def _readyz(base: str) -> int | None:
    """readyz's HTTP status, or None when the port refuses the connection."""
    try:
        return httpx.get(f"{base}/v1/readyz", timeout=2).status_code
    except httpx.TransportError:
        return None


def test_drain_delay_reports_not_ready_while_still_serving(tmp_path: Path) -> None:
    process = Process(tmp_path, KRONOS_DRAIN_DELAY="2")
    try:
        process.wait_ready()
        base = f"http://127.0.0.1:{process.port('HTTP')}"
        assert _readyz(base) == 200
        channel = grpc.insecure_channel(process.target)
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.KronosPredictorStub(channel)
        process.signal(signal.SIGTERM)
        signalled = time.monotonic()
        deadline = signalled + 1.5
        while _readyz(base) != 503:
            assert time.monotonic() < deadline, "readyz never answered 503 after SIGTERM"
            time.sleep(0.02)
        reply = httpx.get(f"{base}/v1/readyz", timeout=2)
        assert reply.status_code == 503 and reply.json()["details"]["draining"] is True, reply.text
        check = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.proc.poll() is None
        # still serving during the delay: a new call is answered, over gRPC and REST
        assert len(stub.PredictSingle(request(30, 2), metadata=process.metadata).forecast.close) == 2
        auth = {"X-Container-Name": "tester", "Authorization": f"Bearer {process.key}"}
        rest = httpx.post(f"{base}/v1/predict/single", json=body(30, 2), headers=auth, timeout=30)
        assert rest.status_code == 200, rest.text
        assert process.proc.wait(60) == 0
        assert time.monotonic() - signalled >= 2
        assert _readyz(base) is None  # closed after the delay and the drain
    finally:
        process.stop()


def test_a_second_signal_ends_the_drain_delay(tmp_path: Path) -> None:
    process = Process(tmp_path, KRONOS_DRAIN_DELAY="60")
    try:
        process.wait_ready()
        base = f"http://127.0.0.1:{process.port('HTTP')}"
        process.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _readyz(base) != 503:
            assert time.monotonic() < deadline, "readyz never answered 503 after SIGTERM"
            time.sleep(0.02)
        process.signal(signal.SIGINT)
        assert process.proc.wait(10) == 0  # not the 60 s
    finally:
        process.stop()


def test_without_drain_delay_an_idle_server_closes_at_once(tmp_path: Path) -> None:
    process = Process(tmp_path)
    try:
        process.wait_ready()
        base = f"http://127.0.0.1:{process.port('HTTP')}"
        assert _readyz(base) == 200
        process.signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert process.proc.wait(30) == 0
        assert time.monotonic() - signalled < 1.5
        assert not any("still serving" in line for line in process.lines)
    finally:
        process.stop()


def test_missing_model_directory_fails_start_up_clearly(tmp_path: Path) -> None:
    p = Process(tmp_path, KRONOS_MODEL_PATH=str(tmp_path / "nowhere"))
    try:
        assert p.proc.wait(60) == 2  # a caller's mistake (README: exit status 2)
        text = "".join(p.lines)
        assert "does not exist" in text and "nowhere" in text
    finally:
        p.stop()


def test_invalid_setting_fails_naming_the_variable(tmp_path: Path) -> None:
    p = Process(tmp_path, KRONOS_RATE_LIMIT="lots")
    try:
        assert p.proc.wait(60) == 2
        assert "KRONOS_RATE_LIMIT" in "".join(p.lines)
    finally:
        p.stop()
