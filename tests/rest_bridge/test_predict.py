"""POST /v1/predict/single and /batch: the legacy JSON shape, the gRPC additions, per-item errors."""

from __future__ import annotations

import grpc
import numpy as np

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.forecast.types import FEATURES
from tests.rest_bridge.conftest import Bridged
from tests.rest_bridge.helpers import body
from tests.rpc.helpers import request

SINGLE = "/v1/predict/single"
BATCH = "/v1/predict/batch"


def test_single_answers_in_the_legacy_shape(bridged: Bridged) -> None:
    reply = bridged.client.post(SINGLE, json=body(40, 4), headers=bridged.auth)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert set(out) == {"series_id", "prediction", "model_version", "tokenizer_version", "prob_close_up"}
    assert out["series_id"] == "s0"
    assert len(out["prediction"]) == 4
    assert set(out["prediction"][0]) == {"timestamp", *FEATURES}
    # the history is 5-minute candles: pred_len alone continues that interval
    assert out["prediction"][0]["timestamp"] == "2024-06-19T10:35:00"
    dp = bridged.running.server.dataplane
    assert dp is not None and out["model_version"] == dp.model_version


def test_the_same_forecast_as_grpc(bridged: Bridged) -> None:
    """The translation loses nothing: a seeded REST forecast equals the gRPC one."""
    rest = bridged.client.post(SINGLE, json=body(40, 4, sample_count=2, seed=7), headers=bridged.auth)
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(bridged.running.target))
    native = stub.PredictSingle(
        request(40, 4, sample_count=2, seed=7), metadata=bridged.running.auth_metadata
    )
    closes = [row["close"] for row in rest.json()["prediction"]]
    # the same float32 values, written as their shortest decimals
    assert closes == [float(str(np.float32(v))) for v in native.forecast.close]


def test_prediction_timestamps_timezone_quantiles(bridged: Bridged) -> None:
    payload = body(40, None, sample_count=4, seed=1, quantiles=[0.9, 0.1], top_k=5, temperature=0.8)
    payload["timezone"] = "Asia/Shanghai"
    payload["prediction_timestamps"] = ["2024-06-19T10:35:00", "2024-06-19T10:40:00", "2024-06-19T10:50:00"]
    out = bridged.client.post(SINGLE, json=payload, headers=bridged.auth).json()
    assert [row["timestamp"] for row in out["prediction"]] == [
        "2024-06-19T10:35:00+08:00",
        "2024-06-19T10:40:00+08:00",
        "2024-06-19T10:50:00+08:00",
    ]
    assert [q["q"] for q in out["quantiles"]] == [0.1, 0.9]
    low, high = (q["prediction"] for q in out["quantiles"])
    assert all(a["close"] <= b["close"] for a, b in zip(low, high, strict=True))


def test_overrides_are_optional_and_seed_reproduces(bridged: Bridged) -> None:
    minimal = body(30, 2)
    del minimal["series_id"]
    out = bridged.client.post(SINGLE, json=minimal, headers=bridged.auth).json()
    assert out["series_id"] == "series-0" and len(out["prediction"]) == 2
    seeded = body(30, 3, seed=123, sample_count=3)
    first, second = (bridged.client.post(SINGLE, json=seeded, headers=bridged.auth).json() for _ in range(2))
    assert first["prediction"] == second["prediction"]


def test_every_uint64_seed_is_accepted_as_over_grpc(bridged: Bridged) -> None:
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(bridged.running.target))
    for seed in (2**63, 2**64 - 1):  # JSON numbers past int64
        rest = bridged.client.post(SINGLE, json=body(30, 3, seed=seed, sample_count=2), headers=bridged.auth)
        assert rest.status_code == 200, rest.text
        native = stub.PredictSingle(
            request(30, 3, seed=seed, sample_count=2), metadata=bridged.running.auth_metadata
        )
        closes = [row["close"] for row in rest.json()["prediction"]]
        assert closes == [float(str(np.float32(v))) for v in native.forecast.close]


def test_batch_mixes_lengths_and_settings_with_errors_in_their_slots(bridged: Bridged) -> None:
    bad_price = body(20, 2, start=100)
    bad_price["candles"][3]["close"] = -1.0
    items = [
        body(40, 4, start=0),
        {"series_id": "broken", "candles": "nope", "timestamps": []},  # refused by the bridge
        body(25, 2, start=50, sample_count=2, seed=3, quantiles=[0.5]),
        bad_price,  # refused by the service
        {k: v for k, v in body(12, 1, start=200).items() if k != "series_id"},
    ]
    reply = bridged.client.post(BATCH, json={"items": items}, headers=bridged.auth)
    assert reply.status_code == 200, reply.text
    slots = reply.json()
    assert len(slots) == 5
    assert [len(slots[i]["prediction"]) for i in (0, 2, 4)] == [4, 2, 1]
    assert [q["q"] for q in slots[2]["quantiles"]] == [0.5]
    assert slots[4]["series_id"] == "series-4"
    request_id = reply.headers["x-request-id"]
    assert slots[1] == {
        "error": "invalid_argument",
        "message": slots[1]["message"],
        "details": {"field": "candles"},
        "request_id": request_id,
        "series_id": "broken",
        "status": 422,
    }
    assert slots[3]["error"] == "invalid_argument" and slots[3]["status"] == 422
    assert slots[3]["details"]["field"] == "candles[3].close"
    assert slots[3]["message"].startswith("candles[3].close:")
    assert slots[3]["series_id"] == "s100"


def test_empty_batch_and_batch_shape_errors(bridged: Bridged) -> None:
    assert bridged.client.post(BATCH, json={"items": []}, headers=bridged.auth).json() == []
    for payload, field in (([], "request"), ({"items": {}}, "items"), ({"items": [], "x": 1}, "x")):
        reply = bridged.client.post(BATCH, json=payload, headers=bridged.auth)
        assert reply.status_code == 422
        assert reply.json()["details"]["field"] == field
