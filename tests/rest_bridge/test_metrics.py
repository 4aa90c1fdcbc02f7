"""Each logical request is counted once: REST under its path, native gRPC under its method."""

from __future__ import annotations

import time

import grpc

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rest_bridge.conftest import Bridged
from tests.rest_bridge.helpers import body, poll
from tests.rpc.helpers import request

GRPC_SINGLE = "/kronos.v1.KronosPredictor/PredictSingle"


def total(b: Bridged) -> float:
    registry = b.running.metrics.registry
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "kronos_requests"
        for sample in family.samples
        if sample.name == "kronos_requests_total"
    )


def test_rest_and_grpc_calls_are_counted_exactly_once(bridged: Bridged) -> None:
    before = total(bridged)
    rest_single = bridged.count("kronos_requests_total", route="/v1/predict/single", status="success")
    grpc_single = bridged.count("kronos_requests_total", route=GRPC_SINGLE, status="success")
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(bridged.running.target))
    n_rest = 0
    for _ in range(3):
        assert (
            bridged.client.post("/v1/predict/single", json=body(30, 2), headers=bridged.auth).status_code
            == 200
        )
        n_rest += 1
    items = {"items": [body(20, 1), body(25, 2)]}
    assert bridged.client.post("/v1/predict/batch", json=items, headers=bridged.auth).status_code == 200
    assert bridged.client.get("/v1/models", headers=bridged.auth).status_code == 200
    assert bridged.client.post("/v1/predict/single", content=b"{", headers=bridged.auth).status_code == 400
    assert bridged.client.post("/v1/predict/single", json=body()).status_code == 401
    n_rest += 4
    # health, readiness, metrics and docs are not requests of the service
    for path in ("/v1/healthz", "/v1/readyz", "/v1/metrics", "/v1/openapi.json"):
        bridged.client.get(path)
    md = bridged.running.auth_metadata
    stub.PredictSingle(request(30, 2), metadata=md)
    stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=md)
    # a client cannot hide its calls behind a made-up bridge token
    stub.PredictSingle(request(30, 2), metadata=(*md, ("x-kronos-bridge", "guess")))
    n_grpc = 3
    poll(lambda: total(bridged) >= before + n_rest + n_grpc)
    time.sleep(0.3)  # a second count of the same call would arrive just after the first
    assert total(bridged) == before + n_rest + n_grpc
    assert (
        bridged.count("kronos_requests_total", route="/v1/predict/single", status="success")
        == rest_single + 3
    )
    assert bridged.count("kronos_requests_total", route=GRPC_SINGLE, status="success") == grpc_single + 2
    assert bridged.count("kronos_requests_total", route="/v1/predict/batch", status="success") >= 1
    assert bridged.count("kronos_requests_total", route="/v1/models", status="success") >= 1
    assert bridged.count("kronos_request_duration_seconds_count", route="/v1/predict/single") >= 3
    assert bridged.count("kronos_prediction_input_size_count", endpoint="PredictBatch") >= 2
    assert bridged.count("kronos_concurrent_requests") == 0
