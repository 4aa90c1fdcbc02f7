"""Held-out instruments: real series the default model never trains on, scored by the backtest.

The series come from the PyPI package ``backtesting`` (its test data: a daily US stock and
an hourly FX rate). That package is AGPL-3.0, so its files are never committed here: they are
read at run time out of the wheel, which ``pip download`` fetches into a cache directory
once. Without network (and no cached wheel) :class:`HeldoutUnavailable` says why, and callers
skip the held-out evaluation.

Everything scored here goes through the project's own backtest (``Backtester``: a
:class:`~kronos_server.backtest.types.BacktestInput` in, a ``BacktestResult`` out); this module
only chooses the protocol, the sampling grid and the diagnostics (``analysis``) around it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from kronos_server.backtest.scores import ForecasterScores, Scores, score_all
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.dataplane import Dataplane
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.forecast import calendar
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, fill_volume_amount, normalize
from kronos_server.forecast.types import FEATURES, SamplingParams, SeriesInput
from kronos_server.model.bundle import load_bundle
from kronos_server.model.tokenizer import KronosTokenizer
from kronos_server.training.data import Candles

BACKTESTING_VERSION = "0.6.6"
BACKTESTING_LICENCE = "AGPL-3.0"
DEFAULT_CACHE = Path.home() / ".cache" / "kronos-serve" / "heldout"

Backtester = Callable[[BacktestInput], BacktestResult]


@dataclass(frozen=True)
class Instrument:
    name: str
    member: str  # path inside the wheel
    kind: str


HELDOUT: tuple[Instrument, ...] = (
    Instrument("GOOG", "backtesting/test/GOOG.csv", "daily US stock, Google"),
    Instrument("EURUSD", "backtesting/test/EURUSD.csv", "hourly FX, EUR/USD"),
)


class HeldoutUnavailable(RuntimeError):
    """The held-out data could not be obtained (no network and no cached wheel)."""


def heldout_wheel(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The ``backtesting`` wheel in ``cache_dir``, downloaded with pip when it is not there yet."""
    pattern = f"backtesting-{BACKTESTING_VERSION}-*.whl"
    found = sorted(cache_dir.glob(pattern))
    if found:
        return found[0]
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"backtesting=={BACKTESTING_VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "-d",
        str(cache_dir),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HeldoutUnavailable(f"pip download backtesting=={BACKTESTING_VERSION} failed: {exc}") from exc
    found = sorted(cache_dir.glob(pattern))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel saved"]
        raise HeldoutUnavailable(f"pip download backtesting=={BACKTESTING_VERSION} failed: {tail[0]}")
    return found[0]


def load_instrument(wheel: Path, instrument: Instrument) -> Candles:
    """One held-out series from the wheel; amount from volume as at inference (spec §4)."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(instrument.member).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header, records = rows[0], [r for r in rows[1:] if r]
    columns = {name.lower(): i for i, name in enumerate(header)}
    stamps = [r[0] if " " in r[0] else f"{r[0]} 00:00:00" for r in records]
    ts = calendar.parse_timestamps(stamps, "UTC", "timestamps")
    cols = {c: np.array([float(r[columns[c]]) for r in records]) for c in FEATURES if c in columns}
    volume, amount = fill_volume_amount(cols, len(records))
    values = np.stack([cols["open"], cols["high"], cols["low"], cols["close"], volume, amount], axis=1)
    return Candles(instrument.name, ts, values)


@dataclass(frozen=True)
class Protocol:
    """How every held-out backtest is run: origins evenly spread over the whole series."""

    context: int = 128
    horizon: int = 12
    origins: int = 64
    seed: int = 0
    quantiles: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    band: float = 0.8  # the central interval the targets name (10 %-90 %)


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    sample_count: int

    @property
    def label(self) -> str:
        return f"T={self.temperature:g}, top_p={self.top_p:g}, {self.sample_count} samples"


#: the sampling settings tried; the default is the one with the best mean CRPS skill
SAMPLING_GRID: tuple[Sampling, ...] = (
    *(Sampling(t, p, 16) for t in (0.4, 0.6, 0.8, 1.0) for p in (0.7, 0.9, 1.0)),
    Sampling(0.6, 0.9, 8),
    Sampling(0.6, 0.9, 32),
)


def series_input(candles: Candles, sampling: Sampling, protocol: Protocol) -> SeriesInput:
    return SeriesInput(
        series_id=candles.name,
        timestamps=candles.timestamps,
        open=candles.column("open"),
        high=candles.column("high"),
        low=candles.column("low"),
        close=candles.column("close"),
        volume=candles.column("volume"),
        amount=candles.column("amount"),
        sampling=SamplingParams(
            temperature=sampling.temperature,
            top_k=0,
            top_p=sampling.top_p,
            sample_count=sampling.sample_count,
            seed=protocol.seed,
            quantiles=protocol.quantiles,
        ),
    )


def backtest_input(
    candles: Candles, sampling: Sampling, protocol: Protocol, *, forecasts: bool
) -> BacktestInput:
    """Origins spread evenly over the whole series: the last at rows - horizon, each
    ``origin_step`` rows before the next, the first as early as the context allows."""
    room = len(candles) - protocol.horizon - protocol.context
    step = max(1, room // max(1, protocol.origins - 1))
    return BacktestInput(
        series=series_input(candles, sampling, protocol),
        horizon=protocol.horizon,
        context=protocol.context,
        origins=min(protocol.origins, room // step + 1),
        origin_step=step,
        return_forecasts=forecasts,
    )


def by_name(result: BacktestResult) -> dict[str, ForecasterScores]:
    return {s.name: s for s in result.scores}


def coverage(scores: Scores, level: float) -> float:
    for lv, fraction in scores.coverage:
        if abs(lv - level) < 1e-9:
            return fraction
    raise KeyError(f"no {level:g} central interval among {[lv for lv, _ in scores.coverage]}")


@dataclass(frozen=True)
class GridPoint:
    sampling: Sampling
    crps_skill: dict[str, float]  # instrument -> 1 - CRPS / naive's
    mae_ratio: dict[str, float]  # instrument -> model close MAE / naive's
    band_coverage: dict[str, float]
    wall_s: float

    @property
    def mean_crps_skill(self) -> float:
        return float(np.mean(list(self.crps_skill.values())))


@dataclass(frozen=True)
class Reversion:
    """Is the sampled mean pulled toward the context window's mean? (corr over origins)."""

    model: float  # corr(forecast mean at the last step - last close, window mean - last close)
    actual: float  # the same with the realised close: what the data itself does


