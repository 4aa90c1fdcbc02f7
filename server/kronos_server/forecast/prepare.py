"""Validation and normalisation of one series (spec §4): SeriesInput -> PreparedSeries."""

from __future__ import annotations

from typing import Any

import numpy as np

from kronos_server.errors import InvalidInputError
from kronos_server.forecast import calendar
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import (
    PRICE_FIELDS,
    SAMPLING,
    PreparedSeries,
    ResolvedSampling,
    SamplingParams,
    SeriesInput,
    Setting,
)

NORM_EPS = np.float32(1e-5)


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


def _checked(setting: Setting, value: Any, field: str, limits: Limits) -> Any:
    value = setting.kind(value)
    if not setting.ok(value, limits):
        raise _bad(field, f"must {setting.rule.format(**vars(limits))}, got {value}")
    return value


def resolve_sampling(p: SamplingParams, limits: Limits) -> ResolvedSampling:
    """Apply server defaults and check every sampling setting (the rules its field declares)."""
    resolved: dict[str, Any] = {}
    for setting in SAMPLING:
        given = getattr(p, setting.name)
        if setting.repeated:
            most = getattr(limits, setting.most) if setting.most else None
            if most is not None and len(given) > most:
                raise _bad(setting.name, f"at most {most} values, got {len(given)}")
            resolved[setting.name] = tuple(
                _checked(setting, v, f"{setting.name}[{i}]", limits) for i, v in enumerate(given)
            )
            continue
        default = getattr(limits, setting.default) if isinstance(setting.default, str) else setting.default
        value = default if given is None else given
        resolved[setting.name] = None if value is None else _checked(setting, value, setting.name, limits)
    return ResolvedSampling(**resolved)


