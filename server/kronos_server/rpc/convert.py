"""Protobuf <-> domain translation. No validation beyond shapes: prepare() owns the rules."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from kronos.v1 import predictor_pb2 as pb
from kronos_server.dataplane import ModelInfo
from kronos_server.errors import InvalidInputError, KronosError
from kronos_server.forecast.fields import proto_path as proto_field
from kronos_server.forecast.types import (
    FEATURES,
    SAMPLING,
    Forecast,
    SamplingParams,
    SeriesInput,
    StepUpdate,
)

NS_PER_MS = 1_000_000

# epoch milliseconds whose nanoseconds fit int64 (the years 1677-2262); outside, the
# conversion would wrap around silently
MS_MIN = -(2**63) // NS_PER_MS + 1
MS_MAX = (2**63 - 1) // NS_PER_MS


def _instants(values: object, field: str) -> np.ndarray:
    """Epoch ms -> epoch ns; InvalidInputError naming ``field[i]`` for one out of range."""
    ms = np.asarray(values, dtype=np.int64)
    bad = np.flatnonzero((ms < MS_MIN) | (ms > MS_MAX))
    if bad.size:
        i = int(bad[0])
        raise InvalidInputError(
            f"{field}[{i}]: {int(ms[i])} ms is out of range (the years 1677-2262)", field=f"{field}[{i}]"
        )
    return ms * NS_PER_MS


def _array(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _optional_column(values: object) -> np.ndarray | None:
    arr = _array(values)
    return arr if arr.size else None


def sampling_from_pb(msg: pb.SamplingParams) -> SamplingParams:
    """Every declared sampling setting, copied; an unset optional one stays None (server default)."""
    given: dict[str, Any] = {
        s.name: tuple(getattr(msg, s.name)) if s.repeated else getattr(msg, s.name)
        for s in SAMPLING
        if s.repeated or msg.HasField(s.name)
    }
    return SamplingParams(**given)


def series_from_pb(msg: pb.PredictRequest) -> SeriesInput:
    h = msg.history
    future = _instants(msg.prediction_timestamps_ms, "prediction_timestamps")
    return SeriesInput(
        series_id=msg.series_id,
        timestamps=_instants(h.timestamps_ms, "timestamps"),
        open=_array(h.open),
        high=_array(h.high),
        low=_array(h.low),
        close=_array(h.close),
        volume=_optional_column(h.volume),
        amount=_optional_column(h.amount),
        prediction_timestamps=future if future.size else None,
        pred_len=msg.pred_len if msg.HasField("pred_len") else None,
        timezone=msg.timezone or None,
        sampling=sampling_from_pb(msg.sampling),
        return_paths=msg.return_paths,
    )


def candles_to_pb(timestamps_ns: np.ndarray, values: np.ndarray) -> pb.Candles:
    """timestamps [P] epoch ns, values float32 [P, 6] in FEATURES order."""
    cols = values.astype(np.float64)
    out = pb.Candles(timestamps_ms=(timestamps_ns // NS_PER_MS).tolist())
    for i, name in enumerate(FEATURES):
        getattr(out, name).extend(cols[:, i].tolist())
    return out


def forecast_to_pb(forecast: Forecast, model_version: str, tokenizer_version: str) -> pb.PredictResponse:
    out = pb.PredictResponse(
        series_id=forecast.series_id,
        forecast=candles_to_pb(forecast.timestamps, forecast.mean),
        model_version=model_version,
        tokenizer_version=tokenizer_version,
        sample_count=forecast.sample_count,
    )
    for q in sorted(forecast.quantiles):
        out.quantiles.add(q=q, values=candles_to_pb(forecast.timestamps, forecast.quantiles[q]))
    if forecast.seed is not None:
        out.seed = forecast.seed
    out.prob_close_up.extend(np.asarray(forecast.prob_close_up, dtype=np.float64).tolist())
    if forecast.paths is not None:
        out.paths.extend(candles_to_pb(forecast.timestamps, path) for path in forecast.paths)
    return out


def step_to_pb(update: StepUpdate) -> pb.PredictStreamEvent:
    values = dict(zip(FEATURES, (float(v) for v in update.values), strict=True))
    step = pb.PredictStep(step=update.step, timestamp_ms=update.timestamp // NS_PER_MS, **values)
    return pb.PredictStreamEvent(step=step)


def error_to_pb(error: KronosError) -> pb.ItemError:
    """One failed batch item: its status code as a number (google.rpc.Code) and, deprecated,
    as a name."""
    field = proto_field(error.field) if error.field else ""
    number = grpc.StatusCode[error.code].value[0]
    return pb.ItemError(code=error.code, message=error.message, field=field, status_code=number)


def model_info_to_pb(info: ModelInfo, max_request_bytes: int) -> pb.ModelInfo:
    lim = info.limits
    return pb.ModelInfo(
        model_name=info.model_name,
        model_version=info.model_version,
        tokenizer_name=info.tokenizer_name,
        tokenizer_version=info.tokenizer_version,
        max_context=info.max_context,
        device=info.device,
        d_model=info.d_model,
        n_layers=info.n_layers,
        n_heads=info.n_heads,
        vocab_s1=info.vocab_s1,
        vocab_s2=info.vocab_s2,
        limits=pb.Limits(
            min_history=lim.min_history,
            max_history=lim.max_history,
            max_pred_len=lim.max_context,
            max_sample_count=lim.max_sample_count,
            max_quantiles=lim.max_quantiles,
            max_request_bytes=max_request_bytes,
            max_return_paths=lim.max_return_paths,
            max_backtest_origins=lim.max_backtest_origins,
        ),
        defaults=pb.SamplingDefaults(
            temperature=lim.default_temperature,
            top_k=lim.default_top_k,
            top_p=lim.default_top_p,
            sample_count=lim.default_sample_count,
        ),
    )
