"""A series' prediction timestamps from --freq / --calendar (the client's continuation logic)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from kronos_client.continuation import ContinuationError, continue_history
from kronos_client.csvinput import CsvError, read_timestamps
from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.types import SeriesInput

NS = 1_000_000_000


def _datetimes(epoch_ns: np.ndarray, tz_name: str) -> list[datetime]:
    tz = calendar.zone(tz_name) or UTC
    out = []
    for value in epoch_ns:
        seconds, rem = divmod(int(value), NS)
        out.append(datetime.fromtimestamp(seconds, tz).replace(microsecond=rem // 1000))
    return out


def continue_series(series: SeriesInput, *, freq: str | None, exchange: str | None) -> SeriesInput:
    """The series with ``pred_len`` prediction timestamps continuing its history."""
    if series.pred_len is None:
        raise InvalidInputError("pred_len: is required to continue the history", field="pred_len")
    history = _datetimes(series.timestamps, series.timezone or "UTC")
    try:
        future = continue_history(history, series.pred_len, freq=freq, calendar=exchange)
    except ContinuationError as exc:
        raise InvalidInputError(exc.message, field=exc.field) from None
    ns = np.array([int(dt.timestamp()) * NS + dt.microsecond * 1000 for dt in future], dtype=np.int64)
    return replace(series, prediction_timestamps=ns)


def prediction_timestamps_file(path: str) -> list[str]:
    """The timestamps of a --prediction-timestamps file (the client's reader), unparsed."""
    try:
        return read_timestamps(path)
    except CsvError as exc:
        raise InvalidInputError(exc.message, field=exc.field) from None
