"""POST /v1/backtest (in-process and standalone bridge): the gRPC answer in JSON, 422 naming
the REST field, origins charged to the caller's rate limit, counted under its route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_bridge.backtest_json import FIELD_MAP, REQUEST_KEYS
from kronos_bridge.schemas import BacktestRequestBody, BacktestResponseBody
from tests.rest_bridge.conftest import Bridged, bridge
from tests.rest_bridge.helpers import candles, poll
from tests.rest_bridge.test_remote import standalone
from tests.rpc.test_backtest import backtest_request

PATH = "/v1/backtest"


def backtest_body(n: int = 120, **fields: Any) -> dict[str, Any]:
    rows, stamps = candles(n)
    overrides = fields.pop("overrides", {"sample_count": 4, "seed": 1})
    return {"series_id": "bt", "candles": rows, "timestamps": stamps, "horizon": 4, "context": 32,
            "origins": 5, "overrides": overrides, **fields}  # fmt: skip


def test_the_grpc_answer_in_json(bridged: Bridged) -> None:
    out = bridged.client.post(PATH, json=backtest_body(), headers=bridged.auth)
    assert out.status_code == 200, out.text
    answer = out.json()
    assert [s["forecaster"] for s in answer["scores"]] == ["model", "naive", "drift", "volatility"]
    assert answer["origins"] == [100, 104, 108, 112, 116]
    stamps = list(backtest_request().history.timestamps_ms)
    assert answer["origin_timestamps_ms"] == [stamps[o] for o in answer["origins"]]
    assert (answer["horizon"], answer["context"], answer["origin_step"], answer["seed"]) == (4, 32, 4, 1)
    assert answer["quantiles"] == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    assert "forecasts" not in answer
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(bridged.running.target))  # type: ignore[no-untyped-call]
    native = stub.Backtest(backtest_request(), metadata=bridged.running.auth_metadata)
    for ours, theirs in zip(answer["scores"], native.scores, strict=True):
        assert ours["overall"]["mae"] == theirs.overall.mae
        assert ours["overall"]["crps"] == (theirs.overall.crps if theirs.overall.HasField("crps") else None)
        assert [s["rmse"] for s in ours["by_step"]] == [s.rmse for s in theirs.by_step]
        assert [p["loss"] for p in ours["overall"]["pinball"]] == [p.loss for p in theirs.overall.pinball]
        assert [c["coverage"] for c in ours["overall"]["coverage"]] == [
            c.coverage for c in theirs.overall.coverage
        ]
    BacktestResponseBody.model_validate(answer)  # the documented response body, every key of it
    assert set(answer) <= set(BacktestResponseBody.model_fields)
    naive = answer["scores"][1]["overall"]
    assert naive["brier_up"] is None and naive["pinball"] == [] and naive["mae_skill"] == 0.0
    poll(lambda: bridged.count("kronos_requests_total", route=PATH, status="success") >= 1)


def test_return_forecasts_in_predicts_rows(bridged: Bridged) -> None:
    out = bridged.client.post(
        PATH, json=backtest_body(origins=2, return_forecasts=True), headers=bridged.auth
    )
    forecasts = out.json()["forecasts"]
    BacktestResponseBody.model_validate(out.json())
    BacktestRequestBody.model_validate(backtest_body(origins=2, return_forecasts=True))
    stamps = candles(120)[1]
    assert [f["origin"] for f in forecasts] == [112, 116]
    for item in forecasts:
        assert [r["timestamp"] for r in item["prediction"]] == [
            s.replace(" ", "T") for s in stamps[item["origin"] : item["origin"] + 4]
        ]
        assert [q["q"] for q in item["quantiles"]] == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


def _bad_close() -> dict[str, Any]:
    body = backtest_body()
    body["candles"][3]["close"] = -1.0
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (backtest_body(horizon=None), "horizon"),
        (backtest_body(horizon="4"), "horizon"),
        (backtest_body(horizon=2**40), "horizon"),
        (backtest_body(origins=500), "origins"),
        (backtest_body(origins=40), "origins"),
        (backtest_body(context=1), "context"),
        (backtest_body(origin_step=0), "origin_step"),
        (backtest_body(return_forecasts="yes"), "return_forecasts"),
        (backtest_body(overrides={"top_p": 1.5}), "overrides.top_p"),
        (backtest_body(overrides={"pred_len": 3}), "overrides.pred_len"),
        (backtest_body(prediction_timestamps=[]), "prediction_timestamps"),
        (backtest_body(30, origins=None), "timestamps"),
        (_bad_close(), "candles[3].close"),
    ],
)
def test_bad_input_is_422_naming_the_field(bridged: Bridged, body: dict[str, Any], field: str) -> None:
    out = bridged.client.post(PATH, json=body, headers=bridged.auth)
    assert out.status_code == 422, out.text
    assert out.json()["details"]["field"] == field
    assert out.json()["message"].startswith(f"{field}:") or field in out.json()["message"]


def test_credentials_are_needed(bridged: Bridged) -> None:
    assert bridged.client.post(PATH, json=backtest_body()).status_code == 401


def test_origins_count_against_the_rate_limit(tmp_path: Path) -> None:
    with bridge(tmp_path, rate_limit="10/minute") as b:
        assert b.client.post(PATH, json=backtest_body(origins=6), headers=b.auth).status_code == 200
        refused = b.client.post(PATH, json=backtest_body(origins=6), headers=b.auth)
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
        assert b.client.post(PATH, json=backtest_body(origins=4), headers=b.auth).status_code == 200
        assert b.client.get("/v1/models", headers=b.auth).status_code == 429


def test_the_standalone_bridge_answers_alike(tmp_path: Path) -> None:
    with standalone(tmp_path) as (b, remote):
        body = backtest_body(origins=3, return_forecasts=True, timezone="Asia/Shanghai")
        local = b.client.post(PATH, json=body, headers=b.auth)
        far = remote.post(PATH, json=body, headers=b.auth)
        assert local.status_code == far.status_code == 200, far.text
        assert far.json() == local.json()
        assert far.json()["forecasts"][0]["prediction"][0]["timestamp"].endswith("+08:00")
        bad = remote.post(PATH, json=backtest_body(origins=40), headers=b.auth)
        assert bad.status_code == 422 and bad.json()["details"]["field"] == "origins"
        bad = remote.post(PATH, json=_bad_close(), headers=b.auth)
        assert bad.status_code == 422 and bad.json()["details"]["field"] == "candles[3].close"


def test_the_body_schema_is_the_parsed_one_and_maps_onto_the_proto() -> None:
    from kronos.v1 import predictor_pb2 as pb
    from tests.rest_bridge.test_schema_drift import proto_paths

    assert set(BacktestRequestBody.model_fields) == REQUEST_KEYS
    top = {f.name for f in pb.BacktestRequest.DESCRIPTOR.fields}
    shared = {"history", "sampling"}  # written as the predict body's candles/timestamps, overrides
    assert set(FIELD_MAP.values()) | shared == top
    assert set(FIELD_MAP) <= REQUEST_KEYS
    # the nested messages are the predict request's: the predict drift test covers their fields
    assert proto_paths(pb.BacktestRequest.DESCRIPTOR.fields_by_name["history"].message_type) == proto_paths(
        pb.PredictRequest.DESCRIPTOR.fields_by_name["history"].message_type
    )
