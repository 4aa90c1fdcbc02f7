"""Predict's probabilistic outputs over REST (in-process and standalone bridge): prob_close_up
always, the sample paths with "return_paths": true, the same values gRPC answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.forecast.types import FEATURES
from tests.rest_bridge.conftest import Bridged, bridge
from tests.rest_bridge.helpers import body
from tests.rest_bridge.test_remote import standalone
from tests.rpc.helpers import request

SINGLE = "/v1/predict/single"


def _rows(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float64)


def test_paths_and_prob_close_up(bridged: Bridged) -> None:
    payload = body(40, 5, seed=3, sample_count=6, quantiles=[0.1, 0.9])
    payload["return_paths"] = True
    out = bridged.client.post(SINGLE, json=payload, headers=bridged.auth)
    assert out.status_code == 200, out.text
    answer = out.json()
    assert len(answer["paths"]) == 6
    stamps = [row["timestamp"] for row in answer["prediction"]]
    for path in answer["paths"]:
        assert [row["timestamp"] for row in path] == stamps
        assert set(path[0]) == {"timestamp", *FEATURES}
    paths = np.stack([_rows(p) for p in answer["paths"]])
    np.testing.assert_allclose(paths.mean(axis=0)[:, :4], _rows(answer["prediction"])[:, :4], rtol=2e-6)
    last = np.float32(payload["candles"][-1]["close"])
    assert answer["prob_close_up"] == (paths[:, :, 3].astype(np.float32) > last).mean(axis=0).tolist()


def test_the_same_values_as_grpc(bridged: Bridged) -> None:
    payload = body(40, 4, start=10, seed=9, sample_count=3)
    payload["return_paths"] = True
    answer = bridged.client.post(SINGLE, json=payload, headers=bridged.auth).json()
    req = request(40, 4, start=10, seed=9, sample_count=3)
    req.return_paths = True
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(bridged.running.target))
    native = stub.PredictSingle(req, metadata=bridged.running.auth_metadata)
    assert answer["prob_close_up"] == list(native.prob_close_up)
    for rows, path in zip(answer["paths"], native.paths, strict=True):
        grpc_values = np.stack([np.asarray(getattr(path, n)) for n in FEATURES], axis=-1)
        # REST writes each float32 as its shortest decimal: the same float32 as gRPC's double
        np.testing.assert_array_equal(_rows(rows).astype(np.float32), grpc_values.astype(np.float32))


def test_no_paths_unless_asked(bridged: Bridged) -> None:
    answer = bridged.client.post(SINGLE, json=body(40, 3, seed=1, sample_count=2), headers=bridged.auth)
    assert "paths" not in answer.json() and len(answer.json()["prob_close_up"]) == 3
    payload = body(40, 3, seed=1, sample_count=2)
    payload["return_paths"] = False
    assert "paths" not in bridged.client.post(SINGLE, json=payload, headers=bridged.auth).json()


def test_batch_items_ask_for_paths_each(bridged: Bridged) -> None:
    asked = body(30, 2, seed=1, sample_count=2)
    asked["return_paths"] = True
    items = {"items": [asked, body(30, 2, start=40, seed=2)]}
    slots = bridged.client.post("/v1/predict/batch", json=items, headers=bridged.auth).json()
    assert len(slots[0]["paths"]) == 2 and "paths" not in slots[1]
    assert len(slots[1]["prob_close_up"]) == 2


def test_return_paths_must_be_a_boolean(bridged: Bridged) -> None:
    payload = body(30, 2)
    payload["return_paths"] = "yes"
    out = bridged.client.post(SINGLE, json=payload, headers=bridged.auth)
    assert out.status_code == 422 and out.json()["details"]["field"] == "return_paths"


def test_too_many_paths_is_422_naming_return_paths(tmp_path: Path) -> None:
    with bridge(tmp_path, max_return_paths=2) as b:
        payload = body(30, 2, seed=1, sample_count=3)
        payload["return_paths"] = True
        out = b.client.post(SINGLE, json=payload, headers=b.auth)
        assert out.status_code == 422, out.text
        assert out.json()["details"]["field"] == "return_paths"
        assert out.json()["message"].startswith("return_paths:")
        items = b.client.post("/v1/predict/batch", json={"items": [payload]}, headers=b.auth).json()
        assert items[0]["status"] == 422 and items[0]["details"]["field"] == "return_paths"
        limits = b.client.get("/v1/models", headers=b.auth).json()["models"][0]["limits"]
        assert limits["max_return_paths"] == 2


def test_the_standalone_bridge_carries_them(tmp_path: Path) -> None:
    with standalone(tmp_path, max_return_paths=4) as (b, remote):
        payload = body(40, 3, seed=4, sample_count=3, quantiles=[0.5])
        payload["return_paths"] = True
        local = b.client.post(SINGLE, json=payload, headers=b.auth)
        far = remote.post(SINGLE, json=payload, headers=b.auth)
        assert far.status_code == local.status_code == 200, far.text
        assert far.json() == local.json() and len(far.json()["paths"]) == 3
        payload["overrides"]["sample_count"] = 5
        refused = remote.post(SINGLE, json=payload, headers=b.auth)
        assert refused.status_code == 422 and refused.json()["details"]["field"] == "return_paths"
        limits = remote.get("/v1/models", headers=b.auth).json()["models"][0]["limits"]
        assert limits["max_return_paths"] == 4
