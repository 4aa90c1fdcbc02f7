"""JSON <-> protobuf for the /v1 API. Shapes only: the gRPC service validates values.

The request JSON is parsed by :func:`kronos_server.forecast.json_codec.series_from_request`
(the parser the CLI uses too), then packed into a ``PredictRequest``; the answer is
unpacked into a ``Forecast`` and encoded by ``forecast_to_response``, so the REST shape
is the legacy one by construction. :data:`FIELD_MAP` (from :mod:`kronos_server.forecast.fields`)
is the REST <-> proto field table: error fields from the gRPC service are translated back
through it, and a test checks it against the proto descriptors both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kronos.v1 import predictor_pb2 as pb
from kronos_server.backtest.scores import ForecasterScores, Scores
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.errors import InvalidInputError
from kronos_server.forecast import fields
from kronos_server.forecast.json_codec import forecast_to_response, series_from_request
from kronos_server.forecast.types import FEATURES, SAMPLING, Forecast, SeriesInput

NS_PER_MS = 1_000_000
UTC = "UTC"

# REST field path -> PredictRequest field path: the one table in kronos_server.forecast.fields
FIELD_MAP = fields.REST_TO_PROTO
# an error field from the gRPC service in REST terms; a message re-headed by its REST field
rest_field = fields.rest_from_proto
relabel_message = fields.relabel_message


@dataclass(frozen=True)
class Translated:
    """A request ready for the gRPC call, plus what the answer's encoding needs."""

    message: pb.PredictRequest
    timezone: str
    rows: int


