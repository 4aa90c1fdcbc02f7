"""The JSON codec: the request and response shape of the service we replace (and of REST).

Request::

    {"series_id": "...", "candles": [{"open", "high", "low", "close", "volume"?, "amount"?}],
     "timestamps": [ISO 8601], "prediction_timestamps"?: [ISO 8601], "timezone"?: "IANA name",
     "overrides"?: {"pred_len", "temperature", "top_k", "top_p", "sample_count", "seed",
                    "quantiles"},
     "return_paths"?: true}

Response::

    {"series_id", "prediction": [{"timestamp", "open", ..., "amount"}], "model_version",
     "tokenizer_version", "prob_close_up": [P(close > last close) per step],
     "quantiles"?: [{"q", "prediction": [rows]}] (when requested),
     "paths"?: [[rows], ...] (with return_paths: one list of rows per sample path)}

Every override is optional (absent = server default). Naive timestamps are wall-clock
times in ``timezone``; when it is absent, the UTC offset the timestamps carry ("+08:00")
is the series' zone, else UTC. This module only checks shapes and types; value
checks (finite, positive, ranges) belong to :func:`kronos_server.forecast.prepare.prepare`,
whose field names :func:`relabel` translates into this request's vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from kronos_server.errors import InvalidInputError, KronosError
from kronos_server.forecast import calendar, fields
from kronos_server.forecast.types import (
    FEATURES,
    OVERRIDES,
    PRED_LEN,
    PRICE_FIELDS,
    Forecast,
    SamplingParams,
    SeriesInput,
    Setting,
)

DEFAULT_SERIES_ID = "series-0"
REQUEST_KEYS = frozenset(
    {"series_id", "candles", "timestamps", "prediction_timestamps", "timezone", "overrides", "return_paths"}
)
CANDLE_KEYS = frozenset(FEATURES)
# the overrides are declared once, as the settings of types.OVERRIDES
INT_OVERRIDES = tuple(s.name for s in OVERRIDES if s.kind is int and not s.repeated)
FLOAT_OVERRIDES = tuple(s.name for s in OVERRIDES if s.kind is float and not s.repeated)
OVERRIDE_KEYS = frozenset(s.name for s in OVERRIDES)
OPTIONAL_COLUMNS = ("volume", "amount")


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _is_number(value: object) -> bool:
    # bool is an int subclass, but true/false is never a price
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object, field: str) -> float:
    if not _is_number(value):
        raise _bad(field, f"must be a number, got {_type_name(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # a JSON integer beyond the float range
        raise _bad(field, "is out of range") from None


def _integer(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(field, f"must be an integer, got {_type_name(value)}")
    return value


def _string_list(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise _bad(field, f"must be a list of ISO 8601 strings, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(f"{field}[{i}]", f"must be an ISO 8601 string, got {_type_name(item)}")
    return value


def _reject_unknown(obj: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    # a typo ("top_pp") silently falling back to a default is worse than an error
    for key in obj:
        if key not in allowed:
            name = f"{prefix}{key}"
            raise _bad(name, f"unknown field; allowed: {', '.join(sorted(allowed))}")


_NUMBER_TYPES = frozenset({int, float})


def _candles_fast(value: list[Any]) -> dict[str, np.ndarray] | None:
    """The columns of well-formed candles; None at the first doubt (then the checked path
    below finds and names the problem). Keeps the REST bridge's per-request cost low: one
    pass per column, the checks done by set operations."""
    try:
        if not set().union(*map(dict.keys, value)) <= CANDLE_KEYS:
            return None
        columns = [[c[name] for c in value] for name in PRICE_FIELDS]
        columns += [[c.get(name) for c in value] for name in OPTIONAL_COLUMNS]
    except (KeyError, TypeError):  # a price missing, a candle not an object
        return None
    out: dict[str, np.ndarray] = {}
    for name, column in zip(FEATURES, columns, strict=True):
        types = set(map(type, column))
        if name in OPTIONAL_COLUMNS and types <= {type(None)}:
            continue  # absent (or null) everywhere
        if not types <= _NUMBER_TYPES:  # bool and None fail here too
            return None
        try:
            out[name] = np.asarray(column, dtype=np.float64)
        except OverflowError:
            return None
    return out


def _candles(value: object) -> dict[str, np.ndarray]:
    if not isinstance(value, list):
        raise _bad("candles", f"must be a list of objects, got {_type_name(value)}")
    fast = _candles_fast(value)
    return fast if fast is not None else _candles_checked(value)


def _candles_checked(value: list[Any]) -> dict[str, np.ndarray]:
    """:func:`_candles` one candle at a time, naming the first problem."""
    columns: dict[str, list[float]] = {name: [] for name in FEATURES}
    # for volume/amount: index of the first candle that has it, and of the first that lacks it
    first_with: dict[str, int] = {}
    first_without: dict[str, int] = {}
    for i, candle in enumerate(value):
        if not isinstance(candle, dict):
            raise _bad(f"candles[{i}]", f"must be an object, got {_type_name(candle)}")
        _reject_unknown(candle, CANDLE_KEYS, f"candles[{i}].")
        for name in PRICE_FIELDS:
            if name not in candle:
                raise _bad(f"candles[{i}].{name}", "is required")
            columns[name].append(_number(candle[name], f"candles[{i}].{name}"))
        for name in OPTIONAL_COLUMNS:
            if candle.get(name) is None:
                first_without.setdefault(name, i)
            else:
                first_with.setdefault(name, i)
                columns[name].append(_number(candle[name], f"candles[{i}].{name}"))
    out = {name: np.asarray(columns[name], dtype=np.float64) for name in PRICE_FIELDS}
    for name in OPTIONAL_COLUMNS:
        if name in first_with and name in first_without:
            i = first_without[name]
            raise _bad(
                f"candles[{i}].{name}",
                f"missing here but given for candles[{first_with[name]}]; "
                f"give {name} for every candle or none",
            )
        if name in first_with:
            out[name] = np.asarray(columns[name], dtype=np.float64)
    return out


def _override(setting: Setting, value: object, field: str) -> Any:
    """One override, of its setting's type (a list of them for a repeated setting)."""
    scalar = _integer if setting.kind is int else _number
    if not setting.repeated:
        return scalar(value, field)
    if not isinstance(value, list):
        raise _bad(field, f"must be a list of numbers, got {_type_name(value)}")
    return tuple(scalar(v, f"{field}[{i}]") for i, v in enumerate(value))


