"""The JSON bodies of the /v1 API as pydantic models, for the OpenAPI document.

Requests are parsed by :mod:`kronos_server.forecast.json_codec` (the one parser of the
legacy shape, shared with the CLI), not by these models; ``tests/rest_bridge`` checks that
both name the same fields and that every field maps onto the proto (translate.FIELD_MAP).
The model-info body is derived from the ``ModelInfo`` message itself.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from pydantic import BaseModel, ConfigDict, Field, create_model

from kronos.v1 import predictor_pb2 as pb
from kronos_server.forecast.types import OVERRIDES, PRED_LEN, Setting


class _Strict(BaseModel):
    # unknown fields are refused: a typo must not silently fall back to a default
    model_config = ConfigDict(extra="forbid")


class Candle(_Strict):
    """One history candle. volume and amount: for every candle or for none."""

    open: float = Field(description="Opening price, > 0")
    high: float = Field(description="Highest price, >= open, close and low")
    low: float = Field(description="Lowest price, <= open and close, > 0")
    close: float = Field(description="Closing price, > 0")
    volume: float | None = Field(
        None, description="Traded volume, >= 0; absent = unknown (volume and amount 0)"
    )
    amount: float | None = Field(None, description="Turnover, >= 0; absent with volume = volume x mean(OHLC)")


def _override(setting: Setting) -> tuple[Any, Any]:
    kind: Any = setting.kind
    if setting.repeated:
        kind = list[kind]
    return (kind | None, Field(None, description=setting.doc, **setting.schema))


# built from the declared settings (kronos_server.forecast.types.OVERRIDES), in their order
_OVERRIDE_FIELDS: dict[str, Any] = {s.name: _override(s) for s in OVERRIDES}
Overrides = create_model(
    "Overrides",
    __base__=_Strict,
    __doc__="Per-request settings; each absent (or null) field takes the server default.",
    **_OVERRIDE_FIELDS,
)


class PredictRequestBody(_Strict):
    """One series to forecast (the shape of the service this one replaces)."""

    series_id: str | None = Field(None, description="Caller's label, echoed in the response")
    candles: list[Candle] = Field(description="The observed candles, oldest first")
    timestamps: list[str] = Field(
        description="ISO 8601, one per candle, strictly increasing; naive = wall-clock time in timezone"
    )
    prediction_timestamps: list[str] | None = Field(
        None, description="ISO 8601 timestamps to predict; absent = continue the history's interval"
    )
    timezone: str | None = Field(None, description="IANA time zone of the series; absent = UTC")
    overrides: Overrides | None = None  # type: ignore[valid-type]
    return_paths: bool | None = Field(
        None,
        description="Also return the sample paths (`paths`); at most the server's max_return_paths "
        "(KRONOS_MAX_RETURN_PATHS), else 422 naming return_paths. Absent = false",
    )


class BatchRequestBody(_Strict):
    """Many series, each with its own settings and length; answered in order."""

    items: list[PredictRequestBody]


class PredictionRow(BaseModel):
    """One predicted candle (mean over the samples); null where a value is not finite."""

    timestamp: str = Field(description="ISO 8601 in the series' time zone (naive when UTC)")
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    amount: float | None


class QuantileBody(BaseModel):
    q: float = Field(description="Quantile level in (0, 1)")
    prediction: list[PredictionRow]


class PredictResponseBody(BaseModel):
    series_id: str
    prediction: list[PredictionRow]
    model_version: str = Field(description="Content hash of the predictor checkpoint")
    tokenizer_version: str = Field(description="Content hash of the tokenizer checkpoint")
    prob_close_up: list[float | None] = Field(
        description="Per predicted step, the fraction of sample paths whose close lies above the "
        "history's last close, in [0, 1]"
    )
    quantiles: list[QuantileBody] | None = Field(None, description="Present only when requested")
    paths: list[list[PredictionRow]] | None = Field(
        None,
        description="With return_paths: the sample_count sample paths, each one row per predicted "
        "timestamp (the rows of `prediction`'s shape)",
    )


BacktestOverrides = create_model(
    "BacktestOverrides",
    __base__=_Strict,
    __doc__="Sampling settings of every origin; absent (or null) = the server default, except "
    "sample_count (8) and quantiles (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95). With a seed, origin o "
    "is sampled with seed + o.",
    **{name: spec for name, spec in _OVERRIDE_FIELDS.items() if name != PRED_LEN.name},
)


class BacktestRequestBody(_Strict):
    """A backtest of the served model on one series (BacktestRequest). Origin t (a row of the
    history) sees the `context` candles before it and forecasts the `horizon` candles from it."""

    series_id: str | None = Field(None, description="Caller's label, echoed in the response")
    candles: list[Candle] = Field(description="The whole series, oldest first (as predict's candles)")
    timestamps: list[str] = Field(description="ISO 8601, one per candle, strictly increasing")
    timezone: str | None = Field(None, description="IANA time zone of the series; absent = UTC")
    horizon: int = Field(description="Steps forecast at each origin, 1..max_context - 2")
    context: int | None = Field(
        None,
        description="Candles seen before each origin; "
        "absent = min(256, max_context - horizon, rows - horizon)",
    )
    origins: int | None = Field(
        None,
        description="Number of origins, 1..max_backtest_origins; absent = as many as fit. The last "
        "origin leaves `horizon` rows after it, the others go back `origin_step` rows at a time",
    )
    origin_step: int | None = Field(None, description="Rows between origins, >= 1; absent = horizon")
    overrides: BacktestOverrides | None = None  # type: ignore[valid-type]
    return_forecasts: bool | None = Field(None, description="Also return each origin's forecast")


class PinballBody(BaseModel):
    q: float = Field(description="Quantile level")
    loss: float | None = Field(description="Mean pinball loss at q, price units")


class CoverageBody(BaseModel):
    level: float = Field(description="Nominal mass of the central interval (q, 1 - q): 1 - 2q")
    coverage: float | None = Field(description="Fraction of the cells whose actual close lay within it")


class ScoresBody(BaseModel):
    """One forecaster's scores of the close, at one step or overall; null where unset."""

    mae: float | None
    rmse: float | None
    mape: float | None = Field(description="Percent")
    mase: float | None
    direction_accuracy: float | None
    crps: float | None
    pinball: list[PinballBody]
    coverage: list[CoverageBody]
    brier_up: float | None = Field(description="Brier score of P(close above the last context close)")
    mae_skill: float | None = Field(description="1 - MAE / naive's MAE (> 0: better than naive)")
    rmse_skill: float | None
    crps_skill: float | None


