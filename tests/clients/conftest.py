"""Client fixtures: a client on the shared parity server, a synthetic series, raw requests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_client import KronosClient

START = datetime(2024, 6, 18, 9, 30, tzinfo=UTC)
STEP = timedelta(minutes=5)


def make_series(n: int = 80, seed: int = 0) -> dict[str, Any]:
    """A positive random walk of ``n`` 5-minute candles as build_request keywords."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.05, n))
    return {
        "timestamps": [START + i * STEP for i in range(n)],
        "open": open_,
        "high": np.maximum(open_, close) + spread,
        "low": np.minimum(open_, close) - spread,
        "close": close,
        "volume": rng.uniform(100, 1000, n),
    }


def raw_request(series: dict[str, Any], **sampling: Any) -> pb.PredictRequest:
    """The same series as a hand-built PredictRequest (independent of build_request)."""
    ms = [int(t.timestamp() * 1000) for t in series["timestamps"]]
    history = pb.Candles(
        timestamps_ms=ms,
        **{c: [float(v) for v in series[c]] for c in ("open", "high", "low", "close", "volume")},
    )
    pred_len = sampling.pop("pred_len")
    return pb.PredictRequest(history=history, pred_len=pred_len, sampling=pb.SamplingParams(**sampling))


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def requests_total(running: Any, method: str, status: str) -> float:
    route = f"/kronos.v1.KronosPredictor/{method}"
    value = running.metrics.registry.get_sample_value(
        "kronos_requests_total", {"route": route, "status": status}
    )
    return float(value or 0.0)


def settled(read: Callable[[], float], expected: float, timeout: float = 5.0) -> float:
    """The counter's value once it reaches ``expected`` (the server counts after replying)."""
    deadline = time.monotonic() + timeout
    value = read()
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    time.sleep(0.1)  # and nothing more arrives (e.g. a retry)
    return read()


@pytest.fixture(scope="module")
def series() -> dict[str, Any]:
    return make_series()


@pytest.fixture(scope="module")
def client(grpc_server: Any) -> Iterator[KronosClient]:
    with KronosClient(grpc_server.target, container=grpc_server.container, key=grpc_server.key) as c:
        yield c
