"""Engine fixtures: a running engine over the parity model, and random series."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import PreparedSeries, SamplingParams, SeriesInput
from kronos_server.model.bundle import ModelBundle
from kronos_server.model.checkpoint import load_predictor, load_tokenizer
from tests.conftest import PARITY

MAX_CONTEXT = 64


@pytest.fixture(scope="session")
def parity_bundle() -> ModelBundle:
    return ModelBundle(
        load_tokenizer(PARITY / "tokenizer"),
        load_predictor(PARITY / "predictor"),
        MAX_CONTEXT,
        torch.device("cpu"),
    )


@pytest.fixture
def engine(parity_bundle: ModelBundle) -> Iterator[Engine]:
    eng = Engine(parity_bundle, EngineConfig(max_queued_rows=512, max_batch_rows=128))
    eng.start()
    yield eng
    eng.stop(grace=5)


def random_series(
    rng: np.random.Generator, n: int, pred_len: int, sampling: SamplingParams, series_id: str = "r"
) -> PreparedSeries:
    """A plausible random OHLCV walk, prepared with the test model's context."""
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, n))
    volume = rng.uniform(100, 1000, n)
    start = np.datetime64("2024-03-01T09:30:00", "ns").astype(np.int64)
    ts = start + np.arange(n + pred_len, dtype=np.int64) * 300 * 10**9
    series = SeriesInput(
        series_id=series_id,
        timestamps=ts[:n],
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        prediction_timestamps=ts[n:],
        sampling=sampling,
    )
    return prepare(series, Limits(max_context=MAX_CONTEXT, max_sample_count=64))
