"""The JSON of ``POST /v1/backtest``: the ``BacktestRequest`` / ``BacktestResponse`` messages in
snake_case, the history written as the predict body writes it.

Request::

    {"series_id"?, "candles": [...], "timestamps": [ISO 8601], "timezone"?,
     "horizon", "context"?, "origins"?, "origin_step"?, "return_forecasts"?,
     "overrides"?: {"temperature", "top_k", "top_p", "sample_count", "seed", "quantiles"}}

``candles``, ``timestamps``, ``timezone`` and ``overrides`` are parsed by the predict body's
parser (:func:`kronos_server.forecast.json_codec.series_from_request`), so they are checked
and named alike (``candles[3].close``, ``overrides.top_p``); ``overrides.pred_len`` has no
place here (``horizon`` says how far each origin forecasts). Value checks are the backtest
plan's (``kronos_server.backtest.origins``); its field names read as REST paths through the
one field table (``horizon``, ``origins``, ``timestamps``, ...).

Response: what ``kronos-serve backtest --json`` writes, the proto's fields by their names
(``scores[].by_step``, ``origin_timestamps_ms``, ...) plus the ``quantiles`` scored, unset or
non-finite scores as null, ``seed`` only when the request set one, and each returned forecast
as predict's rows (``prediction``, ``quantiles``: ISO timestamps in the series' zone) with
its ``origin``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kronos_server.backtest.report import result_to_json
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.errors import InvalidInputError
from kronos_server.forecast.json_codec import series_from_request

#: the predict body's keys a backtest body shares (parsed by the predict parser)
SERIES_KEYS = frozenset({"series_id", "candles", "timestamps", "timezone", "overrides"})
INT_KEYS = ("horizon", "context", "origins", "origin_step")
REQUEST_KEYS = SERIES_KEYS | frozenset(INT_KEYS) | {"return_forecasts"}
INT32 = range(-(2**31), 2**31)

#: REST field path -> BacktestRequest field path (the candles' and overrides' rows are the
#: predict table's, kronos_server.forecast.fields)
FIELD_MAP: dict[str, str] = {
    "series_id": "series_id",
    "timezone": "timezone",
    "return_forecasts": "return_forecasts",
    **{name: name for name in INT_KEYS},
}


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _integer(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(name, f"must be an integer, got {_kind(value)}")
    if value not in INT32:
        raise _bad(name, f"{value} is out of range")
    return value


def backtest_from_request(payload: object) -> BacktestInput:
    """A parsed JSON body as the domain's backtest; InvalidInputError names the REST field."""
    if not isinstance(payload, dict):
        raise _bad("request", f"must be a JSON object, got {_kind(payload)}")
    for key in payload:
        if key not in REQUEST_KEYS:
            raise _bad(str(key), f"unknown field; allowed: {', '.join(sorted(REQUEST_KEYS))}")
    overrides = payload.get("overrides")
    if isinstance(overrides, dict) and overrides.get("pred_len") is not None:
        raise _bad("overrides.pred_len", "a backtest forecasts `horizon` steps from each origin: set horizon")
    series = series_from_request({k: v for k, v in payload.items() if k in SERIES_KEYS})
    if payload.get("series_id") is None:  # not the predict parser's default, as over gRPC
        series = replace(series, series_id="")
    ints = {name: _integer(payload, name) for name in INT_KEYS}
    flag = payload.get("return_forecasts")
    if flag is not None and not isinstance(flag, bool):
        raise _bad("return_forecasts", f"must be true or false, got {_kind(flag)}")
    return BacktestInput(series=series, return_forecasts=bool(flag), **ints)


def backtest_to_response(result: BacktestResult) -> dict[str, Any]:
    """A backtest's result as the response body: the JSON ``kronos-serve backtest --json``
    writes (:func:`kronos_server.backtest.report.result_to_json`), each returned forecast
    without ``prob_close_up``, which ``BacktestForecast`` does not carry."""
    out = result_to_json(result)
    for forecast in out.get("forecasts", ()):
        forecast.pop("prob_close_up", None)
    return out
