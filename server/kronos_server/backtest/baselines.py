"""The reference forecasters of a backtest, computed exactly from each origin's context closes.

Every function takes ``context_closes``, a float array [O, C] (O origins, C >= 2 context
closes each, oldest first; the last column is the origin's last close) and the horizon H,
and forecasts the close at steps h = 1..H after the origin:

- **naive**: the last close, repeated: ``point[o, h] = last[o]``.
- **drift** (random walk with drift): the straight line through the first and the last context
  close, continued: ``point[o, h] = last[o] + h * (last[o] - first[o]) / (C - 1)``.
- **volatility** (a Gaussian random walk in price space, zero drift): the close at step h is
  ``N(last[o], h * sigma[o]**2)``, with ``sigma[o]`` the *population* standard deviation
  (ddof = 0) of the C - 1 one-step close changes of the context. Its quantiles are exact
  (``last + sigma * sqrt(h) * z_q``, z_q the standard normal quantile), its CRPS has a closed
  form (:func:`kronos_server.backtest.scores.crps_gaussian`) and its P(close up) is 0.5 at
  every step. A flat context (sigma = 0) makes it a point mass at the last close: its
  quantiles are the last close and its CRPS is the absolute error.

Pure numpy; no model, no transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

_STANDARD_NORMAL = NormalDist()


def _context(context_closes: npt.ArrayLike) -> Array:
    context = np.asarray(context_closes, dtype=np.float64)
    if context.ndim != 2 or context.shape[0] < 1 or context.shape[1] < 2:
        raise ValueError(f"context_closes must be [origins >= 1, closes >= 2], got shape {context.shape}")
    return context


def _steps(horizon: int) -> Array:
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    return np.arange(1, horizon + 1, dtype=np.float64)


def naive(context_closes: npt.ArrayLike, horizon: int) -> Array:
    """[O, H]: each origin's last close, repeated."""
    context = _context(context_closes)
    _steps(horizon)
    return np.repeat(context[:, -1:], horizon, axis=1)


def drift(context_closes: npt.ArrayLike, horizon: int) -> Array:
    """[O, H]: ``last + h * (last - first) / (C - 1)``, the mean one-step change continued."""
    context = _context(context_closes)
    slope = (context[:, -1] - context[:, 0]) / (context.shape[1] - 1)
    return context[:, -1:] + slope[:, None] * _steps(horizon)[None, :]


def volatility_sigma(context_closes: npt.ArrayLike) -> Array:
    """[O]: population standard deviation (ddof = 0) of the context's one-step close changes."""
    return np.asarray(np.std(np.diff(_context(context_closes), axis=1), axis=1, ddof=0), dtype=np.float64)


def standard_normal_quantile(q: float) -> float:
    """z_q, the q quantile of N(0, 1), for 0 < q < 1."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    return _STANDARD_NORMAL.inv_cdf(q)


@dataclass(frozen=True)
class GaussianForecast:
    """Independent normal marginals per cell: the close at [o, h] is N(mean[o, h], std[o, h]**2)."""

    mean: Array  # [O, H]
    std: Array  # [O, H], >= 0; 0 is a point mass at mean
    p_up: Array  # [O, H]: the probability given to "close > the origin's last close"

    def quantile(self, q: float) -> Array:
        """[O, H]: the exact q quantile of every cell (the mean where std is 0)."""
        return self.mean + self.std * standard_normal_quantile(q)


def volatility(context_closes: npt.ArrayLike, horizon: int) -> GaussianForecast:
    """The zero-drift Gaussian random walk: step h ~ N(last, h * sigma**2), sigma from the context."""
    context = _context(context_closes)
    sigma = volatility_sigma(context)
    steps = _steps(horizon)
    return GaussianForecast(
        mean=np.repeat(context[:, -1:], horizon, axis=1),
        std=sigma[:, None] * np.sqrt(steps)[None, :],
        # zero drift: as likely up as down (also, by this definition, for a flat context)
        p_up=np.full((context.shape[0], horizon), 0.5),
    )
