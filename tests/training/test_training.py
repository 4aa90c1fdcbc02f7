"""Training code: losses fall, the batched s2 head matches inference, the default model loads."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from kronos_server.cli import main as cli_main
from kronos_server.model.checkpoint import load_predictor, load_tokenizer
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer
from kronos_server.training import run as train_run
from kronos_server.training.bsq import quantize
from kronos_server.training.config import DEFAULT_PREDICTOR, DEFAULT_TOKENIZER, DataSettings, PhaseSettings
from kronos_server.training.data import Candles, load_csv, split_holdout
from kronos_server.training.evaluate import evaluation_origins, forecast_eval
from kronos_server.training.phases import train_predictor, train_tokenizer
from kronos_server.training.s2_head import teacher_forced_s2_logits
from kronos_server.training.synthetic import synthetic_set
from kronos_server.training.windows import WindowSampler

TINY_TOKENIZER = TokenizerConfig(
    d_in=6,
    d_model=16,
    n_heads=2,
    ff_dim=32,
    n_enc_layers=2,
    n_dec_layers=2,
    s1_bits=4,
    s2_bits=4,
    group_size=2,
)
TINY_PREDICTOR = PredictorConfig(s1_bits=4, s2_bits=4, n_layers=2, d_model=16, n_heads=2, ff_dim=32)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads; one avoids oversubscription on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def candles() -> Candles:
    return load_csv(train_run.DEFAULT_DATA)


def _sampler(candles: Candles, seed: int = 0) -> WindowSampler:
    rng = np.random.default_rng(seed)
    train, _ = split_holdout(candles, 300)
    return WindowSampler(
        [train],
        synthetic_set(rng, train.timestamps, 2),
        other_fraction=0.5,
        min_len=16,
        max_len=32,
        tokens_per_batch=512,
        clip=5.0,
        rng=rng,
    )


def _settings(steps: int, lr: float) -> PhaseSettings:
    return PhaseSettings(steps=steps, time_budget_s=120.0, lr=lr, warmup_steps=5, log_every=1000)


def test_data_split_and_synthetic_candles(candles: Candles) -> None:
    train, holdout = split_holdout(candles, 300)
    assert (len(candles), len(train), len(holdout)) == (2500, 2200, 300)
    assert holdout.timestamps[0] > train.timestamps[-1]
    for s in synthetic_set(np.random.default_rng(1), train.timestamps, 4):
        o, h, lo, c, v, a = s.values.T
        assert np.all(h >= np.maximum(o, c)) and np.all(lo <= np.minimum(o, c)) and np.all(lo > 0)
        assert np.all(v >= 0) and np.all(a >= 0)


def test_sampler_normalises_like_inference(candles: Candles) -> None:
    batch = _sampler(candles).sample()
    assert batch.x.dtype == torch.float32 and batch.stamps.dtype == torch.int64
    assert batch.x.shape[0] * batch.x.shape[1] <= 512 and batch.x.shape[:2] == batch.stamps.shape[:2]
    assert float(batch.x.abs().max()) <= 5.0
    # per-window z-scores: each column has mean ~0 (up to clipping and constant columns)
    assert float(batch.x.mean(dim=1).abs().max()) < 0.5


def test_quantize_straight_through() -> None:
    z = torch.randn(3, 5, 8, requires_grad=True)
    zn, code = quantize(z)
    torch.testing.assert_close(zn.detach().norm(dim=-1), torch.ones(3, 5))
    # forward value: the hard code (up to the rounding of zn + (hard - zn))
    torch.testing.assert_close(code.detach().abs(), torch.full_like(code, 8**-0.5), rtol=0, atol=1e-7)
    assert torch.equal(code.detach() > 0, z.detach() > 0)
    code.sum().backward()  # type: ignore[no-untyped-call]
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


def test_tokenizer_loss_falls(candles: Candles) -> None:
    torch.manual_seed(0)
    tok = KronosTokenizer(TINY_TOKENIZER)
    result = train_tokenizer(tok, _sampler(candles), _settings(60, 1e-2))
    assert result.steps == 60
    assert result.final["loss"] < 0.8 * result.first["loss"]


def test_predictor_loss_falls(candles: Candles) -> None:
    torch.manual_seed(0)
    tok = KronosTokenizer(TINY_TOKENIZER).eval()
    pred = KronosPredictor(TINY_PREDICTOR)
    result = train_predictor(pred, tok, _sampler(candles), _settings(60, 1e-2))
    assert result.final["loss"] < 0.9 * result.first["loss"]
    assert not any(p.requires_grad for p in tok.parameters())


def test_batched_s2_logits_equal_inference_head() -> None:
    torch.manual_seed(3)
    cfg = PredictorConfig(s1_bits=5, s2_bits=5, n_layers=2, d_model=32, n_heads=8, ff_dim=48)
    pred = KronosPredictor(cfg).eval()
    b, length = 3, 11
    s1 = torch.randint(0, 32, (b, length))
    s2 = torch.randint(0, 32, (b, length))
    stamps = torch.stack(
        [torch.randint(lo, hi, (b, length)) for lo, hi in ((0, 60), (0, 24), (0, 7), (1, 32), (1, 13))],
        dim=-1,
    )
    next_s1 = torch.randint(0, 32, (b, length))
    with torch.no_grad():
        h = pred.hidden(s1, s2, stamps)
        batched = teacher_forced_s2_logits(pred, h, next_s1)
        last = pred.s2_logits_full(next_s1[:, -1], h)
        torch.testing.assert_close(batched[:, -1], last, rtol=1e-5, atol=1e-5)
        # every position t equals the inference head over the window 0..t
        for t in range(length):
            window_h = pred.hidden(s1[:, : t + 1], s2[:, : t + 1], stamps[:, : t + 1])
            ref = pred.s2_logits_full(next_s1[:, t], window_h)
            torch.testing.assert_close(batched[:, t], ref, rtol=1e-5, atol=1e-5)


def test_forecast_eval_runs(candles: Candles) -> None:
    torch.manual_seed(0)
    tok = KronosTokenizer(TINY_TOKENIZER).eval()
    pred = KronosPredictor(TINY_PREDICTOR).eval()
    ev = forecast_eval(tok, pred, candles, 300, origins=2, context=32, horizon=3, sample_count=2)
    assert ev.origins == evaluation_origins(2500, 300, 2, 3) == [2200, 2497]
    assert [s.label.split()[0] for s in ev.scores] == ["naive", "greedy", "sampled"]
    for s in ev.scores:
        assert all(np.isfinite(v) for v in s.mae.values()) and len(s.close_mae_by_step) == 3


def test_train_default_writes_loadable_checkpoints(tmp_path: Path) -> None:
    report = train_run.train_default(
        tmp_path,
        tokenizer_steps=2,
        predictor_steps=2,
        seed=1,
        threads=1,
        log_every=1,
        data_settings=DataSettings(synthetic_series=1),
        tokenizer_config=TINY_TOKENIZER,
        predictor_config=TINY_PREDICTOR,
        evaluate=False,
    )
    assert report.tokenizer_phase.steps == report.predictor_phase.steps == 2
    assert load_tokenizer(tmp_path / "tokenizer").module.config == TINY_TOKENIZER
    assert load_predictor(tmp_path / "predictor").module.config == TINY_PREDICTOR
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "2200" in card and "held-out" in card.lower()


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    train_run.add_arguments(parser)
    args = parser.parse_args(["--tokenizer-steps", "3", "--no-eval"])
    assert args.tokenizer_steps == 3 and args.no_eval and args.out is None and not args.force


def test_default_out_dir_is_new_and_timestamped() -> None:
    out = train_run.default_out_dir(datetime(2026, 1, 2, 3, 4, 5))
    assert out == Path("runs/train-20260102-030405")


# the cheapest real run of the command: the default model's sizes, one step per phase
QUICK = [
    "--tokenizer-steps",
    "1",
    "--predictor-steps",
    "1",
    "--no-eval",
    "--threads",
    "1",
    "--log-every",
    "1",
]


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_train_without_out_leaves_the_default_model_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _hashes(train_run.DEFAULT_MODEL_DIR)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["train", *QUICK]) == 0, capsys.readouterr().err
    assert _hashes(train_run.DEFAULT_MODEL_DIR) == before
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("train-")
    assert load_predictor(run_dir / "predictor").module.config == DEFAULT_PREDICTOR
    assert (run_dir / "MODEL_CARD.md").is_file()


def test_train_refuses_the_default_model_and_a_non_empty_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _hashes(train_run.DEFAULT_MODEL_DIR)
    assert cli_main(["train", *QUICK, "--out", str(train_run.DEFAULT_MODEL_DIR)]) == 2
    err = capsys.readouterr().err
    assert f"--out {train_run.DEFAULT_MODEL_DIR}" in err and "--force" in err
    assert _hashes(train_run.DEFAULT_MODEL_DIR) == before
    (tmp_path / "notes.txt").write_text("mine")
    assert cli_main(["train", *QUICK, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path} is not empty" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_train_force_writes_into_a_non_empty_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert cli_main(["train", *QUICK, "--out", str(tmp_path), "--force"]) == 0, capsys.readouterr().err
    assert load_tokenizer(tmp_path / "tokenizer").module.config == DEFAULT_TOKENIZER
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_train_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["train", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Train a tokenizer and predictor" in out and "--force" in out
    assert "runs/train-YYYYmmdd-HHMMSS" in out


def test_default_model_loads_strictly() -> None:
    root = train_run.DEFAULT_MODEL_DIR
    tok = load_tokenizer(root / "tokenizer").module
    pred = load_predictor(root / "predictor").module
    assert tok.config == DEFAULT_TOKENIZER
    assert pred.config == DEFAULT_PREDICTOR
    assert (root / "MODEL_CARD.md").is_file() and (root / "data" / "README.md").is_file()
    size = sum(p.stat().st_size for p in root.rglob("*.safetensors"))
    assert size < 8 * 2**20
