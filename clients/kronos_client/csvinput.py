"""Read a candle CSV (timestamps + OHLC[V[A]] columns) with the standard library."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

TIME_COLUMNS = ("timestamps", "timestamp", "date", "datetime", "time")
PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass
class CandleTable:
    timestamps: list[str]
    columns: dict[str, list[float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    def tail(self, n: int | None) -> CandleTable:
        if n is None or n >= len(self):
            return self
        return CandleTable(self.timestamps[-n:], {k: v[-n:] for k, v in self.columns.items()})


def read_candles(path: str | Path) -> CandleTable:
    """Header names are case-insensitive; volume and amount are optional."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = {name.strip().lower(): name for name in reader.fieldnames or ()}
        time_col = next((header[c] for c in TIME_COLUMNS if c in header), None)
        if time_col is None:
            raise ValueError(f"{path}: no timestamp column (one of {', '.join(TIME_COLUMNS)})")
        missing = [c for c in PRICE_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        wanted = [c for c in (*PRICE_COLUMNS, "volume", "amount") if c in header]
        table = CandleTable([], {c: [] for c in wanted})
        for line, row in enumerate(reader, start=2):
            table.timestamps.append(row[time_col].strip())
            for c in wanted:
                try:
                    table.columns[c].append(float(row[header[c]]))
                except (TypeError, ValueError):
                    raise ValueError(f"{path}:{line}: {c} is not a number: {row[header[c]]!r}") from None
    if not table.timestamps:
        raise ValueError(f"{path}: no rows")
    return table
