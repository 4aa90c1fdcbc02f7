"""A real backtest on the tiny parity model through the dataplane: scores equal the scores
module's on hand-cut windows, the model's equal those of the same forecasts run one at a
time, results are reproducible, the origins share engine steps, and admission, deadlines
and cancellation hold for the whole group."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch

from kronos_server.backtest.origins import plan_backtest
from kronos_server.backtest.run import prepare_origins
from kronos_server.backtest.scores import score_all
from kronos_server.backtest.types import BacktestInput
from kronos_server.dataplane import Dataplane
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.reference import ReferenceEngine
from kronos_server.engine.stats import NullObserver
from kronos_server.errors import DeadlineExceededError, InvalidInputError, OverloadedError
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import SamplingParams, SeriesInput
from kronos_server.model.bundle import ModelBundle
from kronos_server.model.checkpoint import load_predictor, load_tokenizer
from tests.backtest.test_origins import series
from tests.conftest import PARITY

MAX_CONTEXT = 64
LIMITS = Limits(max_context=MAX_CONTEXT, max_backtest_origins=64)


class StepRows(NullObserver):
    """An engine observer keeping the rows of every step."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[int] = []

    def step(self, rows: int, seconds: float) -> None:
        with self.lock:
            self.rows.append(rows)


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return ModelBundle(
        load_tokenizer(PARITY / "tokenizer"),
        load_predictor(PARITY / "predictor"),
        MAX_CONTEXT,
        torch.device("cpu"),
    )


def make_plane(bundle: ModelBundle, observer: StepRows | None = None, **config: int) -> Dataplane:
    cfg = {"max_queued_rows": 512, "max_batch_rows": 64, **config}
    engine = Engine(bundle, EngineConfig(**cfg), observer=observer)
    engine.start()
    return Dataplane(bundle, engine, LIMITS, 60.0)


@pytest.fixture
def observed(bundle: ModelBundle) -> Iterator[tuple[Dataplane, StepRows]]:
    observer = StepRows()
    plane = make_plane(bundle, observer)
    yield plane, observer
    plane.engine.stop(grace=5)