@dataclass(frozen=True)
class QuantisationFloor:
    """The tokenizer alone: encode+decode context + actual future, score the decoded future."""

    mae_ratio: float  # decoded-actual close MAE / naive's, all steps
    step1_ratio: float  # the same at step 1 (one-step moves are the hardest floor)


@dataclass(frozen=True)
class InstrumentEval:
    instrument: Instrument
    rows: int
    first: str
    last: str
    result: BacktestResult  # at the chosen sampling
    reversion: Reversion
    floor: QuantisationFloor


@dataclass(frozen=True)
class HeldoutEval:
    protocol: Protocol
    grid: tuple[GridPoint, ...]
    chosen: Sampling
    instruments: tuple[InstrumentEval, ...]
    wall_s: float
    mae_target: float = 1.1
    coverage_target: tuple[float, float] = (0.7, 0.9)

    def meets(self, ev: InstrumentEval) -> tuple[bool, bool]:
        scores = by_name(ev.result)
        ratio = scores["model"].overall.mae / scores["naive"].overall.mae
        band = coverage(scores["model"].overall, self.protocol.band)
        lo, hi = self.coverage_target
        return ratio <= self.mae_target, lo <= band <= hi


def choose(grid: Sequence[GridPoint]) -> Sampling:
    """The best mean CRPS skill over the instruments (CRPS in price units differs per instrument)."""
    return max(grid, key=lambda g: g.mean_crps_skill).sampling


