"""KronosClient against a real server: values equal the raw stub's, errors carry the status."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_client import Forecast, ItemError, KronosClient, KronosClientError, Step
from tests.clients.conftest import START, STEP, raw_request, requests_total, settled

SAMPLING = {"pred_len": 4, "sample_count": 3, "seed": 7, "quantiles": [0.1, 0.9]}


def assert_forecast_equals(forecast: Forecast, raw: pb.PredictResponse) -> None:
    assert forecast.timestamps_ms.tolist() == list(raw.forecast.timestamps_ms)
    for name in ("open", "high", "low", "close", "volume", "amount"):
        assert getattr(forecast, name).tolist() == list(getattr(raw.forecast, name)), name
    assert sorted(forecast.quantiles) == [q.q for q in raw.quantiles]
    for q in raw.quantiles:
        assert forecast.quantiles[q.q].close.tolist() == list(q.values.close)
    assert forecast.model_version == raw.model_version
    assert forecast.tokenizer_version == raw.tokenizer_version


@pytest.fixture(scope="module")
def raw_forecast(grpc_server: Any, series: dict[str, Any]) -> pb.PredictResponse:
    with grpc.insecure_channel(grpc_server.target) as channel:
        from kronos.v1 import predictor_pb2_grpc as pb_grpc

        stub = pb_grpc.KronosPredictorStub(channel)
        return stub.PredictSingle(
            raw_request(series, **SAMPLING), metadata=grpc_server.auth_metadata, timeout=60
        )


def test_predict_equals_the_raw_stub(
    client: KronosClient, series: dict[str, Any], raw_forecast: pb.PredictResponse
) -> None:
    forecast = client.predict(**series, **SAMPLING)
    assert_forecast_equals(forecast, raw_forecast)
    assert len(forecast) == 4
    assert forecast.sample_count == 3 and forecast.seed == 7
    assert forecast.model_version and forecast.tokenizer_version
    assert forecast.timestamps[0] == START + 80 * STEP
    assert forecast.request_id


def test_timestamps_as_iso_strings_and_epoch_ms_give_the_same_forecast(
    client: KronosClient, series: dict[str, Any], raw_forecast: pb.PredictResponse
) -> None:
    iso = {**series, "timestamps": [t.strftime("%Y-%m-%dT%H:%M:%S") for t in series["timestamps"]]}
    ms = {**series, "timestamps": [int(t.timestamp() * 1000) for t in series["timestamps"]]}
    assert_forecast_equals(client.predict(**iso, **SAMPLING), raw_forecast)
    assert_forecast_equals(client.predict(**ms, **SAMPLING), raw_forecast)


def test_prediction_timestamps_and_timezone(client: KronosClient, series: dict[str, Any]) -> None:
    future = [START + (80 + i) * STEP for i in range(3)]
    forecast = client.predict(
        **series, prediction_timestamps=future, seed=1, timezone="America/New_York", series_id="x"
    )
    assert forecast.series_id == "x"
    assert forecast.timestamps == future
    assert str(forecast.timestamps[0].tzinfo) == "America/New_York"
    assert forecast.to_dict()["forecast"][0]["timestamp"].endswith("-04:00")


def test_request_id_is_sent_and_echoed(client: KronosClient, series: dict[str, Any]) -> None:
    forecast = client.predict(**series, pred_len=1, seed=0, request_id="my-trace-1")
    assert forecast.request_id == "my-trace-1"


def test_batch_reports_an_invalid_item_in_its_slot(
    client: KronosClient, series: dict[str, Any], raw_forecast: pb.PredictResponse
) -> None:
    bad = {**series, "close": np.concatenate([series["close"][:-1], [-1.0]])}
    results = client.predict_batch(
        [
            {**series, **SAMPLING},
            {**bad, **SAMPLING},
            raw_request(series, **SAMPLING),  # a raw PredictRequest works too
        ]
    )
    assert len(results) == 3
    assert isinstance(results[0], Forecast) and isinstance(results[2], Forecast)
    assert_forecast_equals(results[0], raw_forecast)
    assert_forecast_equals(results[2], raw_forecast)
    error = results[1]
    assert isinstance(error, ItemError)
    assert error.index == 1 and error.code == "INVALID_ARGUMENT"
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT  # from the item's status_code number
    # the proto documents "history.close[17]"; the server currently says "close[17]"
    assert error.field and error.field.endswith("close[79]")
    exc = error.to_exception()
    assert exc.code == grpc.StatusCode.INVALID_ARGUMENT and exc.field == error.field


def test_stream_yields_steps_then_the_final_forecast(
    client: KronosClient, series: dict[str, Any], raw_forecast: pb.PredictResponse
) -> None:
    events = list(client.stream(**series, **SAMPLING))
    steps, final = events[:-1], events[-1]
    assert [type(e) for e in steps] == [Step] * 4
    assert [s.step for s in steps] == [0, 1, 2, 3]  # type: ignore[union-attr]
    assert isinstance(final, Forecast)
    assert_forecast_equals(final, raw_forecast)
    for s in steps:
        assert isinstance(s, Step)
        assert s.timestamp_ms == final.timestamps_ms[s.step]
        assert s.close == final.close[s.step] and s.volume == final.volume[s.step]


def test_stream_can_be_abandoned_early(client: KronosClient, series: dict[str, Any]) -> None:
    stream = client.stream(**series, pred_len=8, seed=3)
    first = next(iter(stream))
    assert isinstance(first, Step)
    stream.close()  # type: ignore[attr-defined]
    assert client.predict(**series, pred_len=1, seed=3).close.size == 1


def test_model_info(client: KronosClient, raw_forecast: pb.PredictResponse) -> None:
    info = client.model_info()
    assert info.max_context == 64
    assert info.model_version == raw_forecast.model_version
    assert info.limits.max_pred_len == 64


def test_health_needs_no_credentials(grpc_server: Any) -> None:
    with KronosClient(grpc_server.target) as anonymous:
        assert anonymous.health() == "SERVING"
        assert anonymous.health("kronos.v1.KronosPredictor") == "SERVING"
        with pytest.raises(KronosClientError) as info:
            anonymous.health("no.such.Service")
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_missing_credentials_are_unauthenticated_and_not_retried(grpc_server: Any) -> None:
    before = requests_total(grpc_server, "GetModelInfo", "unauthorized")
    with KronosClient(grpc_server.target) as anonymous, pytest.raises(KronosClientError) as info:
        anonymous.model_info()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert info.value.request_id
    assert (
        settled(lambda: requests_total(grpc_server, "GetModelInfo", "unauthorized"), before + 1) == before + 1
    )


def test_wrong_key_is_unauthenticated(grpc_server: Any) -> None:
    wrong = KronosClient(grpc_server.target, container=grpc_server.container, key="wrong")
    with wrong, pytest.raises(KronosClientError) as info:
        wrong.model_info()
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_key_file(grpc_server: Any, tmp_path: Any) -> None:
    from kronos_client import ClientConfig

    key_file = tmp_path / "key"
    key_file.write_text(grpc_server.key + "\n")
    config = ClientConfig(grpc_server.target, container=grpc_server.container, key_file=key_file)
    with KronosClient(config) as c:
        assert c.model_info().max_context == 64


def test_invalid_argument_names_the_field_and_is_not_retried(
    grpc_server: Any, client: KronosClient, series: dict[str, Any]
) -> None:
    before = requests_total(grpc_server, "PredictSingle", "invalid")
    bad = {**series, "close": np.concatenate([series["close"][:-1], [-1.0]])}
    with pytest.raises(KronosClientError) as info:
        client.predict(**bad, pred_len=2, request_id="bad-input-1")
    err = info.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.field is not None and err.field.endswith("close[79]")
    assert err.request_id == "bad-input-1"
    assert settled(lambda: requests_total(grpc_server, "PredictSingle", "invalid"), before + 1) == before + 1


def test_client_side_input_errors(client: KronosClient, series: dict[str, Any]) -> None:
    with pytest.raises(KronosClientError) as info:
        client.predict(**{**series, "timestamps": ["not a time"] * 80}, pred_len=1)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.field == "history.timestamps_ms[0]"
    with pytest.raises(ValueError, match="pred_len"):
        client.predict(**series)
