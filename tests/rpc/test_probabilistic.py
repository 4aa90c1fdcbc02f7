"""Predict's probabilistic outputs over gRPC: P(close up) per step and, with return_paths, the
sample paths themselves; the same values the engine computed, checked against each other."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2, status_pb2

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.forecast.types import FEATURES
from kronos_server.rpc.convert import series_from_pb
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server


@pytest.fixture(scope="module")
def stub(grpc_server: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(grpc_server.target))


def _table(candles: pb.Candles) -> np.ndarray:
    return np.stack([np.asarray(getattr(candles, name)) for name in FEATURES], axis=-1)


def _paths(response: pb.PredictResponse) -> np.ndarray:
    return np.stack([_table(p) for p in response.paths])  # [S, P, 6]


def test_paths_are_returned_and_agree_with_the_forecast(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    req = request(40, 5, seed=3, sample_count=6, quantiles=[0.1, 0.5, 0.9])
    req.return_paths = True
    response = stub.PredictSingle(req, metadata=grpc_server.auth_metadata)
    paths = _paths(response)
    assert paths.shape == (6, 5, 6)
    for path in response.paths:
        assert list(path.timestamps_ms) == list(response.forecast.timestamps_ms)
    # carried as double, made as float32: every value is a float32 exactly
    assert np.array_equal(paths.astype(np.float32).astype(np.float64), paths)
    # the mean of the paths is the forecast, to float32 rounding (prices; volume and amount
    # are clamped at 0 per path and in the mean, which need not commute)
    mean = _table(response.forecast)
    np.testing.assert_allclose(paths.mean(axis=0)[:, :4], mean[:, :4], rtol=2e-6)
    # the quantiles are those of the very paths returned
    for quantile in response.quantiles:
        expected = np.quantile(paths, quantile.q, axis=0).astype(np.float32)
        np.testing.assert_array_equal(_table(quantile.values).astype(np.float32), expected)
    # P(close up) is the fraction of the returned paths above the history's last close
    last = np.float32(req.history.close[-1])
    expected_up = (paths[:, :, 3].astype(np.float32) > last).mean(axis=0)
    assert list(response.prob_close_up) == expected_up.tolist()
    assert len(response.prob_close_up) == 5


def test_without_return_paths_no_paths_but_prob_close_up(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    response = stub.PredictSingle(request(40, 4, seed=5, sample_count=4), metadata=grpc_server.auth_metadata)
    assert len(response.paths) == 0
    assert len(response.prob_close_up) == 4
    probs = np.asarray(response.prob_close_up)
    assert np.all((probs >= 0) & (probs <= 1))
    assert np.allclose(probs * 4, np.round(probs * 4))  # fractions of 4 paths
    one = stub.PredictSingle(request(40, 3, seed=5, sample_count=1), metadata=grpc_server.auth_metadata)
    assert set(one.prob_close_up) <= {0.0, 1.0}


def test_the_values_are_the_engines(stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer) -> None:
    """The service's answer carries what the dataplane forecast, value for value."""
    req = request(50, 4, start=30, seed=11, sample_count=5)
    req.return_paths = True
    response = stub.PredictSingle(req, metadata=grpc_server.auth_metadata)
    dataplane = grpc_server.server.dataplane
    assert dataplane is not None
    forecast = grpc_server.call(dataplane.predict(series_from_pb(req)))
    assert forecast.paths is not None
    assert np.array_equal(_paths(response), forecast.paths.astype(np.float64))
    assert list(response.prob_close_up) == forecast.prob_close_up.tolist()


def test_batch_items_carry_paths_when_asked(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    asked = request(30, 3, seed=1, sample_count=2)
    asked.return_paths = True
    batch = pb.PredictBatchRequest(items=[asked, request(30, 3, start=50, seed=2, sample_count=3)])
    response = stub.PredictBatch(batch, metadata=grpc_server.auth_metadata)
    first, second = (r.forecast for r in response.results)
    assert len(first.paths) == 2 and len(second.paths) == 0
    assert len(first.prob_close_up) == len(second.prob_close_up) == 3
    solo = stub.PredictSingle(asked, metadata=grpc_server.auth_metadata)
    assert np.array_equal(_paths(solo), _paths(first))


def test_stream_final_carries_the_paths_of_its_steps(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    req = request(40, 6, seed=8, sample_count=4)
    req.return_paths = True
    events = list(stub.PredictStream(req, metadata=grpc_server.auth_metadata))
    steps, final = [e.step for e in events[:-1]], events[-1].final
    paths = _paths(final)
    assert paths.shape == (4, 6, 6)
    closes = np.array([s.close for s in steps])
    np.testing.assert_allclose(paths.mean(axis=0)[:, 3], closes, rtol=2e-6)
    last = np.float32(req.history.close[-1])
    assert list(final.prob_close_up) == (paths[:, :, 3] > last).mean(axis=0).tolist()


def test_model_info_reports_the_new_limits(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=grpc_server.auth_metadata)
    settings = grpc_server.settings
    assert info.limits.max_return_paths == settings.max_return_paths
    assert info.limits.max_backtest_origins == settings.max_backtest_origins


def _bad_request(err: grpc.RpcError) -> error_details_pb2.BadRequest:
    trailing = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            out = error_details_pb2.BadRequest()
            detail.Unpack(out)
            return out
    raise AssertionError("no BadRequest detail")


def test_too_many_paths_are_refused_naming_return_paths(tmp_path: Path) -> None:
    running = start_server(tmp_path, max_return_paths=2)
    try:
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
        req = request(30, 2, seed=1, sample_count=3)
        assert stub.PredictSingle(req, metadata=running.auth_metadata).sample_count == 3  # fine without
        req.return_paths = True
        with pytest.raises(grpc.RpcError) as caught:
            stub.PredictSingle(req, metadata=running.auth_metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "at most 2 sample paths" in (caught.value.details() or "")
        assert [v.field for v in _bad_request(caught.value).field_violations] == ["return_paths"]
        req.sampling.CopyFrom(pb.SamplingParams(sample_count=2, seed=1))
        assert len(stub.PredictSingle(req, metadata=running.auth_metadata).paths) == 2
        info = stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        assert info.limits.max_return_paths == 2
    finally:
        running.stop()