def _windows(
    candles: Candles, origins: np.ndarray, context: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Context closes [O, C] and actual closes [O, H] of origins (the first forecast row)."""
    close = candles.column("close")
    ctx = np.stack([close[o - context : o] for o in origins])
    actual = np.stack([close[o : o + horizon] for o in origins])
    return ctx, actual


def reversion(candles: Candles, result: BacktestResult) -> Reversion:
    """Correlations over origins: the forecast's and the data's move against the pull to the window mean."""
    if len(result.forecasts) != len(result.origins):
        raise ValueError("the backtest result carries no per-origin forecasts (return_forecasts)")
    ctx, actual = _windows(candles, result.origins, result.context, result.horizon)
    last = ctx[:, -1]
    pull = ctx.mean(axis=1) - last
    close = FEATURES.index("close")
    moved = np.array([float(f.mean[-1, close]) for f in result.forecasts]) - last
    return Reversion(
        model=float(np.corrcoef(moved, pull)[0, 1]),
        actual=float(np.corrcoef(actual[:, -1] - last, pull)[0, 1]),
    )


def quantisation_floor(
    tokenizer: KronosTokenizer, candles: Candles, origins: np.ndarray, protocol: Protocol, clip: float
) -> QuantisationFloor:
    """Encode + decode each origin's context *and its actual future* (normalised with the
    context's statistics, as at inference) and score the decoded future closes with the
    backtest's scores against naive: no predictor can beat this reconstruction."""
    values = candles.values.astype(np.float32)
    c, h = protocol.context, protocol.horizon
    decoded = []
    for o in origins:
        _, mu, sd = normalize(values[o - c : o], clip)
        z = np.clip((values[o - c : o + h] - mu) / (sd + np.float32(1e-5)), -clip, clip).astype(np.float32)
        with torch.inference_mode():
            s1, s2 = tokenizer.encode(torch.from_numpy(z).unsqueeze(0))
            out = tokenizer.decode(s1, s2)[0].numpy()
        decoded.append(denormalize(out[-h:], mu, sd)[:, FEATURES.index("close")])
    ctx, actual = _windows(candles, origins, c, h)
    paths = np.stack(decoded).astype(np.float64)[:, None, :]
    scored = {
        s.name: s
        for s in score_all(
            actual=actual, last=ctx[:, -1], context_closes=ctx, model_paths=paths, quantiles=()
        )
    }
    model, naive = scored["model"], scored["naive"]
    return QuantisationFloor(
        mae_ratio=model.overall.mae / naive.overall.mae,
        step1_ratio=model.by_step[0].mae / naive.by_step[0].mae,
    )


def _grid_point(
    sampling: Sampling, results: dict[str, BacktestResult], band: float, wall_s: float
) -> GridPoint:
    skill, ratio, cover = {}, {}, {}
    for name, result in results.items():
        scores = by_name(result)
        model, naive = scores["model"].overall, scores["naive"].overall
        skill[name] = model.crps_skill if model.crps_skill is not None else float("-inf")
        ratio[name] = model.mae / naive.mae
        cover[name] = coverage(model, band)
    return GridPoint(sampling, skill, ratio, cover, wall_s)


def evaluate_heldout(
    tokenizer: KronosTokenizer,
    backtester: Backtester,
    *,
    cache_dir: Path = DEFAULT_CACHE,
    protocol: Protocol | None = None,
    grid: Sequence[Sampling] = SAMPLING_GRID,
    clip: float = 5.0,
) -> HeldoutEval:
    """Backtest every held-out instrument at every grid point; report the best-CRPS one.

    Raises :class:`HeldoutUnavailable` when the data cannot be fetched.
    """
    pr = protocol or Protocol()
    start = time.perf_counter()
    wheel = heldout_wheel(cache_dir)
    series = [(inst, load_instrument(wheel, inst)) for inst in HELDOUT]
    points: list[GridPoint] = []
    kept: dict[Sampling, dict[str, BacktestResult]] = {}
    for sampling in grid:
        t0 = time.perf_counter()
        results = {
            inst.name: backtester(backtest_input(c, sampling, pr, forecasts=True)) for inst, c in series
        }
        points.append(_grid_point(sampling, results, pr.band, time.perf_counter() - t0))
        kept[sampling] = results
        logger.info(
            f"held-out backtest {sampling.label}: "
            + ", ".join(
                f"{n} MAE/naive {points[-1].mae_ratio[n]:.3f} band {points[-1].band_coverage[n]:.2f} "
                f"CRPS skill {points[-1].crps_skill[n]:.3f}"
                for n in results
            )
        )
    chosen = choose(points)
    instruments = []
    for inst, c in series:
        result = kept[chosen][inst.name]
        instruments.append(
            InstrumentEval(
                instrument=inst,
                rows=len(c),
                first=_iso(c.timestamps[0]),
                last=_iso(c.timestamps[-1]),
                result=result,
                reversion=reversion(c, result),
                floor=quantisation_floor(tokenizer, c, result.origins, pr, clip),
            )
        )
    return HeldoutEval(pr, tuple(points), chosen, tuple(instruments), time.perf_counter() - start)


def _iso(ts: int) -> str:
    return calendar.format_timestamps(np.array([ts], dtype=np.int64), "UTC")[0].replace("T", " ")


@contextmanager
def engine_backtester(
    model_dir: Path, *, max_context: int = 512, threads: int = 0, rows: int = 2048
) -> Iterator[Backtester]:
    """The project's backtest (``Dataplane.backtest``) over a real engine on ``model_dir``'s
    checkpoints, offline; ``rows``: the engine's admission and batch limit (origins x samples)."""
    bundle = load_bundle(model_dir / "predictor", model_dir / "tokenizer", max_context)
    engine = Engine(bundle, EngineConfig(max_queued_rows=rows, max_batch_rows=rows, torch_threads=threads))
    engine.start()
    dataplane = Dataplane(bundle, engine, Limits(max_context=max_context, max_sample_count=64), None)
    try:
        yield lambda request: asyncio.run(dataplane.backtest(request))
    finally:
        engine.stop(grace=0)
