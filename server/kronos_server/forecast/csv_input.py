"""What ``kronos-serve forecast --csv`` reads: candles from a CSV file, quantiles from a flag.

The CSV itself is read by the client's reader (:func:`kronos_client.csvinput.read_candles`),
so ``kronos-client predict --csv`` and this command accept and refuse the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np

from kronos_client.csvinput import CsvError, read_candles
from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.json_codec import DEFAULT_SERIES_ID
from kronos_server.forecast.types import SamplingParams, SeriesInput


def series_from_csv(
    source: str | Path | TextIO,
    *,
    series_id: str | None = None,
    pred_len: int | None = None,
    timezone: str | None = None,
    sampling: SamplingParams | None = None,
    tail: int | None = None,
    prediction_timestamps: list[str] | None = None,
) -> SeriesInput:
    """Read candles with the client's CSV reader (:func:`kronos_client.csvinput.read_candles`:
    a timestamp column, open, high, low, close, optional volume and amount). ``tail`` keeps
    only the last N rows; field names in errors index the rows kept."""
    try:
        table = read_candles(source, tail=tail)
    except CsvError as exc:
        raise InvalidInputError(exc.message, field=exc.field) from None
    if series_id is None and isinstance(source, str | Path):
        series_id = Path(source).stem
    stamps, tz = calendar.parse_series_timestamps(table.timestamps, timezone, "timestamps")
    future = None
    if prediction_timestamps is not None:
        future = calendar.parse_timestamps(prediction_timestamps, tz or "UTC", "prediction_timestamps")
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in table.columns.items()}
    return SeriesInput(
        series_id=series_id or DEFAULT_SERIES_ID,
        timestamps=stamps,
        prediction_timestamps=future,
        pred_len=pred_len,
        timezone=tz,
        sampling=sampling or SamplingParams(),
        return_paths=False,
        **arrays,
    )


def quantiles_from_text(text: str) -> tuple[float, ...]:
    """'0.1,0.5,0.9' -> (0.1, 0.5, 0.9); ranges are checked later with the other settings."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    out = []
    for i, part in enumerate(parts):
        try:
            out.append(float(part))
        except ValueError:
            raise InvalidInputError(
                f"quantiles[{i}]: not a number: {part!r}", field=f"quantiles[{i}]"
            ) from None
    return tuple(out)