def _column(name: str, values: np.ndarray | None, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise _bad(name, f"has {arr.shape[0]} values but timestamps has {n}")
    finite = np.isfinite(arr)
    if not finite.all():
        i = int(np.argmin(finite))
        raise _bad(f"{name}[{i}]", f"must be a finite number, got {arr[i]}")
    return arr


def _check_candles(cols: dict[str, np.ndarray]) -> None:
    for name in PRICE_FIELDS:
        bad = np.flatnonzero(cols[name] <= 0)
        if bad.size:
            i = int(bad[0])
            raise _bad(f"{name}[{i}]", f"prices must be > 0, got {cols[name][i]}")
    o, h, lo, c = (cols[k] for k in PRICE_FIELDS)
    checks = (
        ("high", h < lo, "high is below low"),
        ("high", h < np.maximum(o, c), "high is below open or close"),
        ("low", lo > np.minimum(o, c), "low is above open or close"),
    )
    for name, mask, why in checks:
        bad = np.flatnonzero(mask)
        if bad.size:
            i = int(bad[0])
            raise _bad(f"{name}[{i}]", f"{why} (open {o[i]}, high {h[i]}, low {lo[i]}, close {c[i]})")
    for name in ("volume", "amount"):
        if name in cols:
            bad = np.flatnonzero(cols[name] < 0)
            if bad.size:
                i = int(bad[0])
                raise _bad(f"{name}[{i}]", f"must be >= 0, got {cols[name][i]}")


def _check_increasing(name: str, ts: np.ndarray) -> None:
    if ts.size > 1:
        bad = np.flatnonzero(ts[1:] <= ts[:-1])  # np.diff could wrap around for far-apart int64
        if bad.size:
            i = int(bad[0]) + 1
            raise _bad(f"{name}[{i}]", "timestamps must be strictly increasing")


def future_timestamps(history: np.ndarray, pred_len: int) -> np.ndarray:
    """Continue the history's own interval (the median spacing) for ``pred_len`` steps."""
    if history.size < 2:
        raise _bad("prediction_timestamps", "needed when the history has fewer than 2 rows")
    # the history is strictly increasing, so its differences are exact as uint64 (an int64
    # difference wraps around when the rows are more than 292 years apart)
    step = int(np.median(np.diff(history.astype(np.uint64))))
    last = int(history[-1]) + step * pred_len
    if last > np.iinfo(np.int64).max:
        raise _bad("pred_len", f"{pred_len} steps of the history's interval pass the year 2262")
    return history[-1] + step * np.arange(1, pred_len + 1, dtype=np.int64)


def _future(series: SeriesInput, ts: np.ndarray, limits: Limits) -> np.ndarray:
    pred_len = series.pred_len
    if pred_len is not None and not 1 <= pred_len <= limits.max_context:
        raise _bad("pred_len", f"must lie in [1, max_context={limits.max_context}], got {pred_len}")
    if series.prediction_timestamps is None or len(series.prediction_timestamps) == 0:
        if pred_len is None:
            raise _bad("pred_len", "give pred_len or prediction_timestamps")
        return future_timestamps(ts, pred_len)
    fut = np.asarray(series.prediction_timestamps, dtype=np.int64).reshape(-1)
    if pred_len is not None and fut.size != pred_len:
        raise _bad("prediction_timestamps", f"has {fut.size} timestamps but pred_len is {pred_len}")
    if fut.size > limits.max_context:
        raise _bad("prediction_timestamps", f"{fut.size} steps exceed max_context={limits.max_context}")
    if fut[0] <= ts[-1]:
        raise _bad("prediction_timestamps[0]", "must be after the last history timestamp")
    _check_increasing("prediction_timestamps", fut)
    return fut


def fill_volume_amount(cols: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Spec §4.2-4.3: no volume zeroes amount too; no amount derives it from volume."""
    if "volume" not in cols:
        return np.zeros(n), np.zeros(n)
    if "amount" not in cols:
        mean_price = (cols["open"] + cols["high"] + cols["low"] + cols["close"]) / 4.0
        return cols["volume"], cols["volume"] * mean_price
    return cols["volume"], cols["amount"]


def normalize(x: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 [n, 6] -> (clipped z-scores, mean, population std) with numpy's float32 sums.

    Statistics are taken per contiguous column, the summation order of the original
    (spec §4.6); a row-major reduction or torch would shift normalised prices.
    """
    cols = np.asfortranarray(x, dtype=np.float32)
    mean = np.array([cols[:, c].mean() for c in range(cols.shape[1])], dtype=np.float32)
    std = np.array([cols[:, c].std() for c in range(cols.shape[1])], dtype=np.float32)
    z = (x - mean) / (std + NORM_EPS)
    return np.clip(z, -clip, clip).astype(np.float32), mean, std


def prepare(series: SeriesInput, limits: Limits) -> PreparedSeries:
    """Validate one series and turn it into the engine's normalised input."""
    tz = series.timezone or "UTC"
    calendar.zone(tz)
    sampling = resolve_sampling(series.sampling, limits)
    if series.return_paths and sampling.sample_count > limits.max_return_paths:
        raise _bad(
            "return_paths",
            f"at most {limits.max_return_paths} sample paths can be returned, "
            f"sample_count is {sampling.sample_count}",
        )
    ts = np.asarray(series.timestamps, dtype=np.int64).reshape(-1)
    n = ts.size
    if n < limits.min_history:
        raise _bad("timestamps", f"history needs at least {limits.min_history} rows, got {n}")
    if n > limits.max_history:
        raise _bad("timestamps", f"history allows at most {limits.max_history} rows, got {n}")
    _check_increasing("timestamps", ts)
    cols = {name: _column(name, getattr(series, name), n) for name in PRICE_FIELDS}
    for name in ("volume", "amount"):
        value = getattr(series, name)
        if value is not None and len(value):
            cols[name] = _column(name, value, n)
    _check_candles(cols)
    fut = _future(series, ts, limits)
    volume, amount = fill_volume_amount(cols, n)
    x = np.stack([cols["open"], cols["high"], cols["low"], cols["close"], volume, amount], axis=1)
    with np.errstate(over="ignore"):  # overflow is the check just below
        x32 = x.astype(np.float32)
    if not np.isfinite(x32).all():
        r, c = map(int, np.argwhere(~np.isfinite(x32))[0])
        name = ("open", "high", "low", "close", "volume", "amount")[c]
        raise _bad(f"{name}[{r}]", "value overflows float32")
    with np.errstate(over="ignore", invalid="ignore"):
        x_norm, mean, std = normalize(x32, limits.clip)
        # forecasts come back as z * (std + eps) + mean in float32: a column whose statistics
        # overflow (or nearly) would forecast inf or NaN
        reach = np.abs(mean) + np.float32(2 * limits.clip) * (std + NORM_EPS)
    if not np.isfinite(reach).all():
        name = ("open", "high", "low", "close", "volume", "amount")[int(np.argmin(np.isfinite(reach)))]
        raise _bad(name, "values too large: their mean and spread overflow float32")
    return PreparedSeries(
        series_id=series.series_id,
        x_norm=x_norm,
        mean=mean,
        std=std,
        x_stamps=calendar.stamps(ts, tz),
        y_stamps=calendar.stamps(fut, tz),
        y_timestamps=fut,
        timezone=tz,
        sampling=sampling,
        return_paths=series.return_paths,
        last_close=float(x32[-1, 3]),
    )


# volume and amount: the columns that can never be negative
COUNT_COLUMNS = slice(4, 6)


def denormalize(z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Normalised [..., 6] -> price space, float32 (spec §4 post-processing).

    Every forecast (mean, quantile paths, stream steps) passes here. Unlike the original,
    volume and amount are clamped at 0, and are exactly 0 when the history's were all 0
    (absent from the input, spec §4.2): there z * (0 + 1e-5) would give tiny noise such
    as -2.09e-06.
    """
    out = (z.astype(np.float32) * (std + NORM_EPS) + mean).astype(np.float32)
    counts = out[..., COUNT_COLUMNS]
    np.maximum(counts, 0, out=counts)
    absent = (mean[COUNT_COLUMNS] == 0) & (std[COUNT_COLUMNS] == 0)
    counts[..., absent] = 0
    return out
