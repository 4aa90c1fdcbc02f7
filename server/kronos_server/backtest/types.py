"""The backtest's domain types: what a transport hands the dataplane and gets back.

A backtest forecasts one series from many of its own past origins at once and scores the
forecasts of the close against what happened, beside baselines computed in the same call
(:mod:`kronos_server.backtest.scores`, :mod:`kronos_server.backtest.baselines`). The
semantics of every field are the proto's (``BacktestRequest`` in
protos/kronos/v1/predictor.proto); None means "the server's default" until resolved
(:func:`kronos_server.backtest.origins.plan_backtest`).

Field names in errors are the domain's, as for a forecast (``close[17]``, ``timestamps``,
``top_p``); the backtest's own fields are named as in the proto (``horizon``, ``context``,
``origins``, ``origin_step``), which :mod:`kronos_server.forecast.fields` passes through
unchanged to both transports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kronos_server.backtest.scores import ForecasterScores
from kronos_server.forecast.types import Forecast, SamplingParams, SeriesInput

#: sample paths per origin when the request leaves sample_count unset (CRPS and the
#: intervals need paths)
DEFAULT_BACKTEST_SAMPLES = 8
#: quantile levels when the request sends none: the 90 %, 80 % and 50 % central intervals
DEFAULT_BACKTEST_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
#: the context when unset, capped by max_context - horizon and the rows available
DEFAULT_BACKTEST_CONTEXT = 256
#: the fewest context candles an origin may see
MIN_BACKTEST_CONTEXT = 2


@dataclass(frozen=True)
class BacktestInput:
    """One backtest as a client sent it.

    ``series`` is the whole history (its ``prediction_timestamps``, ``pred_len`` and
    ``return_paths`` are unused: ``horizon`` says how far each origin forecasts, and every
    origin's paths are scored); its ``sampling`` are the sampling settings of every origin
    (seed: origin o is sampled with seed + o mod 2^64).
    """

    series: SeriesInput
    horizon: int | None = None
    context: int | None = None
    origins: int | None = None
    origin_step: int | None = None
    return_forecasts: bool = False

    @property
    def sampling(self) -> SamplingParams:
        return self.series.sampling


@dataclass(frozen=True)
class BacktestResult:
    """Scores of the model and the baselines, model first, then naive, drift, volatility."""

    series_id: str
    scores: tuple[ForecasterScores, ...]
    origins: np.ndarray  # int64 [O] row indices of history, ascending
    origin_timestamps: np.ndarray  # int64 epoch ns [O]: each origin's first forecast candle
    horizon: int
    context: int
    origin_step: int
    sample_count: int
    seed: int | None  # the request's seed, as sent
    model_version: str
    tokenizer_version: str
    quantiles: tuple[float, ...] = ()  # the levels scored, ascending
    # per origin (in origin order) with return_forecasts: mean and quantiles, no paths
    forecasts: tuple[Forecast, ...] = field(default=())

    def scores_of(self, name: str) -> ForecasterScores:
        """The scores of one forecaster ("model", "naive", "drift", "volatility")."""
        for scores in self.scores:
            if scores.name == name:
                return scores
        raise KeyError(name)
