"""Held-out evaluation: reconstruction / next-token losses and forecast MAE vs naive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.forecast import calendar
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, prepare
from kronos_server.forecast.types import FEATURES, SamplingParams, SeriesInput
from kronos_server.model.predictor import KronosPredictor
from kronos_server.model.tokenizer import KronosTokenizer
from kronos_server.training.bsq import tokenizer_loss
from kronos_server.training.data import Candles
from kronos_server.training.s2_head import predictor_loss
from kronos_server.training.windows import Batch, stack, window


@dataclass(frozen=True)
class HoldoutLosses:
    windows: int
    length: int
    mse: float  # full-code reconstruction, normalised space
    mse_s1: float  # coarse (s1-only) reconstruction
    ce_s1: float
    ce_s2: float
    distinct_s1: int  # distinct ids over the held-out windows
    distinct_s2: int


@dataclass(frozen=True)
class ForecastScores:
    label: str
    mae: dict[str, float]  # per feature, over all origins and steps
    close_mae_by_step: list[float]


@dataclass(frozen=True)
class ForecastEval:
    origins: list[int]  # row indices (into the full table) of the first predicted row
    context: int
    horizon: int
    reaches_into_training: int  # origins whose context includes training rows
    scores: list[ForecastScores]


def holdout_windows(holdout: Candles, length: int, count: int, clip: float) -> Batch:
    values = holdout.values.astype(np.float32)
    stamps = calendar.stamps(holdout.timestamps, "UTC")
    starts = np.linspace(0, len(holdout) - length, count).round().astype(int)
    return stack([window(values, stamps, int(s), length, clip) for s in starts])


@torch.no_grad()
def holdout_losses(
    tokenizer: KronosTokenizer, predictor: KronosPredictor, holdout: Candles, clip: float
) -> HoldoutLosses:
    """Losses on windows lying entirely inside the held-out rows."""
    length = min(128, len(holdout))
    batch = holdout_windows(holdout, length, 8, clip)
    tok = tokenizer_loss(tokenizer, batch.x)
    s1, s2 = tokenizer.encode(batch.x)
    pred = predictor_loss(predictor, s1, s2, batch.stamps)
    return HoldoutLosses(
        windows=int(batch.x.shape[0]),
        length=length,
        mse=float(tok.recon_full),
        mse_s1=float(tok.recon_coarse),
        ce_s1=float(pred.ce_s1),
        ce_s2=float(pred.ce_s2),
        distinct_s1=len(set(s1.flatten().tolist())),
        distinct_s2=len(set(s2.flatten().tolist())),
    )


def evaluation_origins(total_rows: int, holdout_rows: int, count: int, horizon: int) -> list[int]:
    """``count`` evenly spaced origins whose ``horizon`` rows all lie in the holdout."""
    first, last = total_rows - holdout_rows, total_rows - horizon
    return [round(float(v)) for v in np.linspace(first, last, count)]


def _series(
    candles: Candles, origin: int, context: int, horizon: int, sampling: SamplingParams
) -> SeriesInput:
    ctx = candles.rows(origin - context, origin)
    return SeriesInput(
        series_id=f"origin-{origin}",
        timestamps=ctx.timestamps,
        open=ctx.column("open"),
        high=ctx.column("high"),
        low=ctx.column("low"),
        close=ctx.column("close"),
        volume=ctx.column("volume"),
        amount=ctx.column("amount"),
        prediction_timestamps=candles.timestamps[origin : origin + horizon],
        sampling=sampling,
    )


def _scores(label: str, predicted: np.ndarray, actual: np.ndarray) -> ForecastScores:
    """predicted, actual [origins, horizon, 6] in price space."""
    err = np.abs(predicted.astype(np.float64) - actual)
    mae = {name: float(err[..., i].mean()) for i, name in enumerate(FEATURES)}
    by_step = err[..., FEATURES.index("close")].mean(axis=0)
    return ForecastScores(label, mae, [float(v) for v in by_step])


def forecast_eval(
    tokenizer: KronosTokenizer,
    predictor: KronosPredictor,
    candles: Candles,
    holdout_rows: int,
    *,
    origins: int = 20,
    context: int = 256,
    horizon: int = 12,
    max_context: int = 512,
    sample_count: int = 8,
    seed: int = 0,
) -> ForecastEval:
    """Greedy and sampled forecasts at held-out origins, against repeating the last value."""
    starts = evaluation_origins(len(candles), holdout_rows, origins, horizon)
    actual = np.stack([candles.values[o : o + horizon] for o in starts])
    last = np.stack([candles.values[o - 1] for o in starts])
    naive = np.repeat(last[:, None, :], horizon, axis=1)
    limits = Limits(max_context=max_context)
    runs = {
        "greedy (top_k=1)": SamplingParams(temperature=1.0, top_k=1, top_p=1.0, sample_count=1),
        f"sampled (T=1, top_p=0.9, mean of {sample_count})": SamplingParams(
            temperature=1.0, top_k=0, top_p=0.9, sample_count=sample_count
        ),
    }
    scores = [_scores("naive (repeat last value)", naive, actual)]
    for label, sampling in runs.items():
        prepared = [prepare(_series(candles, o, context, horizon, sampling), limits) for o in starts]
        generator = torch.Generator().manual_seed(seed)
        result = generate(tokenizer, predictor, prepared, max_context, generator=generator)
        z = mean_over_samples(result.samples, prepared[0].sampling.sample_count).numpy()
        predicted = np.stack([denormalize(z[i], p.mean, p.std) for i, p in enumerate(prepared)])
        scores.append(_scores(label, predicted, actual))
    into_training = sum(1 for o in starts if o - context < len(candles) - holdout_rows)
    return ForecastEval(starts, context, horizon, into_training, scores)