class ForecasterScoresBody(BaseModel):
    forecaster: str = Field(description='"model", "naive", "drift" or "volatility"')
    overall: ScoresBody
    by_step: list[ScoresBody] = Field(description="One per horizon step, step 1 first")


class BacktestForecastBody(BaseModel):
    origin: int = Field(description="The origin's row index in the history")
    prediction: list[PredictionRow] = Field(description="Mean over the sample paths, as predict's")
    quantiles: list[QuantileBody] | None = Field(None, description="The quantiles scored, as predict's")


class BacktestResponseBody(BaseModel):
    series_id: str
    scores: list[ForecasterScoresBody] = Field(description="The model, then naive, drift, volatility")
    origins: list[int] = Field(description="Row indices of the history, ascending")
    origin_timestamps_ms: list[int] = Field(description="Each origin's first forecast candle (epoch ms, UTC)")
    horizon: int
    context: int
    origin_step: int
    sample_count: int
    quantiles: list[float] = Field(description="The quantile levels scored, ascending")
    seed: int | None = Field(None, description="The request's seed, when it set one")
    model_version: str
    tokenizer_version: str
    forecasts: list[BacktestForecastBody] | None = Field(None, description="With return_forecasts")


class ErrorBody(BaseModel):
    """The one error body of every endpoint."""

    error: str = Field(
        description="Stable reason: the gRPC status name in snake case (invalid_argument, "
        "unauthenticated, ...), or rate_limited / too_large / overloaded for RESOURCE_EXHAUSTED, "
        "bad_request for malformed JSON, unsupported_media_type, not_found, method_not_allowed"
    )
    message: str = Field(description="Human-readable; names the field when the input is at fault")
    details: dict[str, Any] = Field(description="e.g. field (candles[17].close), limit, retry_after")
    request_id: str = Field(description="The X-Request-ID of the call")


class BatchItemError(ErrorBody):
    """A failed item of a batch, in its own slot; ``details.field`` is relative to the item."""

    series_id: str | None = None
    status: int = Field(description="The HTTP status this error would have had on its own")


class HealthBody(BaseModel):
    status: str


class ReadyBody(BaseModel):
    ready: bool
    model_loaded: bool
    model_name: str | None = None
    model_version: str | None = None
    tokenizer_name: str | None = None
    tokenizer_version: str | None = None
    device: str | None = None


class IndexLinks(BaseModel):
    docs: str = Field(description="This API's docs page (Swagger UI)")
    openapi: str = Field(description="The OpenAPI document")
    healthz: str
    readyz: str
    metrics: str
    models: str = Field(description="The model served (needs credentials)")


class IndexBody(BaseModel):
    """What answers here: the root (``/``) and ``/v1`` index."""

    name: str
    version: str = Field(description="The kronos-serve package version")
    api_version: str = Field(description="The REST API version, the path prefix (v1)")
    grpc_service: str = Field(description="The gRPC service the API is a bridge to")
    links: IndexLinks


_SCALARS: dict[int, type] = {
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int,
    FieldDescriptor.CPPTYPE_UINT32: int,
    FieldDescriptor.CPPTYPE_UINT64: int,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_FLOAT: float,
    FieldDescriptor.CPPTYPE_BOOL: bool,
    FieldDescriptor.CPPTYPE_STRING: str,
    FieldDescriptor.CPPTYPE_ENUM: str,
}


def model_of(descriptor: Descriptor) -> type[BaseModel]:
    """A pydantic model with exactly the fields of a protobuf message (nested ones too)."""
    fields: dict[str, Any] = {}
    for field in descriptor.fields:
        kind: Any
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            kind = model_of(field.message_type)
        else:
            kind = _SCALARS[field.cpp_type]
        fields[field.name] = (list[kind] if field.is_repeated else kind, ...)
    return create_model(descriptor.name, **fields)


ModelInfoBody = model_of(pb.ModelInfo.DESCRIPTOR)


class ModelsBody(BaseModel):
    """The models this server answers with (one today)."""

    models: list[ModelInfoBody]  # type: ignore[valid-type]
