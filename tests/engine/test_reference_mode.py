"""KRONOS_ENGINE_MODE=recompute: the reference algorithm behind the engine's interface."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import torch

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.engine.reference import ReferenceEngine
from kronos_server.engine.stats import NullObserver
from kronos_server.errors import CancelledError, DeadlineExceededError, OverloadedError
from kronos_server.forecast.prepare import denormalize
from kronos_server.forecast.types import PreparedSeries, SamplingParams, StepUpdate
from kronos_server.model.bundle import ModelBundle
from tests.engine.conftest import MAX_CONTEXT, random_series
from tests.rpc.helpers import request
from tests.servers import start_server

SAMPLED = SamplingParams(temperature=1.0, top_p=0.9, sample_count=4, seed=3)


@pytest.fixture
def reference(parity_bundle: ModelBundle) -> Iterator[ReferenceEngine]:
    eng = ReferenceEngine(parity_bundle, EngineConfig(max_queued_rows=512, max_batch_rows=128))
    eng.start()
    yield eng
    eng.stop(grace=5)


def _wait_idle(engine: Engine, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = engine.stats()
        if st.running_rows == 0 and st.queued_rows == 0 and st.running_requests == 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"engine not idle: {engine.stats()}")


def _oracle(bundle: ModelBundle, prep: PreparedSeries) -> np.ndarray:
    """recompute.generate, seeded as the engines seed a request's generator."""
    gen = torch.Generator()
    assert prep.sampling.seed is not None
    gen.manual_seed(prep.sampling.seed)
    ref = generate(bundle.tokenizer, bundle.predictor, [prep], MAX_CONTEXT, gen)
    return denormalize(
        mean_over_samples(ref.samples, prep.sampling.sample_count)[0].numpy(), prep.mean, prep.std
    )


def _close(got: np.ndarray, want: np.ndarray, std: np.ndarray) -> None:
    tol = 1e-4 * np.abs(want) + 1e-4 * (std + 1e-5)
    assert np.all(np.abs(got - want) <= tol), float(np.abs(got - want).max())


# (history rows, pred_len, samples): growing only, into the slide, history beyond M, long horizon
SHAPES = [(20, 10, 1), (50, 30, 3), (MAX_CONTEXT, 5, 2), (100, 12, 1), (100, 12, 4), (5, MAX_CONTEXT, 2)]


@pytest.mark.parametrize(("n", "pred_len", "samples"), SHAPES)
def test_seeded_forecast_is_the_same_in_both_modes(
    n: int,
    pred_len: int,
    samples: int,
    reference: ReferenceEngine,
    engine: Engine,
    parity_bundle: ModelBundle,
) -> None:
    rng = np.random.default_rng(n * 1000 + pred_len)
    sampling = SamplingParams(temperature=0.8, top_k=0, top_p=0.95, sample_count=samples, seed=n + pred_len)
    prep = random_series(rng, n, pred_len, sampling)
    got = reference.submit(prep).wait(60)
    # the reference mode is recompute.generate step for step: bit-identical
    np.testing.assert_array_equal(got.mean, _oracle(parity_bundle, prep))
    batched = engine.submit(prep).wait(60)
    _close(got.mean, batched.mean, prep.std)
    assert got.timestamps.tolist() == batched.timestamps.tolist()
    assert got.sample_count == batched.sample_count == samples


def test_quantiles_match_the_batched_engine(reference: ReferenceEngine, engine: Engine) -> None:
    rng = np.random.default_rng(11)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, sample_count=8, seed=9, quantiles=(0.1, 0.9))
    prep = random_series(rng, 40, 12, sampling)
    got, want = reference.submit(prep).wait(60), engine.submit(prep).wait(60)
    for q in (0.1, 0.9):
        _close(got.quantiles[q], want.quantiles[q], prep.std)


class Probe(NullObserver):
    """Runs on the engine thread: records the running requests at every step and can hold
    the thread in its first step until :attr:`opened` is set (deterministic cancel/deadline)."""

    def __init__(self, hold: bool = False) -> None:
        self.engine: Engine | None = None
        self.running: list[int] = []
        self.entered = threading.Event()
        self.opened = threading.Event()
        if not hold:
            self.opened.set()

    def step(self, rows: int, seconds: float) -> None:
        assert self.engine is not None
        self.running.append(self.engine.stats().running_requests)
        self.entered.set()
        assert self.opened.wait(30)


@contextlib.contextmanager
def probed(bundle: ModelBundle, hold: bool = False) -> Iterator[tuple[ReferenceEngine, Probe]]:
    probe = Probe(hold)
    eng = ReferenceEngine(bundle, EngineConfig(max_queued_rows=512, max_batch_rows=128), probe)
    probe.engine = eng
    eng.start()
    try:
        yield eng, probe
    finally:
        probe.opened.set()
        eng.stop(grace=5)


