"""Held-out instruments: fetching, loading, the protocol, the diagnostics and the card's sections."""

from __future__ import annotations

import re
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kronos_server.backtest.origins import plan_backtest
from kronos_server.forecast import calendar
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import normalize
from kronos_server.model.bundle import load_bundle
from kronos_server.settings import Settings
from kronos_server.training import heldout
from kronos_server.training import run as train_run
from kronos_server.training.bsq import tokenizer_loss
from kronos_server.training.card import render
from kronos_server.training.config import DataSettings
from kronos_server.training.data import Candles, load_csv
from kronos_server.training.heldout import (
    HELDOUT,
    HeldoutEval,
    HeldoutUnavailable,
    Instrument,
    Protocol,
    Sampling,
    backtest_input,
    by_name,
    choose,
    coverage,
    engine_backtester,
    heldout_wheel,
    load_instrument,
    quantisation_floor,
    reversion,
)
from kronos_server.training.synthetic import hourly_weekdays
from kronos_server.training.windows import mirror

DAILY_CSV = ",Open,High,Low,Close,Volume\n2004-08-19,100,104,96,100.5,2000\n2004-08-20,101,109,100,108,1000\n"
HOURLY_CSV = ",Open,High,Low,Close,Volume\n2017-04-19 09:00:00,1.07,1.08,1.06,1.075,10\n"


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fake_wheel(directory: Path) -> Path:
    wheel = directory / f"backtesting-{heldout.BACKTESTING_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("backtesting/test/GOOG.csv", DAILY_CSV)
        archive.writestr("backtesting/test/EURUSD.csv", HOURLY_CSV)
    return wheel


def test_load_instrument_reads_the_wheel_and_fills_amount(tmp_path: Path) -> None:
    wheel = _fake_wheel(tmp_path)
    goog = load_instrument(wheel, HELDOUT[0])
    assert goog.name == "GOOG" and len(goog) == 2
    assert calendar.format_timestamps(goog.timestamps, "UTC")[1] == "2004-08-20T00:00:00"
    np.testing.assert_array_equal(goog.values[0, :5], [100, 104, 96, 100.5, 2000])
    # no amount column: volume x mean(open, high, low, close), as at inference (spec §4)
    assert goog.values[1, 5] == pytest.approx(1000 * (101 + 109 + 100 + 108) / 4)
    fx = load_instrument(wheel, HELDOUT[1])
    assert calendar.format_timestamps(fx.timestamps, "UTC")[0] == "2017-04-19T09:00:00"


