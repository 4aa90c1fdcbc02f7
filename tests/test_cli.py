"""kronos-serve: forecasts end to end on the tiny parity model, exit codes, the train hand-off."""

from __future__ import annotations

import argparse
import json
import sys
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kronos_server.cli import main
from kronos_server.settings import Settings
from kronos_server.settings_flags import default_text, flag_name, metavar
from tests.conftest import PARITY, load_case

MODEL_FLAGS = [
    "--model",
    str(PARITY / "predictor"),
    "--tokenizer",
    str(PARITY / "tokenizer"),
    "--max-context",
    "64",
]
FEATURES = ("open", "high", "low", "close", "volume", "amount")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


def case_rows() -> tuple[list[str], list[dict[str, float]]]:
    """Timestamps and candles of the parity case single_40_to_8 (real 5-minute candles)."""
    series = load_case("single_40_to_8")["inputs"]["series"][0]
    candles = [dict(zip(series["columns"], row, strict=True)) for row in series["rows"]]
    return series["timestamps"], candles


def write_request(tmp_path: Path, **changes: Any) -> Path:
    timestamps, candles = case_rows()
    body: dict[str, Any] = {
        "series_id": "parity",
        "candles": candles,
        "timestamps": timestamps,
        "overrides": {"pred_len": 6, "sample_count": 2, "seed": 3},
    }
    body.update(changes)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_forecast_request_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write_request(tmp_path)
    code, out, err = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    assert code == 0, err
    response = json.loads(out)
    assert response["series_id"] == "parity"
    assert len(response["prediction"]) == 6
    assert "quantiles" not in response
    assert response["model_version"] and response["tokenizer_version"]
    for row in response["prediction"]:
        assert set(row) == {"timestamp", *FEATURES}
        assert all(isinstance(row[name], float) for name in FEATURES)
    # pred_len without prediction_timestamps continues the 5-minute interval
    stamps = [row["timestamp"] for row in response["prediction"]]
    last = case_rows()[0][-1]
    assert stamps[0] > last
    assert out.startswith("{\n  ")  # indented JSON


def test_forecast_is_reproducible_with_a_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write_request(tmp_path)
    first = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    second = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    assert first[0] == second[0] == 0
    assert json.loads(first[1])["prediction"] == json.loads(second[1])["prediction"]


def test_forecast_with_prediction_timestamps_and_quantiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    future = load_case("single_40_to_8")["inputs"]["series"][0]["y_timestamps"]
    request = write_request(
        tmp_path,
        prediction_timestamps=future,
        overrides={"sample_count": 4, "quantiles": [0.9, 0.1], "seed": 1},
    )
    code, out, err = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    assert code == 0, err
    response = json.loads(out)
    assert [row["timestamp"] for row in response["prediction"]] == future
    assert [q["q"] for q in response["quantiles"]] == [0.1, 0.9]
    assert all(len(q["prediction"]) == len(future) for q in response["quantiles"])


def test_forecast_csv_shortcut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    timestamps, candles = case_rows()
    lines = ["timestamps," + ",".join(FEATURES)]
    lines += [
        f"{t}," + ",".join(str(c[name]) for name in FEATURES)
        for t, c in zip(timestamps, candles, strict=True)
    ]
    path = tmp_path / "prices.csv"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(
        capsys,
        "forecast",
        "--csv",
        str(path),
        "--tail",
        "30",
        "--pred-len",
        "5",
        "--sample-count",
        "3",
        "--seed",
        "2",
        "--top-p",
        "0.8",
        "--quantiles",
        "0.1,0.5,0.9",
        "--timezone",
        "Asia/Shanghai",
        *MODEL_FLAGS,
    )
    assert code == 0, err
    response = json.loads(out)
    assert response["series_id"] == "prices"
    assert len(response["prediction"]) == 5
    assert response["prediction"][0]["timestamp"].endswith("+08:00")
    assert [q["q"] for q in response["quantiles"]] == [0.1, 0.5, 0.9]


def test_invalid_candle_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, candles = case_rows()
    candles[3]["high"] = candles[3]["low"] / 2  # high below low: refused by validation
    request = write_request(tmp_path, candles=candles)
    code, out, err = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    assert code == 2
    assert out == ""
    assert "error: candles[3].high" in err


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pred_len": 6, "top_p": 2.0}, "overrides.top_p"),
        ({"pred_len": 65}, "overrides.pred_len"),  # beyond --max-context 64
        ({"pred_len": "6"}, "overrides.pred_len"),
    ],
)
def test_invalid_overrides_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, Any], field: str
) -> None:
    request = write_request(tmp_path, overrides=overrides)
    code, _, err = run_cli(capsys, "forecast", "--request", str(request), *MODEL_FLAGS)
    assert code == 2
    assert f"error: {field}" in err


