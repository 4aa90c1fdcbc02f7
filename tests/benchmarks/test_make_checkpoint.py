"""benchmarks/make_checkpoint.py writes the benchmark's model as checkpoints the server serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kronos_server.cli import main
from kronos_server.model.checkpoint import load_predictor, load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "make_checkpoint.py"
CSV = ROOT / "server/kronos_server/default_model/data/regression_input.csv"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_PATH", "TOKENIZER_PATH", "MAX_CONTEXT", "DEVICE", "ENGINE_MODE", "LOG_FORMAT"):
        monkeypatch.delenv(f"KRONOS_{name}", raising=False)


@pytest.mark.timeout(120)
def test_tiny_checkpoint_loads_strictly_and_forecasts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ckpt"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--dims", "tiny"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines()}

    # the server's loader: strict keys and shapes, content-hash versions
    predictor, tokenizer = load_predictor(out / "predictor"), load_tokenizer(out / "tokenizer")
    assert printed["predictor"] == predictor.version and printed["tokenizer"] == tokenizer.version
    assert "KRONOS_MAX_CONTEXT=128" in proc.stdout  # the serve hint names the context to use

    # the very weights bench_engine.py times (same dimensions, initialisation and seed)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from randomweights import TINY, random_models

    want_tok, want_pred = random_models(TINY.predictor, TINY.tokenizer)
    for got, want in ((tokenizer.module, want_tok), (predictor.module, want_pred)):
        got_state, want_state = got.state_dict(), want.state_dict()
        assert got_state.keys() == want_state.keys()
        assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)

    # and a forecast through the server's own path (load_bundle, engine, response)
    code = main(
        [
            "forecast",
            "--csv",
            str(CSV),
            "--tail",
            "100",
            "--pred-len",
            "6",
            "--seed",
            "1",
            "--model",
            str(out / "predictor"),
            "--tokenizer",
            str(out / "tokenizer"),
            "--max-context",
            "128",
        ]
    )
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    response = json.loads(stdout)
    assert len(response["prediction"]) == 6
    assert response["model_version"] == predictor.version
    assert response["tokenizer_version"] == tokenizer.version