def test_heldout_wheel_uses_the_cache_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _fake_wheel(tmp_path)

    def no_pip(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert heldout_wheel(tmp_path) == wheel


def test_heldout_wheel_failure_is_heldout_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert "download" in command and f"backtesting=={heldout.BACKTESTING_VERSION}" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(HeldoutUnavailable, match="No matching distribution"):
        heldout_wheel(tmp_path / "empty")


def test_the_real_heldout_series_when_online() -> None:
    """Fetches backtesting's wheel once into the default cache; skips cleanly offline."""
    try:
        wheel = heldout_wheel()
    except HeldoutUnavailable as exc:
        pytest.skip(f"held-out data unavailable: {exc}")
    goog, fx = (load_instrument(wheel, inst) for inst in HELDOUT)
    assert len(goog) == 2148 and len(fx) == 5000
    for c in (goog, fx):
        assert np.all(np.diff(c.timestamps) > 0) and np.all(np.isfinite(c.values))
        o, h, lo, close = c.values[:, :4].T
        assert np.all(h >= np.maximum(o, close)) and np.all(lo <= np.minimum(o, close))


def _series(rows: int = 600) -> Candles:
    candles = load_csv(train_run.DEFAULT_DATA)
    return candles.rows(len(candles) - rows, len(candles))


def test_backtest_input_spreads_origins_over_the_whole_series() -> None:
    series = _series(600)
    protocol = Protocol(context=64, horizon=12, origins=10)
    request = backtest_input(series, Sampling(1.0, 1.0, 4), protocol, forecasts=False)
    plan = plan_backtest(request, Limits())
    assert plan.count == 10 and plan.context == 64 and plan.horizon == 12
    assert int(plan.origins[-1]) == 600 - 12
    step = (600 - 12 - 64) // 9
    assert plan.origin_step == step and int(plan.origins[0]) == 600 - 12 - 9 * step >= 64
    assert request.sampling.seed == protocol.seed and request.sampling.top_k == 0


def test_choose_takes_the_best_mean_crps_skill() -> None:
    def point(t: float, skills: dict[str, float]) -> heldout.GridPoint:
        return heldout.GridPoint(Sampling(t, 1.0, 16), skills, {}, {}, 0.0)

    grid = [
        point(0.8, {"a": 0.3, "b": -0.2}),
        point(1.0, {"a": 0.1, "b": 0.1}),
        point(1.2, {"a": 0.2, "b": -0.3}),
    ]
    assert choose(grid) == Sampling(1.0, 1.0, 16)


def test_mirror_is_the_z_score_of_the_mirrored_series() -> None:
    rng = np.random.default_rng(0)
    close = 100 + np.cumsum(rng.normal(size=40))
    o = close + rng.normal(size=40) * 0.1
    h, lo = np.maximum(o, close) + 0.5, np.minimum(o, close) - 0.5
    v = rng.uniform(10, 20, size=40)
    x = np.stack([o, h, lo, close, v, v * close], axis=1).astype(np.float32)
    flipped = np.stack([-o, -lo, -h, -close, v, v * close], axis=1).astype(np.float32)
    z, _, _ = normalize(x, 5.0)
    zf, _, _ = normalize(flipped, 5.0)
    torch.testing.assert_close(mirror(torch.from_numpy(z)), torch.from_numpy(zf), rtol=0, atol=1e-6)


def test_column_weights_shift_the_reconstruction_loss() -> None:
    torch.manual_seed(0)
    tok = load_bundle(None, None, 512).tokenizer
    x = torch.randn(2, 16, 6).clamp(-5, 5)
    plain = tokenizer_loss(tok, x)
    uniform = tokenizer_loss(tok, x, column_weights=(2.0,) * 6)
    torch.testing.assert_close(uniform.total, plain.total)
    close_only = tokenizer_loss(tok, x, column_weights=(0, 0, 0, 1, 0, 0))
    assert close_only.recon_full == plain.recon_full  # the logged MSE stays plain
    assert not torch.allclose(close_only.total, plain.total)
    with pytest.raises(ValueError, match="column_weights"):
        tokenizer_loss(tok, x, column_weights=(1.0, 1.0))


def test_hourly_weekdays_skips_weekends() -> None:
    ts = hourly_weekdays(train_run.HOURLY_START_NS, 500)
    assert ts.shape == (500,) and np.all(np.diff(ts) > 0)
    stamps = calendar.stamps(ts, "UTC")  # minute, hour, weekday, day, month
    assert set(np.unique(stamps[:, 1])) == set(range(24)) and set(np.unique(stamps[:, 0])) == {0}
    assert set(np.unique(stamps[:, 2])) == set(range(5))  # Monday..Friday


@pytest.fixture(scope="module")
def small_eval() -> HeldoutEval:
    """A real (small) backtest of the shipped default model on two slices of its own CSV,
    standing in for the held-out instruments: the code path of the card, offline."""
    model = train_run.DEFAULT_MODEL_DIR
    tok = load_bundle(model / "predictor", model / "tokenizer", 512).tokenizer
    protocol = Protocol(context=64, horizon=4, origins=6)
    series = {"A": _series(400), "B": replace(_series(300), name="B")}
    grid = (Sampling(1.0, 1.0, 4), Sampling(0.8, 0.9, 4))
    points, kept = [], {}
    with engine_backtester(model, threads=1, rows=64) as backtester:
        for sampling in grid:
            results = {
                n: backtester(backtest_input(c, sampling, protocol, forecasts=True))
                for n, c in series.items()
            }
            points.append(heldout._grid_point(sampling, results, protocol.band, 0.0))
            kept[sampling] = results
    chosen = choose(points)
    instruments = tuple(
        heldout.InstrumentEval(
            instrument=Instrument(n, f"test/{n}.csv", "5-minute slice"),
            rows=len(c),
            first="start",
            last="end",
            result=kept[chosen][n],
            reversion=reversion(c, kept[chosen][n]),
            floor=quantisation_floor(tok, c, kept[chosen][n].origins, protocol, 5.0),
        )
        for n, c in series.items()
    )
    return HeldoutEval(protocol, tuple(points), chosen, instruments, 0.0)


def test_diagnostics_are_measured(small_eval: HeldoutEval) -> None:
    for ev in small_eval.instruments:
        assert -1.0 <= ev.reversion.model <= 1.0 and -1.0 <= ev.reversion.actual <= 1.0
        assert ev.floor.mae_ratio > 0 and ev.floor.step1_ratio > 0
        scores = by_name(ev.result)
        assert [s.name for s in ev.result.scores] == ["model", "naive", "drift", "volatility"]
        assert 0.0 <= coverage(scores["model"].overall, 0.8) <= 1.0


def test_reversion_needs_the_forecasts(small_eval: HeldoutEval) -> None:
    ev = small_eval.instruments[0]
    with pytest.raises(ValueError, match="return_forecasts"):
        reversion(_series(400), replace(ev.result, forecasts=()))


def test_card_states_the_heldout_backtest(tmp_path: Path, small_eval: HeldoutEval) -> None:
    report = train_run.train_default(
        tmp_path,
        tokenizer_steps=1,
        predictor_steps=1,
        seed=1,
        threads=1,
        log_every=1,
        data_settings=DataSettings(synthetic_series=1),
        evaluate=False,
    )
    assert report.heldout is None and "Not run: --no-eval" in (tmp_path / "MODEL_CARD.md").read_text()
    card = render(replace(report, heldout=small_eval))
    assert "## Held-out instruments (backtest)" in card and "## Why a sampled mean can be biased" in card
    assert f"Default sampling chosen by CRPS: **{small_eval.chosen.label}**" in card
    assert card.count("(chosen)") == 1
    for ev in small_eval.instruments:
        scores = by_name(ev.result)
        ratio = scores["model"].overall.mae / scores["naive"].overall.mae
        mae_ok, _ = small_eval.meets(ev)
        assert f"**{'met' if mae_ok else 'not met'}** ({ratio:.3f})" in card
        assert f"{ev.instrument.name}: model {ev.reversion.model:+.2f}" in card
        assert f"reconstruction close MAE / naive {ev.floor.mae_ratio:.3f}" in card
    assert "sp500.csv" in card and "NCSA" in card


def test_server_sampling_defaults_are_the_shipped_cards_choice() -> None:
    """Settings' default temperature / top_p / sample_count are what the shipped card's
    held-out grid chose by CRPS (retraining must update both)."""
    card = (train_run.DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    found = re.search(
        r"Default sampling chosen by CRPS: \*\*T=([\d.]+), top_p=([\d.]+), (\d+) samples\*\*", card
    )
    assert found is not None, "the shipped card has no held-out backtest section"
    settings = Settings.model_construct()  # the declared defaults, no environment
    assert settings.default_temperature == pytest.approx(float(found[1]))
    assert settings.default_top_p == pytest.approx(float(found[2]))
    assert settings.default_sample_count == int(found[3])
    assert settings.default_top_k == 0  # the grid's top_k
