"""healthz, readyz (503 -> 200, draining), models, metrics, OpenAPI and docs; header forwarding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from kronos_bridge.app import create_app, start_draining
from kronos_server.model.checkpoint import content_version
from kronos_server.security.keys import add_key
from kronos_server.settings import load_settings
from tests.conftest import PARITY
from tests.rest_bridge.conftest import Bridged, bridge
from tests.rest_bridge.helpers import body


def test_healthz_is_always_cheap(bridged: Bridged) -> None:
    reply = bridged.client.get("/v1/healthz")
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}


def test_readyz_503_until_loaded_then_200_with_versions_then_503_draining(tmp_path: Path) -> None:
    with bridge(tmp_path, load=False) as b:
        reply = b.client.get("/v1/readyz")
        assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
        out = reply.json()
        assert out["error"] == "unavailable" and out["details"]["model_loaded"] is False
        b.running.call(b.running.server.load())
        reply = b.client.get("/v1/readyz")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "ready": True,
            "model_loaded": True,
            "model_name": "predictor",
            "model_version": content_version(PARITY / "predictor"),
            "tokenizer_name": "tokenizer",
            "tokenizer_version": content_version(PARITY / "tokenizer"),
            "device": "cpu",
        }
        app: Any = b.client.app
        start_draining(app)
        reply = b.client.get("/v1/readyz")
        assert reply.status_code == 503 and reply.json()["details"] == {"draining": True}


def test_readyz_follows_grpc_readiness(tmp_path: Path) -> None:
    with bridge(tmp_path) as b:
        assert b.client.get("/v1/readyz").status_code == 200
        b.running.call(b.running.server.health.ready(False))
        assert b.client.get("/v1/readyz").status_code == 503


def test_models_forwards_credentials(bridged: Bridged) -> None:
    reply = bridged.client.get("/v1/models", headers=bridged.auth)
    assert reply.status_code == 200, reply.text
    (info,) = reply.json()["models"]
    assert info["max_context"] == 64
    assert info["model_version"] == content_version(PARITY / "predictor")
    assert info["limits"]["max_pred_len"] == 64
    assert isinstance(info["limits"]["max_request_bytes"], int)
    assert info["defaults"]["top_p"] == pytest.approx(0.9)
    assert bridged.client.get("/v1/models").status_code == 401


def test_metrics_is_prometheus_text_of_the_whole_registry(bridged: Bridged) -> None:
    bridged.client.post("/v1/predict/single", json=body(), headers=bridged.auth)
    reply = bridged.client.get("/v1/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(reply.text)}
    assert {"kronos_requests", "kronos_model_loaded", "kronos_prediction_input_size"} <= names
    assert 'kronos_requests_total{route="/v1/predict/single",status="success"}' in reply.text


def test_openapi_and_docs(bridged: Bridged) -> None:
    doc = bridged.client.get("/v1/openapi.json").json()
    assert {
        "/v1/predict/single",
        "/v1/predict/batch",
        "/v1/healthz",
        "/v1/readyz",
        "/v1/models",
        "/v1/metrics",
    } <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert {"PredictRequestBody", "BatchRequestBody", "Candle", "Overrides", "ErrorBody", "ModelInfo"} <= set(
        schemas
    )
    single = doc["paths"]["/v1/predict/single"]["post"]
    assert single["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PredictRequestBody"
    )
    assert {"200", "401", "413", "422", "429", "503", "504"} <= set(single["responses"])
    docs = bridged.client.get("/v1/docs")
    assert docs.status_code == 200 and "/v1/openapi.json" in docs.text


def test_request_id_and_container_are_forwarded(bridged: Bridged, monkeypatch: pytest.MonkeyPatch) -> None:
    dp = bridged.running.server.dataplane
    assert dp is not None
    seen: list[str | None] = []
    original = dp.predict

    async def spy(series: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("request_id"))
        return await original(series, **kwargs)

    monkeypatch.setattr(dp, "predict", spy)
    reply = bridged.client.post(
        "/v1/predict/single", json=body(), headers={**bridged.auth, "X-Request-ID": "trace-42"}
    )
    assert reply.status_code == 200
    assert reply.headers["x-request-id"] == "trace-42"
    assert seen == ["trace-42"]  # the gRPC service ran the call under the caller's id
    reply = bridged.client.post("/v1/predict/single", json=body(), headers=bridged.auth)
    assert seen[-1] == reply.headers["x-request-id"]  # generated by the bridge, seen by gRPC


def test_standalone_bridge_reads_versions_with_its_own_credentials(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    add_key(keys, "tester")
    bridge_key = add_key(keys, "bridge", methods=["GetModelInfo"])
    key_file = tmp_path / "bridge-key.txt"
    key_file.write_text(bridge_key + "\n")
    with bridge(tmp_path, api_keys_file=keys) as b:
        plain = load_settings(dev_keys_dir=tmp_path / "dev")
        with TestClient(create_app(plain, grpc_target=b.running.target)) as client:
            assert client.get("/v1/readyz").json() == {"ready": True, "model_loaded": True}
        own = load_settings(
            dev_keys_dir=tmp_path / "dev", bridge_container="bridge", bridge_key_file=key_file
        )
        with TestClient(create_app(own, grpc_target=b.running.target)) as client:
            out = client.get("/v1/readyz").json()
            assert out["model_version"] == content_version(PARITY / "predictor") and out["device"] == "cpu"
        wrong = load_settings(
            dev_keys_dir=tmp_path / "dev", bridge_container="tester", bridge_key_file=key_file
        )
        with TestClient(create_app(wrong, grpc_target=b.running.target)) as client:
            assert client.get("/v1/readyz").json() == {"ready": True, "model_loaded": True}


def test_standalone_bridge_with_an_unreachable_server_is_not_ready() -> None:
    settings = load_settings()
    with TestClient(create_app(settings, grpc_target="127.0.0.1:1")) as client:
        assert client.get("/v1/readyz").status_code == 503
        reply = client.post("/v1/predict/single", json=body())
        assert reply.status_code == 503 and reply.json()["error"] == "unavailable"
