"""--plot: history, forecast mean and quantile band as a PNG; a backtest's fan chart and
error-by-horizon curves (matplotlib is optional)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kronos_client.results import Forecast

HISTORY_ROWS = 200


def require_pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as exc:
        raise ImportError(
            "--plot needs matplotlib, an optional dependency: pip install matplotlib "
            "(the 'plot' extra of kronos-client, 'client-extras' of kronos-serve)"
        ) from exc
    matplotlib.use("Agg")  # files only; never needs a display
    return importlib.import_module("matplotlib.pyplot")


def plot_forecast(
    path: str | Path, history_time: list[datetime], history_close: list[float], forecast: Forecast
) -> Path:
    """Close of the last ~200 history rows, the forecast mean and its widest quantile band.

    The x axis counts candles, not wall-clock time, so market closures leave no gaps;
    a few ticks carry the timestamps.
    """
    plt = require_pyplot()
    times = history_time[-HISTORY_ROWS:] + [t.replace(tzinfo=None) for t in forecast.timestamps]
    n_hist = len(times) - len(forecast)
    hist_x = list(range(n_hist))
    pred_x = list(range(n_hist, len(times)))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    try:
        ax.plot(hist_x, history_close[-HISTORY_ROWS:], color="tab:blue", label="history")
        label = f"forecast (mean of {forecast.sample_count})"
        ax.plot(pred_x, forecast.close, color="tab:orange", label=label)
        if forecast.quantiles:
            low_q, high_q = min(forecast.quantiles), max(forecast.quantiles)
            ax.fill_between(
                pred_x,
                forecast.quantiles[low_q].close,
                forecast.quantiles[high_q].close,
                color="tab:orange",
                alpha=0.25,
                label=f"q{low_q:g}-q{high_q:g}" if low_q != high_q else f"q{low_q:g}",
            )
        ax.axvline(n_hist - 0.5, color="grey", linestyle=":", linewidth=1)
        every = max(1, len(times) // 6)
        ticks = list(range(0, len(times), every))
        if len(times) - 1 - ticks[-1] > every // 2:
            ticks.append(len(times) - 1)
        ax.set_xticks(ticks, [times[i].strftime("%Y-%m-%d\n%H:%M") for i in ticks])
        ax.set_ylabel("close")
        ax.set_title(f"Kronos forecast ({forecast.model_version})")
        ax.legend(loc="best")
        out = Path(path)
        fig.savefig(out, dpi=100, bbox_inches="tight")
        return out
    finally:
        plt.close(fig)


@dataclass(frozen=True)
class Fan:
    """One origin's forecast for :func:`plot_backtest`: ``mean`` (and the band ``low`` ..
    ``high``, if any) for the rows ``origin`` .. ``origin + len(mean) - 1`` of the history."""

    origin: int
    mean: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None


def spread(count: int, most: int = 3) -> list[int]:
    """Up to ``most`` positions of ``count``, spread over them, the first and last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def plot_backtest(
    path: str | Path,
    *,
    close: Sequence[float],
    fans: Sequence[Fan],
    curves: Mapping[str, Sequence[float | None]],
    score: str = "MAE",
    title: str = "Kronos backtest",
    band: str = "",
    context_shown: int = 48,
) -> Path:
    """A PNG of a backtest from plain arrays: above, a fan chart of a few origins (the close
    ``close`` around them, each origin's forecast mean and band); below, the error-by-horizon
    curves (``curves``: forecaster -> one score per step). Used by ``kronos-client backtest
    --plot``; anything holding the same arrays can draw it (it knows no result type)."""
    plt = require_pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), height_ratios=(3, 2))
    try:
        if fans:
            start = max(0, min(f.origin for f in fans) - context_shown)
            end = min(len(close), max(f.origin + len(f.mean) for f in fans))
        else:
            start, end = 0, len(close)
        rows = list(range(start, end))
        top.plot(rows, list(close[start:end]), color="tab:blue", label="actual close")
        for i, fan in enumerate(fans):
            x = list(range(fan.origin, fan.origin + len(fan.mean)))
            top.axvline(fan.origin - 0.5, color="grey", linestyle=":", linewidth=1)
            top.plot(x, list(fan.mean), color="tab:orange", label="model mean" if i == 0 else None)
            if fan.low is not None and fan.high is not None:
                label = (band or "band") if i == 0 else None
                top.fill_between(
                    x, list(fan.low), list(fan.high), color="tab:orange", alpha=0.25, label=label
                )
        top.set_xlabel("row of the history")
        top.set_ylabel("close")
        top.set_title(title)
        top.legend(loc="best")
        colours = {
            "model": "tab:orange",
            "naive": "tab:grey",
            "drift": "tab:green",
            "volatility": "tab:purple",
        }
        for name, values in curves.items():
            steps = [h + 1 for h, v in enumerate(values) if v is not None]
            shown = [v for v in values if v is not None]
            # volatility's point forecast is naive's: dashed, so that both stay visible
            style = "--" if name == "volatility" else "-"
            bottom.plot(steps, shown, marker="o", linestyle=style, color=colours.get(name), label=name)
        bottom.set_xlabel("horizon step")
        bottom.set_ylabel(score)
        bottom.set_title(f"{score} by horizon step")
        bottom.legend(loc="best")
        fig.tight_layout()
        out = Path(path)
        fig.savefig(out, dpi=100)
        return out
    finally:
        plt.close(fig)
