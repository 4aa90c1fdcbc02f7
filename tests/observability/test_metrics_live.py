"""After every kind of traffic, every family docs/OBSERVABILITY.md names is on /v1/metrics
with the documented labels, and the engine and model metrics move."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rest_bridge.conftest import bridge
from tests.rest_bridge.helpers import body, poll
from tests.rpc.helpers import request

DOCS = Path(__file__).resolve().parents[2] / "docs" / "OBSERVABILITY.md"
SINGLE = "/v1/predict/single"

# family name (as the parser reports it) -> the label names of its samples
FAMILIES: dict[str, set[str]] = {
    "kronos_requests": {"route", "status"},
    "kronos_request_duration_seconds": {"route"},
    "kronos_model_inference_seconds": {"endpoint"},
    "kronos_concurrent_requests": set(),
    "kronos_timeouts": {"endpoint"},
    "kronos_prediction_input_size": {"endpoint"},
    "kronos_security_events": {"event", "container"},
    "kronos_rate_limit_hits": {"container"},
    "kronos_request_size_rejections": {"container"},
    "kronos_model_loaded": set(),
    "kronos_model_info": {"model_name", "model_version", "tokenizer_name", "tokenizer_version", "device"},
    "kronos_engine_queued_rows": set(),
    "kronos_engine_queued_requests": set(),
    "kronos_engine_running_rows": set(),
    "kronos_engine_max_queued_rows": set(),
    "kronos_engine_rows_per_step": set(),
    "kronos_engine_queue_wait_seconds": set(),
    "kronos_engine_step_seconds": {"phase"},
    "kronos_engine_overload_rejections": set(),
    "kronos_memory_limit_bytes": set(),
    "kronos_event_loop_tasks": set(),
    "process_resident_memory_bytes": set(),
    "process_cpu_seconds": set(),
}


def documented_names() -> set[str]:
    return set(re.findall(r"`((?:kronos|process)_[a-z_]+)`", DOCS.read_text()))


def test_every_documented_family_exists_with_its_labels(tmp_path: Path) -> None:
    with bridge(
        tmp_path,
        rate_limit="40/minute",
        max_queued_rows=8,
        max_batch_rows=16,
        max_batch_items=2,
        default_sample_count=1,  # each call one row: the queue of 8 overflows only when the test means it
    ) as b:
        c, auth = b.client, b.auth
        assert c.post(SINGLE, json=body(30, 2), headers=auth).status_code == 200
        items = {"items": [body(20, 1), body(25, 2)]}
        assert c.post("/v1/predict/batch", json=items, headers=auth).status_code == 200
        assert c.post(SINGLE, content=b"{", headers=auth).status_code == 400  # invalid
        assert c.post(SINGLE, json=body()).status_code == 401  # unauthorized
        too_many = {"items": [body(10, 1)] * 3}
        assert c.post("/v1/predict/batch", json=too_many, headers=auth).status_code == 413
        over = c.post(SINGLE, json=body(30, 2, sample_count=12), headers=auth)
        assert over.status_code == 503 and over.json()["error"] == "overloaded"
        dp = b.running.server.dataplane
        assert dp is not None
        saved, dp.default_timeout = dp.default_timeout, 1e-6
        try:
            assert c.post(SINGLE, json=body(30, 2), headers=auth).status_code == 504  # timeout
        finally:
            dp.default_timeout = saved
        # native gRPC: single, batch and stream are recorded under their own endpoints
        stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(b.running.target))
        md = b.running.auth_metadata
        stub.PredictSingle(request(30, 2), metadata=md)
        stub.PredictBatch(pb.PredictBatchRequest(items=[request(20, 1)]), metadata=md)
        assert list(stub.PredictStream(request(30, 2), metadata=md))
        for _ in range(60):  # rate limited
            if c.get("/v1/models", headers=auth).status_code == 429:
                break
        else:
            raise AssertionError("never rate limited")
        poll(lambda: b.count("kronos_rate_limit_hits_total", container=b.running.container) >= 1)

        text = c.get("/v1/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name, labels in FAMILIES.items():
            assert name in families, name
            samples = [s for s in families[name].samples if not s.name.endswith("_created")]
            assert samples, name
            for s in samples:
                assert set(s.labels) - {"le"} == labels, (name, s.labels)

        def v(name: str, **labels: str) -> float:
            return b.count(name, **labels)

        for endpoint in ("PredictSingle", "PredictBatch", "PredictStream"):
            assert v("kronos_model_inference_seconds_count", endpoint=endpoint) >= 1, endpoint
            assert v("kronos_prediction_input_size_count", endpoint=endpoint) >= 1, endpoint
        for status in ("success", "invalid", "unauthorized", "too_large", "overloaded", "timeout"):
            assert (
                v("kronos_requests_total", route=SINGLE, status=status)
                + v("kronos_requests_total", route="/v1/predict/batch", status=status)
                >= 1
            ), status
        assert v("kronos_requests_total", route="/v1/models", status="rate_limited") == 1
        assert v("kronos_timeouts_total", endpoint="PredictSingle") >= 1
        assert v("kronos_security_events_total", event="unauthorized", container="unknown") >= 1
        assert v("kronos_request_size_rejections_total", container="unknown") >= 1
        assert v("kronos_engine_overload_rejections_total") >= 1
        assert v("kronos_engine_max_queued_rows") == 8
        assert v("kronos_engine_rows_per_step_count") >= 1
        assert v("kronos_engine_queue_wait_seconds_count") >= 1
        for phase in ("prefill", "decode", "step"):
            assert v("kronos_engine_step_seconds_count", phase=phase) >= 1, phase
        assert v("kronos_model_loaded") == 1
        assert (
            v(
                "kronos_model_info",
                model_name=dp.model_name,
                model_version=dp.model_version,
                tokenizer_name=dp.tokenizer_name,
                tokenizer_version=dp.tokenizer_version,
                device=str(dp.bundle.device),
            )
            == 1
        )
        assert dp.model_version and dp.tokenizer_version
        assert v("process_resident_memory_bytes") > 0
        # every label value of a bounded label is a known one
        for s in families["kronos_requests"].samples:
            assert s.labels["route"] in (
                "/v1/predict/single",
                "/v1/predict/batch",
                "/v1/models",
                "/kronos.v1.KronosPredictor/PredictSingle",
                "/kronos.v1.KronosPredictor/PredictBatch",
                "/kronos.v1.KronosPredictor/PredictStream",
                "/kronos.v1.KronosPredictor/GetModelInfo",
                "other",
            )


def test_the_docs_name_exactly_these_families() -> None:
    names = documented_names()
    missing = {n for n in FAMILIES if n not in names and n + "_total" not in names}
    assert not missing, missing

    def known(d: str) -> bool:
        base = re.sub(r"_(total|bucket|count|sum)$", "", d)
        return d.startswith("process_") or base in FAMILIES

    assert all(known(d) for d in names), {d for d in names if not known(d)}
