"""Claims of docs/SECURITY.md that no other test backed: each test here is cited there."""

from __future__ import annotations

import hmac
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.errors import UnauthenticatedError
from kronos_server.security.auth import Authenticator
from kronos_server.security.keys import add_key, generate_key, load_keys
from kronos_server.security_setup import build_security
from kronos_server.settings import Settings, SettingsError, load_settings
from tests.processes import ServerProcess, parity_env
from tests.rest_bridge.conftest import bridge
from tests.rest_bridge.helpers import body, poll
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

# the header the loopback REST bridge of earlier releases marked its calls with, so that the
# metrics skipped them: nothing honours it now, and a forged one must grant nothing
BRIDGE_METADATA = "x-kronos-bridge"

INFO = pb.GetModelInfoRequest()


def stub_of(server: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(server.target))  # type: ignore[no-untyped-call]


def code_of(call: object, *args: object, **kwargs: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    code: grpc.StatusCode = err.value.code()
    return code


def md(container: str, key: str) -> tuple[tuple[str, str], ...]:
    return (("x-container-name", container), ("authorization", f"Bearer {key}"))


def count(server: RunningServer, name: str, **labels: str) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"KRONOS_{name.upper()}", raising=False)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    sink = logger.add(stream, level="DEBUG", format="{message}")
    yield stream
    logger.remove(sink)


# --- authentication -----------------------------------------------------------------------


