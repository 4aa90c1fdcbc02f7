"""kronos-serve backtest --csv, offline on the tiny parity model: the table, the JSON result,
the plot, reproducibility with a seed, and refusals exiting 2 naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kronos_server.backtest.scores import score_all
from kronos_server.cli import main
from tests.conftest import PARITY

MODEL_FLAGS = [
    "--model",
    str(PARITY / "predictor"),
    "--tokenizer",
    str(PARITY / "tokenizer"),
    "--max-context",
    "64",
]
DATA = Path(__file__).resolve().parents[2] / "server" / "kronos_server" / "default_model" / "data"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    """The first 150 real 5-minute candles of the shipped regression input."""
    lines = (DATA / "regression_input.csv").read_text().splitlines()[:151]
    path = tmp_path / "candles.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def closes(path: Path) -> np.ndarray:
    header, *rows = path.read_text().splitlines()
    column = header.split(",").index("close")
    return np.array([float(r.split(",")[column]) for r in rows])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv, *MODEL_FLAGS])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_json_and_plot(tmp_path: Path, csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, png = tmp_path / "bt.json", tmp_path / "bt.png"
    args = [
        "--csv",
        str(csv_file),
        "--horizon",
        "5",
        "--context",
        "30",
        "--origins",
        "6",
        "--sample-count",
        "4",
    ]
    code, out, err = run(capsys, *args, "--seed", "9", "--json", str(out_json), "--plot", str(png))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("backtest of 'candles': 6 origins (rows 120..145, every 5;")
    table = {
        line.split()[0]: line.split()
        for line in lines
        if line.split()[:1] in (["model"], ["naive"], ["drift"], ["volatility"])
    }
    assert set(table) == {"model", "naive", "drift", "volatility"}

    result = json.loads(out_json.read_text())
    assert result["origins"] == [120, 125, 130, 135, 140, 145]
    assert (result["horizon"], result["context"], result["origin_step"], result["sample_count"]) == (
        5,
        30,
        5,
        4,
    )
    assert result["seed"] == 9 and len(result["forecasts"]) == 6
    assert [s["forecaster"] for s in result["scores"]] == ["model", "naive", "drift", "volatility"]
    # the baselines, recomputed from the file's closes, are exactly those printed and written
    close = closes(csv_file)
    origins = np.array(result["origins"])
    context = np.stack([close[t - 30 : t] for t in origins])
    actual = np.stack([close[t : t + 5] for t in origins])
    want = score_all(
        actual=actual,
        last=context[:, -1],
        context_closes=context,
        model_paths=None,
        quantiles=result["quantiles"],
    )
    for scores, got in zip(want, result["scores"][1:], strict=True):
        assert got["forecaster"] == scores.name
        assert got["overall"]["mae"] == scores.overall.mae
        assert [s["mae"] for s in got["by_step"]] == [s.mae for s in scores.by_step]
        assert table[scores.name][1] == f"{scores.overall.mae:.4g}"
    # the model's point forecast is the mean of its paths: the returned forecasts' mean (float32,
    # so to its rounding of ~11.3 prices)
    model_mae = np.mean(
        np.abs(np.stack([[row["close"] for row in f["prediction"]] for f in result["forecasts"]]) - actual)
    )
    assert result["scores"][0]["overall"]["mae"] == pytest.approx(model_mae, abs=1e-5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "plot of origins 0, 2, 5" in err

    # the same seed again: the same result
    again = tmp_path / "again.json"
    assert run(capsys, *args, "--seed", "9", "--json", str(again))[0] == 0
    assert json.loads(again.read_text())["scores"] == result["scores"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--horizon", "64"], "horizon"),
        (["--horizon", "5", "--context", "60"], "context"),
        (["--horizon", "5", "--origins", "40"], "origins"),
        (["--horizon", "5", "--origin-step", "0"], "origin_step"),
        (["--horizon", "5", "--top-p", "1.5"], "top_p"),
    ],
)
def test_refusals_exit_2_naming_the_field(
    csv_file: Path, capsys: pytest.CaptureFixture[str], extra: list[str], field: str
) -> None:
    code, _, err = run(capsys, "--csv", str(csv_file), *extra)
    assert code == 2 and err.startswith(f"error: {field}: "), err


def test_json_to_stdout_only(csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "--csv",
        str(csv_file),
        "--horizon",
        "4",
        "--origins",
        "2",
        "--sample-count",
        "2",
        "--json",
        "-",
    )
    assert code == 0, err
    result = json.loads(out)  # nothing but the JSON
    assert result["origins"] == [142, 146] and result["context"] == 60  # min(256, 64 - 4, 150 - 4)
