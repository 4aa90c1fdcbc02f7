"""The Backtest RPC against a real server (parity model): the dataplane's result carried as it
is, field errors as BadRequest paths of BacktestRequest, origins charged to the rate limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.rpc.convert import backtest_from_pb
from tests.rpc.helpers import history
from tests.servers import RunningServer, start_server

FORECASTERS = ["model", "naive", "drift", "volatility"]


def backtest_request(n: int = 120, **fields: Any) -> pb.BacktestRequest:
    sampling = fields.pop("sampling", {"sample_count": 4, "seed": 1})
    values: dict[str, Any] = {"horizon": 4, "context": 32, "origins": 5, **fields}
    return pb.BacktestRequest(
        series_id="bt", history=history(n), sampling=pb.SamplingParams(**sampling), **values
    )


@pytest.fixture(scope="module")
def stub(grpc_server: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(grpc_server.target))  # type: ignore[no-untyped-call]


def _violations(err: grpc.RpcError) -> list[str]:
    trailing = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [v.field for v in bad.field_violations]
    return out


def test_backtest_answers_the_dataplanes_result(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    req = backtest_request()
    response = stub.Backtest(req, metadata=grpc_server.auth_metadata)
    assert response.series_id == "bt"
    assert [s.forecaster for s in response.scores] == FORECASTERS
    assert list(response.origins) == [100, 104, 108, 112, 116]  # the last leaves 4 rows after it
    stamps = list(req.history.timestamps_ms)
    assert list(response.origin_timestamps_ms) == [stamps[o] for o in response.origins]
    assert (response.horizon, response.context, response.origin_step) == (4, 32, 4)
    assert response.sample_count == 4 and response.seed == 1
    assert response.model_version.startswith("sha256:")
    assert all(len(s.by_step) == 4 for s in response.scores)
    assert len(response.forecasts) == 0
    dataplane = grpc_server.server.dataplane
    assert dataplane is not None
    result = grpc_server.call(dataplane.backtest(backtest_from_pb(req)))
    for ours, theirs in zip(response.scores, result.scores, strict=True):
        assert ours.overall.mae == theirs.overall.mae and ours.overall.crps == theirs.overall.crps
        assert [s.rmse for s in ours.by_step] == [s.rmse for s in theirs.by_step]
        assert [(p.q, p.loss) for p in ours.overall.pinball] == list(theirs.overall.pinball)
        assert [(c.level, c.coverage) for c in ours.overall.coverage] == list(theirs.overall.coverage)
        assert ours.overall.HasField("brier_up") == (theirs.overall.brier_up is not None)
    naive = response.scores[1].overall
    assert naive.mae_skill == 0.0 and not naive.HasField("brier_up") and len(naive.pinball) == 0
    # the naive baseline, by hand: the last context close repeated
    close = np.asarray(req.history.close)
    errors = [close[o + h] - close[o - 1] for o in response.origins for h in range(4)]
    assert naive.mae == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)


def test_return_forecasts(stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer) -> None:
    req = backtest_request(origins=3, return_forecasts=True, origin_step=2)
    response = stub.Backtest(req, metadata=grpc_server.auth_metadata)
    assert [f.origin for f in response.forecasts] == list(response.origins) == [112, 114, 116]
    stamps = list(req.history.timestamps_ms)
    for item in response.forecasts:
        assert list(item.forecast.timestamps_ms) == stamps[item.origin : item.origin + 4]
        assert [q.q for q in item.quantiles] == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 65}, "horizon"),
        ({"origins": 500}, "origins"),
        ({"origins": 40}, "origins"),  # 40 origins 4 apart do not fit 120 rows
        ({"context": 1}, "context"),
        ({"origin_step": -1}, "origin_step"),
        ({"sampling": {"top_p": 1.5}}, "sampling.top_p"),
    ],
)
def test_bad_fields_are_named(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Backtest(backtest_request(**change), metadata=grpc_server.auth_metadata)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert _violations(caught.value) == [field]


def test_bad_history_is_named_as_a_history_path(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    req = backtest_request()
    req.history.close[3] = -1.0
    with pytest.raises(grpc.RpcError) as caught:
        stub.Backtest(req, metadata=grpc_server.auth_metadata)
    assert _violations(caught.value) == ["history.close[3]"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.Backtest(backtest_request(30, origins=None), metadata=grpc_server.auth_metadata)
    assert _violations(caught.value) == ["history.timestamps_ms"]


def test_no_credentials_no_backtest(stub: pb_grpc.KronosPredictorStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Backtest(backtest_request())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_origins_count_against_the_rate_limit(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="10/minute")
    try:
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))  # type: ignore[no-untyped-call]
        stub.Backtest(backtest_request(origins=6), metadata=running.auth_metadata)  # 6 of 10
        with pytest.raises(grpc.RpcError) as caught:  # 6 more do not fit the 4 left
            stub.Backtest(backtest_request(origins=6), metadata=running.auth_metadata)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        stub.Backtest(backtest_request(origins=4), metadata=running.auth_metadata)  # the 4 left
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop()
