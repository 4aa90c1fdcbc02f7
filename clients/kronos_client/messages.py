"""Python values -> ``kronos.v1.PredictRequest``. Shapes only; the server owns the rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from google.protobuf.descriptor import FieldDescriptor

from kronos.v1 import predictor_pb2 as pb
from kronos_client.errors import InvalidInputError
from kronos_client.timestamps import to_epoch_ms

#: the seeds the proto's uint64 holds, all accepted by the server
SEED_RANGE = range(2**64)

#: the integers each protobuf integer type holds
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: range(-(2**31), 2**31),
    FieldDescriptor.CPPTYPE_UINT32: range(2**32),
    FieldDescriptor.CPPTYPE_INT64: range(-(2**63), 2**63),
    FieldDescriptor.CPPTYPE_UINT64: SEED_RANGE,
}
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)

#: what predict() accepts for a price column: a list, numpy array, pandas Series...
Column = Sequence[float] | np.ndarray[Any, Any] | Iterable[float]


def _floats(values: Column, field: str) -> list[float]:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError(f"{field} must be numbers", field=field) from None
    return [float(v) for v in arr.tolist()]


def _scalar(field: FieldDescriptor, value: Any, path: str) -> Any:
    if field.cpp_type in _FLOATS:
        return float(value)
    number = int(value)
    bounds = _INT_RANGES.get(field.cpp_type)
    if bounds is not None and number not in bounds:
        raise InvalidInputError(
            f"{path} must lie in [{bounds.start}, {bounds.stop}), got {value}", field=path
        )
    return number


def pack_sampling(target: pb.SamplingParams, values: Mapping[str, Any]) -> None:
    """Set every given (not None) sampling field, each as its proto type says (read from the
    descriptor, so a field added to the proto needs no change here)."""
    for field in pb.SamplingParams.DESCRIPTOR.fields:
        value = values.get(field.name)
        if value is None:
            continue
        path = f"sampling.{field.name}"
        if field.is_repeated:
            getattr(target, field.name).extend(_scalar(field, v, f"{path}[{i}]") for i, v in enumerate(value))
        else:
            setattr(target, field.name, _scalar(field, value, path))


def build_history(
    timestamps: Iterable[Any],
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    *,
    volume: Column | None = None,
    amount: Column | None = None,
    timezone: str = "",
) -> pb.Candles:
    """The history columns as a ``Candles`` message (naive timestamps read in ``timezone``)."""
    history = pb.Candles(timestamps_ms=to_epoch_ms(timestamps, timezone, "history.timestamps_ms"))
    for name, values in (("open", open), ("high", high), ("low", low), ("close", close)):
        getattr(history, name).extend(_floats(values, f"history.{name}"))
    if volume is not None:
        history.volume.extend(_floats(volume, "history.volume"))
    if amount is not None:
        history.amount.extend(_floats(amount, "history.amount"))
    return history


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
    return_paths: bool = False,
) -> pb.PredictRequest:
    """One series as a PredictRequest; unset sampling fields take the server's defaults.
    ``return_paths``: also answer the sample paths (at most the server's max_return_paths)."""
    if pred_len is None and prediction_timestamps is None:
        raise InvalidInputError("give pred_len or prediction_timestamps", field="pred_len")
    history = build_history(
        timestamps, open, high, low, close, volume=volume, amount=amount, timezone=timezone
    )
    request = pb.PredictRequest(
        series_id=series_id, history=history, timezone=timezone, return_paths=bool(return_paths)
    )
    if prediction_timestamps is not None:
        request.prediction_timestamps_ms.extend(
            to_epoch_ms(prediction_timestamps, timezone, "prediction_timestamps_ms")
        )
    if pred_len is not None:
        request.pred_len = int(pred_len)
    given = {
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "sample_count": sample_count,
        "seed": seed,
        "quantiles": quantiles,
    }
    pack_sampling(request.sampling, given)
    return request
