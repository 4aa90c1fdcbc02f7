"""Candle tables: reading the CSV and splitting off the held-out rows."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kronos_server.forecast import calendar
from kronos_server.forecast.prepare import fill_volume_amount
from kronos_server.forecast.types import FEATURES, PRICE_FIELDS


@dataclass(frozen=True)
class Candles:
    """One series: UTC epoch-ns timestamps [n] and the six features [n, 6] (float64)."""

    name: str
    timestamps: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def rows(self, start: int, stop: int) -> Candles:
        return Candles(self.name, self.timestamps[start:stop], self.values[start:stop])

    def column(self, name: str) -> np.ndarray:
        return self.values[:, FEATURES.index(name)]


def load_csv(path: Path, name: str | None = None) -> Candles:
    """Read a ``timestamps, open, high, low, close[, volume[, amount]]`` CSV.

    Timestamps are naive local times, parsed as wall-clock UTC (so the calendar stamps
    are the wall-clock fields, as at inference). Missing volume/amount follow spec §4.
    """
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = set(reader.fieldnames or ())
        records = list(reader)
    missing = [c for c in ("timestamps", *PRICE_FIELDS) if c not in header]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    ts = calendar.parse_timestamps([r["timestamps"] for r in records], "UTC", "timestamps")
    cols = {c: np.array([float(r[c]) for r in records]) for c in FEATURES if c in header}
    volume, amount = fill_volume_amount(cols, len(records))
    values = np.stack([cols["open"], cols["high"], cols["low"], cols["close"], volume, amount], axis=1)
    return Candles(name or path.stem, ts, values)


def split_holdout(candles: Candles, holdout_rows: int) -> tuple[Candles, Candles]:
    """(training rows, last ``holdout_rows`` rows)."""
    if not 0 < holdout_rows < len(candles):
        raise ValueError(f"holdout_rows must lie in (0, {len(candles)}), got {holdout_rows}")
    cut = len(candles) - holdout_rows
    return candles.rows(0, cut), candles.rows(cut, len(candles))
