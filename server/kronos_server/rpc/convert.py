"""Protobuf <-> domain translation. No validation beyond shapes: prepare() owns the rules."""

from __future__ import annotations

from typing import Any

import grpc
import numpy as np

from kronos.v1 import predictor_pb2 as pb
from kronos_server.backtest.scores import ForecasterScores, Scores
from kronos_server.backtest.types import BacktestInput, BacktestResult
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


def _history(
    msg: pb.Candles, series_id: str, timezone: str, sampling: pb.SamplingParams, **extra: Any
) -> SeriesInput:
    """The history of a PredictRequest or BacktestRequest as a series (``extra``: its other fields)."""
    return SeriesInput(
        series_id=series_id,
        timestamps=_instants(msg.timestamps_ms, "timestamps"),
        open=_array(msg.open),
        high=_array(msg.high),
        low=_array(msg.low),
        close=_array(msg.close),
        volume=_optional_column(msg.volume),
        amount=_optional_column(msg.amount),
        timezone=timezone or None,
        sampling=sampling_from_pb(sampling),
        **extra,
    )


def series_from_pb(msg: pb.PredictRequest) -> SeriesInput:
    future = _instants(msg.prediction_timestamps_ms, "prediction_timestamps")
    return _history(
        msg.history,
        msg.series_id,
        msg.timezone,
        msg.sampling,
        prediction_timestamps=future if future.size else None,
        pred_len=msg.pred_len if msg.HasField("pred_len") else None,
        return_paths=msg.return_paths,
    )


def _optional(msg: Any, name: str) -> int | None:
    return int(getattr(msg, name)) if msg.HasField(name) else None


def backtest_from_pb(msg: pb.BacktestRequest) -> BacktestInput:
    """A BacktestRequest as the domain's; an unset horizon (0) is left for the plan to refuse."""
    return BacktestInput(
        series=_history(msg.history, msg.series_id, msg.timezone, msg.sampling),
        horizon=msg.horizon or None,
        context=_optional(msg, "context"),
        origins=_optional(msg, "origins"),
        origin_step=_optional(msg, "origin_step"),
        return_forecasts=msg.return_forecasts,
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


def scores_to_pb(scores: Scores) -> pb.Scores:
    out = pb.Scores(
        mae=scores.mae,
        rmse=scores.rmse,
        mape=scores.mape,
        mase=scores.mase,
        direction_accuracy=scores.direction_accuracy,
    )
    for name in ("crps", "brier_up", "mae_skill", "rmse_skill", "crps_skill"):
        value = getattr(scores, name)
        if value is not None:
            setattr(out, name, value)
    for q, loss in scores.pinball:
        out.pinball.add(q=q, loss=loss)
    for level, fraction in scores.coverage:
        out.coverage.add(level=level, coverage=fraction)
    return out


def forecaster_scores_to_pb(scores: ForecasterScores) -> pb.ForecasterScores:
    return pb.ForecasterScores(
        forecaster=scores.name,
        overall=scores_to_pb(scores.overall),
        by_step=[scores_to_pb(s) for s in scores.by_step],
    )


def backtest_to_pb(result: BacktestResult) -> pb.BacktestResponse:
    out = pb.BacktestResponse(
        series_id=result.series_id,
        scores=[forecaster_scores_to_pb(s) for s in result.scores],
        origins=np.asarray(result.origins, dtype=np.int64).tolist(),
        origin_timestamps_ms=(np.asarray(result.origin_timestamps, dtype=np.int64) // NS_PER_MS).tolist(),
        horizon=result.horizon,
        context=result.context,
        origin_step=result.origin_step,
        sample_count=result.sample_count,
        model_version=result.model_version,
        tokenizer_version=result.tokenizer_version,
    )
    if result.seed is not None:
        out.seed = result.seed
    for origin, forecast in zip(result.origins.tolist(), result.forecasts, strict=False):
        item = out.forecasts.add(
            origin=int(origin), forecast=candles_to_pb(forecast.timestamps, forecast.mean)
        )
        for q in sorted(forecast.quantiles):
            item.quantiles.add(q=q, values=candles_to_pb(forecast.timestamps, forecast.quantiles[q]))
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
