"""A predictor is loaded only with a tokenizer it fits: code-book sizes agree, d_in is 6.

With only KRONOS_MODEL_PATH set the embedded tokenizer is used if, and only if, it fits;
otherwise start-up (serve) and forecast refuse with exit 2, naming both config.json files,
both values and the setting to fix.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kronos_server.cli import main
from kronos_server.errors import CheckpointError, InvalidInputError
from kronos_server.model.bundle import DEFAULT_MODEL_DIR, load_bundle
from kronos_server.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from kronos_server.model.location import EMBEDDED_NAMES
from kronos_server.model.pairing import CheckpointPairError
from tests.conftest import PARITY
from tests.model.checkpoints import ROOT, write_pair
from tests.processes import ServerProcess, make_keys, parity_env

CSV = ROOT / "server/kronos_server/default_model/data/regression_input.csv"
EMBEDDED_TOKENIZER_CONFIG = DEFAULT_MODEL_DIR.resolve() / "tokenizer" / CONFIG_FILE
PARITY_BITS = "s1_bits=4, s2_bits=4"  # tests/data/parity/predictor
EMBEDDED_BITS = "s1_bits=8, s2_bits=8"  # the embedded demo tokenizer


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


def _forecast_argv(*model_flags: str) -> list[str]:
    return ["forecast", "--csv", str(CSV), "--tail", "60", "--pred-len", "3", "--seed", "1", *model_flags]


def test_a_predictor_alone_is_refused_when_the_embedded_tokenizer_does_not_fit() -> None:
    with pytest.raises(CheckpointPairError) as err:
        load_bundle(PARITY / "predictor", None, 64)
    exc = err.value
    # the operator's configuration mistake: INVALID_ARGUMENT, caught as such by the CLI
    assert exc.code == "INVALID_ARGUMENT" and isinstance(exc, InvalidInputError)
    assert isinstance(exc, CheckpointError)
    assert f"predictor {PARITY / 'predictor' / CONFIG_FILE} has {PARITY_BITS}" in exc.message
    assert f"tokenizer {EMBEDDED_TOKENIZER_CONFIG} has {EMBEDDED_BITS}" in exc.message
    assert "set KRONOS_TOKENIZER_PATH" in exc.message and exc.field == "KRONOS_TOKENIZER_PATH"
    assert exc.details["predictor"] == {"s1_bits": 4, "s2_bits": 4}
    assert exc.details["tokenizer"] == {"s1_bits": 8, "s2_bits": 8}


def test_a_predictor_alone_loads_with_the_embedded_tokenizer_when_it_fits(tmp_path: Path) -> None:
    predictor, _ = write_pair(tmp_path, predictor_bits=(8, 8))
    bundle = load_bundle(predictor, None, 128)
    assert bundle.tokenizer_info.name == EMBEDDED_NAMES["tokenizer"]
    assert bundle.predictor_info.path == predictor


def test_the_pair_is_checked_before_any_weights_are_read(tmp_path: Path) -> None:
    """A mismatched pair whose weights are also garbage reports the pairing, the real mistake."""
    predictor, tokenizer = write_pair(tmp_path, predictor_bits=(6, 6), tokenizer_bits=8)
    (predictor / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointPairError) as err:
        load_bundle(predictor, tokenizer, 128)
    message = err.value.message
    assert f"predictor {predictor / CONFIG_FILE} has s1_bits=6, s2_bits=6" in message
    assert f"tokenizer {tokenizer / CONFIG_FILE} has {EMBEDDED_BITS}" in message
    # both were given: the advice is to pair them properly, not to set one more variable
    assert "set KRONOS_MODEL_PATH and KRONOS_TOKENIZER_PATH to a predictor and the tokenizer" in message


def test_one_differing_code_book_is_enough(tmp_path: Path) -> None:
    predictor, tokenizer = write_pair(tmp_path, predictor_bits=(8, 6), tokenizer_bits=8)
    with pytest.raises(CheckpointPairError, match="has s1_bits=8, s2_bits=6 but tokenizer"):
        load_bundle(predictor, tokenizer, 128)


def test_a_tokenizer_alone_names_the_model_setting(tmp_path: Path) -> None:
    _, tokenizer = write_pair(tmp_path, tokenizer_bits=6)
    with pytest.raises(CheckpointPairError) as err:
        load_bundle(None, tokenizer, 128)
    assert err.value.field == "KRONOS_MODEL_PATH" and "set KRONOS_MODEL_PATH" in err.value.message
    assert f"tokenizer {tokenizer / CONFIG_FILE} has s1_bits=6, s2_bits=6" in err.value.message


def test_a_tokenizer_that_does_not_read_six_features_is_refused(tmp_path: Path) -> None:
    predictor, tokenizer = write_pair(tmp_path, d_in=5)
    with pytest.raises(CheckpointError, match=r"d_in is 5, but a Kronos tokenizer reads 6 features") as err:
        load_bundle(predictor, tokenizer, 128)
    assert str(tokenizer) in err.value.message


def test_forecast_with_a_mismatched_pair_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    predictor, tokenizer = write_pair(tmp_path, predictor_bits=(6, 6), tokenizer_bits=8)
    code = main(
        _forecast_argv("--model", str(predictor), "--tokenizer", str(tokenizer), "--max-context", "128")
    )
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert str(predictor / CONFIG_FILE) in err and str(tokenizer / CONFIG_FILE) in err


@pytest.mark.timeout(120)
def test_kronos_serve_forecast_with_only_a_model_path_exits_2_naming_both_files() -> None:
    """The real console entry point in its own process, configured by environment only."""
    proc = subprocess.run(
        [sys.executable, "-m", "kronos_server.cli", *_forecast_argv()],
        env={**_base_env(), "KRONOS_MODEL_PATH": str(PARITY / "predictor"), "KRONOS_MAX_CONTEXT": "64"},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: the predictor does not fit the tokenizer")
    assert f"{PARITY / 'predictor' / CONFIG_FILE} has {PARITY_BITS}" in error
    assert f"{EMBEDDED_TOKENIZER_CONFIG} has {EMBEDDED_BITS}" in error
    assert "set KRONOS_TOKENIZER_PATH" in error
    assert "Traceback" not in proc.stderr


@pytest.mark.timeout(150)
def test_kronos_serve_serve_with_only_a_model_path_exits_2_and_never_serves(tmp_path: Path) -> None:
    keys, _ = make_keys(tmp_path)
    env = {k: v for k, v in parity_env(keys).items() if k != "KRONOS_TOKENIZER_PATH"}
    server = ServerProcess("serve", env=env)
    try:
        code = server.proc.wait(120)
    finally:
        server.stop()
    text = "".join(server.lines)
    assert code == 2, text
    errors = [e["message"] for e in server.json_lines() if e.get("level") == "ERROR"]
    assert any(
        f"{PARITY / 'predictor' / CONFIG_FILE} has {PARITY_BITS}" in m
        and f"{EMBEDDED_TOKENIZER_CONFIG} has {EMBEDDED_BITS}" in m
        and "set KRONOS_TOKENIZER_PATH" in m
        for m in errors
    ), errors
    assert not any(" ready in " in e.get("message", "") for e in server.json_lines()), text
    assert "Traceback" not in text


def _base_env() -> dict[str, str]:
    """This process's environment without KRONOS_ settings (the subprocess sets its own)."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("KRONOS_")}
