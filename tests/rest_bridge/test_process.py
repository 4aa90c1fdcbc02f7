"""`kronos-serve serve` runs gRPC and REST in one process; `kronos-serve bridge` runs REST alone."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx2 as httpx
import pytest

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.processes import ServerProcess, make_keys, parity_env
from tests.rest_bridge.helpers import body, poll
from tests.rpc.helpers import request

Served = tuple[ServerProcess, str]


def Process(*args: str, **env: str) -> ServerProcess:
    return ServerProcess(*args, env={"KRONOS_HOST": "127.0.0.1", "KRONOS_LOG_FORMAT": "json", **env})


def _env(tmp: Path) -> tuple[dict[str, str], str]:
    keys, key = make_keys(tmp)
    return parity_env(keys), key


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    env, key = _env(tmp_path)
    p = Process("serve", **env)
    yield p, key
    p.stop()


def _ready(base: str) -> None:
    poll(lambda: httpx.get(f"{base}/v1/readyz").status_code == 200, timeout=60)


def test_serve_runs_grpc_and_rest_on_free_ports_and_drains_on_sigterm(
    serve: Served,
) -> None:
    process, key = serve
    grpc_port, http_port = process.port("gRPC"), process.port("HTTP")
    assert grpc_port != http_port
    base = f"http://127.0.0.1:{http_port}"
    assert httpx.get(f"{base}/v1/healthz").json() == {"status": "ok"}
    _ready(base)
    auth = {"X-Container-Name": "tester", "Authorization": f"Bearer {key}"}
    reply = httpx.post(f"{base}/v1/predict/single", json=body(30, 3), headers={**auth, "X-Request-ID": "p-1"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-request-id"] == "p-1" and len(reply.json()["prediction"]) == 3
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
    md = (("x-container-name", "tester"), ("authorization", f"Bearer {key}"))
    assert len(stub.PredictSingle(request(30, 2), metadata=md).forecast.close) == 2

    def counted() -> str:
        return httpx.get(f"{base}/v1/metrics").text

    poll(lambda: 'route="/kronos.v1.KronosPredictor/PredictSingle",status="success"} 1.0' in counted())
    text = counted()
    assert 'kronos_requests_total{route="/v1/predict/single",status="success"} 1.0' in text
    # one REST and one gRPC call: the REST one is not counted again under the gRPC route
    assert 'route="/kronos.v1.KronosPredictor/PredictSingle",status="success"} 1.0' in text

    # a REST call in flight when SIGTERM comes is answered; then the process exits 0
    results: list[httpx.Response] = []
    slow = threading.Thread(
        target=lambda: results.append(
            httpx.post(
                f"{base}/v1/predict/single", json=body(60, 64, sample_count=8), headers=auth, timeout=60
            )
        )
    )
    slow.start()
    time.sleep(0.3)
    process.proc.send_signal(signal.SIGTERM)
    slow.join(60)
    assert results and results[0].status_code == 200, results
    assert len(results[0].json()["prediction"]) == 64
    assert process.proc.wait(60) == 0
    assert any("draining" in line for line in process.lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_standalone_bridge_on_the_configured_port(serve: Served, tmp_path: Path) -> None:
    process, key = serve
    grpc_port = process.port("gRPC")
    http_port = _free_port()
    key_file = tmp_path / "bridge.key"
    key_file.write_text(key)
    bridge = Process(
        "bridge",
        "--grpc-target",
        f"127.0.0.1:{grpc_port}",
        KRONOS_HTTP_PORT=str(http_port),
        KRONOS_BRIDGE_CONTAINER="tester",
        KRONOS_BRIDGE_KEY_FILE=str(key_file),
    )
    try:
        assert bridge.port("HTTP") == http_port
        base = f"http://127.0.0.1:{http_port}"
        _ready(base)
        assert httpx.get(f"{base}/v1/readyz").json()["device"] == "cpu"
        auth = {"X-Container-Name": "tester", "Authorization": f"Bearer {key}"}
        reply = httpx.post(f"{base}/v1/predict/single", json=body(30, 2), headers=auth)
        assert reply.status_code == 200, reply.text
        bridge.proc.send_signal(signal.SIGTERM)
        assert bridge.proc.wait(30) == 0
    finally:
        bridge.stop()


def test_bridge_with_an_unreadable_key_file_names_the_variable(tmp_path: Path) -> None:
    p = Process(
        "bridge",
        "--grpc-target",
        "127.0.0.1:1",
        KRONOS_HTTP_PORT="0",
        KRONOS_BRIDGE_CONTAINER="tester",
        KRONOS_BRIDGE_KEY_FILE=str(tmp_path / "missing"),
    )
    try:
        assert p.proc.wait(60) == 2
        assert "KRONOS_BRIDGE_KEY_FILE" in "".join(p.lines)
    finally:
        p.stop()
