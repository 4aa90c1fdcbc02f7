"""Domain types shared by transports, the engine and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEATURES = ("open", "high", "low", "close", "volume", "amount")
PRICE_FIELDS = FEATURES[:4]


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings of one request; None means "server default" until resolved."""

    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    sample_count: int | None = None
    seed: int | None = None
    quantiles: tuple[float, ...] = ()


@dataclass(frozen=True)
class ResolvedSampling:
    """Sampling settings after defaults were applied and validated."""

    temperature: float
    top_k: int
    top_p: float
    sample_count: int
    seed: int | None
    quantiles: tuple[float, ...]


@dataclass(frozen=True)
class SeriesInput:
    """One series as a client sent it.

    ``timestamps`` are UTC instants in epoch nanoseconds (int64); ``timezone`` (IANA name,
    default UTC) says which local wall-clock time gives the calendar features.
    """

    series_id: str
    timestamps: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray | None = None
    amount: np.ndarray | None = None
    prediction_timestamps: np.ndarray | None = None
    pred_len: int | None = None
    timezone: str | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class PreparedSeries:
    """A validated, normalised series: exactly what the engine consumes."""

    series_id: str
    x_norm: np.ndarray  # float32 [n, 6], normalised and clipped
    mean: np.ndarray  # float32 [6]
    std: np.ndarray  # float32 [6], population std (before + 1e-5)
    x_stamps: np.ndarray  # int64 [n, 5] minute, hour, weekday, day, month
    y_stamps: np.ndarray  # int64 [P, 5]
    y_timestamps: np.ndarray  # int64 epoch ns [P]
    timezone: str
    sampling: ResolvedSampling

    @property
    def pred_len(self) -> int:
        return int(self.y_stamps.shape[0])

    @property
    def rows(self) -> int:
        return int(self.x_norm.shape[0])


@dataclass(frozen=True)
class Forecast:
    """The answer for one series, in price space."""

    series_id: str
    timestamps: np.ndarray  # int64 epoch ns [P]
    timezone: str
    mean: np.ndarray  # float32 [P, 6], columns FEATURES
    quantiles: dict[float, np.ndarray]  # q -> float32 [P, 6]
    sample_count: int
    seed: int | None


@dataclass(frozen=True)
class StepUpdate:
    """One generated step of a streaming forecast (mean over samples, price space)."""

    series_id: str
    step: int
    timestamp: int  # epoch ns
    values: np.ndarray  # float32 [6]
