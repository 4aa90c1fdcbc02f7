"""--plot: history, forecast mean and quantile band as a PNG (matplotlib is optional)."""

from __future__ import annotations

import importlib
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
