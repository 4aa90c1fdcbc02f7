"""Timestamps that carry a UTC offset keep it when timezone is absent (issue 11 item 9)."""

from __future__ import annotations

import numpy as np
import pytest

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.json_codec import series_from_request
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare

CANDLES = [{"open": 10.0, "high": 11.0, "low": 9.5, "close": 10.5}] * 3


def body(stamps: list[str], **extra: object) -> dict[str, object]:
    return {"candles": CANDLES, "timestamps": stamps, "overrides": {"pred_len": 2}, **extra}


def test_offset_features_equal_the_zones_wall_clock() -> None:
    aware = prepare(
        series_from_request(body([f"2024-06-18T09:{m}:00+08:00" for m in (30, 35, 40)])), Limits()
    )
    naive = series_from_request(
        body([f"2024-06-18T09:{m}:00" for m in (30, 35, 40)], timezone="Asia/Shanghai")
    )
    expected = prepare(naive, Limits())
    np.testing.assert_array_equal(aware.x_stamps, expected.x_stamps)
    np.testing.assert_array_equal(aware.y_stamps, expected.y_stamps)
    assert aware.x_stamps[0].tolist() == [30, 9, 1, 18, 6]  # 09:30 on Tuesday 18 June
    assert aware.timezone == "+08:00"
    assert calendar.format_timestamps(aware.y_timestamps, aware.timezone) == [
        "2024-06-18T09:45:00+08:00",
        "2024-06-18T09:50:00+08:00",
    ]


def test_an_explicit_timezone_wins_over_the_offset() -> None:
    series = series_from_request(
        body(
            ["2024-06-18T01:30:00+00:00", "2024-06-18T01:35:00Z", "2024-06-18T10:40:00"],
            timezone="Asia/Tokyo",
        )
    )
    assert series.timezone == "Asia/Tokyo"
    assert prepare(series, Limits()).x_stamps[0][:2].tolist() == [30, 10]  # 10:30 in Tokyo


def test_utc_offsets_stay_naive_utc() -> None:
    series = series_from_request(
        body(["2024-06-18T01:30:00Z", "2024-06-18T01:35:00+00:00", "2024-06-18T01:40:00Z"])
    )
    assert series.timezone is None


def test_differing_offsets_are_refused_naming_the_timestamp() -> None:
    stamps = ["2024-03-09T09:30:00-05:00", "2024-03-10T09:30:00-04:00", "2024-03-11T09:30:00-04:00"]
    with pytest.raises(InvalidInputError) as info:
        series_from_request(body(stamps))
    assert info.value.field == "timestamps[1]"
    assert "America/New_York" in info.value.message
    assert series_from_request(body(stamps, timezone="America/New_York")).timezone == "America/New_York"


@pytest.mark.parametrize("name", ["+08:00", "-05:30", "+00:00"])
def test_fixed_offset_zone_names(name: str) -> None:
    zone = calendar.zone(name)
    assert zone is None if name == "+00:00" else zone is not None


@pytest.mark.parametrize("name", ["+25:00", "+08:61", "08:00", "Mars/Olympus"])
def test_bad_zone_names(name: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        calendar.zone(name)
    assert info.value.field == "timezone"


def test_the_offset_crosses_the_rest_bridge_and_grpc() -> None:
    from kronos_bridge.translate import request_to_pb
    from kronos_server.rpc.convert import series_from_pb

    translated = request_to_pb(body([f"2024-06-18T09:{m}:00+08:00" for m in (30, 35, 40)]))
    assert translated.timezone == "+08:00" and translated.message.timezone == "+08:00"
    # the gRPC side reads the offset zone back: same calendar features as Asia/Shanghai
    prepared = prepare(series_from_pb(translated.message), Limits())
    assert prepared.timezone == "+08:00"
    assert prepared.x_stamps[0].tolist() == [30, 9, 1, 18, 6]
