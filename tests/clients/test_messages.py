"""build_request and timestamp conversion: every timestamp form gives the same epoch ms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from kronos_client import InvalidInputError, build_request
from kronos_client.timestamps import format_iso, from_epoch_ms, to_epoch_ms

T0 = datetime(2024, 3, 10, 6, 30, tzinfo=UTC)
MS0 = 1710052200000


def test_timestamp_forms_agree() -> None:
    naive = T0.replace(tzinfo=None)
    forms: list[object] = [
        [T0],
        [naive],
        ["2024-03-10T06:30:00"],
        ["2024-03-10 06:30:00Z"],
        ["2024-03-10T07:30:00+01:00"],
        [MS0],
        [np.int64(MS0)],
        np.array(["2024-03-10T06:30"], dtype="datetime64[ns]"),
        [np.datetime64("2024-03-10T06:30:00")],
        [T0.astimezone(timezone(timedelta(hours=-5)))],
    ]
    for values in forms:
        assert to_epoch_ms(values) == [MS0], values  # type: ignore[arg-type]


def test_naive_times_are_wall_clock_in_the_series_zone() -> None:
    # 2024-03-10 01:30 New York is before the DST jump: UTC-5
    ny = to_epoch_ms([datetime(2024, 3, 10, 1, 30)], "America/New_York")
    assert ny == [int(datetime(2024, 3, 10, 6, 30, tzinfo=UTC).timestamp() * 1000)]
    assert to_epoch_ms(np.array(["2024-03-10T01:30"], dtype="datetime64[s]"), "America/New_York") == ny
    assert to_epoch_ms([date(2024, 3, 10)]) == [MS0 - (6 * 60 + 30) * 60_000]


def test_round_trip_and_formatting() -> None:
    assert from_epoch_ms([MS0]) == [T0]
    assert format_iso([MS0]) == ["2024-03-10T06:30:00"]
    assert format_iso([MS0], "Europe/Paris") == ["2024-03-10T07:30:00+01:00"]


@pytest.mark.parametrize(
    "bad", [["yesterday"], [1.5], [True], [None], np.array(["NaT"], dtype="datetime64[ns]")]
)
def test_bad_timestamps_name_the_element(bad: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        to_epoch_ms(bad, field="ts")  # type: ignore[arg-type]
    assert info.value.field is not None and info.value.field.startswith("ts")


def test_unknown_timezone() -> None:
    with pytest.raises(InvalidInputError) as info:
        to_epoch_ms([MS0], "Mars/Olympus")
    assert info.value.field == "timezone"


def test_build_request_fields() -> None:
    req = build_request(
        [MS0, MS0 + 60_000],
        [1, 2],
        np.array([2.0, 3.0]),
        (0.5, 1.5),
        [1.5, 2.5],
        volume=[10, 20],
        pred_len=3,
        temperature=0.7,
        top_k=5,
        top_p=0.8,
        sample_count=4,
        seed=42,
        quantiles=[0.1, 0.9],
        timezone="UTC",
        series_id="s",
    )
    assert list(req.history.timestamps_ms) == [MS0, MS0 + 60_000]
    assert list(req.history.high) == [2.0, 3.0] and list(req.history.volume) == [10.0, 20.0]
    assert not req.history.amount and req.pred_len == 3 and not req.prediction_timestamps_ms
    s = req.sampling
    assert (s.temperature, s.top_k, s.top_p, s.sample_count, s.seed) == (0.7, 5, 0.8, 4, 42)
    assert list(s.quantiles) == [0.1, 0.9]
    unset = build_request([MS0], [1], [1], [1], [1], pred_len=1).sampling
    assert not unset.HasField("temperature") and not unset.HasField("seed")


def test_build_request_rejects_non_numbers() -> None:
    with pytest.raises(InvalidInputError) as info:
        build_request([MS0], ["x"], [1], [1], [1], pred_len=1)
    assert info.value.field == "history.open"


def test_build_request_takes_every_uint64_seed_and_refuses_the_rest() -> None:
    for seed in (0, 2**63, 2**64 - 1):
        assert build_request([MS0], [1], [1], [1], [1], pred_len=1, seed=seed).sampling.seed == seed
    for bad in (-1, 2**64):
        with pytest.raises(InvalidInputError) as info:
            build_request([MS0], [1], [1], [1], [1], pred_len=1, seed=bad)
        assert info.value.field == "sampling.seed"
