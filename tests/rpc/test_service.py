"""Every RPC of KronosPredictor against a real server on port 0 (parity model)."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rpc.helpers import FIELDS, request
from tests.servers import RunningServer

PROTO = Path(__file__).resolve().parents[2] / "protos" / "kronos" / "v1" / "predictor.proto"


@pytest.fixture(scope="module")
def stub(grpc_server: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(grpc_server.target))


def test_predict_single_answers_with_versions_and_request_id(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    md = (*grpc_server.auth_metadata, ("x-request-id", "req-123"))
    response, call = stub.PredictSingle.with_call(request(40, 6, seed=1, sample_count=2), metadata=md)
    assert response.series_id == "s0"
    assert len(response.forecast.close) == 6 and len(response.forecast.timestamps_ms) == 6
    assert response.model_version.startswith("sha256:") and response.tokenizer_version.startswith("sha256:")
    assert response.sample_count == 2 and response.seed == 1
    assert ("x-request-id", "req-123") in tuple((m.key, m.value) for m in call.initial_metadata())
    # pred_len alone continues the history's 5-minute interval
    steps = np.diff([*request(40, 6).history.timestamps_ms[-1:], *response.forecast.timestamps_ms])
    assert set(steps.tolist()) == {300_000}


def test_seeded_requests_are_reproducible(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    md = grpc_server.auth_metadata
    req = request(50, 5, seed=7, sample_count=3, temperature=1.0, top_p=0.9)
    a = stub.PredictSingle(req, metadata=md)
    b = stub.PredictSingle(req, metadata=md)
    assert list(a.forecast.close) == list(b.forecast.close)


def test_quantiles_are_returned_in_order(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    req = request(40, 4, seed=3, sample_count=16, quantiles=[0.9, 0.1, 0.5])
    response = stub.PredictSingle(req, metadata=grpc_server.auth_metadata)
    assert [q.q for q in response.quantiles] == [0.1, 0.5, 0.9]
    lo, mid, hi = (np.array(q.values.close) for q in response.quantiles)
    assert np.all(lo <= mid) and np.all(mid <= hi)


def test_batch_mixes_settings_and_reports_item_errors_in_order(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    bad = request(30, 3, start=100, top_p=1.5)
    items = [request(30, 3, start=0, seed=1), bad, request(60, 7, start=200, sample_count=2, seed=2)]
    response = stub.PredictBatch(pb.PredictBatchRequest(items=items), metadata=grpc_server.auth_metadata)
    kinds = [r.WhichOneof("outcome") for r in response.results]
    assert kinds == ["forecast", "error", "forecast"]
    assert response.results[1].error.code == "INVALID_ARGUMENT"  # deprecated, still sent
    # the number a program switches on, decoded with nothing but the standard protos
    assert response.results[1].error.status_code == code_pb2.INVALID_ARGUMENT
    assert code_pb2.Code.Name(response.results[1].error.status_code) == "INVALID_ARGUMENT"
    assert response.results[1].error.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert response.results[1].error.field == "sampling.top_p"
    assert len(response.results[0].forecast.forecast.close) == 3
    assert len(response.results[2].forecast.forecast.close) == 7
    solo = stub.PredictSingle(items[2], metadata=grpc_server.auth_metadata)
    assert list(solo.forecast.close) == list(response.results[2].forecast.forecast.close)


def _stream(
    stub: pb_grpc.KronosPredictorStub, server: RunningServer, req: pb.PredictRequest
) -> tuple[list[pb.PredictStep], pb.PredictResponse]:
    events = list(stub.PredictStream(req, metadata=server.auth_metadata))
    assert [e.WhichOneof("event") for e in events] == ["step"] * (len(events) - 1) + ["final"]
    return [e.step for e in events[:-1]], events[-1].final


def _columns(steps: list[pb.PredictStep]) -> dict[str, list[float]]:
    return {name: [getattr(s, name) for s in steps] for name in FIELDS}


def test_stream_sends_each_step_then_the_final_forecast(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    steps, final = _stream(stub, grpc_server, request(50, 20, seed=4, sample_count=2))  # 50 + 20 > 64: slides
    assert [s.step for s in steps] == list(range(20))
    assert [s.timestamp_ms for s in steps] == list(final.forecast.timestamps_ms)
    # the final says exactly what the steps said: the same doubles, bit for bit
    for name, values in _columns(steps).items():
        assert list(getattr(final.forecast, name)) == values, name


@pytest.mark.parametrize("sample_count", [1, 4])
def test_stream_final_is_bit_identical_to_its_steps_with_quantiles(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer, sample_count: int
) -> None:
    req = request(40, 30, seed=9, sample_count=sample_count, quantiles=[0.1, 0.5, 0.9])  # slides too
    steps, final = _stream(stub, grpc_server, req)
    columns = _columns(steps)
    for name, values in columns.items():
        assert np.array_equal(np.array(getattr(final.forecast, name)), np.array(values)), name
    assert [q.q for q in final.quantiles] == [0.1, 0.5, 0.9]
    if sample_count == 1:  # one path: every quantile is the very path the steps were made of
        for quantile in final.quantiles:
            for name, values in columns.items():
                assert np.array_equal(np.array(getattr(quantile.values, name)), np.array(values))
    else:
        lo, hi = (np.array(q.values.close) for q in (final.quantiles[0], final.quantiles[-1]))
        assert np.all(lo <= hi) and np.any(lo < hi)  # four paths at T=1 differ somewhere


def test_every_uint64_seed_is_accepted_and_echoed(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer
) -> None:
    md = grpc_server.auth_metadata
    answers = {}
    for seed in (5, 2**32 + 5, 2**63 + 5, 2**64 - 2**32 + 5, 2**64 - 1):
        response = stub.PredictSingle(request(40, 4, seed=seed, sample_count=2), metadata=md)
        assert response.HasField("seed") and response.seed == seed
        answers[seed] = list(response.forecast.close)
    # as the proto says: the low 32 bits seed the sampler
    assert answers[5] == answers[2**32 + 5] == answers[2**63 + 5] == answers[2**64 - 2**32 + 5]
    assert answers[2**64 - 1] != answers[5]


def test_the_proto_states_the_seed_range_the_server_accepts() -> None:
    """The seed's comment in the proto names the range the server accepts: all of uint64."""
    comment = _field_comment("SamplingParams", "seed")
    assert "0 to 2^64 - 1" in comment and "low 32 bits" in comment
    assert "2^63" not in comment


