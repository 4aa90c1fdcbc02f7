"""Synthetic OHLCV series: driftless geometric random walks with tick rounding and volatility regimes.

They live on real or regular calendars (daily trading days, 5-minute session bars, hourly
round-the-clock weekday bars), so calendar stamps keep a plausible trading calendar. Being
(nearly) martingales, they teach the predictor that the best guess of the next close is the
last one, whatever the window's mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kronos_server.training.data import Candles

NS_PER_HOUR = 3_600_000_000_000
_SATURDAY, _SUNDAY = 5, 6


def hourly_weekdays(start_ns: int, count: int) -> np.ndarray:
    """``count`` hourly epoch-ns stamps from ``start_ns`` skipping Saturdays and Sundays (FX-like)."""
    hours = start_ns + NS_PER_HOUR * np.arange(count * 2, dtype=np.int64)
    days = hours // (24 * NS_PER_HOUR)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    keep = hours[(weekday != _SATURDAY) & (weekday != _SUNDAY)]
    return keep[:count].copy()


def _volatility(rng: np.random.Generator, n: int, base: float) -> np.ndarray:
    """A mean-reverting log-volatility path (regimes and clusters), persistence drawn per series."""
    phi = float(rng.uniform(0.9, 0.995))
    shock = float(rng.uniform(0.05, 0.3)) * np.sqrt(1.0 - phi**2) / np.sqrt(1.0 - 0.98**2)
    noise = rng.standard_normal(n)
    log_vol = np.empty(n)
    level = 0.0
    for i in range(n):
        level = phi * level + shock * noise[i]
        log_vol[i] = level
    return base * np.exp(0.5 * log_vol)


def random_walk(rng: np.random.Generator, timestamps: np.ndarray, name: str) -> Candles:
    """One synthetic series on ``timestamps``: consistent OHLC, volume tied to |return|."""
    n = timestamps.shape[0]
    price0 = float(np.exp(rng.uniform(np.log(0.5), np.log(3000.0))))
    tick = 10.0 ** np.floor(np.log10(price0) - 3.5)  # about 3-4 significant digits of resolution
    sigma = _volatility(rng, n, base=float(np.exp(rng.uniform(np.log(4e-4), np.log(0.025)))))
    drift = float(rng.normal(0.0, 0.02)) * float(sigma.mean())  # tiny next to a step's noise
    df = float(rng.uniform(3.0, 10.0))
    log_ret = drift + sigma * rng.standard_t(df=df, size=n) / np.sqrt(df / (df - 2.0))
    close = price0 * np.exp(np.cumsum(log_ret))
    gap = sigma * float(rng.uniform(0.0, 0.3)) * rng.standard_normal(n)
    open_ = np.concatenate(([price0], close[:-1])) * np.exp(gap)
    body_hi, body_lo = np.maximum(open_, close), np.minimum(open_, close)
    wick = float(rng.uniform(0.3, 0.9))
    high = body_hi * np.exp(np.abs(rng.normal(0.0, wick, n)) * sigma)
    low = body_lo * np.exp(-np.abs(rng.normal(0.0, wick, n)) * sigma)
    open_, close = np.round(open_ / tick) * tick, np.round(close / tick) * tick
    high = np.maximum(np.round(high / tick) * tick, np.maximum(open_, close))
    low = np.maximum(np.minimum(np.round(low / tick) * tick, np.minimum(open_, close)), tick)
    move = np.abs(log_ret) / sigma
    base_volume = float(np.exp(rng.uniform(np.log(200.0), np.log(2e8))))
    volume = np.round(base_volume * np.exp(rng.normal(0.0, 0.5, n)) * (0.5 + 0.5 * move))
    amount = volume * (open_ + high + low + close) / 4.0
    values = np.stack([open_, high, low, close, volume, amount], axis=1)
    return Candles(name, timestamps.copy(), values)


def synthetic_set(
    rng: np.random.Generator, calendars: np.ndarray | Sequence[np.ndarray], count: int
) -> list[Candles]:
    """``count`` random walks; the i-th lies on calendar ``i % len(calendars)``."""
    cals = [calendars] if isinstance(calendars, np.ndarray) else list(calendars)
    return [random_walk(rng, cals[i % len(cals)], f"synthetic-{i}") for i in range(count)]
