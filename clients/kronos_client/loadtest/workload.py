"""The requests of a load run: realistic shapes cut from a candle CSV at sliding offsets.

Every request of a pool is a different window of the CSV (and, with a seed, a different
seed), so concurrent calls are never identical. Requests are built once, before the run,
as protobuf messages (gRPC) and as encoded JSON bodies (REST), so building them costs the
measured loop nothing.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kronos.v1 import predictor_pb2 as pb
from kronos_client.csvinput import CandleTable, read_candles
from kronos_client.messages import build_request

#: distinct requests per pool; calls cycle through them
POOL_SIZE = 64
SHIPPED_CSV = ("default_model", "data", "regression_input.csv")


@dataclass(frozen=True)
class Shape:
    """One workload: ``batch_size`` series of ``history`` candles, ``pred_len`` steps each."""

    name: str
    history: int
    pred_len: int
    batch_size: int = 1
    sample_count: int | None = None
    seed: int | None = None

    @property
    def grpc_only(self) -> bool:
        return self.name == "stream"

    def describe(self) -> str:
        series = f"{self.batch_size}x{self.history}" if self.name == "batch" else str(self.history)
        return f"{series}->{self.pred_len}"


#: the default shapes: a single forecast, a batch of 8, a stream (time to first step matters)
SHAPES: dict[str, Shape] = {
    "single": Shape("single", 400, 120),
    "batch": Shape("batch", 200, 60, batch_size=8),
    "stream": Shape("stream", 400, 120),
}


def make_shape(
    name: str,
    *,
    history: int | None = None,
    pred_len: int | None = None,
    batch_size: int | None = None,
    sample_count: int | None = None,
    seed: int | None = None,
) -> Shape:
    """A default shape with the given fields overridden (``batch_size`` applies to batch only)."""
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r} (one of {', '.join(SHAPES)})")
    shape = SHAPES[name]
    shape = replace(
        shape,
        history=history if history is not None else shape.history,
        pred_len=pred_len if pred_len is not None else shape.pred_len,
        batch_size=batch_size if batch_size is not None and name == "batch" else shape.batch_size,
        sample_count=sample_count,
        seed=seed,
    )
    for field in ("history", "pred_len", "batch_size"):
        if getattr(shape, field) < 1:
            raise ValueError(f"{field} must be >= 1, got {getattr(shape, field)}")
    return shape


def shipped_csv() -> Path | None:
    """The sample CSV shipped with the server package, located without importing it."""
    spec = importlib.util.find_spec("kronos_server")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SHIPPED_CSV)
    return path if path.is_file() else None


def load_table(path: str | Path | None) -> CandleTable:
    if path is None:
        path = shipped_csv()
        if path is None:
            raise ValueError("the shipped sample CSV was not found: give --csv FILE")
    return read_candles(path)


def offsets(n_rows: int, history: int, count: int) -> list[int]:
    """``count`` window starts spread over the table (distinct while the table allows)."""
    span = n_rows - history + 1
    if span < 1:
        raise ValueError(f"the CSV has {n_rows} rows, fewer than a history of {history}")
    stride = max(1, span // count)
    return [(k * stride) % span for k in range(count)]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def series_request(
    table: CandleTable, start: int, shape: Shape, seed: int | None, sid: str
) -> pb.PredictRequest:
    end = start + shape.history
    cols = {k: v[start:end] for k, v in table.columns.items()}
    return build_request(
        table.timestamps[start:end],
        cols["open"],
        cols["high"],
        cols["low"],
        cols["close"],
        volume=cols.get("volume"),
        amount=cols.get("amount"),
        pred_len=shape.pred_len,
        sample_count=shape.sample_count,
        seed=seed,
        series_id=sid,
    )


def rest_item(request: pb.PredictRequest) -> dict[str, Any]:
    """The REST (legacy JSON) body of a PredictRequest: the same candles and settings."""
    h = request.history
    names = ["open", "high", "low", "close"] + [c for c in ("volume", "amount") if len(getattr(h, c))]
    columns = [getattr(h, c) for c in names]
    overrides: dict[str, Any] = {"pred_len": request.pred_len}
    if request.sampling.HasField("sample_count"):
        overrides["sample_count"] = request.sampling.sample_count
    if request.sampling.HasField("seed"):
        overrides["seed"] = request.sampling.seed
    return {
        "series_id": request.series_id,
        "candles": [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)],
        "timestamps": [iso(ms) for ms in h.timestamps_ms],
        "overrides": overrides,
    }


@dataclass(frozen=True)
class Pool:
    """The prepared requests of one shape: protobuf messages and REST bodies, index-aligned."""

    shape: Shape
    grpc: list[Any]  # pb.PredictRequest (single, stream) or pb.PredictBatchRequest (batch)
    rest: list[bytes]

    def __len__(self) -> int:
        return len(self.grpc)

    @property
    def rows_per_call(self) -> int:
        """Forecast rows (predicted candles) one successful call returns."""
        return self.shape.batch_size * self.shape.pred_len


def build_pool(table: CandleTable, shape: Shape, size: int = POOL_SIZE) -> Pool:
    """``size`` requests; request k holds windows k*batch .. k*batch+batch-1 of the table."""
    starts = offsets(len(table), shape.history, size * shape.batch_size)
    grpc: list[Any] = []
    rest: list[bytes] = []
    for k in range(size):
        items = []
        for j in range(shape.batch_size):
            n = k * shape.batch_size + j
            seed = None if shape.seed is None else shape.seed + n
            items.append(series_request(table, starts[n], shape, seed, f"loadtest-{shape.name}-{n}"))
        if shape.name == "batch":
            grpc.append(pb.PredictBatchRequest(items=items))
            body: Any = {"items": [rest_item(r) for r in items]}
        else:
            grpc.append(items[0])
            body = rest_item(items[0])
        rest.append(json.dumps(body, separators=(",", ":")).encode())
    return Pool(shape, grpc, rest)