def _field_comment(message: str, field: str) -> str:
    text = PROTO.read_text(encoding="utf-8")
    body = text[text.index(f"message {message} {{") :]
    lines = body.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().endswith(f" {field} = 5;"))
    comment: list[str] = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("//"):
            break
        comment.insert(0, line.strip().removeprefix("//").strip())
    return " ".join(comment)


def test_model_info(stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=grpc_server.auth_metadata)
    assert info.max_context == 64 and info.d_model == 32 and info.vocab_s1 == 16
    assert info.model_version.startswith("sha256:")
    assert info.limits.max_pred_len == 64
    assert info.limits.max_request_bytes == grpc_server.settings.max_request_bytes
    assert info.defaults.top_p == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.history.close.__setitem__(3, float("nan")), "history.close[3]"),
        (lambda r: r.history.low.__setitem__(5, -1.0), "history.low[5]"),
        (
            lambda r: r.history.timestamps_ms.__setitem__(2, r.history.timestamps_ms[1]),
            "history.timestamps_ms[2]",
        ),
        (lambda r: setattr(r, "pred_len", 65), "pred_len"),
        (lambda r: setattr(r.sampling, "temperature", 0.0), "sampling.temperature"),
        (lambda r: setattr(r.sampling, "sample_count", 0), "sampling.sample_count"),
        (lambda r: setattr(r, "timezone", "Mars/Olympus"), "timezone"),
        (lambda r: r.history.high.pop(), "history.high"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: pb_grpc.KronosPredictorStub, grpc_server: RunningServer, mutate: object, field: str
) -> None:
    req = request(40, 4)
    mutate(req)  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as err:
        stub.PredictSingle(req, metadata=grpc_server.auth_metadata)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field.split(".")[-1].replace("_ms", "") in err.value.details()
    trailers = dict(err.value.trailing_metadata())
    assert trailers["kronos-error-field"] == field


def test_health_and_reflection_need_no_credentials(grpc_server: RunningServer) -> None:
    channel = grpc.insecure_channel(grpc_server.target)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "kronos.v1.KronosPredictor"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {"kronos.v1.KronosPredictor", "grpc.health.v1.Health"} <= services
    method = db.FindFileContainingSymbol("kronos.v1.KronosPredictor")
    assert method.name == "kronos/v1/predictor.proto"


def test_json_call_through_reflection_alone(grpc_server: RunningServer) -> None:
    """What grpcurl does: learn the schema by reflection, send JSON, read JSON back."""
    from google.protobuf import descriptor_pool, json_format, message_factory

    channel = grpc.insecure_channel(grpc_server.target)
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName("kronos.v1.KronosPredictor").methods_by_name["GetModelInfo"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        "/kronos.v1.KronosPredictor/GetModelInfo",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    reply = call(json_format.Parse("{}", request_cls()), metadata=grpc_server.auth_metadata)
    as_json = json_format.MessageToDict(reply)
    assert as_json["maxContext"] == 64 and as_json["modelVersion"].startswith("sha256:")