def test_concurrent_requests_are_served_one_at_a_time(parity_bundle: ModelBundle) -> None:
    rng = np.random.default_rng(12)
    preps = [
        random_series(rng, 30 + 10 * i, 8, SamplingParams(top_p=0.9, sample_count=1 + i % 3, seed=i))
        for i in range(6)
    ]
    with probed(parity_bundle, hold=True) as (eng, probe):
        tickets = [eng.submit(p) for p in preps]
        assert probe.entered.wait(30)  # the first step of the first request
        st = eng.stats()
        assert (st.running_requests, st.queued_requests) == (1, len(preps) - 1)
        assert (st.running_rows, st.queued_rows) == (
            preps[0].sampling.sample_count,
            sum(p.sampling.sample_count for p in preps[1:]),
        )
        probe.opened.set()
        results = [t.wait(60) for t in tickets]
        _wait_idle(eng)
        st = eng.stats()
    # recorded after each step: one request running, none after a request's last step
    assert len(probe.running) == sum(p.pred_len for p in preps)
    assert set(probe.running) == {0, 1} and probe.running.count(0) == len(preps)
    assert st.completed_total == len(preps) and st.steps_total == len(probe.running)
    assert st.cache_capacity_rows == 0 and st.cache_bytes_per_row == 0  # no KV cache in this mode
    for prep, forecast in zip(preps, results, strict=True):
        np.testing.assert_array_equal(forecast.mean, _oracle(parity_bundle, prep))


def test_cancel_frees_the_running_and_a_queued_request(parity_bundle: ModelBundle) -> None:
    rng = np.random.default_rng(13)
    with probed(parity_bundle, hold=True) as (eng, probe):
        running = eng.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED))
        queued = eng.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED))
        assert probe.entered.wait(30)
        st = eng.stats()
        assert (st.running_requests, st.queued_requests) == (1, 1)
        queued.cancel()
        running.cancel()
        probe.opened.set()  # the next step boundary drops both
        for t in (running, queued):
            with pytest.raises(CancelledError):
                t.wait(10)
        _wait_idle(eng)
        assert len(probe.running) == 1  # the running request stopped after the step it was in
        # still serving afterwards
        assert eng.submit(random_series(rng, 20, 3, SAMPLED)).wait(30).mean.shape == (3, 6)


def test_deadline_frees_the_running_and_a_queued_request(parity_bundle: ModelBundle) -> None:
    rng = np.random.default_rng(14)
    with probed(parity_bundle, hold=True) as (eng, probe):
        running = eng.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED), timeout=0.2)
        queued = eng.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED), timeout=0.2)
        assert probe.entered.wait(30)
        time.sleep(0.3)
        probe.opened.set()
        with pytest.raises(DeadlineExceededError) as r_err:
            running.wait(10)
        assert r_err.value.details["stage"] == "decode"
        with pytest.raises(DeadlineExceededError) as q_err:
            queued.wait(10)
        assert q_err.value.details["stage"] == "queue"
        _wait_idle(eng)


def test_overload_rejects_past_max_queued_rows(parity_bundle: ModelBundle) -> None:
    eng = ReferenceEngine(parity_bundle, EngineConfig(max_queued_rows=8, max_batch_rows=4))
    eng.start()
    try:
        rng = np.random.default_rng(15)
        accepted = [eng.submit(random_series(rng, 40, 20, SAMPLED)) for _ in range(2)]
        with pytest.raises(OverloadedError) as err:
            eng.submit(random_series(rng, 40, 10, SAMPLED))
        assert err.value.code == "RESOURCE_EXHAUSTED"
        assert eng.stats().rejected_total == 1
        for t in accepted:
            assert t.wait(60).mean.shape == (20, 6)
        _wait_idle(eng)
        assert eng.submit(random_series(rng, 40, 5, SAMPLED)).wait(30).mean.shape == (5, 6)
    finally:
        eng.stop(5)


def test_stream_yields_every_step_as_the_batched_engine(reference: ReferenceEngine, engine: Engine) -> None:
    rng = np.random.default_rng(16)
    for n, p in ((30, 10), (60, 12)):  # growing only; crossing into the slide
        prep = random_series(rng, n, p, SamplingParams(temperature=1.0, top_p=0.9, sample_count=3, seed=5))

        async def collect(eng: Engine) -> tuple[list[StepUpdate], np.ndarray]:
            ticket = eng.submit(prep, stream=True)  # noqa: B023
            steps = [s async for s in ticket.steps()]
            return steps, (await ticket.result()).mean

        steps, final = asyncio.run(collect(reference))
        assert [s.step for s in steps] == list(range(p))
        assert [s.timestamp for s in steps] == list(prep.y_timestamps)
        got = np.stack([s.values for s in steps])
        assert np.array_equal(got, final)  # the final says exactly what the steps said
        batched_steps, _ = asyncio.run(collect(engine))
        _close(got, np.stack([s.values for s in batched_steps]), prep.std)


def test_grpc_predict_single_equals_the_batched_server(tmp_path: Path) -> None:
    req = request(100, 12, sample_count=3, seed=7, top_p=0.9, temperature=1.0)  # 100 > 64: slides
    responses = {}
    for mode in ("recompute", "batched"):
        (tmp_path / mode).mkdir()
        running = start_server(tmp_path / mode, engine_mode=mode)
        try:
            assert type(running.server.dataplane.engine) is (  # type: ignore[union-attr]
                ReferenceEngine if mode == "recompute" else Engine
            )
            stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
            responses[mode] = stub.PredictSingle(req, metadata=running.auth_metadata)
        finally:
            running.stop()
    got, want = responses["recompute"], responses["batched"]
    assert isinstance(got, pb.PredictResponse)
    assert got.sample_count == want.sample_count == 3
    assert list(got.forecast.timestamps_ms) == list(want.forecast.timestamps_ms)
    for field in ("open", "high", "low", "close", "volume", "amount"):
        np.testing.assert_allclose(
            getattr(got.forecast, field), getattr(want.forecast, field), rtol=1e-4, atol=1e-3
        )