def test_malformed_json_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    code, _, err = run_cli(capsys, "forecast", "--request", str(path), *MODEL_FLAGS)
    assert code == 2
    assert "error: request is not valid JSON" in err


def test_missing_request_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "forecast", "--request", str(tmp_path / "absent.json"))
    assert code == 2
    assert err.startswith("error: cannot read request")


def test_invalid_setting_exits_2_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = write_request(tmp_path)
    code, _, err = run_cli(capsys, "forecast", "--request", str(request), "--max-context", "0")
    assert code == 2
    assert "KRONOS_MAX_CONTEXT" in err
    monkeypatch.setenv("KRONOS_DEVICE", "abacus")
    code, _, err = run_cli(capsys, "forecast", "--request", str(request))
    assert code == 2
    assert "KRONOS_DEVICE" in err


def test_a_missing_checkpoint_path_exits_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = write_request(tmp_path)
    absent = tmp_path / "absent"
    code, out, err = run_cli(capsys, "forecast", "--request", str(request), "--model", str(absent))
    assert (code, out) == (2, "")
    assert err == f"error: --model-path: {absent} does not exist\n"


def test_a_directory_without_a_checkpoint_exits_2_naming_the_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = write_request(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("KRONOS_TOKENIZER_PATH", str(empty))
    code, _, err = run_cli(
        capsys, "forecast", "--request", str(request), "--model-path", str(PARITY / "predictor")
    )
    assert code == 2
    assert err.startswith(f"error: KRONOS_TOKENIZER_PATH: {empty} is not a checkpoint directory")
    assert "config.json" in err and "model.safetensors" in err


def test_serve_with_a_missing_model_path_exits_2_before_binding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "serve", "--grpc-port", "0", "--http-port", "0", "--model", str(tmp_path / "x")
    )
    assert code == 2
    assert err == f"error: --model-path: {tmp_path / 'x'} does not exist\n"


def test_a_corrupt_checkpoint_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write_request(tmp_path)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{not json")
    (corrupt / "model.safetensors").write_bytes(b"garbage")
    code, _, err = run_cli(
        capsys, "forecast", "--request", str(request), "--model", str(corrupt), "--tokenizer", str(corrupt)
    )
    assert code == 1
    assert err.startswith("error: ") and "config.json" in err


def test_csv_needs_pred_len(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "forecast", "--csv", str(tmp_path / "x.csv"))
    assert code == 2
    assert "--pred-len" in err


def test_csv_flags_do_not_mix_with_a_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = write_request(tmp_path)
    code, _, err = run_cli(capsys, "forecast", "--request", str(request), "--top-p", "0.5")
    assert code == 2
    assert "--top-p" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["forecast"],
        ["forecast", "--request", "a.json", "--csv", "b.csv"],
        ["forecast", "--csv", "b.csv", "--pred-len", "0"],
        ["forecast", "--csv", "b.csv", "--pred-len", "4", "--quantiles", "0.1,x"],
        ["forecast", "--request", "a.json", "--bogus"],
        ["nonsense"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_train_delegates_to_the_training_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}
    fake = types.ModuleType("kronos_server.training.run")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--steps", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        seen["steps"] = args.steps
        return 0

    fake.add_arguments = add_arguments  # type: ignore[attr-defined]
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kronos_server.training.run", fake)
    assert main(["train", "--steps", "7"]) == 0
    assert seen == {"steps": 7}
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    assert "--steps" in capsys.readouterr().out


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "forecast" in out and "train" in out


def squeeze(text: str) -> str:
    """Help text without its line wrapping (argparse may wrap inside a hyphenated word)."""
    return "".join(text.split())


def test_serve_help_shows_every_setting_with_its_description_default_and_metavar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "VALUE" not in out
    flat = squeeze(out)
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        expected = f"{field.description} (KRONOS_{name.upper()}; default: {default_text(field)})"
        assert squeeze(expected) in flat, name
        assert f"{flag_name(name)} {metavar(name, field)}" in out, name
    for shown in ("--grpc-port PORT", "--shutdown-grace SECONDS", "--max-context N", "--model-path DIR",
                  "--log-format {json,text}", "--api-keys-file FILE", "--host HOST"):  # fmt: skip
        assert shown in out
    assert squeeze("(KRONOS_MAX_CONTEXT; default: 512)") in flat


def test_forecast_and_serve_spell_the_checkpoint_flags_alike(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("forecast", "serve"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "--model-path DIR, --model DIR" in out and "--tokenizer-path DIR, --tokenizer DIR" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"kronos-serve {metadata.version('kronos-serve')}\n"
