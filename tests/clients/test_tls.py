"""TLS and mTLS: the client and the health probe against servers with real certificates."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kronos_client import ClientConfig, KronosClient, KronosClientError
from kronos_client.cli import main
from tests.servers import start_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

SAN = "subjectAltName=DNS:localhost,IP:127.0.0.1"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def issue(cwd: Path, name: str, subject: str, ext: str | None) -> None:
    """A key and a certificate for ``subject`` signed by ca.pem."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject, cwd=cwd)  # fmt: skip
    extra = []
    if ext:
        (cwd / f"{name}.ext").write_text(ext + "\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *extra, cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=kronos-test-ca", cwd=d)  # fmt: skip
    issue(d, "server", "/CN=localhost", SAN)
    issue(d, "client", "/CN=tester", None)  # mTLS: the certificate names the container
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key", "-out", "self.pem",
            "-days", "2", "-subj", "/CN=localhost", "-addext", SAN, cwd=d)  # fmt: skip
    return d


@pytest.fixture(scope="module")
def mtls_server(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = start_server(
        tmp_path_factory.mktemp("mtls"),
        tls_cert_file=pki / "server.pem",
        tls_key_file=pki / "server.key",
        tls_client_ca_file=pki / "ca.pem",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def self_signed_server(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = start_server(
        tmp_path_factory.mktemp("selfsigned"), tls_cert_file=pki / "self.pem", tls_key_file=pki / "self.key"
    )
    yield running
    running.stop()


def test_mtls_client_certificate_is_the_identity(mtls_server: Any, pki: Path) -> None:
    config = ClientConfig(
        mtls_server.target,
        ca_cert=pki / "ca.pem",
        client_cert=pki / "client.pem",
        client_key=pki / "client.key",
    )
    with KronosClient(config) as client:  # no key: the certificate proves the container
        assert client.model_info().max_context == 64
        assert client.health() == "SERVING"


def test_mtls_cli_and_probe(mtls_server: Any, pki: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tls = ["--ca-cert", str(pki / "ca.pem"), "--client-cert", str(pki / "client.pem")]
    assert main(["info", "--target", mtls_server.target, *tls, "--client-key", str(pki / "client.key")]) == 0
    probe = ["health", "-addr", mtls_server.target, "-tls", "-tls-ca-cert", str(pki / "ca.pem")]
    client_pair = ["-tls-client-cert", str(pki / "client.pem"), "-tls-client-key", str(pki / "client.key")]
    assert main([*probe, *client_pair, "-service", "kronos.v1.KronosPredictor"]) == 0
    assert "status: SERVING" in capsys.readouterr().out
    assert main([*probe, "-connect-timeout", "500ms"]) == 2  # no client certificate: handshake refused


def test_tls_with_a_pinned_certificate_and_a_key(self_signed_server: Any, pki: Path) -> None:
    running = self_signed_server
    config = ClientConfig(
        running.target, container=running.container, key=running.key, ca_cert=pki / "self.pem"
    )
    with KronosClient(config) as client:
        assert client.model_info().max_context == 64
    named = ClientConfig(
        f"127.0.0.1:{running.server.port}", container=running.container, key=running.key,
        ca_cert=pki / "self.pem", server_name="localhost",
    )  # fmt: skip
    with KronosClient(named) as client:
        assert client.model_info().max_context == 64


def test_untrusted_server_is_unavailable(self_signed_server: Any) -> None:
    config = ClientConfig(self_signed_server.target, tls=True, retries=0, timeout=3)
    with KronosClient(config) as client, pytest.raises(KronosClientError) as info:
        client.health()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_probe_tls_modes(self_signed_server: Any, pki: Path, capsys: pytest.CaptureFixture[str]) -> None:
    addr = self_signed_server.target
    assert main(["health", "-addr", addr, "-tls", "-tls-no-verify"]) == 0
    assert main(["health", "-addr", addr, "-tls", "-tls-ca-cert", str(pki / "self.pem")]) == 0
    server_name = ["-tls-server-name", "localhost"]
    assert main(["health", "-addr", addr, "-tls", "-tls-ca-cert", str(pki / "self.pem"), *server_name]) == 0
    capsys.readouterr()
    assert main(["health", "-addr", addr, "-tls", "-connect-timeout", "500ms"]) == 2  # not trusted
    assert main(["health", "-addr", addr, "-connect-timeout", "500ms"]) == 2  # plaintext to a TLS port
    assert main(["health", "-addr", addr, "-tls", "-tls-ca-cert", str(pki / "missing.pem")]) == 1
