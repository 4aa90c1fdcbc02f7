from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Candles(_message.Message):
    __slots__ = ("timestamps_ms", "open", "high", "low", "close", "volume", "amount")
    TIMESTAMPS_MS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    timestamps_ms: _containers.RepeatedScalarFieldContainer[int]
    open: _containers.RepeatedScalarFieldContainer[float]
    high: _containers.RepeatedScalarFieldContainer[float]
    low: _containers.RepeatedScalarFieldContainer[float]
    close: _containers.RepeatedScalarFieldContainer[float]
    volume: _containers.RepeatedScalarFieldContainer[float]
    amount: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, timestamps_ms: _Optional[_Iterable[int]] = ..., open: _Optional[_Iterable[float]] = ..., high: _Optional[_Iterable[float]] = ..., low: _Optional[_Iterable[float]] = ..., close: _Optional[_Iterable[float]] = ..., volume: _Optional[_Iterable[float]] = ..., amount: _Optional[_Iterable[float]] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("temperature", "top_k", "top_p", "sample_count", "seed", "quantiles")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_k: int
    top_p: float
    sample_count: int
    seed: int
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., sample_count: _Optional[int] = ..., seed: _Optional[int] = ..., quantiles: _Optional[_Iterable[float]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("series_id", "history", "prediction_timestamps_ms", "pred_len", "sampling", "timezone", "return_paths")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_TIMESTAMPS_MS_FIELD_NUMBER: _ClassVar[int]
    PRED_LEN_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RETURN_PATHS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    history: Candles
    prediction_timestamps_ms: _containers.RepeatedScalarFieldContainer[int]
    pred_len: int
    sampling: SamplingParams
    timezone: str
    return_paths: bool
    def __init__(self, series_id: _Optional[str] = ..., history: _Optional[_Union[Candles, _Mapping]] = ..., prediction_timestamps_ms: _Optional[_Iterable[int]] = ..., pred_len: _Optional[int] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., timezone: _Optional[str] = ..., return_paths: _Optional[bool] = ...) -> None: ...

class QuantileForecast(_message.Message):
    __slots__ = ("q", "values")
    Q_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    q: float
    values: Candles
    def __init__(self, q: _Optional[float] = ..., values: _Optional[_Union[Candles, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("series_id", "forecast", "quantiles", "model_version", "tokenizer_version", "sample_count", "seed", "prob_close_up", "paths")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PROB_CLOSE_UP_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    forecast: Candles
    quantiles: _containers.RepeatedCompositeFieldContainer[QuantileForecast]
    model_version: str
    tokenizer_version: str
    sample_count: int
    seed: int
    prob_close_up: _containers.RepeatedScalarFieldContainer[float]
    paths: _containers.RepeatedCompositeFieldContainer[Candles]
    def __init__(self, series_id: _Optional[str] = ..., forecast: _Optional[_Union[Candles, _Mapping]] = ..., quantiles: _Optional[_Iterable[_Union[QuantileForecast, _Mapping]]] = ..., model_version: _Optional[str] = ..., tokenizer_version: _Optional[str] = ..., sample_count: _Optional[int] = ..., seed: _Optional[int] = ..., prob_close_up: _Optional[_Iterable[float]] = ..., paths: _Optional[_Iterable[_Union[Candles, _Mapping]]] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[PredictRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[PredictRequest, _Mapping]]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "field", "status_code")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    status_code: int
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., status_code: _Optional[int] = ...) -> None: ...

class BatchResult(_message.Message):
    __slots__ = ("forecast", "error")
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    forecast: PredictResponse
    error: ItemError
    def __init__(self, forecast: _Optional[_Union[PredictResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class PredictBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchResult, _Mapping]]] = ...) -> None: ...

class PredictStep(_message.Message):
    __slots__ = ("step", "timestamp_ms", "open", "high", "low", "close", "volume", "amount")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    step: int
    timestamp_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float
    def __init__(self, step: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ..., amount: _Optional[float] = ...) -> None: ...

class PredictStreamEvent(_message.Message):
    __slots__ = ("step", "final")
    STEP_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    step: PredictStep
    final: PredictResponse
    def __init__(self, step: _Optional[_Union[PredictStep, _Mapping]] = ..., final: _Optional[_Union[PredictResponse, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("min_history", "max_history", "max_pred_len", "max_sample_count", "max_quantiles", "max_request_bytes", "max_return_paths", "max_backtest_origins")
    MIN_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_PRED_LEN_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUANTILES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_RETURN_PATHS_FIELD_NUMBER: _ClassVar[int]
    MAX_BACKTEST_ORIGINS_FIELD_NUMBER: _ClassVar[int]
    min_history: int
    max_history: int
    max_pred_len: int
    max_sample_count: int
    max_quantiles: int
    max_request_bytes: int
    max_return_paths: int
    max_backtest_origins: int
    def __init__(self, min_history: _Optional[int] = ..., max_history: _Optional[int] = ..., max_pred_len: _Optional[int] = ..., max_sample_count: _Optional[int] = ..., max_quantiles: _Optional[int] = ..., max_request_bytes: _Optional[int] = ..., max_return_paths: _Optional[int] = ..., max_backtest_origins: _Optional[int] = ...) -> None: ...

class SamplingDefaults(_message.Message):
    __slots__ = ("temperature", "top_k", "top_p", "sample_count")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_k: int
    top_p: float
    sample_count: int
    def __init__(self, temperature: _Optional[float] = ..., top_k: _Optional[int] = ..., top_p: _Optional[float] = ..., sample_count: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_name", "model_version", "tokenizer_name", "tokenizer_version", "max_context", "device", "d_model", "n_layers", "n_heads", "vocab_s1", "vocab_s2", "limits", "defaults")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_NAME_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    D_MODEL_FIELD_NUMBER: _ClassVar[int]
    N_LAYERS_FIELD_NUMBER: _ClassVar[int]
    N_HEADS_FIELD_NUMBER: _ClassVar[int]
    VOCAB_S1_FIELD_NUMBER: _ClassVar[int]
    VOCAB_S2_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: str
    tokenizer_name: str
    tokenizer_version: str
    max_context: int
    device: str
    d_model: int
    n_layers: int
    n_heads: int
    vocab_s1: int
    vocab_s2: int
    limits: Limits
    defaults: SamplingDefaults
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., tokenizer_name: _Optional[str] = ..., tokenizer_version: _Optional[str] = ..., max_context: _Optional[int] = ..., device: _Optional[str] = ..., d_model: _Optional[int] = ..., n_layers: _Optional[int] = ..., n_heads: _Optional[int] = ..., vocab_s1: _Optional[int] = ..., vocab_s2: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., defaults: _Optional[_Union[SamplingDefaults, _Mapping]] = ...) -> None: ...

class BacktestRequest(_message.Message):
    __slots__ = ("series_id", "history", "horizon", "context", "origins", "origin_step", "sampling", "timezone", "return_forecasts")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_STEP_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RETURN_FORECASTS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    history: Candles
    horizon: int
    context: int
    origins: int
    origin_step: int
    sampling: SamplingParams
    timezone: str
    return_forecasts: bool
    def __init__(self, series_id: _Optional[str] = ..., history: _Optional[_Union[Candles, _Mapping]] = ..., horizon: _Optional[int] = ..., context: _Optional[int] = ..., origins: _Optional[int] = ..., origin_step: _Optional[int] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., timezone: _Optional[str] = ..., return_forecasts: _Optional[bool] = ...) -> None: ...

class PinballLoss(_message.Message):
    __slots__ = ("q", "loss")
    Q_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    q: float
    loss: float
    def __init__(self, q: _Optional[float] = ..., loss: _Optional[float] = ...) -> None: ...

class IntervalCoverage(_message.Message):
    __slots__ = ("level", "coverage")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    level: float
    coverage: float
    def __init__(self, level: _Optional[float] = ..., coverage: _Optional[float] = ...) -> None: ...

class Scores(_message.Message):
    __slots__ = ("mae", "rmse", "mape", "mase", "direction_accuracy", "crps", "pinball", "coverage", "brier_up", "mae_skill", "rmse_skill", "crps_skill")
    MAE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    MAPE_FIELD_NUMBER: _ClassVar[int]
    MASE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CRPS_FIELD_NUMBER: _ClassVar[int]
    PINBALL_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    BRIER_UP_FIELD_NUMBER: _ClassVar[int]
    MAE_SKILL_FIELD_NUMBER: _ClassVar[int]
    RMSE_SKILL_FIELD_NUMBER: _ClassVar[int]
    CRPS_SKILL_FIELD_NUMBER: _ClassVar[int]
    mae: float
    rmse: float
    mape: float
    mase: float
    direction_accuracy: float
    crps: float
    pinball: _containers.RepeatedCompositeFieldContainer[PinballLoss]
    coverage: _containers.RepeatedCompositeFieldContainer[IntervalCoverage]
    brier_up: float
    mae_skill: float
    rmse_skill: float
    crps_skill: float
    def __init__(self, mae: _Optional[float] = ..., rmse: _Optional[float] = ..., mape: _Optional[float] = ..., mase: _Optional[float] = ..., direction_accuracy: _Optional[float] = ..., crps: _Optional[float] = ..., pinball: _Optional[_Iterable[_Union[PinballLoss, _Mapping]]] = ..., coverage: _Optional[_Iterable[_Union[IntervalCoverage, _Mapping]]] = ..., brier_up: _Optional[float] = ..., mae_skill: _Optional[float] = ..., rmse_skill: _Optional[float] = ..., crps_skill: _Optional[float] = ...) -> None: ...

class ForecasterScores(_message.Message):
    __slots__ = ("forecaster", "overall", "by_step")
    FORECASTER_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    BY_STEP_FIELD_NUMBER: _ClassVar[int]
    forecaster: str
    overall: Scores
    by_step: _containers.RepeatedCompositeFieldContainer[Scores]
    def __init__(self, forecaster: _Optional[str] = ..., overall: _Optional[_Union[Scores, _Mapping]] = ..., by_step: _Optional[_Iterable[_Union[Scores, _Mapping]]] = ...) -> None: ...

class BacktestForecast(_message.Message):
    __slots__ = ("origin", "forecast", "quantiles")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    origin: int
    forecast: Candles
    quantiles: _containers.RepeatedCompositeFieldContainer[QuantileForecast]
    def __init__(self, origin: _Optional[int] = ..., forecast: _Optional[_Union[Candles, _Mapping]] = ..., quantiles: _Optional[_Iterable[_Union[QuantileForecast, _Mapping]]] = ...) -> None: ...

class BacktestResponse(_message.Message):
    __slots__ = ("series_id", "scores", "origins", "origin_timestamps_ms", "horizon", "context", "origin_step", "sample_count", "seed", "model_version", "tokenizer_version", "forecasts")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_TIMESTAMPS_MS_FIELD_NUMBER: _ClassVar[int]
    HORIZON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_STEP_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_VERSION_FIELD_NUMBER: _ClassVar[int]
    FORECASTS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    scores: _containers.RepeatedCompositeFieldContainer[ForecasterScores]
    origins: _containers.RepeatedScalarFieldContainer[int]
    origin_timestamps_ms: _containers.RepeatedScalarFieldContainer[int]
    horizon: int
    context: int
    origin_step: int
    sample_count: int
    seed: int
    model_version: str
    tokenizer_version: str
    forecasts: _containers.RepeatedCompositeFieldContainer[BacktestForecast]
    def __init__(self, series_id: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[ForecasterScores, _Mapping]]] = ..., origins: _Optional[_Iterable[int]] = ..., origin_timestamps_ms: _Optional[_Iterable[int]] = ..., horizon: _Optional[int] = ..., context: _Optional[int] = ..., origin_step: _Optional[int] = ..., sample_count: _Optional[int] = ..., seed: _Optional[int] = ..., model_version: _Optional[str] = ..., tokenizer_version: _Optional[str] = ..., forecasts: _Optional[_Iterable[_Union[BacktestForecast, _Mapping]]] = ...) -> None: ...