def _assign(target: Message, name: str, value: Any, rest: str) -> None:
    # proto integer fields are bounded (int32, uint64): the JSON integer may not fit
    try:
        setattr(target, name, value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInputError(f"{rest}: {value} is out of range", field=rest) from None


def series_to_pb(series: SeriesInput) -> pb.PredictRequest:
    """A decoded request as the PredictRequest message (timestamps to epoch milliseconds)."""
    history = pb.Candles(timestamps_ms=(series.timestamps // NS_PER_MS).tolist())
    for name in FEATURES:
        column = getattr(series, name)
        if column is not None:
            getattr(history, name).extend(column.tolist())
    msg = pb.PredictRequest(
        series_id=series.series_id,
        history=history,
        timezone=series.timezone or "",
        return_paths=series.return_paths,
    )
    if series.prediction_timestamps is not None:
        msg.prediction_timestamps_ms.extend((series.prediction_timestamps // NS_PER_MS).tolist())
    if series.pred_len is not None:
        _assign(msg, "pred_len", series.pred_len, "overrides.pred_len")
    for setting in SAMPLING:
        value = getattr(series.sampling, setting.name)
        if setting.repeated:
            getattr(msg.sampling, setting.name).extend(value)
        elif value is not None:
            _assign(msg.sampling, setting.name, value, f"overrides.{setting.name}")
    return msg


def backtest_to_pb(request: BacktestInput) -> pb.BacktestRequest:
    """A decoded backtest as the BacktestRequest message (its history as series_to_pb's)."""
    predict = series_to_pb(request.series)
    msg = pb.BacktestRequest(
        series_id=predict.series_id,
        history=predict.history,
        sampling=predict.sampling,
        timezone=predict.timezone,
        return_forecasts=request.return_forecasts,
    )
    for name in ("horizon", "context", "origins", "origin_step"):
        value = getattr(request, name)
        if value is not None:
            _assign(msg, name, value, name)
    return msg


def _scores(msg: pb.Scores) -> Scores:
    def optional(name: str) -> float | None:
        return float(getattr(msg, name)) if msg.HasField(name) else None

    return Scores(
        mae=msg.mae,
        rmse=msg.rmse,
        mape=msg.mape,
        mase=msg.mase,
        direction_accuracy=msg.direction_accuracy,
        crps=optional("crps"),
        pinball=tuple((p.q, p.loss) for p in msg.pinball),
        coverage=tuple((c.level, c.coverage) for c in msg.coverage),
        brier_up=optional("brier_up"),
        mae_skill=optional("mae_skill"),
        rmse_skill=optional("rmse_skill"),
        crps_skill=optional("crps_skill"),
    )


def backtest_from_pb(msg: pb.BacktestResponse, timezone: str) -> BacktestResult:
    """A BacktestResponse as the domain's result (forecasts read in the request's zone)."""
    forecasts = []
    for item in msg.forecasts:
        stamps, mean = _table(item.forecast)
        quantiles = {q.q: _table(q.values)[1] for q in item.quantiles}
        forecasts.append(
            Forecast(
                series_id=msg.series_id,
                timestamps=stamps,
                timezone=timezone,
                mean=mean,
                quantiles=quantiles,
                sample_count=msg.sample_count,
                seed=None,
            )
        )
    return BacktestResult(
        series_id=msg.series_id,
        scores=tuple(
            ForecasterScores(s.forecaster, _scores(s.overall), tuple(_scores(b) for b in s.by_step))
            for s in msg.scores
        ),
        origins=np.asarray(msg.origins, dtype=np.int64),
        origin_timestamps=np.asarray(msg.origin_timestamps_ms, dtype=np.int64) * NS_PER_MS,
        horizon=msg.horizon,
        context=msg.context,
        origin_step=msg.origin_step,
        sample_count=msg.sample_count,
        seed=msg.seed if msg.HasField("seed") else None,
        model_version=msg.model_version,
        tokenizer_version=msg.tokenizer_version,
        quantiles=tuple(p.q for p in msg.scores[0].overall.pinball) if msg.scores else (),
        forecasts=tuple(forecasts),
    )


_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_SAMPLING = pb.SamplingParams.DESCRIPTOR.fields_by_name


def check_ranges(series: SeriesInput) -> None:
    """Refuse the integers the API's types cannot hold (top_k is an int32), as a gRPC caller
    could not send them either; InvalidInputError names the REST field."""
    s = series.sampling
    checks = [
        ("overrides.pred_len", pb.PredictRequest.DESCRIPTOR.fields_by_name["pred_len"], series.pred_len)
    ]
    checks += [
        (f"overrides.{t.name}", _SAMPLING[t.name], getattr(s, t.name))
        for t in SAMPLING
        if t.kind is int and not t.repeated
    ]
    for rest, descriptor, value in checks:
        low, high = _INT_RANGES.get(descriptor.cpp_type, (None, None))
        if value is not None and low is not None and high is not None and not low <= value <= high:
            raise InvalidInputError(f"{rest}: {value} is out of range", field=rest)


def request_to_pb(payload: object) -> Translated:
    """A JSON request body (parsed) -> PredictRequest; InvalidInputError names the REST field."""
    series = series_from_request(payload)
    return Translated(series_to_pb(series), series.timezone or UTC, int(series.timestamps.size))


def _table(candles: pb.Candles) -> tuple[np.ndarray, np.ndarray]:
    stamps = np.asarray(candles.timestamps_ms, dtype=np.int64) * NS_PER_MS
    n = stamps.size
    columns = [np.asarray(getattr(candles, name), dtype=np.float64) for name in FEATURES]
    values = np.stack([c if c.size == n else np.full(n, np.nan) for c in columns], axis=-1)
    return stamps, values.astype(np.float32)


def forecast_from_pb(msg: pb.PredictResponse, timezone: str) -> Forecast:
    """A PredictResponse as the domain's Forecast (the proto carries no zone: the request's)."""
    stamps, mean = _table(msg.forecast)
    quantiles = {q.q: _table(q.values)[1] for q in msg.quantiles}
    paths = np.stack([_table(p)[1] for p in msg.paths]) if msg.paths else None
    return Forecast(
        series_id=msg.series_id,
        timestamps=stamps,
        timezone=timezone,
        mean=mean,
        quantiles=quantiles,
        sample_count=msg.sample_count,
        seed=msg.seed if msg.HasField("seed") else None,
        prob_close_up=np.asarray(msg.prob_close_up, dtype=np.float64),
        paths=paths,
    )


def response_to_json(msg: pb.PredictResponse, timezone: str) -> dict[str, Any]:
    """A PredictResponse as the legacy JSON response, timestamps in the series' zone."""
    return forecast_to_response(
        forecast_from_pb(msg, timezone),
        model_version=msg.model_version,
        tokenizer_version=msg.tokenizer_version,
    )


def message_to_json(msg: Message) -> dict[str, Any]:
    """Every field of a message (defaults included) under its proto name; int64 stay numbers."""
    out: dict[str, Any] = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            out[field.name] = (
                [message_to_json(v) for v in value] if field.is_repeated else message_to_json(value)
            )
        else:
            out[field.name] = list(value) if field.is_repeated else value
    return out
