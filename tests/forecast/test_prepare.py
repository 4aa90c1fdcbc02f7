"""prepare(): every refused input names its culprit; the good path fills, continues and stamps."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import SamplingParams, SeriesInput

MINUTE = 60 * 1_000_000_000
START = 1_718_700_000 * 1_000_000_000  # 2024-06-18 08:40 UTC
LIMITS = Limits(max_context=32, min_history=4, max_history=50, max_sample_count=8)


def make_series(n: int = 10, **changes: Any) -> SeriesInput:
    """A valid 5-minute series of n candles; keyword arguments replace its fields."""
    rng = np.random.default_rng(0)
    close = 100 + np.cumsum(rng.normal(0, 0.5, n))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) + 0.3
    low = np.minimum(open_, close) - 0.3
    series = SeriesInput(
        series_id="s",
        timestamps=START + 5 * MINUTE * np.arange(n, dtype=np.int64),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=rng.uniform(100, 200, n),
        amount=rng.uniform(1e4, 2e4, n),
        pred_len=4,
    )
    return replace(series, **changes)


def with_value(series: SeriesInput, column: str, index: int, value: float) -> SeriesInput:
    arr = np.array(getattr(series, column), dtype=np.float64)
    arr[index] = value
    changes: dict[str, Any] = {column: arr}
    return replace(series, **changes)


def refused(series: SeriesInput, limits: Limits = LIMITS) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        prepare(series, limits)
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.details.get("field") == info.value.field
    return info.value


def test_the_base_series_is_valid() -> None:
    prepared = prepare(make_series(), LIMITS)
    assert prepared.rows == 10
    assert prepared.pred_len == 4


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume", "amount"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_cell(column: str, value: float) -> None:
    assert refused(with_value(make_series(), column, 3, value)).field == f"{column}[3]"


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_prices_must_be_positive(column: str, value: float) -> None:
    series = make_series()
    # keep the candle consistent otherwise, so the positivity check is what trips
    for name in ("open", "high", "low", "close"):
        series = with_value(series, name, 5, 1.0)
    assert refused(with_value(series, column, 5, value)).field == f"{column}[5]"


def test_high_below_low() -> None:
    series = make_series()
    for name, v in (("open", 10.0), ("close", 10.0), ("high", 9.0), ("low", 11.0)):
        series = with_value(series, name, 2, v)
    assert refused(series).field == "high[2]"


@pytest.mark.parametrize("column", ["open", "close"])
def test_high_below_open_or_close(column: str) -> None:
    series = make_series()
    for name, v in (("open", 10.0), ("close", 10.0), ("high", 11.0), ("low", 9.0)):
        series = with_value(series, name, 4, v)
    error = refused(with_value(series, column, 4, 11.5))
    assert error.field == "high[4]"
    assert "below open or close" in error.message


@pytest.mark.parametrize("column", ["open", "close"])
def test_low_above_open_or_close(column: str) -> None:
    series = make_series()
    for name, v in (("open", 10.0), ("close", 10.0), ("high", 11.0), ("low", 9.0)):
        series = with_value(series, name, 6, v)
    error = refused(with_value(series, column, 6, 8.5))
    assert error.field == "low[6]"
    assert "above open or close" in error.message


@pytest.mark.parametrize("column", ["volume", "amount"])
def test_negative_volume_or_amount(column: str) -> None:
    assert refused(with_value(make_series(), column, 7, -1.0)).field == f"{column}[7]"


def test_column_length_must_match_timestamps() -> None:
    series = make_series()
    assert refused(replace(series, close=series.close[:-1])).field == "close"


# --- timestamps and sizes ---------------------------------------------------------------------


def test_timestamps_must_increase() -> None:
    series = make_series()
    ts = series.timestamps.copy()
    ts[4], ts[5] = ts[5], ts[4]
    assert refused(replace(series, timestamps=ts)).field == "timestamps[5]"


def test_duplicate_timestamps() -> None:
    series = make_series()
    ts = series.timestamps.copy()
    ts[3] = ts[2]
    error = refused(replace(series, timestamps=ts))
    assert error.field == "timestamps[3]"
    assert "strictly increasing" in error.message


def test_too_few_rows() -> None:
    assert refused(make_series(LIMITS.min_history - 1)).field == "timestamps"
    assert prepare(make_series(LIMITS.min_history), LIMITS).rows == LIMITS.min_history


def test_too_many_rows() -> None:
    assert refused(make_series(LIMITS.max_history + 1)).field == "timestamps"
    assert prepare(make_series(LIMITS.max_history), LIMITS).rows == LIMITS.max_history


def future(series: SeriesInput, steps: int, first_offset: int = 1) -> np.ndarray:
    last = int(series.timestamps[-1])
    return last + 5 * MINUTE * np.arange(first_offset, first_offset + steps, dtype=np.int64)


@pytest.mark.parametrize("offset", [0, -1])
def test_prediction_timestamps_must_follow_the_history(offset: int) -> None:
    series = make_series()
    fut = future(series, 4, first_offset=offset)
    assert refused(replace(series, prediction_timestamps=fut)).field == "prediction_timestamps[0]"


def test_prediction_timestamps_must_increase() -> None:
    series = make_series()
    fut = future(series, 4)
    fut[2] = fut[1]
    assert refused(replace(series, prediction_timestamps=fut)).field == "prediction_timestamps[2]"


@pytest.mark.parametrize("count", [3, 5])
def test_prediction_timestamps_count_must_equal_pred_len(count: int) -> None:
    series = make_series(pred_len=4)
    error = refused(replace(series, prediction_timestamps=future(series, count)))
    assert error.field == "prediction_timestamps"


def test_prediction_timestamps_beyond_max_context() -> None:
    series = make_series(pred_len=None)
    fut = future(series, LIMITS.max_context + 1)
    assert refused(replace(series, prediction_timestamps=fut)).field == "prediction_timestamps"


@pytest.mark.parametrize("pred_len", [0, -3, LIMITS.max_context + 1])
def test_pred_len_out_of_range(pred_len: int) -> None:
    assert refused(make_series(pred_len=pred_len)).field == "pred_len"


def test_pred_len_at_max_context_is_accepted() -> None:
    assert prepare(make_series(pred_len=LIMITS.max_context), LIMITS).pred_len == LIMITS.max_context


def test_neither_pred_len_nor_prediction_timestamps() -> None:
    assert refused(make_series(pred_len=None)).field == "pred_len"


def test_unknown_timezone() -> None:
    assert refused(make_series(timezone="Mars/Olympus_Mons")).field == "timezone"


# --- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (SamplingParams(temperature=0.0), "temperature"),
        (SamplingParams(temperature=-0.5), "temperature"),
        (SamplingParams(temperature=float("nan")), "temperature"),
        (SamplingParams(temperature=float("inf")), "temperature"),
        (SamplingParams(top_p=0.0), "top_p"),
        (SamplingParams(top_p=-0.1), "top_p"),
        (SamplingParams(top_p=1.01), "top_p"),
        (SamplingParams(top_p=float("nan")), "top_p"),
        (SamplingParams(top_k=-1), "top_k"),
        (SamplingParams(sample_count=0), "sample_count"),
        (SamplingParams(sample_count=LIMITS.max_sample_count + 1), "sample_count"),
        (SamplingParams(seed=-1), "seed"),
        (SamplingParams(quantiles=(0.5, 1.0)), "quantiles[1]"),
        (SamplingParams(quantiles=(0.0,)), "quantiles[0]"),
        (SamplingParams(quantiles=(0.1, float("nan"))), "quantiles[1]"),
        (SamplingParams(quantiles=(-0.2,)), "quantiles[0]"),
        (SamplingParams(quantiles=tuple([0.5] * (LIMITS.max_quantiles + 1))), "quantiles"),
    ],
)
def test_bad_sampling_settings(params: SamplingParams, field: str) -> None:
    assert refused(make_series(sampling=params)).field == field


def test_sampling_edges_are_accepted() -> None:
    params = SamplingParams(top_p=1.0, top_k=0, sample_count=LIMITS.max_sample_count, quantiles=(0.01, 0.99))
    sampling = prepare(make_series(sampling=params), LIMITS).sampling
    assert (sampling.top_p, sampling.top_k, sampling.sample_count) == (1.0, 0, LIMITS.max_sample_count)
    assert sampling.quantiles == (0.01, 0.99)


def test_server_defaults_fill_absent_settings() -> None:
    limits = replace(
        LIMITS, default_temperature=0.7, default_top_k=3, default_top_p=0.5, default_sample_count=2
    )
    sampling = prepare(make_series(), limits).sampling
    assert (sampling.temperature, sampling.top_k, sampling.top_p, sampling.sample_count) == (0.7, 3, 0.5, 2)
    assert sampling.seed is None
    assert sampling.quantiles == ()


# --- good path -------------------------------------------------------------------------------


def denormalized(prepared: Any) -> np.ndarray:
    return np.asarray(prepared.x_norm * (prepared.std + 1e-5) + prepared.mean, dtype=np.float64)


def test_missing_volume_zeroes_volume_and_amount() -> None:
    # amount is ignored when volume is missing (spec: missing volume zeroes amount)
    prepared = prepare(make_series(volume=None), LIMITS)
    restored = denormalized(prepared)
    np.testing.assert_allclose(restored[:, 4:], 0.0, atol=1e-4)
    assert prepared.mean[4] == 0 and prepared.mean[5] == 0


def test_missing_amount_is_volume_times_mean_price() -> None:
    series = make_series(amount=None)
    prepared = prepare(series, LIMITS)
    mean_price = (series.open + series.high + series.low + series.close) / 4
    expected = series.volume * mean_price
    np.testing.assert_allclose(denormalized(prepared)[:, 5], expected, rtol=1e-4)


def test_pred_len_alone_continues_the_interval() -> None:
    series = make_series(pred_len=3)
    prepared = prepare(series, LIMITS)
    last = int(series.timestamps[-1])
    np.testing.assert_array_equal(prepared.y_timestamps, last + 5 * MINUTE * np.arange(1, 4))


def test_pred_len_alone_uses_the_median_interval() -> None:
    # one gap (a market close) must not change the step
    series = make_series(pred_len=2)
    ts = series.timestamps.copy()
    ts[5:] += 120 * MINUTE
    prepared = prepare(replace(series, timestamps=ts), LIMITS)
    np.testing.assert_array_equal(np.diff(prepared.y_timestamps), [5 * MINUTE])
    assert prepared.y_timestamps[0] == ts[-1] + 5 * MINUTE


def test_explicit_prediction_timestamps_are_kept() -> None:
    series = make_series(pred_len=None)
    fut = future(series, 3, first_offset=7)
    prepared = prepare(replace(series, prediction_timestamps=fut), LIMITS)
    np.testing.assert_array_equal(prepared.y_timestamps, fut)


def test_calendar_stamps_use_local_wall_clock_across_dst() -> None:
    # 2024-03-10: New York moves from EST (UTC-5) to EDT (UTC-4) at 02:00 local
    ny = ZoneInfo("America/New_York")
    local = [datetime(2024, 3, 9, 22, 0, tzinfo=ny), datetime(2024, 3, 10, 1, 0, tzinfo=ny)]
    local += [datetime(2024, 3, 10, h, 30, tzinfo=ny) for h in (3, 4, 5, 6)]
    ts = np.array([int(d.timestamp()) * 1_000_000_000 for d in local], dtype=np.int64)
    series = make_series(6, timestamps=ts, timezone="America/New_York", pred_len=2)
    prepared = prepare(series, LIMITS)
    assert prepared.timezone == "America/New_York"
    # columns: minute, hour, weekday (Mon=0), day, month
    expected = [
        [0, 22, 5, 9, 3],
        [0, 1, 6, 10, 3],
        [30, 3, 6, 10, 3],
        [30, 4, 6, 10, 3],
        [30, 5, 6, 10, 3],
        [30, 6, 6, 10, 3],
    ]
    np.testing.assert_array_equal(prepared.x_stamps, expected)
    # the same instants in UTC: the hours differ by the offset, which changes at the DST switch
    utc_hours = calendar.stamps(ts, "UTC")[:, 1]
    np.testing.assert_array_equal(utc_hours, [3, 6, 7, 8, 9, 10])


def test_naive_timestamps_parse_as_wall_clock_of_the_zone() -> None:
    ts = calendar.parse_timestamps(["2024-07-01T09:30:00"], "America/New_York", "timestamps")
    assert calendar.stamps(ts, "America/New_York")[0, :2].tolist() == [30, 9]
    assert calendar.stamps(ts, "UTC")[0, :2].tolist() == [30, 13]


def test_normalised_input_is_clipped() -> None:
    series = make_series(40)
    series = with_value(series, "volume", 10, 1e9)
    prepared = prepare(series, LIMITS)
    assert prepared.x_norm.dtype == np.float32
    assert float(np.abs(prepared.x_norm).max()) <= LIMITS.clip


def test_volume_and_amount_are_never_negative_and_zero_without_input_volume() -> None:
    from kronos_server.forecast.prepare import denormalize

    mean = np.array([10, 11, 9, 10, 500, 5000], dtype=np.float32)
    std = np.array([1, 1, 1, 1, 100, 1000], dtype=np.float32)
    z = np.full((3, 6), -5.5, dtype=np.float32)  # far below the history's volumes
    out = denormalize(z, mean, std)
    assert (out[:, 4:] == 0).all() and (out[:, :4] < mean[:4]).all()
    # no volume in the history: its statistics are all 0, and z * (0 + 1e-5) would be noise
    mean[4:], std[4:] = 0, 0
    noisy = np.random.default_rng(0).normal(0, 1, (2, 4, 6)).astype(np.float32)
    out = denormalize(noisy, mean, std)
    assert (out[..., 4:] == 0).all()
    np.testing.assert_allclose(out[..., :4], noisy[..., :4] * (std[:4] + 1e-5) + mean[:4], rtol=1e-6)