def test_keys_are_compared_in_constant_time_for_known_and_unknown_containers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "alpha")
    auth = Authenticator(load_keys(path))
    compared: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert auth.authenticate("alpha", f"Bearer {key}", "PredictSingle").container == "alpha"
    for container in ("alpha", "nobody", "bad name!"):
        with pytest.raises(UnauthenticatedError, match="invalid container name or API key"):
            auth.authenticate(container, f"Bearer {generate_key()}", "PredictSingle")
    # one digest comparison per attempt, unknown containers included (against a dummy digest)
    assert len(compared) == 4
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_repeated_credential_headers_are_refused_on_both_transports(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    alpha = add_key(keys, "alpha")
    add_key(keys, "beta")
    with bridge(tmp_path, api_keys_file=keys) as b:
        stub = stub_of(b.running)
        right = ("authorization", f"Bearer {alpha}")
        wrong = ("authorization", f"Bearer {generate_key()}")
        name = ("x-container-name", "alpha")
        repeated = [
            (name, right, wrong),
            (name, wrong, right),
            (name, right, right),
            (name, ("x-container-name", "beta"), right),
            (("x-container-name", "beta"), name, right),
        ]
        for headers in repeated:
            assert code_of(stub.PredictSingle, request(), metadata=headers) == grpc.StatusCode.UNAUTHENTICATED
            reply = b.client.post("/v1/predict/single", json=body(), headers=list(headers))
            assert reply.status_code == 401, reply.text
            assert reply.json()["message"].startswith("ambiguous credentials")
            assert alpha not in reply.text

        # each is one unauthorized event; the same headers once each are served
        def refused() -> float:
            return sum(
                b.count("kronos_security_events_total", event="unauthorized", container=c)
                for c in ("alpha", "beta")
            )

        poll(lambda: refused() == 2 * len(repeated))
        assert stub.PredictSingle(request(), metadata=(name, right)).series_id == "s0"
        assert b.client.post("/v1/predict/single", json=body(), headers=[name, right]).status_code == 200


def test_the_bridge_token_grants_no_access(tmp_path: Path) -> None:
    with bridge(tmp_path) as b:
        stub = stub_of(b.running)
        for extra in ((), (("x-container-name", b.running.container),)):
            metadata = ((BRIDGE_METADATA, b.token), *extra)
            assert code_of(stub.GetModelInfo, INFO, metadata=metadata) == grpc.StatusCode.UNAUTHENTICATED
        # over REST the header is not forwarded at all: the bridge sets its own
        reply = b.client.get("/v1/models", headers={BRIDGE_METADATA: b.token})
        assert reply.status_code == 401


# --- rate limits --------------------------------------------------------------------------


def test_failed_attempts_do_not_spend_a_containers_rate_limit(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="2/minute")
    try:
        stub = stub_of(running)
        for _ in range(10):
            bad = md(running.container, generate_key())
            assert code_of(stub.GetModelInfo, INFO, metadata=bad) == grpc.StatusCode.UNAUTHENTICATED
        for _ in range(2):
            assert stub.GetModelInfo(INFO, metadata=running.auth_metadata).max_context == 64
        assert (
            code_of(stub.GetModelInfo, INFO, metadata=running.auth_metadata)
            == grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert count(running, "kronos_rate_limit_hits_total", container=running.container) == 1
        assert count(running, "kronos_rate_limit_hits_total", container="unknown") == 0
    finally:
        running.stop()


def test_a_keys_file_rate_limit_overrides_the_default_per_container(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    alpha = add_key(keys, "alpha", rate_limit="2/minute")
    beta = add_key(keys, "beta")
    running = start_server(tmp_path, api_keys_file=keys, rate_limit="5/minute")
    try:
        stub = stub_of(running)
        answers = []
        for _ in range(3):
            try:
                stub.GetModelInfo(INFO, metadata=md("alpha", alpha))
                answers.append("ok")
            except grpc.RpcError as err:
                answers.append(err.code().name)
        assert answers == ["ok", "ok", "RESOURCE_EXHAUSTED"]
        # beta has its own bucket, with the server's default of 5 a minute
        for _ in range(5):
            stub.GetModelInfo(INFO, metadata=md("beta", beta))
        assert (
            code_of(stub.GetModelInfo, INFO, metadata=md("beta", beta)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        )
    finally:
        running.stop()


def test_a_batch_costs_its_number_of_series(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="3/minute")
    try:
        stub = stub_of(running)
        pair = pb.PredictBatchRequest(items=[request(), request(start=5)])
        assert len(stub.PredictBatch(pair, metadata=running.auth_metadata).results) == 2  # 3 -> 1 left
        refused = code_of(stub.PredictBatch, pair, metadata=running.auth_metadata)
        assert refused == grpc.StatusCode.RESOURCE_EXHAUSTED  # 2 > 1
        assert stub.PredictSingle(request(), metadata=running.auth_metadata).series_id == "s0"  # 1 -> 0
    finally:
        running.stop()


# --- errors -------------------------------------------------------------------------------


def test_internal_errors_reach_grpc_callers_as_a_generic_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = start_server(tmp_path)
    try:
        dp = running.server.dataplane
        assert dp is not None

        async def broken(*args: object, **kwargs: object) -> object:
            raise RuntimeError("secret internals at 0xdeadbeef")

        monkeypatch.setattr(dp, "predict", broken)
        with pytest.raises(grpc.RpcError) as err:
            stub_of(running).PredictSingle(request(), metadata=running.auth_metadata)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert err.value.details() == "internal error; the server logged the details"
    finally:
        running.stop()


# --- keys ---------------------------------------------------------------------------------


def test_keys_are_read_once_at_start_so_rotation_needs_a_restart(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    old = add_key(keys, "alpha")
    running = start_server(tmp_path / "a", api_keys_file=keys)
    try:
        new = add_key(keys, "alpha", replace=True)  # keys add alpha --replace
        stub = stub_of(running)
        assert stub.GetModelInfo(INFO, metadata=md("alpha", old)).max_context == 64
        assert code_of(stub.GetModelInfo, INFO, metadata=md("alpha", new)) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        running.stop()
    restarted = start_server(tmp_path / "b", api_keys_file=keys)
    try:
        stub = stub_of(restarted)
        assert stub.GetModelInfo(INFO, metadata=md("alpha", new)).max_context == 64
        assert code_of(stub.GetModelInfo, INFO, metadata=md("alpha", old)) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        restarted.stop()


def test_a_bad_keys_file_stops_start_up_without_echoing_it(tmp_path: Path) -> None:
    secret = generate_key()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"version": 1, "containers": {"alpha": {"key_sha256": secret}}}))
    process = ServerProcess("serve", env=parity_env(keys))
    try:
        assert process.proc.wait(60) == 2
        poll(lambda: any("cannot start" in line for line in process.lines))
        output = "".join(process.lines)
        assert str(keys) in output and "key_sha256 must be a SHA-256 hex digest" in output
        assert secret not in output
    finally:
        process.stop()


def test_trusted_mode_warns_and_the_dev_key_is_never_logged(
    tmp_path: Path, clean_env: None, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    trusted = build_security(load_settings(trusted_containers="legacy-app", dev_keys_dir=tmp_path / "t"))
    assert trusted.dev_key is None
    assert (
        "trusted-network mode: 1 container(s) are accepted by x-container-name alone" in log_stream.getvalue()
    )
    assert not (tmp_path / "t").exists()  # trusted mode alone makes no dev key

    setup = build_security(load_settings(dev_keys_dir=tmp_path / "dev"))
    dev = setup.dev_key
    assert dev is not None and dev.container == "dev"
    err = capsys.readouterr().err
    # the terminal is told where the key is, never the key; the log stream gets neither
    assert str(dev.key_file) in err and "x-container-name: dev" in err
    assert dev.key not in err and dev.key not in log_stream.getvalue()
    assert setup.authenticator.authenticate("dev", f"Bearer {dev.key}", "PredictSingle").container == "dev"


# --- TLS ----------------------------------------------------------------------------------


def test_tls_settings_come_in_pairs(tmp_path: Path, clean_env: None) -> None:
    pem = tmp_path / "x.pem"
    with pytest.raises(
        SettingsError, match="KRONOS_TLS_CERT_FILE and KRONOS_TLS_KEY_FILE must be set together"
    ):
        load_settings(tls_cert_file=pem)
    with pytest.raises(SettingsError, match="KRONOS_TLS_CLIENT_CA_FILE"):
        load_settings(tls_client_ca_file=pem)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _issue(d: Path, ca: str, name: str, cn: str, extension: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{d}/{name}.key",
             "-out", f"{d}/{name}.csr")  # fmt: skip
    (d / f"{name}.ext").write_text(extension)
    authority = ["-CA", f"{d}/{ca}.pem", "-CAkey", f"{d}/{ca}.key", "-CAcreateserial"]
    _openssl("x509", "-req", "-in", f"{d}/{name}.csr", *authority, "-days", "2",
             "-extfile", f"{d}/{name}.ext", "-out", f"{d}/{name}.pem")  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CAs (the trusted one and a rogue one), a server certificate, and client
    certificates named "alpha" from each CA."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "rogue"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-x509", "-days", "2", "-subj", f"/CN={ca}",
                 "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.pem")  # fmt: skip
    _issue(d, "ca", "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _issue(d, "ca", "client", "alpha", "basicConstraints=CA:FALSE\n")
    _issue(d, "rogue", "forged", "alpha", "basicConstraints=CA:FALSE\n")
    return d


def test_mtls_refuses_clients_without_a_trusted_certificate_and_ignores_name_headers(
    tmp_path: Path, pki: Path
) -> None:
    keys = tmp_path / "keys.json"
    add_key(keys, "alpha", methods=["GetModelInfo"])
    beta = add_key(keys, "beta")
    running = start_server(
        tmp_path,
        api_keys_file=keys,
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server.key",
        tls_client_ca_file=pki / "ca.pem",
    )
    target = f"localhost:{running.server.port}"
    ca = (pki / "ca.pem").read_bytes()

    def stub(client: str | None) -> pb_grpc.KronosPredictorStub:
        if client is None:
            creds = grpc.ssl_channel_credentials(root_certificates=ca)
        else:
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca,
                private_key=(pki / f"{client}.key").read_bytes(),
                certificate_chain=(pki / f"{client}.pem").read_bytes(),
            )
        return pb_grpc.KronosPredictorStub(grpc.secure_channel(target, creds))  # type: ignore[no-untyped-call]

    try:
        # no certificate, or one from another CA naming a known container: no call gets through
        for client in (None, "forged"):
            code = code_of(stub(client).GetModelInfo, INFO, metadata=md("beta", beta), timeout=5)
            assert code == grpc.StatusCode.UNAVAILABLE
        alpha = stub("client")
        assert alpha.GetModelInfo(INFO).max_context == 64
        # the certificate names the caller: beta's name and valid key in the metadata change nothing
        denied = code_of(alpha.PredictSingle, request(), metadata=md("beta", beta))
        assert denied == grpc.StatusCode.PERMISSION_DENIED
        poll(lambda: count(running, "kronos_security_events_total", event="blocked", container="alpha") == 1)
    finally:
        running.stop()
