"""The JSON codec: the legacy request/response shape."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from kronos_server.errors import InvalidInputError, OverloadedError
from kronos_server.forecast import calendar
from kronos_server.forecast.json_codec import (
    DEFAULT_SERIES_ID,
    forecast_to_response,
    legacy_field,
    relabel,
    series_from_request,
)
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import Forecast

STAMPS = [f"2024-06-18T11:{m:02d}:00" for m in range(0, 30, 5)]


def candle(price: float, **extra: float) -> dict[str, float]:
    return {"open": price, "high": price + 0.2, "low": price - 0.2, "close": price + 0.1, **extra}


def request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "series_id": "abc",
        "candles": [candle(10.0 + i, volume=100.0 + i, amount=1000.0 + i) for i in range(6)],
        "timestamps": list(STAMPS),
    }
    body.update(changes)
    return body


def refused(payload: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        series_from_request(payload)
    return info.value


# --- request -> SeriesInput -------------------------------------------------------------------


def test_full_request_converts() -> None:
    body = request(
        prediction_timestamps=["2024-06-18T11:30:00", "2024-06-18T11:35:00"],
        timezone="Asia/Shanghai",
        overrides={
            "pred_len": 2,
            "temperature": 0.5,
            "top_k": 3,
            "top_p": 0.8,
            "sample_count": 4,
            "seed": 7,
            "quantiles": [0.1, 0.9],
        },
    )
    series = series_from_request(body)
    assert series.series_id == "abc"
    assert series.timezone == "Asia/Shanghai"
    assert series.pred_len == 2
    np.testing.assert_array_equal(series.close, [10.1 + i for i in range(6)])
    np.testing.assert_array_equal(series.volume, [100.0 + i for i in range(6)])
    # naive timestamps are Shanghai wall-clock time (UTC+8)
    assert series.timestamps[0] == calendar.parse_timestamps(["2024-06-18T03:00:00Z"], "UTC", "t")[0]
    assert series.prediction_timestamps is not None and len(series.prediction_timestamps) == 2
    s = series.sampling
    assert (s.temperature, s.top_k, s.top_p, s.sample_count, s.seed) == (0.5, 3, 0.8, 4, 7)
    assert s.quantiles == (0.1, 0.9)


def test_minimal_request_uses_defaults() -> None:
    body = request(overrides={"pred_len": 3})
    del body["series_id"]
    for c in body["candles"]:
        del c["volume"], c["amount"]
    series = series_from_request(body)
    assert series.series_id == DEFAULT_SERIES_ID
    assert series.volume is None and series.amount is None
    assert series.timezone is None and series.prediction_timestamps is None
    s = series.sampling
    assert (s.temperature, s.top_k, s.top_p, s.sample_count, s.seed, s.quantiles) == (
        None,
        None,
        None,
        None,
        None,
        (),
    )
    # pred_len without prediction_timestamps continues the 5-minute interval
    prepared = prepare(series, Limits())
    np.testing.assert_array_equal(np.diff(prepared.y_timestamps), [300 * 10**9] * 2)
    assert prepared.y_timestamps[0] - series.timestamps[-1] == 300 * 10**9


def test_null_overrides_mean_default() -> None:
    series = series_from_request(request(overrides={"pred_len": 2, "top_p": None, "quantiles": None}))
    assert series.sampling.top_p is None
    assert series.sampling.quantiles == ()


def test_integers_are_accepted_as_prices_and_floats() -> None:
    body = request(overrides={"pred_len": 1, "temperature": 1, "top_p": 1})
    body["candles"][0] = {"open": 10, "high": 11, "low": 9, "close": 10}
    for c in body["candles"][1:]:
        c.pop("volume"), c.pop("amount")
    series = series_from_request(body)
    assert series.open[0] == 10.0
    assert series.sampling.temperature == 1.0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("candles"), "candles"),
        (lambda b: b.pop("timestamps"), "timestamps"),
        (lambda b: b.update(candles={"open": 1}), "candles"),
        (lambda b: b["candles"].__setitem__(2, [1, 2, 3, 4]), "candles[2]"),
        (lambda b: b["candles"][3].pop("close"), "candles[3].close"),
        (lambda b: b["candles"][3].update(close="10.5"), "candles[3].close"),
        (lambda b: b["candles"][3].update(close=None), "candles[3].close"),
        (lambda b: b["candles"][1].update(high=True), "candles[1].high"),
        (lambda b: b["candles"][4].update(volume="1"), "candles[4].volume"),
        (lambda b: b["candles"][0].update(clsoe=1.0), "candles[0].clsoe"),
        (lambda b: b.update(timestamps="2024-06-18"), "timestamps"),
        (lambda b: b["timestamps"].__setitem__(2, 1718708400), "timestamps[2]"),
        (lambda b: b["timestamps"].__setitem__(2, "yesterday"), "timestamps[2]"),
        (lambda b: b["timestamps"].pop(), "timestamps"),
        (
            lambda b: b.update(prediction_timestamps=["2024-06-18T12:00:00", "soon"]),
            "prediction_timestamps[1]",
        ),
        (lambda b: b.update(prediction_timestamps="2024-06-18T12:00:00"), "prediction_timestamps"),
        (lambda b: b.update(series_id=5), "series_id"),
        (lambda b: b.update(timezone=3), "timezone"),
        (lambda b: b.update(timezone="Not/AZone"), "timezone"),
        (lambda b: b.update(overrides=[1]), "overrides"),
        (lambda b: b.update(overrides={"top_p": "0.5"}), "overrides.top_p"),
        (lambda b: b.update(overrides={"temperature": False}), "overrides.temperature"),
        (lambda b: b.update(overrides={"pred_len": 2.0}), "overrides.pred_len"),
        (lambda b: b.update(overrides={"pred_len": "2"}), "overrides.pred_len"),
        (lambda b: b.update(overrides={"top_k": 1.5}), "overrides.top_k"),
        (lambda b: b.update(overrides={"sample_count": True}), "overrides.sample_count"),
        (lambda b: b.update(overrides={"seed": 1.0}), "overrides.seed"),
        (lambda b: b.update(overrides={"quantiles": 0.5}), "overrides.quantiles"),
        (lambda b: b.update(overrides={"quantiles": [0.1, "0.5"]}), "overrides.quantiles[1]"),
        (lambda b: b.update(overrides={"top_pp": 0.5}), "overrides.top_pp"),
        (lambda b: b.update(model="large"), "model"),
    ],
)
def test_wrong_shapes_name_the_field(mutate: Any, field: str) -> None:
    body = request(overrides={"pred_len": 2})
    mutate(body)
    error = refused(body)
    assert error.field == field
    assert error.message.startswith(field)


@pytest.mark.parametrize("payload", [[], "x", None, 3])
def test_request_must_be_an_object(payload: Any) -> None:
    assert refused(payload).field == "request"


@pytest.mark.parametrize("column", ["volume", "amount"])
def test_partial_column_names_the_first_candle_without_it(column: str) -> None:
    body = request()
    del body["candles"][2][column]
    del body["candles"][4][column]
    error = refused(body)
    assert error.field == f"candles[2].{column}"
    assert "candles[0]" in error.message


def test_partial_column_when_the_first_candles_lack_it() -> None:
    body = request()
    for c in body["candles"][:3]:
        del c["volume"]
    assert refused(body).field == "candles[0].volume"


def test_null_volume_counts_as_missing() -> None:
    body = request()
    for c in body["candles"]:
        c["volume"] = None
    series = series_from_request(body)
    assert series.volume is None
    assert series.amount is not None


def test_aware_timestamps_keep_their_instant() -> None:
    body = request(timezone="America/New_York")
    body["timestamps"] = [f"2024-06-18T15:{m:02d}:00Z" for m in range(0, 30, 5)]
    series = series_from_request(body)
    assert calendar.stamps(series.timestamps, "America/New_York")[0, 1] == 11


# --- domain errors in the request's vocabulary ---------------------------------------------


@pytest.mark.parametrize(
    ("domain", "legacy"),
    [
        ("close[3]", "candles[3].close"),
        ("volume[0]", "candles[0].volume"),
        ("temperature", "overrides.temperature"),
        ("top_p", "overrides.top_p"),
        ("pred_len", "overrides.pred_len"),
        ("quantiles[1]", "overrides.quantiles[1]"),
        ("quantiles", "overrides.quantiles"),
        ("seed", "overrides.seed"),
        ("timestamps[2]", "timestamps[2]"),
        ("prediction_timestamps[0]", "prediction_timestamps[0]"),
        ("timezone", "timezone"),
    ],
)
def test_legacy_field(domain: str, legacy: str) -> None:
    assert legacy_field(domain) == legacy


def test_prepare_errors_relabelled_for_the_request() -> None:
    body = request(overrides={"pred_len": 2})
    body["candles"][3]["close"] = float("nan")
    with pytest.raises(InvalidInputError) as info:
        prepare(series_from_request(body), Limits())
    error = relabel(info.value)
    assert error.field == "candles[3].close"
    assert error.message.startswith("candles[3].close:")
    assert error.details["field"] == "candles[3].close"

    body = request(overrides={"pred_len": 2, "top_p": 1.5})
    with pytest.raises(InvalidInputError) as info:
        prepare(series_from_request(body), Limits())
    assert relabel(info.value).field == "overrides.top_p"


def test_relabel_leaves_other_errors_alone() -> None:
    overloaded = OverloadedError("full")
    assert relabel(overloaded) is overloaded
    plain = InvalidInputError("timestamps: too few", field="timestamps")
    assert relabel(plain) is plain


# --- Forecast -> response -----------------------------------------------------------------------


def make_forecast(timezone: str = "UTC", quantiles: tuple[float, ...] = ()) -> Forecast:
    ts = calendar.parse_timestamps(["2024-06-18T12:00:00Z", "2024-06-18T12:05:00Z"], "UTC", "t")
    mean = np.array([[11.27, 11.3, 11.2, 11.25, 379.0, 427161.0], [1, 2, 0.5, 1.5, 0, 0]], dtype=np.float32)
    return Forecast(
        series_id="abc",
        timestamps=ts,
        timezone=timezone,
        mean=mean,
        quantiles={q: mean * q for q in quantiles},
        sample_count=4,
        seed=None,
    )


def test_response_shape() -> None:
    response = forecast_to_response(make_forecast(), model_version="m1", tokenizer_version="t1")
    assert set(response) == {"series_id", "prediction", "model_version", "tokenizer_version", "prob_close_up"}
    assert response["series_id"] == "abc"
    assert (response["model_version"], response["tokenizer_version"]) == ("m1", "t1")
    first = response["prediction"][0]
    assert first == {
        "timestamp": "2024-06-18T12:00:00",
        "open": 11.27,
        "high": 11.3,
        "low": 11.2,
        "close": 11.25,
        "volume": 379.0,
        "amount": 427161.0,
    }
    assert len(response["prediction"]) == 2
    json.dumps(response, allow_nan=False)


def test_response_timestamps_in_the_series_zone() -> None:
    response = forecast_to_response(make_forecast("Asia/Shanghai"), model_version="m", tokenizer_version="t")
    assert response["prediction"][1]["timestamp"] == "2024-06-18T20:05:00+08:00"


def test_quantiles_only_when_requested() -> None:
    response = forecast_to_response(
        make_forecast(quantiles=(0.9, 0.1)), model_version="m", tokenizer_version="t"
    )
    assert [entry["q"] for entry in response["quantiles"]] == [0.1, 0.9]
    rows = response["quantiles"][1]["prediction"]
    assert len(rows) == 2
    assert rows[0]["timestamp"] == "2024-06-18T12:00:00"
    assert rows[1]["high"] == pytest.approx(1.8)


def test_non_finite_values_become_null() -> None:
    forecast = make_forecast()
    forecast.mean[1, 4] = np.nan
    response = forecast_to_response(forecast, model_version="m", tokenizer_version="t")
    assert response["prediction"][1]["volume"] is None
    json.dumps(response, allow_nan=False)


def test_request_is_not_mutated() -> None:
    body = request(overrides={"pred_len": 2, "quantiles": [0.5]})
    before = copy.deepcopy(body)
    series_from_request(body)
    assert body == before


def test_prob_close_up_and_paths_in_the_response() -> None:
    forecast = make_forecast()
    steps = len(forecast.timestamps)
    probs = np.array([0.25, np.nan])  # a NaN: never from the engine; a remote answer might carry one
    paths = np.stack([forecast.mean, forecast.mean * 2])
    response = forecast_to_response(
        dataclasses.replace(forecast, prob_close_up=probs, paths=paths),
        model_version="m",
        tokenizer_version="t",
    )
    assert response["prob_close_up"] == [0.25, None] and steps == 2
    plain = forecast_to_response(
        dataclasses.replace(forecast, prob_close_up=probs[:1]), model_version="m", tokenizer_version="t"
    )
    assert plain["prob_close_up"] == [0.25] and "paths" not in plain
    assert [row["close"] for row in response["paths"][1]] == [
        row["close"] * 2 for row in response["prediction"]
    ]
    assert [row["timestamp"] for row in response["paths"][0]] == [
        row["timestamp"] for row in response["prediction"]
    ]
