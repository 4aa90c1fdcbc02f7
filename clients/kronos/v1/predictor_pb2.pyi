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
    __slots__ = ("series_id", "history", "prediction_timestamps_ms", "pred_len", "sampling", "timezone")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_TIMESTAMPS_MS_FIELD_NUMBER: _ClassVar[int]
    PRED_LEN_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    history: Candles
    prediction_timestamps_ms: _containers.RepeatedScalarFieldContainer[int]
    pred_len: int
    sampling: SamplingParams
    timezone: str
    def __init__(self, series_id: _Optional[str] = ..., history: _Optional[_Union[Candles, _Mapping]] = ..., prediction_timestamps_ms: _Optional[_Iterable[int]] = ..., pred_len: _Optional[int] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., timezone: _Optional[str] = ...) -> None: ...

class QuantileForecast(_message.Message):
    __slots__ = ("q", "values")
    Q_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    q: float
    values: Candles
    def __init__(self, q: _Optional[float] = ..., values: _Optional[_Union[Candles, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("series_id", "forecast", "quantiles", "model_version", "tokenizer_version", "sample_count", "seed")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    FORECAST_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    forecast: Candles
    quantiles: _containers.RepeatedCompositeFieldContainer[QuantileForecast]
    model_version: str
    tokenizer_version: str
    sample_count: int
    seed: int
    def __init__(self, series_id: _Optional[str] = ..., forecast: _Optional[_Union[Candles, _Mapping]] = ..., quantiles: _Optional[_Iterable[_Union[QuantileForecast, _Mapping]]] = ..., model_version: _Optional[str] = ..., tokenizer_version: _Optional[str] = ..., sample_count: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("min_history", "max_history", "max_pred_len", "max_sample_count", "max_quantiles", "max_request_bytes")
    MIN_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_PRED_LEN_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUANTILES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    min_history: int
    max_history: int
    max_pred_len: int
    max_sample_count: int
    max_quantiles: int
    max_request_bytes: int
    def __init__(self, min_history: _Optional[int] = ..., max_history: _Optional[int] = ..., max_pred_len: _Optional[int] = ..., max_sample_count: _Optional[int] = ..., max_quantiles: _Optional[int] = ..., max_request_bytes: _Optional[int] = ...) -> None: ...

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
