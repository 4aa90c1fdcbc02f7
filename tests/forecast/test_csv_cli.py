"""kronos-serve forecast --csv end to end: the one CSV reader, no-volume forecasts, offsets,
--freq / --calendar / --prediction-timestamps (issue 11 items 4, 6, 9, 10)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from kronos_client.csvinput import TIME_COLUMNS
from tests.test_cli import MODEL_FLAGS, case_rows, run_cli

# the parity case's candles (real 5-minute bars) with a header spelling of our choice
ROWS = 40
BAD_FILES = {
    "no_timestamp_column": "when,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n",
    "missing_close": "Datetime,open,high,low\n2024-01-01,1,2,0.5\n",
    "not_a_number": "Date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,2,0.5,x\n",
    "short_row": "time,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,2\n",
    "header_only": "timestamp,open,high,low,close\n",
    "empty": "",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


def write_csv(
    path: Path, header: str = "timestamps", stamps: list[str] | None = None, volume: bool = True
) -> Path:
    timestamps, candles = case_rows()
    stamps = stamps or timestamps
    names = ["open", "high", "low", "close", *(("volume", "amount") if volume else ())]
    lines = [",".join([header, *names])]
    lines += [
        ",".join([t, *(str(c[n]) for n in names)])
        for t, c in zip(stamps, candles[: len(stamps)], strict=False)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def forecast(capsys: pytest.CaptureFixture[str], path: Path, *flags: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "forecast", "--csv", str(path), "--seed", "1", *flags, *MODEL_FLAGS)
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    return body


def cli_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, out, err = run_cli(capsys, "forecast", *argv, *MODEL_FLAGS)
    assert out == ""
    return code, err


# -- item 4: one reader, one list of headers -----------------------------------------------


@pytest.mark.parametrize("header", [*TIME_COLUMNS, "Datetime", "Date", "TIMESTAMP"])
def test_every_timestamp_header_spelling(
    header: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = forecast(capsys, write_csv(tmp_path / "x.csv", header), "--pred-len", "2")
    assert len(body["prediction"]) == 2


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_exit_2_naming_the_field(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILES[name])
    code, err = cli_error(capsys, "--csv", str(path), "--pred-len", "2")
    assert code == 2
    field = {"not_a_number": "close[1]", "short_row": "rows[1]"}.get(name, "csv")
    assert err.startswith(f"error: {field}: "), err


# -- item 6: no volume in, zero volume out --------------------------------------------------


def test_no_volume_forecasts_zero_volume_and_amount(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "ohlc.csv", volume=False)
    body = forecast(capsys, path, "--pred-len", "4", "--sample-count", "3", "--quantiles", "0.1,0.9")
    rows = [*body["prediction"], *(r for q in body["quantiles"] for r in q["prediction"])]
    assert len(rows) == 12
    assert all(r["volume"] == 0 and r["amount"] == 0 for r in rows), rows
    assert all(r["close"] > 0 for r in rows)


# -- item 9: the timestamps' own offset ----------------------------------------------------


def test_offset_timestamps_come_back_with_their_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timestamps, _ = case_rows()  # naive 5-minute bars
    shifted = [t + "+08:00" for t in timestamps]
    body = forecast(capsys, write_csv(tmp_path / "sh.csv", stamps=shifted), "--pred-len", "2")
    naive = forecast(
        capsys, write_csv(tmp_path / "naive.csv"), "--pred-len", "2", "--timezone", "Asia/Shanghai"
    )
    stamps = [r["timestamp"] for r in body["prediction"]]
    assert all(s.endswith("+08:00") for s in stamps), stamps
    # the same instants and the same calendar features, hence the same seeded forecast
    assert body["prediction"] == naive["prediction"]


# -- item 10: where the forecast's timestamps come from ------------------------------------


def daily(start: date, n: int) -> list[str]:
    out: list[str] = []
    day = start
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day.isoformat())
        day += timedelta(days=1)
    return out


def test_freq_b_skips_the_weekend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stamps = daily(date(2024, 5, 13), ROWS)
    assert date.fromisoformat(stamps[-1]).weekday() == 4  # a Friday
    path = write_csv(tmp_path / "d.csv", "Date", stamps)
    body = forecast(capsys, path, "--pred-len", "2", "--freq", "B")
    assert [r["timestamp"] for r in body["prediction"]] == ["2024-07-08T00:00:00", "2024-07-09T00:00:00"]
    default = forecast(capsys, path, "--pred-len", "2")  # unchanged: the history's own interval
    assert [r["timestamp"] for r in default["prediction"]] == ["2024-07-06T00:00:00", "2024-07-07T00:00:00"]


def test_calendar_skips_the_lunch_break(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("exchange_calendars")
    last = 11 * 60 + 25  # 20 five-minute bars labelled by their start, the last at 11:25
    stamps = [f"2024-06-18T{m // 60:02d}:{m % 60:02d}:00" for m in range(last - 5 * 19, last + 1, 5)]
    path = write_csv(tmp_path / "a.csv", stamps=stamps)
    body = forecast(capsys, path, "--pred-len", "3", "--timezone", "Asia/Shanghai", "--calendar", "XSHG")
    assert [r["timestamp"] for r in body["prediction"]] == [
        "2024-06-18T13:00:00+08:00",
        "2024-06-18T13:05:00+08:00",
        "2024-06-18T13:10:00+08:00",
    ]


@pytest.mark.parametrize("layout", ["lines", "csv"])
def test_prediction_timestamps_file_is_used_verbatim(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wanted = ["2024-06-24T09:30:00", "2024-06-24T10:00:00", "2024-06-25T14:55:00"]
    future = tmp_path / "future.txt"
    text = "\n".join(wanted) if layout == "lines" else "Datetime,note\n" + "\n".join(f"{t},x" for t in wanted)
    future.write_text(text + "\n")
    body = forecast(capsys, write_csv(tmp_path / "x.csv"), "--prediction-timestamps", str(future))
    assert [r["timestamp"] for r in body["prediction"]] == wanted


@pytest.mark.parametrize("freq", ["5m", "0h", "fortnightly"])
def test_bad_freq_exits_2_naming_the_flag(
    freq: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, "forecast", "--csv", "x.csv", "--pred-len", "2", "--freq", freq)
    assert info.value.code == 2
    assert "--freq" in capsys.readouterr().err


def test_unknown_calendar_exits_2_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("exchange_calendars")
    path = write_csv(tmp_path / "x.csv")
    code, err = cli_error(capsys, "--csv", str(path), "--pred-len", "2", "--calendar", "NOPE")
    assert code == 2
    assert err.startswith("error: --calendar: unknown exchange code 'NOPE'"), err


def test_prediction_timestamps_do_not_mix_with_freq(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = tmp_path / "f.txt"
    future.write_text("2025-01-01\n")
    argv = ["--csv", "x.csv", "--prediction-timestamps", str(future), "--freq", "B"]
    code, err = cli_error(capsys, *argv)
    assert code == 2 and "--prediction-timestamps" in err


@pytest.mark.parametrize("text", [None, ""])
def test_a_bad_prediction_timestamps_file_exits_2_naming_the_flag(
    text: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = tmp_path / "future.txt"
    if text is not None:
        future.write_text(text)
    path = write_csv(tmp_path / "x.csv")
    code, err = cli_error(capsys, "--csv", str(path), "--prediction-timestamps", str(future))
    assert code == 2
    assert err.startswith("error: --prediction-timestamps: "), err