def _sampling(value: object) -> tuple[SamplingParams, int | None]:
    """The overrides object -> (sampling params, pred_len)."""
    if value is None:
        return SamplingParams(), None
    if not isinstance(value, dict):
        raise _bad("overrides", f"must be an object, got {_type_name(value)}")
    _reject_unknown(value, OVERRIDE_KEYS, "overrides.")
    given: dict[str, Any] = {
        s.name: _override(s, value[s.name], f"overrides.{s.name}")
        for s in OVERRIDES
        if value.get(s.name) is not None
    }
    pred_len = given.pop(PRED_LEN.name, None)
    return SamplingParams(**given), pred_len


def series_from_request(payload: object) -> SeriesInput:
    """Decode one legacy JSON request (already parsed) into a :class:`SeriesInput`."""
    if not isinstance(payload, dict):
        raise _bad("request", f"must be a JSON object, got {_type_name(payload)}")
    _reject_unknown(payload, REQUEST_KEYS, "")
    series_id = payload.get("series_id")
    if series_id is None:
        series_id = DEFAULT_SERIES_ID
    elif not isinstance(series_id, str):
        raise _bad("series_id", f"must be a string, got {_type_name(series_id)}")
    timezone = payload.get("timezone")
    if timezone is not None and not isinstance(timezone, str):
        raise _bad("timezone", f"must be an IANA time zone name, got {_type_name(timezone)}")
    if timezone is not None:
        calendar.zone(timezone)
    for required in ("candles", "timestamps"):
        if required not in payload:
            raise _bad(required, "is required")
    columns = _candles(payload["candles"])
    stamps = _string_list(payload["timestamps"], "timestamps")
    if len(stamps) != len(payload["candles"]):
        raise _bad("timestamps", f"has {len(stamps)} values but candles has {len(payload['candles'])}")
    history, tz = calendar.parse_series_timestamps(stamps, timezone or None, "timestamps")
    future = None
    if payload.get("prediction_timestamps") is not None:
        future_text = _string_list(payload["prediction_timestamps"], "prediction_timestamps")
        future = calendar.parse_timestamps(future_text, tz or "UTC", "prediction_timestamps")
    sampling, pred_len = _sampling(payload.get("overrides"))
    return_paths = payload.get("return_paths")
    if return_paths is not None and not isinstance(return_paths, bool):
        raise _bad("return_paths", f"must be true or false, got {_type_name(return_paths)}")
    return SeriesInput(
        series_id=series_id,
        timestamps=history,
        prediction_timestamps=future,
        pred_len=pred_len,
        timezone=tz,
        sampling=sampling,
        return_paths=bool(return_paths),
        **columns,
    )


