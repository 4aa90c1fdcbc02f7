"""Synthetic OHLCV series: geometric random walks with tick rounding and volatility regimes.

They reuse a real timestamp sequence, so calendar stamps keep a real trading calendar.
"""

from __future__ import annotations

import numpy as np

from kronos_server.training.data import Candles


def _volatility(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    """A slowly mean-reverting log-volatility path (regimes and clusters)."""
    log_vol = np.empty(n)
    level = 0.0
    for i in range(n):
        level = 0.98 * level + 0.2 * rng.standard_normal()
        log_vol[i] = level
    return base * np.exp(0.5 * log_vol)


def random_walk(rng: np.random.Generator, timestamps: np.ndarray, name: str) -> Candles:
    """One synthetic series on ``timestamps``: consistent OHLC, volume tied to |return|."""
    n = timestamps.shape[0]
    price0 = float(np.exp(rng.uniform(np.log(3.0), np.log(200.0))))
    tick = 0.01 if price0 < 100 else 0.05
    sigma = _volatility(rng, n, base=float(rng.uniform(0.0008, 0.004)))
    drift = float(rng.normal(0.0, 2e-5))
    log_ret = drift + sigma * rng.standard_t(df=5, size=n) / np.sqrt(5.0 / 3.0)
    close = price0 * np.exp(np.cumsum(log_ret))
    gap = sigma * 0.2 * rng.standard_normal(n)
    open_ = np.concatenate(([price0], close[:-1])) * np.exp(gap)
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    high = body_hi * np.exp(np.abs(rng.normal(0.0, 0.6, n)) * sigma)
    low = body_lo * np.exp(-np.abs(rng.normal(0.0, 0.6, n)) * sigma)
    open_, close = np.round(open_ / tick) * tick, np.round(close / tick) * tick
    high = np.maximum(np.round(high / tick) * tick, np.maximum(open_, close))
    low = np.maximum(np.minimum(np.round(low / tick) * tick, np.minimum(open_, close)), tick)
    move = np.abs(log_ret) / sigma
    base_volume = float(np.exp(rng.uniform(np.log(200.0), np.log(20000.0))))
    volume = np.round(base_volume * np.exp(rng.normal(0.0, 0.5, n)) * (0.5 + 0.5 * move))
    amount = volume * (open_ + high + low + close) / 4.0 * 100.0
    values = np.stack([open_, high, low, close, volume, amount], axis=1)
    return Candles(name, timestamps.copy(), values)


def synthetic_set(rng: np.random.Generator, timestamps: np.ndarray, count: int) -> list[Candles]:
    return [random_walk(rng, timestamps, f"synthetic-{i}") for i in range(count)]
