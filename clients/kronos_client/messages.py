"""Python values -> ``kronos.v1.PredictRequest``. Shapes only; the server owns the rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from kronos.v1 import predictor_pb2 as pb
from kronos_client.errors import InvalidInputError
from kronos_client.timestamps import to_epoch_ms

#: the seeds the proto's uint64 holds, all accepted by the server
SEED_RANGE = range(2**64)

#: what predict() accepts for a price column: a list, numpy array, pandas Series...
Column = Sequence[float] | np.ndarray[Any, Any] | Iterable[float]


def _floats(values: Column, field: str) -> list[float]:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field} must be numbers", field=field) from None
    return [float(v) for v in arr.tolist()]


def build_request(
    timestamps: Iterable[Any],
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    *,
    volume: Column | None = None,
    amount: Column | None = None,
    pred_len: int | None = None,
    prediction_timestamps: Iterable[Any] | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    sample_count: int | None = None,
    seed: int | None = None,
    quantiles: Iterable[float] = (),
    timezone: str = "",
    series_id: str = "",
) -> pb.PredictRequest:
    """One series as a PredictRequest; unset sampling fields take the server's defaults."""
    if pred_len is None and prediction_timestamps is None:
        raise InvalidInputError("give pred_len or prediction_timestamps", field="pred_len")
    history = pb.Candles(timestamps_ms=to_epoch_ms(timestamps, timezone, "history.timestamps_ms"))
    for name, values in (("open", open), ("high", high), ("low", low), ("close", close)):
        getattr(history, name).extend(_floats(values, f"history.{name}"))
    if volume is not None:
        history.volume.extend(_floats(volume, "history.volume"))
    if amount is not None:
        history.amount.extend(_floats(amount, "history.amount"))
    request = pb.PredictRequest(series_id=series_id, history=history, timezone=timezone)
    if prediction_timestamps is not None:
        request.prediction_timestamps_ms.extend(
            to_epoch_ms(prediction_timestamps, timezone, "prediction_timestamps_ms")
        )
    if pred_len is not None:
        request.pred_len = int(pred_len)
    s = request.sampling
    if temperature is not None:
        s.temperature = float(temperature)
    if top_k is not None:
        s.top_k = int(top_k)
    if top_p is not None:
        s.top_p = float(top_p)
    if sample_count is not None:
        s.sample_count = int(sample_count)
    if seed is not None:
        if int(seed) not in SEED_RANGE:
            raise InvalidInputError(f"sampling.seed must lie in [0, 2^64), got {seed}", field="sampling.seed")
        s.seed = int(seed)
    s.quantiles.extend(float(q) for q in quantiles)
    return request