def legacy_field(field: str) -> str:
    """A domain field name (as :func:`prepare` reports it) in this request's vocabulary.

    ``close[3]`` -> ``candles[3].close``, ``top_p`` -> ``overrides.top_p``,
    ``quantiles[1]`` -> ``overrides.quantiles[1]``; anything else is unchanged.
    """
    return fields.rest_path(field)


def relabel(error: KronosError) -> KronosError:
    """The same error, its field (and the message prefix naming it) in legacy vocabulary."""
    if not isinstance(error, InvalidInputError) or error.field is None:
        return error
    new = legacy_field(error.field)
    if new == error.field:
        return error
    message = error.message
    if message.startswith(f"{error.field}:"):
        message = new + message[len(error.field) :]
    details = {k: v for k, v in error.details.items() if k != "field"}
    out = InvalidInputError(message, field=new, details=details)
    out.__cause__ = error
    return out


def _json_values(values: np.ndarray) -> list[list[float | None]]:
    """Each float32 as the shortest decimal that reads back as it (11.27, not
    11.270000457763672), None for NaN and infinities (JSON has none): what orjson writes of
    a float32 array, read back."""
    matrix = np.ascontiguousarray(values, dtype=np.float32)
    out: list[list[float | None]] = orjson.loads(orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY))
    return out


def _rows(timestamps: list[str], values: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for stamp, row in zip(timestamps, _json_values(values), strict=True):
        item: dict[str, Any] = {"timestamp": stamp}
        item.update(zip(FEATURES, row, strict=True))
        rows.append(item)
    return rows


def forecast_to_response(forecast: Forecast, *, model_version: str, tokenizer_version: str) -> dict[str, Any]:
    """Encode a :class:`Forecast` as the legacy JSON response (quantiles and paths only when
    requested)."""
    stamps = calendar.format_timestamps(forecast.timestamps, forecast.timezone)
    out: dict[str, Any] = {
        "series_id": forecast.series_id,
        "prediction": _rows(stamps, forecast.mean),
        "model_version": model_version,
        "tokenizer_version": tokenizer_version,
        "prob_close_up": _probabilities(forecast.prob_close_up),
    }
    if forecast.quantiles:
        out["quantiles"] = [
            {"q": q, "prediction": _rows(stamps, forecast.quantiles[q])} for q in sorted(forecast.quantiles)
        ]
    if forecast.paths is not None:
        out["paths"] = [_rows(stamps, path) for path in forecast.paths]
    return out


def _probabilities(values: np.ndarray) -> list[float | None]:
    """Fractions of the paths (k / S, float64) as JSON numbers; None where not finite."""
    array = np.asarray(values, dtype=np.float64)
    out: list[float | None] = array.tolist()
    if not np.isfinite(array).all():  # never from the engine (fractions of paths); a remote's NaN
        out = [v if math.isfinite(v) else None for v in array.tolist()]
    return out
