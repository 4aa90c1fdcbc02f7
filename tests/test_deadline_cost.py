"""Requests estimated to run far past their deadline are refused up front, naming pred_len.

The embedded model at max_context 128 with a 2 s inference timeout: 300 history rows ->
128 steps x 32 samples slide the window at 127 steps (about 20 s of work here), which is
refused at once; ordinary requests, streams and sub-second deadlines are served as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from tests.rest_bridge.conftest import bridge
from tests.rest_bridge.helpers import body
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

TIMEOUT = 2.0  # KRONOS_INFERENCE_TIMEOUT of these servers
EMBEDDED: dict[str, Any] = {
    "model_path": DEFAULT_MODEL_DIR / "predictor",
    "tokenizer_path": DEFAULT_MODEL_DIR / "tokenizer",
    "max_context": 128,
}


def _too_long() -> pb.PredictRequest:
    return request(300, 128, sample_count=32, seed=1)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("cost"), inference_timeout=TIMEOUT, **EMBEDDED)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub(running: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))


def _refused(call: object, *args: object, **kwargs: object) -> tuple[grpc.RpcError, float]:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    return err.value, time.monotonic() - started


def test_a_request_estimated_past_the_deadline_is_refused_at_once_naming_pred_len(
    running: RunningServer, stub: pb_grpc.KronosPredictorStub
) -> None:
    err, took = _refused(stub.PredictSingle, _too_long(), metadata=running.auth_metadata)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert took < TIMEOUT / 2  # refused up front, not at the deadline
    message = err.details() or ""
    assert message.startswith("pred_len: 128 steps with 300 history rows and sample_count 32")
    assert "exceeds max_context 128, so 127 steps recompute the whole window" in message
    assert "past the 2 s deadline" in message
    assert ("kronos-error-field", "pred_len") in (err.trailing_metadata() or ())
    assert running.server.dataplane is not None
    assert running.server.dataplane.engine.stats().running_rows == 0  # never queued


def test_the_callers_deadline_counts_too(tmp_path: Path) -> None:
    server = start_server(tmp_path, **EMBEDDED)  # the default 60 s inference timeout
    try:
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(server.target))
        err, took = _refused(stub.PredictSingle, _too_long(), metadata=server.auth_metadata, timeout=3)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert took < 1.5
        found = re.search(r"past the ([0-9.]+) s deadline", err.details() or "")
        assert found and 2.5 < float(found.group(1)) <= 3  # the call's time left, not 60 s
    finally:
        server.stop()


def test_ordinary_requests_are_served(running: RunningServer, stub: pb_grpc.KronosPredictorStub) -> None:
    reply = stub.PredictSingle(request(100, 8, sample_count=4, seed=1), metadata=running.auth_metadata)
    assert len(reply.forecast.close) == 8
    # past max_context, but short enough for the deadline: served, not refused
    reply = stub.PredictSingle(request(120, 16, sample_count=2, seed=1), metadata=running.auth_metadata)
    assert len(reply.forecast.close) == 16


def test_a_batch_refuses_the_long_item_only(
    running: RunningServer, stub: pb_grpc.KronosPredictorStub
) -> None:
    items = [request(60, 4, sample_count=2, seed=1), _too_long()]
    reply = stub.PredictBatch(pb.PredictBatchRequest(items=items), metadata=running.auth_metadata)
    assert len(reply.results[0].forecast.forecast.close) == 4
    assert reply.results[1].error.code == "INVALID_ARGUMENT"
    assert reply.results[1].error.field == "pred_len"
    assert "recompute the whole window" in reply.results[1].error.message


def test_a_stream_is_not_refused_it_delivers_steps_until_its_deadline(
    running: RunningServer, stub: pb_grpc.KronosPredictorStub
) -> None:
    stream = stub.PredictStream(_too_long(), metadata=running.auth_metadata)
    assert next(stream).step.step == 0
    stream.cancel()


def test_a_sub_second_deadline_times_out_as_before(
    running: RunningServer, stub: pb_grpc.KronosPredictorStub
) -> None:
    err, _ = _refused(stub.PredictSingle, _too_long(), metadata=running.auth_metadata, timeout=0.5)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_rest_answers_422_naming_the_legacy_field(tmp_path: Path) -> None:
    with bridge(tmp_path, inference_timeout=TIMEOUT, **EMBEDDED) as b:
        started = time.monotonic()
        reply = b.client.post(
            "/v1/predict/single", json=body(300, 128, sample_count=32, seed=1), headers=b.auth
        )
        assert time.monotonic() - started < TIMEOUT / 2
        assert reply.status_code == 422, reply.text
        out = reply.json()
        assert out["error"] == "invalid_argument"
        assert out["details"]["field"] == "overrides.pred_len"
        assert out["message"].startswith("overrides.pred_len: 128 steps with 300 history rows")
        ok = b.client.post("/v1/predict/single", json=body(60, 4, seed=1), headers=b.auth)
        assert ok.status_code == 200, ok.text
