"""Every rejection path of the interceptors and the engine, against real servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.security.keys import add_key
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

ROUTE = "/kronos.v1.KronosPredictor/PredictSingle"


def _stub(server: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(server.target))


def _count(server: RunningServer, name: str, labels: dict[str, str]) -> float:
    return server.metrics.registry.get_sample_value(name, labels) or 0.0


def _heavy(tmp: Path, **overrides: object) -> RunningServer:
    """The embedded default model (wider, 512 context): long requests take real time."""
    return start_server(
        tmp,
        model_path=DEFAULT_MODEL_DIR / "predictor",
        tokenizer_path=DEFAULT_MODEL_DIR / "tokenizer",
        max_context=512,
        **overrides,
    )


def _long() -> pb.PredictRequest:
    return request(400, 300, sample_count=32, seed=1)


def _code(call: object, *args: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)  # type: ignore[operator]
    return err.value


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("secured")
    keys = tmp / "keys.json"
    key = add_key(keys, "alpha")
    add_key(keys, "beta")
    add_key(keys, "infoonly", methods=["GetModelInfo"])
    running = start_server(tmp, api_keys_file=keys)
    running.container, running.key = "alpha", key
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-container-name", "alpha"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-container-name", "alpha"), ("authorization", "Bearer wrong")), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-container-name", "alpha"), ("authorization", "Basic abc")), grpc.StatusCode.UNAUTHENTICATED),
        ((("x-container-name", "ghost"), ("authorization", "Bearer x")), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer x"),), grpc.StatusCode.UNAUTHENTICATED),
    ],
)
def test_bad_credentials_are_unauthenticated(
    secured: RunningServer, metadata: tuple[tuple[str, str], ...], expected: grpc.StatusCode
) -> None:
    before = _count(secured, "kronos_requests_total", {"route": ROUTE, "status": "unauthorized"})
    err = _code(_stub(secured).PredictSingle, request(), metadata=metadata)
    assert err.code() == expected
    assert "wrong" not in err.details()
    # the server records the outcome just after the client has its answer
    _poll(
        lambda: (
            _count(secured, "kronos_requests_total", {"route": ROUTE, "status": "unauthorized"}) == before + 1
        )
    )


def test_other_containers_key_is_refused(secured: RunningServer) -> None:
    md = (("x-container-name", "beta"), ("authorization", f"Bearer {secured.key}"))
    assert (
        _code(_stub(secured).PredictSingle, request(), metadata=md).code() == grpc.StatusCode.UNAUTHENTICATED
    )


def test_method_not_allowed_is_permission_denied(secured: RunningServer, tmp_path: Path) -> None:
    keys = Path(secured.settings.api_keys_file or "")
    info_key = add_key(keys, "infoonly", methods=["GetModelInfo"], replace=True)
    # the server loaded the file at start-up: a fresh server sees the rotated key
    running = start_server(tmp_path, api_keys_file=keys)
    try:
        md = (("x-container-name", "infoonly"), ("authorization", f"Bearer {info_key}"))
        stub = _stub(running)
        assert stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=md).max_context == 64
        err = _code(stub.PredictSingle, request(), metadata=md)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        _poll(
            lambda: (
                _count(running, "kronos_security_events_total", {"event": "blocked", "container": "infoonly"})
                == 1
            )
        )
    finally:
        running.stop()


def test_valid_key_is_served(secured: RunningServer) -> None:
    response = _stub(secured).PredictSingle(request(), metadata=secured.auth_metadata)
    assert len(response.forecast.close) == 4


def test_trusted_network_mode_accepts_allow_listed_names_only(tmp_path: Path) -> None:
    running = start_server(tmp_path, trusted_containers="legacy-svc,batch-job")
    try:
        stub = _stub(running)
        ok = stub.PredictSingle(request(), metadata=(("x-container-name", "legacy-svc"),))
        assert len(ok.forecast.close) == 4
        for md in ((("x-container-name", "intruder"),), ()):
            assert _code(stub.PredictSingle, request(), metadata=md).code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        running.stop()


def test_rate_limit_is_resource_exhausted_with_retry_after(tmp_path: Path) -> None:
    running = start_server(tmp_path, rate_limit="2/minute")
    try:
        stub = _stub(running)
        for _ in range(2):
            stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        err = _code(stub.GetModelInfo, pb.GetModelInfoRequest(), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailers = dict(err.trailing_metadata())
        assert int(trailers["retry-after"]) >= 1
        assert trailers["x-ratelimit-limit"] == "2"
        assert trailers["x-ratelimit-remaining"] == "0"
        assert _count(running, "kronos_rate_limit_hits_total", {"container": running.container}) == 1
        # a batch costs its number of series
        batch = pb.PredictBatchRequest(items=[request(), request()])
        assert _code(stub.PredictBatch, batch, metadata=running.auth_metadata).code() == (
            grpc.StatusCode.RESOURCE_EXHAUSTED
        )
    finally:
        running.stop()


def test_too_large_requests_are_resource_exhausted(tmp_path: Path) -> None:
    running = start_server(tmp_path, max_request_size_mb=0.01, max_batch_items=2)
    try:
        stub = _stub(running)
        big = request(400, 4)  # ~20 kB of candles > 10 kB
        err = _code(stub.PredictSingle, big, metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "bytes" in err.details()
        batch = pb.PredictBatchRequest(items=[request(20), request(20), request(20)])
        err = _code(stub.PredictBatch, batch, metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "items" in err.details()
        _poll(
            lambda: (
                _count(running, "kronos_request_size_rejections_total", {"container": running.container}) == 2
            )
        )
        _poll(lambda: _count(running, "kronos_requests_total", {"route": ROUTE, "status": "too_large"}) == 1)
    finally:
        running.stop()


def test_overload_answers_fast_with_retry_after(tmp_path: Path) -> None:
    running = _heavy(tmp_path, max_queued_rows=8, max_batch_rows=8)
    try:
        stub = _stub(running)
        futures = [
            stub.PredictSingle.future(
                request(200, 50, start=i, sample_count=4, seed=i), metadata=running.auth_metadata
            )
            for i in range(12)
        ]
        outcomes = []
        for f in futures:
            try:
                outcomes.append(("ok", len(f.result(timeout=120).forecast.close)))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
                assert dict(err.trailing_metadata())["retry-after"] == "1"
                outcomes.append(("overloaded", 0))
        assert ("overloaded", 0) in outcomes  # 48 rows offered, 8 admitted at a time
        assert all(n == 50 for kind, n in outcomes if kind == "ok")  # every admitted call completes
        assert sum(kind == "ok" for kind, _ in outcomes) >= 2
        started = time.monotonic()
        _code(stub.PredictSingle, _long(), metadata=running.auth_metadata)  # 32 rows > 8: refused at once
        assert time.monotonic() - started < 1.0
    finally:
        running.stop()


def test_a_batch_refused_whole_only_when_nothing_is_admitted(tmp_path: Path) -> None:
    """Engine full: a batch none of whose series fits is RESOURCE_EXHAUSTED with retry-after (so
    callers back off); one that fits partly is answered OK with per-item refusals."""
    running = _heavy(tmp_path, max_queued_rows=12, max_batch_rows=12)
    try:
        stub = _stub(running)
        occupant = stub.PredictSingle.future(
            request(400, 300, sample_count=8, seed=1), metadata=running.auth_metadata
        )
        engine = running.server.dataplane.engine if running.server.dataplane else None
        assert engine is not None
        _poll(lambda: engine.stats().running_rows + engine.stats().queued_rows == 8)
        batch = pb.PredictBatchRequest(items=[request(60, 4, sample_count=8, seed=s) for s in (2, 3)])
        err = _code(stub.PredictBatch, batch, metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
        assert dict(err.trailing_metadata())["retry-after"] == "1"
        route = "/kronos.v1.KronosPredictor/PredictBatch"
        _poll(lambda: _count(running, "kronos_requests_total", {"route": route, "status": "overloaded"}) == 1)

        partly = pb.PredictBatchRequest(
            items=[request(60, 4, sample_count=4, seed=4), request(60, 4, sample_count=8, seed=5)]
        )
        reply = stub.PredictBatch(partly, metadata=running.auth_metadata, timeout=120)
        assert len(reply.results[0].forecast.forecast.close) == 4
        assert reply.results[1].error.code == "RESOURCE_EXHAUSTED"
        occupant.cancel()
    finally:
        running.stop()


def test_deadline_frees_engine_rows(tmp_path: Path) -> None:
    running = _heavy(tmp_path)
    try:
        stub = _stub(running)
        err = _code(stub.PredictSingle, _long(), metadata=running.auth_metadata, timeout=0.3)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        _wait_idle(running)
        _poll(lambda: _count(running, "kronos_timeouts_total", {"endpoint": "PredictSingle"}) == 1)
    finally:
        running.stop()


def test_inference_timeout_setting_applies(tmp_path: Path) -> None:
    running = _heavy(tmp_path, inference_timeout=0.3)
    try:
        started = time.monotonic()
        err = _code(_stub(running).PredictSingle, _long(), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 3
        _wait_idle(running)
    finally:
        running.stop()


def test_warm_up_is_not_bound_by_the_inference_timeout(tmp_path: Path) -> None:
    # 1 ms: no forecast fits, the warm-up included; the server still becomes ready (its
    # warm-up delays readiness, it does not fail start-up), and requests get the deadline
    running = start_server(tmp_path, inference_timeout=0.001)
    try:
        assert running.server.dataplane is not None
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(running.target))
        answer = health.Check(health_pb2.HealthCheckRequest(service="kronos.v1.KronosPredictor"), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        err = _code(_stub(running).PredictSingle, request(64, 8, seed=1), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        running.stop()


def test_client_cancel_frees_engine_rows(tmp_path: Path) -> None:
    # a deadline the long request fits in, so that it is admitted (not refused as too long)
    running = _heavy(tmp_path, inference_timeout=3600)
    try:
        stub = _stub(running)
        future = stub.PredictSingle.future(_long(), metadata=running.auth_metadata)
        dp = running.server.dataplane
        assert dp is not None
        _poll(lambda: dp.engine.stats().running_rows == 32)
        future.cancel()
        _wait_idle(running)
        _poll(lambda: _count(running, "kronos_requests_total", {"route": ROUTE, "status": "cancelled"}) == 1)
    finally:
        running.stop()


def test_unloaded_server_is_unavailable_and_not_ready(tmp_path: Path) -> None:
    running = start_server(tmp_path, load=False)
    try:
        err = _code(_stub(running).PredictSingle, request(), metadata=running.auth_metadata)
        assert err.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        running.stop()


def _poll(check: object, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _wait_idle(running: RunningServer) -> None:
    dp = running.server.dataplane
    assert dp is not None
    _poll(lambda: dp.engine.stats().running_rows == 0 and dp.engine.stats().queued_rows == 0)
