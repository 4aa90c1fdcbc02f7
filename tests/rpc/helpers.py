"""Request builders for the gRPC tests: real candles from the shipped CSV."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from kronos.v1 import predictor_pb2 as pb

CSV = Path(__file__).resolve().parents[2] / "server/kronos_server/default_model/data/regression_input.csv"
FIELDS = ("open", "high", "low", "close", "volume", "amount")


@lru_cache(maxsize=1)
def _rows() -> list[dict[str, str]]:
    with CSV.open() as fh:
        return list(csv.DictReader(fh))


def history(n: int = 40, start: int = 0) -> pb.Candles:
    rows = _rows()[start : start + n]
    ts = [int(datetime.fromisoformat(r["timestamps"]).replace(tzinfo=UTC).timestamp() * 1000) for r in rows]
    return pb.Candles(timestamps_ms=ts, **{f: [float(r[f]) for r in rows] for f in FIELDS})


def request(n: int = 40, pred_len: int = 4, start: int = 0, **sampling: object) -> pb.PredictRequest:
    return pb.PredictRequest(
        series_id=f"s{start}",
        history=history(n, start),
        pred_len=pred_len,
        sampling=pb.SamplingParams(**sampling),  # type: ignore[arg-type]
    )
