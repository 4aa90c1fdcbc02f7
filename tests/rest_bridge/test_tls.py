"""REST with gRPC TLS on: the in-process API answers (it calls no gRPC), and the standalone
bridge reaches an mTLS server with the KRONOS_BRIDGE_TLS_* settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kronos_bridge.app import create_app
from kronos_server.app import build_rest_app
from kronos_server.settings import SettingsError, load_settings

# the certificates and the TLS / mTLS servers of the client tests (and their need for openssl)
from tests.clients.test_tls import mtls_server, pki, pytestmark, self_signed_server  # noqa: F401
from tests.rest_bridge.helpers import body
from tests.servers import RunningServer

SINGLE = "/v1/predict/single"


def auth(running: RunningServer) -> dict[str, str]:
    return {"X-Container-Name": running.container, "Authorization": f"Bearer {running.key}"}


def test_serve_answers_rest_with_grpc_tls_on(self_signed_server: RunningServer) -> None:  # noqa: F811
    running = self_signed_server
    assert running.settings.tls_cert_file is not None
    with TestClient(build_rest_app(running.settings, running.server)) as client:
        assert client.get("/v1/readyz").status_code == 200
        reply = client.post(SINGLE, json=body(30, 2), headers=auth(running))
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["prediction"]) == 2
        assert client.post(SINGLE, json=body(30, 2)).status_code == 401


def test_the_standalone_bridge_calls_an_mtls_server(
    mtls_server: RunningServer,  # noqa: F811
    pki: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = load_settings(
        dev_keys_dir=tmp_path / "dev",
        bridge_tls_ca_file=pki / "ca.pem",
        bridge_tls_client_cert_file=pki / "client.pem",
        bridge_tls_client_key_file=pki / "client.key",
    )
    target = f"localhost:{mtls_server.server.port}"
    with TestClient(create_app(settings, grpc_target=target)) as client:
        assert client.get("/v1/readyz").status_code == 200
        # the bridge's certificate (CN=tester) is the identity the server sees: no key needed
        reply = client.post(SINGLE, json=body(30, 2))
        assert reply.status_code == 200, reply.text
        assert client.get("/v1/models").json()["models"][0]["max_context"] == 64


def test_the_standalone_bridge_without_its_certificate_is_refused(
    mtls_server: RunningServer,  # noqa: F811
    pki: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = load_settings(dev_keys_dir=tmp_path / "dev", bridge_tls_ca_file=pki / "ca.pem")
    with TestClient(create_app(settings, grpc_target=f"localhost:{mtls_server.server.port}")) as client:
        assert client.get("/v1/readyz").status_code == 503
        reply = client.post(SINGLE, json=body(30, 2), headers=auth(mtls_server))
        assert reply.status_code == 503 and reply.json()["error"] == "unavailable"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"bridge_tls_client_cert_file": "c.pem"}, "KRONOS_BRIDGE_TLS_CLIENT_KEY_FILE"),
        (
            {"bridge_tls_client_cert_file": "c.pem", "bridge_tls_client_key_file": "c.key"},
            "KRONOS_BRIDGE_TLS_CA_FILE",
        ),
    ],
)
def test_bridge_tls_settings_come_in_pairs(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)


def test_an_unreadable_bridge_ca_file_is_named(tmp_path: Path) -> None:
    settings = load_settings(dev_keys_dir=tmp_path / "dev", bridge_tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(SettingsError, match="KRONOS_BRIDGE_TLS_CA_FILE"):
        create_app(settings, grpc_target="127.0.0.1:1")
