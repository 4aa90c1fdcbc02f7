"""What `kronos-serve forecast --csv` reads: the CSV file and the --quantiles flag."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.csv_input import quantiles_from_text, series_from_csv
from kronos_server.forecast.json_codec import DEFAULT_SERIES_ID
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare

CSV = """timestamps,open,high,low,close,volume,amount
2024-06-18 11:15:00,11.27,11.28,11.26,11.27,379.0,427161.0
2024-06-18 11:20:00,11.27,11.28,11.27,11.27,277.0,312192.0
2024-06-18 11:25:00,11.27,11.29,11.26,11.28,300.0,338000.0

2024-06-18 11:30:00,11.28,11.30,11.27,11.29,310.0,350000.0
"""


def test_csv_reads_every_column() -> None:
    series = series_from_csv(io.StringIO(CSV), pred_len=4)
    assert series.series_id == DEFAULT_SERIES_ID
    assert len(series.timestamps) == 4
    np.testing.assert_array_equal(series.close, [11.27, 11.27, 11.28, 11.29])
    np.testing.assert_array_equal(series.amount, [427161.0, 312192.0, 338000.0, 350000.0])
    assert series.pred_len == 4
    prepare(series, Limits())


def test_csv_from_a_path_tail_and_timezone(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    path.write_text(CSV)
    series = series_from_csv(path, tail=2, timezone="Asia/Shanghai")
    assert series.series_id == "btc"
    np.testing.assert_array_equal(series.open, [11.27, 11.28])
    assert calendar.format_timestamps(series.timestamps, "UTC")[0] == "2024-06-18T03:25:00"


@pytest.mark.parametrize("name", ["timestamp", "date", "Timestamps"])
def test_csv_timestamp_column_aliases_without_volume(name: str) -> None:
    text = f"{name},open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1.5,2,1,1.8\n"
    series = series_from_csv(io.StringIO(text))
    assert series.volume is None and series.amount is None
    assert len(series.close) == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "csv"),
        ("time,open,high,low,close\n", "csv"),
        ("timestamps,open,high,low\n", "csv"),
        ("timestamps,open,high,low,close\n2024-01-01,1,2,0.5,x\n", "close[0]"),
        ("timestamps,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-01-02,1,2\n", "rows[1]"),
        ("timestamps,open,high,low,close\n2024-01-01,1,2,0.5,1\nnope,1,2,0.5,1\n", "timestamps[1]"),
    ],
)
def test_csv_errors(text: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        series_from_csv(io.StringIO(text))
    assert info.value.field == field


def test_csv_error_gives_the_line_number() -> None:
    text = "timestamps,open,high,low,close\n2024-01-01,1,2,0.5,1\n2024-01-02,1,2,0.5,bad\n"
    with pytest.raises(InvalidInputError, match="line 3"):
        series_from_csv(io.StringIO(text))


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        series_from_csv(tmp_path / "absent.csv")
    assert info.value.field == "csv"


def test_quantiles_from_text() -> None:
    assert quantiles_from_text("0.1, 0.5,0.9") == (0.1, 0.5, 0.9)
    with pytest.raises(InvalidInputError) as info:
        quantiles_from_text("0.1,half")
    assert info.value.field == "quantiles[1]"
