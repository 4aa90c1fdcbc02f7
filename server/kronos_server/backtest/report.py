"""A backtest result for people and files: the scores table, JSON, and the plot.

``kronos-serve backtest`` prints :func:`scores_table`, writes :func:`result_to_json` with
``--json`` and :func:`plot` with ``--plot``. The JSON names follow the proto's
``BacktestResponse`` (``forecaster``, ``by_step``, ``origin_timestamps_ms``, ...); each
returned forecast is the legacy JSON forecast (ISO timestamps) with its ``origin``.
matplotlib is imported only by :func:`plot`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kronos_server.backtest.scores import ForecasterScores, Scores
from kronos_server.backtest.types import BacktestResult
from kronos_server.forecast import calendar
from kronos_server.forecast.json_codec import forecast_to_response
from kronos_server.forecast.types import SeriesInput

NS_PER_MS = 1_000_000


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def scores_to_json(scores: Scores) -> dict[str, Any]:
    return {
        "mae": _number(scores.mae),
        "rmse": _number(scores.rmse),
        "mape": _number(scores.mape),
        "mase": _number(scores.mase),
        "direction_accuracy": _number(scores.direction_accuracy),
        "crps": _number(scores.crps),
        "pinball": [{"q": q, "loss": _number(loss)} for q, loss in scores.pinball],
        "coverage": [{"level": level, "coverage": _number(c)} for level, c in scores.coverage],
        "brier_up": _number(scores.brier_up),
        "mae_skill": _number(scores.mae_skill),
        "rmse_skill": _number(scores.rmse_skill),
        "crps_skill": _number(scores.crps_skill),
    }


def forecaster_to_json(scores: ForecasterScores) -> dict[str, Any]:
    return {
        "forecaster": scores.name,
        "overall": scores_to_json(scores.overall),
        "by_step": [scores_to_json(s) for s in scores.by_step],
    }


def result_to_json(result: BacktestResult) -> dict[str, Any]:
    """The whole result as JSON values (None for an unset or non-finite score)."""
    out: dict[str, Any] = {
        "series_id": result.series_id,
        "scores": [forecaster_to_json(s) for s in result.scores],
        "origins": [int(t) for t in result.origins],
        "origin_timestamps_ms": [int(ns) // NS_PER_MS for ns in result.origin_timestamps],
        "horizon": result.horizon,
        "context": result.context,
        "origin_step": result.origin_step,
        "sample_count": result.sample_count,
        "quantiles": list(result.quantiles),
        "model_version": result.model_version,
        "tokenizer_version": result.tokenizer_version,
    }
    if result.seed is not None:
        out["seed"] = result.seed
    if result.forecasts:
        out["forecasts"] = []
        for origin, forecast in zip(result.origins, result.forecasts, strict=True):
            encoded = forecast_to_response(forecast, model_version="", tokenizer_version="")
            for key in ("model_version", "tokenizer_version", "series_id"):
                encoded.pop(key, None)
            out["forecasts"].append({"origin": int(origin), **encoded})
    return out


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def scores_table(result: BacktestResult, timezone: str = "UTC") -> str:
    """The overall scores of model and baselines, one row each, with a header on the run."""
    origins = result.origins
    first, last = (
        calendar.format_timestamps(result.origin_timestamps[[0, -1]], timezone)
        if origins.size
        else ("-", "-")
    )
    lines = [
        f"backtest of {result.series_id!r}: {origins.size} origins "
        f"(rows {int(origins[0])}..{int(origins[-1])}, "
        f"every {result.origin_step}; {first} .. {last}), context {result.context}, horizon "
        f"{result.horizon}, {result.sample_count} sample paths"
        + ("" if result.seed is None else f", seed {result.seed}"),
        f"model {result.model_version}  tokenizer {result.tokenizer_version}",
        "scores of the close over every origin and step (skill: 1 - score / naive's; > 0 beats naive)",
    ]
    levels = sorted({level for s in result.scores for level, _ in s.overall.coverage})
    headers = ["forecaster", "MAE", "RMSE", "MAPE %", "MASE", "CRPS", "dir acc", "Brier up"]
    headers += [f"cov {100 * lv:.0f}%" for lv in levels] + ["MAE skill", "RMSE skill", "CRPS skill"]
    rows = []
    for s in result.scores:
        o = s.overall
        coverage = dict(o.coverage)
        rows.append(
            [s.name, _fmt(o.mae), _fmt(o.rmse), _fmt(o.mape), _fmt(o.mase), _fmt(o.crps)]
            + [_fmt(o.direction_accuracy, 3), _fmt(o.brier_up, 3)]
            + [_fmt(coverage.get(lv), 3) for lv in levels]
            + [_fmt(o.mae_skill, 3), _fmt(o.rmse_skill, 3), _fmt(o.crps_skill, 3)]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    if levels:
        lines.append("cov N%: fraction of actual closes inside the central N% interval (calibrated: N%)")
    return "\n".join(lines)


def plot(
    result: BacktestResult, series: SeriesInput, path: str | Path, *, fan_origins: int = 3
) -> Sequence[int]:
    """A PNG of ``result`` drawn by the client's :func:`kronos_client.plot.plot_backtest` (one
    chart for both CLIs): fan charts of a few origins (the model's mean and its outer quantile
    band beside what happened) over the MAE-by-step curves of the model and the baselines.
    Needs ``result.forecasts``; returns the origins drawn (positions in ``result.origins``)."""
    from kronos_client.plot import Fan, plot_backtest, spread

    if not result.forecasts:
        raise ValueError("plotting a backtest needs its forecasts (return_forecasts)")
    shown = spread(len(result.forecasts), fan_origins)
    levels = result.quantiles
    outer = (levels[0], levels[-1]) if len(levels) >= 2 else None
    fans = []
    for i in shown:
        forecast = result.forecasts[i]
        band = outer if outer is not None and all(q in forecast.quantiles for q in outer) else None
        fans.append(
            Fan(
                origin=int(result.origins[i]),
                mean=forecast.mean[:, 3].tolist(),
                low=forecast.quantiles[band[0]][:, 3].tolist() if band else None,
                high=forecast.quantiles[band[1]][:, 3].tolist() if band else None,
            )
        )
    plot_backtest(
        path,
        close=np.asarray(series.close, dtype=np.float64).tolist(),
        fans=fans,
        curves={s.name: [b.mae for b in s.by_step] for s in result.scores},
        title=f"Kronos backtest of {result.series_id}: {result.origins.size} origins",
        band=f"model q{outer[0]:g}..q{outer[1]:g}" if outer else "",
        context_shown=min(result.context, 4 * result.horizon),
    )
    return shown
