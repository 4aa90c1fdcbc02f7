"""The cost estimate: its pass counts match what the engine runs, its seconds match the clock.

The accuracy test times real requests on the embedded model (4 layers, d_model 128) and
compares each with the estimate made just before it ran, from the calibration, the server's
warm-up and the requests before it: what a server would know at that moment.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest

from kronos_server.engine.cost import LinearCost, engine_plan
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.reference import ReferenceEngine
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import SamplingParams
from kronos_server.model.bundle import ModelBundle, load_bundle
from kronos_server.rpc.server import warmup_series
from tests.engine.conftest import random_series

CONTEXT = 128  # a short window so that sliding requests stay quick on the embedded model
FACTOR = 3.0  # the estimate must lie within this factor of the measured time, both ways


class Passes:
    """Counts the passes the engine reports."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()

    def step(self, rows: int, seconds: float) -> None:
        self.count["step"] += 1

    def prefill(self, rows: int, positions: int, seconds: float) -> None:
        self.count["prefill"] += 1

    def decode(self, rows: int, seconds: float) -> None:
        self.count["decode"] += 1

    def slide(self, rows: int, seconds: float) -> None:
        self.count["slide"] += 1

    def queue_wait(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


@pytest.fixture(scope="module")
def embedded() -> ModelBundle:
    return load_bundle(None, None, CONTEXT)  # None: the embedded default model


def _started(engine: Engine) -> Engine:
    """Start and warm up the way the server does (calibration, then the warm-up forecast)."""
    engine.start()
    engine.submit(prepare(warmup_series(), Limits(max_context=CONTEXT))).future.result(60)
    return engine


@pytest.fixture
def passes(embedded: ModelBundle) -> Iterator[tuple[Engine, Passes]]:
    seen = Passes()
    engine = _started(Engine(embedded, EngineConfig(max_batch_rows=64), observer=seen))
    yield engine, seen
    engine.stop(grace=5)


def test_a_line_through_two_sizes_is_fitted_exactly() -> None:
    cost = LinearCost()
    for x in (100, 400, 100, 400):
        cost.add(x, 0.01 + 0.001 * x)
    assert cost.seconds(1000) == pytest.approx(1.01)
    assert cost.seconds(0) == pytest.approx(0.01)


def test_one_size_gives_the_lower_bound_of_any_such_line() -> None:
    cost = LinearCost()
    assert not cost.measured and cost.seconds(10) == 0.0
    cost.add(100, 2.0)
    assert cost.seconds(1000) == pytest.approx(2.0)  # could be all fixed cost
    assert cost.seconds(50) == pytest.approx(1.0)  # could be all per-unit cost


def test_newer_measurements_outweigh_older_ones() -> None:
    cost = LinearCost()
    for _ in range(20):
        cost.add(100, 1.0)
    for _ in range(20):
        cost.add(100, 3.0)
    assert cost.seconds(100) > 2.7


@pytest.mark.parametrize(
    ("history", "pred_len", "decodes", "slides"),
    [
        (60, 20, 19, 0),  # inside the window throughout
        (100, 60, 28, 31),  # crosses max_context on the way
        (200, 48, 0, 47),  # history already past max_context: every later step slides
        (128, 1, 0, 0),  # the prefill alone
    ],
)
def test_the_plan_counts_the_passes_the_engine_runs(
    passes: tuple[Engine, Passes], history: int, pred_len: int, decodes: int, slides: int
) -> None:
    engine, seen = passes
    plan = engine_plan(history, pred_len, 4, CONTEXT)
    assert (plan.decode_steps, plan.slide_steps, plan.steps) == (decodes, slides, pred_len)
    seen.count.clear()
    series = random_series(
        np.random.default_rng(0), history, pred_len, SamplingParams(sample_count=4, seed=1)
    )
    engine.submit(series).future.result(60)
    assert seen.count["decode"] == decodes
    assert seen.count["slide"] == slides
    assert seen.count["prefill"] == 1 and seen.count["step"] == pred_len
    assert engine.estimate(series).slide_steps == slides


SHAPES = [  # (history, pred_len, sample_count): decode-bound, mixed, slide-bound
    (60, 64, 16),
    (100, 60, 4),
    (200, 48, 8),
    (300, 40, 16),
]


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine])
def test_the_estimate_is_within_a_factor_of_the_measured_time(
    embedded: ModelBundle, engine_class: type[Engine]
) -> None:
    engine = _started(engine_class(embedded, EngineConfig(max_batch_rows=64)))
    rng = np.random.default_rng(1)
    try:
        figures = []
        for history, pred_len, samples in SHAPES:
            series = random_series(rng, history, pred_len, SamplingParams(sample_count=samples, seed=1))
            estimate = engine.estimate(series)
            assert estimate.measured
            started = time.monotonic()
            engine.submit(series).future.result(120)
            figures.append((history, pred_len, samples, estimate.seconds, time.monotonic() - started))
        print(*(f"{h}->{p}x{s}: estimated {e:.3f} s, took {t:.3f} s" for h, p, s, e, t in figures), sep="\n")
        for history, pred_len, samples, est, took in figures:
            assert took / FACTOR <= est <= took * FACTOR, (history, pred_len, samples, est, took)
    finally:
        engine.stop(grace=5)


def test_nothing_is_estimated_before_anything_is_measured(embedded: ModelBundle) -> None:
    engine = Engine(embedded, EngineConfig())  # never started: no calibration, no traffic
    series = random_series(np.random.default_rng(2), 100, 40, SamplingParams(sample_count=4, seed=1))
    assert not engine.estimate(series).measured
