"""The vectorised timestamp paths give what the per-value ones give, errors included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar

ZONES = ["UTC", "+08:00", "-05:30", "+00:00", "America/New_York", "Asia/Kolkata"]


def outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """What a call returns or the (message, field) it refuses with."""
    try:
        result = fn(*args)
    except InvalidInputError as exc:
        return ("error", exc.message, exc.field)
    if isinstance(result, tuple):
        return (result[0].tolist(), result[1])
    return result.tolist()


def both(values: list[str], tz_name: str | None) -> None:
    field = "timestamps"
    series = outcome(calendar.parse_series_timestamps, values, tz_name, field)
    assert series == outcome(calendar._series_each, values, tz_name, field)
    name = tz_name or "UTC"
    plain = outcome(calendar.parse_timestamps, values, name, field)
    assert plain == outcome(calendar._parse_each, values, calendar.zone(name), field)


instants = st.datetimes(min_value=datetime(1678, 1, 2), max_value=datetime(2262, 4, 10))
suffixes = st.sampled_from(["", "Z", "+00:00", "-00:00", "+08:00", "-05:30", "+23:59", "+14:45"])


def text(dt: datetime, sep: str, seconds: bool, digits: int, suffix: str) -> str:
    out = dt.strftime(f"%Y-%m-%d{sep}%H:%M")
    if seconds:
        out += dt.strftime(":%S")
        if digits:
            out += "." + f"{dt.microsecond:06d}"[:digits]
    return out + suffix


@settings(max_examples=300, deadline=None)
@given(
    st.lists(instants, min_size=1, max_size=12),
    st.sampled_from(["T", " "]),
    st.booleans(),
    st.integers(0, 6),
    suffixes,
    st.sampled_from([None, *ZONES]),
)
def test_uniform_strings_parse_as_one_at_a_time(
    stamps: list[datetime], sep: str, seconds: bool, digits: int, suffix: str, tz: str | None
) -> None:
    values = [text(dt, sep, seconds, digits, suffix) for dt in stamps]
    assert calendar._fast(values) is not None  # the fast path is the one under test
    both(values, tz)


@pytest.mark.parametrize(
    "values",
    [
        ["2024-06-18 11:15:00", "2024-06-18 11:20:00+08:00"],  # naive and aware mixed
        ["2024-06-18 11:15:00+08:00", "2024-06-18 11:20:00+09:00"],  # offsets differ
        ["2024-06-18 11:15:00Z", "2024-06-18 11:20:00+00:00"],
        ["2023-02-29 00:00:00"],
        ["2024-06-18 24:00:00"],
        ["2024-06-18 23:59:60"],
        ["0000-01-01 00:00"],
        ["1677-01-01 00:00:00"],
        ["2262-04-12 00:00:00"],
        ["2262-04-11 23:47:16.854775"],
        ["1677-09-21 00:12:43.145225"],
        ["1677-09-21 00:12:43.145224"],
        ["2262-04-11 23:00:00-05:00"],
        ["1677-09-21 00:30:00+08:00"],
        ["2024-06-18 11:15:00+24:00"],
        ["2024-06-18 11:15:00+05:60"],
        ["1969-12-31T23:59:59.5"],
        ["2261-12-31T23:59:59.999999"],
        ["2024-06-18 11:15:00.1234567"],
        ["2024-06-18", "2024-06-19"],
        [" 2024-06-18 11:15:00"],
        ["2024-06-18 11:15\n2024-06-18 11:20"],
        ["2024-06-18T11:15:00.000+08:00"],
        ["٢٠٢٤-06-18 11:15:00"],
        ["2024-03-10 02:30:00", "2024-11-03 01:30:00"],  # a gap and a fold in New York
        ["now"],
        ["NaT"],
        [],
    ],
)
@pytest.mark.parametrize("tz", [None, *ZONES])
def test_edge_cases_agree(values: list[str], tz: str | None) -> None:
    both(values, tz)


def test_fractions_before_1970_are_exact() -> None:
    # the per-value path once truncated int(timestamp()) towards zero, a second late
    out = calendar.parse_timestamps(["1969-12-31T23:59:59.5"], "UTC", "t")
    assert out.tolist() == [-500_000_000]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-(2**63) + 2 * 10**15, 2**63 - 2 * 10**15), max_size=10),
    st.booleans(),
    st.sampled_from(ZONES),
)
def test_formatting_agrees(ns: list[int], whole: bool, tz: str) -> None:
    values = np.asarray([v - v % 1_000_000_000 if whole else v for v in ns], dtype=np.int64)
    assert calendar.format_timestamps(values, tz) == calendar._format_each(values, calendar.zone(tz))


def test_formatting_writes_the_offset() -> None:
    second = int(datetime(2024, 6, 18, 3, 15, tzinfo=UTC).timestamp()) * 10**9
    assert calendar.format_timestamps(np.array([second]), "+08:00") == ["2024-06-18T11:15:00+08:00"]
    assert calendar.format_timestamps(np.array([second]), "UTC") == ["2024-06-18T03:15:00"]
    late = second + int(timedelta(microseconds=5) / timedelta(microseconds=1)) * 1000
    assert calendar.format_timestamps(np.array([late]), "-05:30") == ["2024-06-17T21:45:00.000005-05:30"]