def idle(plane: Dataplane, within: float = 10.0) -> bool:
    """True once the engine holds no queued or running rows."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        stats = plane.engine.stats()
        if stats.queued_rows == 0 and stats.running_rows == 0:
            return True
        time.sleep(0.01)
    return False


def request(**kw: object) -> BacktestInput:
    s = series(120, seed=3, sampling=SamplingParams(sample_count=4, seed=11, quantiles=(0.1, 0.5, 0.9)))
    values: dict[str, object] = {
        "series": s,
        "horizon": 6,
        "context": 24,
        "origins": 6,
        "origin_step": 5,
        **kw,
    }
    return BacktestInput(**values)  # type: ignore[arg-type]


def test_scores_equal_independent_computations(observed: tuple[Dataplane, StepRows]) -> None:
    plane, observer = observed
    req = request()
    result = asyncio.run(plane.backtest(req))
    s = req.series
    assert result.origins.tolist() == [89, 94, 99, 104, 109, 114]  # the last at rows - horizon
    assert result.origin_timestamps.tolist() == s.timestamps[result.origins].tolist()
    assert (result.horizon, result.context, result.origin_step, result.sample_count) == (6, 24, 5, 4)
    assert result.seed == 11 and result.quantiles == (0.1, 0.5, 0.9)
    assert result.model_version == plane.model_version
    assert [f.name for f in result.scores] == ["model", "naive", "drift", "volatility"]

    # the same forecasts one at a time: each origin's window, its seed (seed + o), its paths
    context = np.stack([s.close[t - 24 : t] for t in result.origins])
    actual = np.stack([s.close[t : t + 6] for t in result.origins])
    paths = []
    for o, t in enumerate(result.origins.tolist()):
        one = SeriesInput(
            "one",
            s.timestamps[t - 24 : t],
            s.open[t - 24 : t],
            s.high[t - 24 : t],
            s.low[t - 24 : t],
            s.close[t - 24 : t],
            volume=np.asarray(s.volume)[t - 24 : t],
            prediction_timestamps=s.timestamps[t : t + 6],
            sampling=SamplingParams(sample_count=4, seed=11 + o),
            return_paths=True,
        )
        forecast = asyncio.run(plane.predict(one))
        assert forecast.paths is not None
        paths.append(forecast.paths[:, :, 3])
    want = score_all(
        actual=actual,
        last=context[:, -1],
        context_closes=context,
        model_paths=np.stack(paths),
        quantiles=(0.1, 0.5, 0.9),
    )
    assert result.scores == want  # baselines exact, and the batched model = one at a time
    # the origins really ran together: steps carried several origins' rows at once
    assert max(observer.rows) >= 4 * 6


def test_the_same_request_twice_gives_the_same_result(observed: tuple[Dataplane, StepRows]) -> None:
    plane, _ = observed
    first = asyncio.run(plane.backtest(request(return_forecasts=True)))
    again = asyncio.run(plane.backtest(request(return_forecasts=True)))
    assert first.scores == again.scores
    assert len(first.forecasts) == 6
    for a, b in zip(first.forecasts, again.forecasts, strict=True):
        np.testing.assert_array_equal(a.mean, b.mean)
        assert sorted(a.quantiles) == [0.1, 0.5, 0.9] and a.paths is None
    reseeded = replace(
        request().series, sampling=SamplingParams(sample_count=4, seed=12, quantiles=(0.1, 0.5, 0.9))
    )
    other = asyncio.run(plane.backtest(request(series=reseeded)))
    assert other.scores[0] != first.scores[0]
    assert other.scores[1:] == first.scores[1:]  # the baselines do not sample


def test_whole_group_admission(bundle: ModelBundle) -> None:
    plane = make_plane(bundle, max_queued_rows=32)
    try:
        with pytest.raises(InvalidInputError) as never:  # 9 x 4 = 36 rows > 32, ever
            asyncio.run(plane.backtest(request(origins=9)))
        assert never.value.field == "origins"
        assert idle(plane)
        # 12 rows of a long forecast running: the 6 x 4 = 24 backtest rows do not fit now
        long = replace(request().series, prediction_timestamps=None, pred_len=60)
        long = replace(long, sampling=SamplingParams(sample_count=12, seed=1))
        ticket = plane.submit(long)
        with pytest.raises(OverloadedError):
            asyncio.run(plane.backtest(request()))
        assert plane.engine.stats().queued_rows + plane.engine.stats().running_rows == 12  # none left over
        ticket.cancel()
        assert idle(plane)
        assert asyncio.run(plane.backtest(request())).origins.size == 6
    finally:
        plane.engine.stop(grace=5)


def test_deadline_and_cancellation_free_every_origin(bundle: ModelBundle) -> None:
    plane = make_plane(bundle, max_batch_rows=8)  # 2 origins a step: the rest wait in the queue
    try:
        big = request(origins=16, origin_step=4, horizon=30, context=30)
        with pytest.raises(DeadlineExceededError):
            asyncio.run(plane.backtest(big, timeout=0.2))
        assert idle(plane)

        async def cancelled() -> None:
            task = asyncio.create_task(plane.backtest(big))
            for _ in range(500):  # until the first wave runs (2 of the 16 origins)
                await asyncio.sleep(0.01)
                if plane.engine.stats().running_rows:
                    break
            stats = plane.engine.stats()
            # cancelled mid-run: origins are running and others still wait their turn
            assert stats.running_rows > 0 and stats.queued_rows > 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancelled())
        assert idle(plane)
    finally:
        plane.engine.stop(grace=5)


def test_a_group_estimated_far_past_its_deadline_is_refused_up_front(
    bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    plane = make_plane(bundle)
    try:
        asyncio.run(plane.backtest(request()))  # measured passes to estimate from
        estimate = plane.engine.estimate_group(
            prepare_origins(request(), plan_backtest(request(), LIMITS), LIMITS)
        )
        assert estimate.measured and estimate.seconds > 0
        # the group's estimate, inflated as a slower machine would measure it: 3x the deadline
        slow = replace(estimate, seconds=3 * 2.0)
        monkeypatch.setattr(plane.engine, "estimate_group", lambda group: slow)
        with pytest.raises(InvalidInputError) as info:
            asyncio.run(plane.backtest(request(), timeout=2.0))
        assert info.value.field == "origins" and "6 origins" in info.value.message
        assert idle(plane)
        asyncio.run(plane.backtest(request(), timeout=30.0))  # within twice its deadline: runs
    finally:
        plane.engine.stop(grace=5)


def test_the_reference_engine_runs_the_same_backtest(
    bundle: ModelBundle, observed: tuple[Dataplane, StepRows]
) -> None:
    """KRONOS_ENGINE_MODE=recompute: one origin at a time, the same seeded paths and scores."""
    batched, _ = observed
    engine = ReferenceEngine(bundle, EngineConfig(max_queued_rows=512, max_batch_rows=64))
    engine.start()
    try:
        reference = Dataplane(bundle, engine, LIMITS, 60.0)
        req = request(origins=3, horizon=4)
        got = asyncio.run(reference.backtest(req))
        want = asyncio.run(batched.backtest(req))
        assert got.scores == want.scores
        assert engine.estimate_group([]).seconds == 0.0
    finally:
        engine.stop(grace=5)
