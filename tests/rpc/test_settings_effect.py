"""Each server setting takes effect (the ones not covered by the rejection tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import torch

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.errors import CheckpointError
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.model.checkpoint import content_version
from kronos_server.security.keys import add_key
from tests.conftest import PARITY
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_grpc_port_model_paths_and_max_context(tmp_path: Path) -> None:
    port = _free_port()
    running = start_server(
        tmp_path,
        grpc_port=port,
        model_path=DEFAULT_MODEL_DIR / "predictor",
        tokenizer_path=DEFAULT_MODEL_DIR / "tokenizer",
        max_context=300,
        max_history=500,
        max_sample_count=5,
        default_top_p=0.8,
        default_sample_count=2,
    )
    try:
        assert running.server.port == port
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        assert info.model_version == content_version(DEFAULT_MODEL_DIR / "predictor")
        assert info.tokenizer_version == content_version(DEFAULT_MODEL_DIR / "tokenizer")
        # the embedded model says what it is, not the name of its directory
        assert (info.model_name, info.tokenizer_name) == (
            "kronos-serve-embedded-demo",
            "kronos-serve-embedded-demo-tokenizer",
        )
        assert info.max_context == 300 and info.limits.max_pred_len == 300
        assert info.limits.max_history == 500 and info.limits.max_sample_count == 5
        assert info.defaults.top_p == pytest.approx(0.8) and info.defaults.sample_count == 2
        assert stub.PredictSingle(request(40, 3), metadata=running.auth_metadata).sample_count == 2
        with pytest.raises(grpc.RpcError) as err:
            stub.PredictSingle(request(40, 301), metadata=running.auth_metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        running.stop()


def test_cuda_device_without_cuda_fails_clearly(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    running = start_server(tmp_path, load=False, device="cuda")
    try:
        with pytest.raises(CheckpointError, match="CUDA"):
            running.call(running.server.load())
    finally:
        running.stop()


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_threads_setting(tmp_path: Path, threads: int) -> None:
    running = start_server(tmp_path, torch_threads=threads)
    try:
        assert running.server.dataplane is not None
        assert running.server.dataplane.engine.stats().torch_threads == threads
    finally:
        running.stop()


def start_default_model_server(tmp_path: Path, **settings: Any) -> RunningServer:
    """A server with the embedded model (slow enough per step for timing-sensitive tests)."""
    return start_server(
        tmp_path,
        model_path=DEFAULT_MODEL_DIR / "predictor",
        tokenizer_path=DEFAULT_MODEL_DIR / "tokenizer",
        max_context=512,
        **settings,
    )


def test_shutdown_grace_zero_cancels_in_flight_calls(tmp_path: Path) -> None:
    running = start_default_model_server(
        tmp_path,
        shutdown_grace=0,
    )
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
    future = stub.PredictSingle.future(request(400, 300, sample_count=32), metadata=running.auth_metadata)
    time.sleep(0.3)
    started = time.monotonic()
    running.call(running.server.stop())  # grace from settings: 0
    with pytest.raises(grpc.RpcError):
        future.result(timeout=30)
    assert time.monotonic() - started < 5
    running.stop()


def test_dev_key_is_made_when_nothing_is_configured(tmp_path: Path) -> None:
    running = start_server(tmp_path, api_keys_file=None, dev_keys_dir=tmp_path / "devkeys")
    try:
        key = (tmp_path / "devkeys" / "dev-key.txt").read_text().strip()
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
        md = (("x-container-name", "dev"), ("authorization", f"Bearer {key}"))
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=md).max_context == 64
        with pytest.raises(grpc.RpcError) as err:
            stub.GetModelInfo(pb.GetModelInfoRequest())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED  # never open by default
    finally:
        running.stop()


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA, a server certificate for localhost and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    new_key = ["req", "-newkey", "rsa:2048", "-nodes"]
    _openssl(
        *new_key,
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        f"{d}/ca.key",
        "-out",
        f"{d}/ca.pem",
    )
    extensions = {
        "server": "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        "client": "basicConstraints=CA:FALSE\n",
    }
    for name, cn in (("server", "localhost"), ("client", "trader-7")):
        _openssl(*new_key, "-subj", f"/CN={cn}", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr")
        (d / f"{name}.ext").write_text(extensions[name])
        sign = ["x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key"]
        _openssl(
            *sign, "-CAcreateserial", "-days", "2", "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem"
        )
    return d


def test_tls_with_api_key(tmp_path: Path, pki: Path) -> None:
    running = start_server(tmp_path, tls_cert_file=pki / "server.pem", tls_key_file=pki / "server.key")
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
        channel = grpc.secure_channel(f"localhost:{running.server.port}", creds)
        stub = pb_grpc.KronosPredictorStub(channel)
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata).max_context == 64
        plain = pb_grpc.KronosPredictorStub(grpc.insecure_channel(f"localhost:{running.server.port}"))
        with pytest.raises(grpc.RpcError):
            plain.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata, timeout=3)
    finally:
        running.stop()


def test_mtls_certificate_name_is_the_container(tmp_path: Path, pki: Path) -> None:
    keys = tmp_path / "keys.json"
    add_key(keys, "trader-7", methods=["GetModelInfo"])
    running = start_server(
        tmp_path,
        api_keys_file=keys,
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server.key",
        tls_client_ca_file=pki / "ca.pem",
    )
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=(pki / "ca.pem").read_bytes(),
            private_key=(pki / "client.key").read_bytes(),
            certificate_chain=(pki / "client.pem").read_bytes(),
        )
        stub = pb_grpc.KronosPredictorStub(grpc.secure_channel(f"localhost:{running.server.port}", creds))
        assert (
            stub.GetModelInfo(pb.GetModelInfoRequest()).max_context == 64
        )  # no key: the cert is the identity
        with pytest.raises(grpc.RpcError) as err:
            stub.PredictSingle(request())
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        running.stop()


def test_parity_paths_are_the_fixture_default() -> None:
    assert (PARITY / "predictor" / "config.json").exists()


def _connections_over(target: str, md: tuple[tuple[str, str], ...], seconds: float) -> tuple[int, int]:
    """(times the channel became READY, calls made) calling PredictSingle back to back for ``seconds``."""
    channel = grpc.insecure_channel(target)
    readies: list[grpc.ChannelConnectivity] = []
    channel.subscribe(lambda s: readies.append(s) if s == grpc.ChannelConnectivity.READY else None)
    stub = pb_grpc.KronosPredictorStub(channel)
    calls = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        # wait_for_ready: a call made while the channel reconnects waits instead of failing
        assert len(stub.PredictSingle(request(40, 2), metadata=md, wait_for_ready=True).forecast.close) == 2
        calls += 1
    channel.close()
    return len(readies), calls


@pytest.mark.parametrize("age", [0.0, 0.5])
def test_max_connection_age_makes_clients_reconnect_without_failing_calls(tmp_path: Path, age: float) -> None:
    """With an age, the server sends GOAWAY and the client reconnects (re-resolving, so a
    scaled-out Deployment gets traffic); no call fails. Without one, one connection serves all."""
    running = start_server(tmp_path, max_connection_age=age)
    try:
        readies, calls = _connections_over(running.target, running.auth_metadata, 2.5)
        assert calls > 10
        if age:
            assert readies >= 3, readies  # ~2.5 s / 0.5 s (+-10% jitter) reconnects
        else:
            assert readies == 1, readies
    finally:
        running.stop()


def test_connection_age_lets_a_running_call_finish(tmp_path: Path) -> None:
    """A call longer than the age still completes: the grace is the inference timeout."""
    running = start_default_model_server(
        tmp_path,
        max_connection_age=0.2,
    )
    try:
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
        started = time.monotonic()
        reply = stub.PredictSingle(request(400, 120, sample_count=8), metadata=running.auth_metadata)
        assert time.monotonic() - started > 0.4  # ran past two connection ages
        assert len(reply.forecast.close) == 120
    finally:
        running.stop()
