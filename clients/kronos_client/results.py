"""Responses as plain Python: Forecast, Step and ItemError (the protobuf stays on ``.raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
import numpy as np
from numpy.typing import NDArray

from kronos.v1 import predictor_pb2 as pb
from kronos_client.errors import KronosClientError
from kronos_client.timestamps import format_iso, from_epoch_ms

FIELDS = ("open", "high", "low", "close", "volume", "amount")
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Columns:
    """The six fields per predicted step (a quantile level, or the mean)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    amount: FloatArray

    @classmethod
    def from_pb(cls, candles: pb.Candles) -> Columns:
        return cls(*(np.asarray(getattr(candles, name), dtype=np.float64) for name in FIELDS))

    def as_dict(self) -> dict[str, FloatArray]:
        return {name: getattr(self, name) for name in FIELDS}


@dataclass(frozen=True, eq=False)
class Forecast:
    """One series' forecast: the mean over sample paths per field, plus quantiles.

    ``prob_close_up[i]`` is the fraction of sample paths whose close at step i lies above the
    history's last close; ``paths`` holds the sample paths themselves (one :class:`Columns`
    each) when the request asked for them (``return_paths=True``), else it is empty.
    """

    series_id: str
    timestamps_ms: NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    amount: FloatArray
    quantiles: dict[float, Columns]
    model_version: str
    tokenizer_version: str
    sample_count: int
    seed: int | None
    timezone: str = ""
    request_id: str | None = None
    raw: pb.PredictResponse = field(default_factory=pb.PredictResponse, repr=False)
    prob_close_up: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    paths: tuple[Columns, ...] = ()

    @classmethod
    def from_pb(cls, msg: pb.PredictResponse, timezone: str = "", request_id: str | None = None) -> Forecast:
        mean = Columns.from_pb(msg.forecast)
        return cls(
            series_id=msg.series_id,
            timestamps_ms=np.asarray(msg.forecast.timestamps_ms, dtype=np.int64),
            **mean.as_dict(),
            quantiles={q.q: Columns.from_pb(q.values) for q in msg.quantiles},
            model_version=msg.model_version,
            tokenizer_version=msg.tokenizer_version,
            sample_count=msg.sample_count,
            seed=msg.seed if msg.HasField("seed") else None,
            timezone=timezone,
            request_id=request_id,
            raw=msg,
            prob_close_up=np.asarray(msg.prob_close_up, dtype=np.float64),
            paths=tuple(Columns.from_pb(p) for p in msg.paths),
        )

    @property
    def timestamps(self) -> list[datetime]:
        """Aware datetimes in the series' time zone (UTC when unset)."""
        return from_epoch_ms(self.timestamps_ms.tolist(), self.timezone)

    @property
    def mean(self) -> Columns:
        return Columns(self.open, self.high, self.low, self.close, self.volume, self.amount)

    def __len__(self) -> int:
        return int(self.timestamps_ms.size)

    def path_array(self) -> FloatArray:
        """The sample paths as one array [paths, steps, 6] (FIELDS order); [0, steps, 6]
        when the request did not ask for them."""
        if not self.paths:
            return np.zeros((0, len(self), len(FIELDS)), dtype=np.float64)
        return np.stack([np.stack([getattr(p, name) for name in FIELDS], axis=-1) for p in self.paths])

    def rows(self, columns: Columns | None = None) -> list[dict[str, Any]]:
        """One dict per step (ISO timestamp + six fields) of the mean or of a quantile."""
        cols = (columns or self.mean).as_dict()
        out = []
        for i, ts in enumerate(format_iso(self.timestamps_ms.tolist(), self.timezone)):
            out.append({"timestamp": ts, **{name: float(cols[name][i]) for name in FIELDS}})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: versions, the mean per step, each quantile per step, P(close up) per
        step, and the sample paths when they were asked for."""
        out: dict[str, Any] = {
            "series_id": self.series_id,
            "model_version": self.model_version,
            "tokenizer_version": self.tokenizer_version,
            "sample_count": self.sample_count,
            "seed": self.seed,
            "timezone": self.timezone or "UTC",
            "forecast": self.rows(),
            "quantiles": {repr(q): self.rows(cols) for q, cols in sorted(self.quantiles.items())},
            "prob_close_up": self.prob_close_up.tolist(),
        }
        if self.paths:
            out["paths"] = [self.rows(path) for path in self.paths]
        return out

    def to_dataframe(self) -> Any:
        """The mean, each quantile (``close_q0.1``, ...) and ``prob_close_up`` as a pandas
        DataFrame indexed by timestamp (needs pandas; columns as predict_df's)."""
        from kronos_client.frames import forecast_frame

        return forecast_frame(self)


@dataclass(frozen=True)
class Step:
    """One streamed step: the mean over sample paths of each field, price space."""

    step: int
    timestamp_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float

    @classmethod
    def from_pb(cls, msg: pb.PredictStep) -> Step:
        return cls(msg.step, msg.timestamp_ms, *(float(getattr(msg, name)) for name in FIELDS))

    def timestamp(self, timezone: str = "") -> datetime:
        return from_epoch_ms([self.timestamp_ms], timezone)[0]


#: gRPC status codes by number (google.rpc.Code values), as ItemError.status_code sends them
_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


@dataclass(frozen=True)
class ItemError:
    """Why one series of a batch failed (the others are unaffected).

    ``code`` is the status code's name ("INVALID_ARGUMENT"), ``status`` the same code as a
    :class:`grpc.StatusCode`, to compare with ``grpc.StatusCode.INVALID_ARGUMENT``.
    """

    index: int
    code: str
    message: str
    field: str | None = None

    @classmethod
    def from_pb(cls, index: int, msg: pb.ItemError) -> ItemError:
        # the number where the server sends one (status_code); the deprecated name otherwise
        status = _STATUS_BY_NUMBER.get(msg.status_code) if msg.status_code else None
        return cls(index, status.name if status else msg.code, msg.message, msg.field or None)

    @property
    def status(self) -> grpc.StatusCode:
        return grpc.StatusCode.__members__.get(self.code, grpc.StatusCode.UNKNOWN)

    def to_exception(self, request_id: str | None = None) -> KronosClientError:
        return KronosClientError(self.status, self.message, field=self.field, request_id=request_id)


BatchResult = Forecast | ItemError
StreamEvent = Step | Forecast


def batch_results(
    msg: pb.PredictBatchResponse, timezones: list[str], request_id: str | None
) -> list[BatchResult]:
    out: list[BatchResult] = []
    for i, result in enumerate(msg.results):
        if result.WhichOneof("outcome") == "forecast":
            timezone = timezones[i] if i < len(timezones) else ""
            out.append(Forecast.from_pb(result.forecast, timezone, request_id))
        else:
            out.append(ItemError.from_pb(i, result.error))
    return out


def stream_event(msg: pb.PredictStreamEvent, timezone: str, request_id: str | None) -> StreamEvent:
    if msg.WhichOneof("event") == "step":
        return Step.from_pb(msg.step)
    return Forecast.from_pb(msg.final, timezone, request_id)
