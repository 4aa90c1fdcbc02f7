"""Admission, cancellation, deadlines, streaming, quantiles and drain of the engine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import numpy as np
import pytest

from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.reference import ReferenceEngine
from kronos_server.errors import (
    CancelledError,
    DeadlineExceededError,
    InvalidInputError,
    OverloadedError,
    UnavailableError,
)
from kronos_server.forecast.types import Forecast, SamplingParams, StepUpdate
from kronos_server.model.bundle import ModelBundle
from tests.engine.conftest import MAX_CONTEXT, random_series

SAMPLED = SamplingParams(temperature=1.0, top_p=0.9, sample_count=4, seed=3)


def _wait_idle(engine: Engine, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = engine.stats()
        if st.running_rows == 0 and st.queued_rows == 0:
            return
        time.sleep(0.01)
    raise AssertionError(f"engine not idle: {engine.stats()}")


def test_overload_fails_fast_and_nothing_accepted_is_lost(parity_bundle: ModelBundle) -> None:
    eng = Engine(parity_bundle, EngineConfig(max_queued_rows=8, max_batch_rows=4))
    eng.start()
    try:
        rng = np.random.default_rng(0)
        accepted = [eng.submit(random_series(rng, 40, MAX_CONTEXT, SAMPLED)) for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(OverloadedError) as err:
            eng.submit(random_series(rng, 40, 10, SAMPLED))
        assert time.monotonic() - started < 0.5
        assert err.value.code == "RESOURCE_EXHAUSTED"
        assert eng.stats().rejected_total == 1
        for t in accepted:
            assert t.wait(60).mean.shape == (MAX_CONTEXT, 6)
        _wait_idle(eng)
        assert eng.submit(random_series(rng, 40, 5, SAMPLED)).wait(30).mean.shape == (5, 6)
    finally:
        eng.stop(5)


def test_sample_count_above_batch_limit_is_invalid(parity_bundle: ModelBundle) -> None:
    eng = Engine(parity_bundle, EngineConfig(max_queued_rows=100, max_batch_rows=2))
    eng.start()
    try:
        with pytest.raises(InvalidInputError) as err:
            eng.submit(random_series(np.random.default_rng(0), 20, 3, SAMPLED))
        assert err.value.field == "sample_count"
    finally:
        eng.stop(5)


def test_cancel_frees_rows_at_next_step(engine: Engine) -> None:
    rng = np.random.default_rng(1)
    long = random_series(rng, 60, MAX_CONTEXT, SAMPLED)  # slides every step: slow enough to cancel
    ticket = engine.submit(long)
    time.sleep(0.05)
    ticket.cancel()
    with pytest.raises(CancelledError):
        ticket.wait(10)
    _wait_idle(engine)
    assert engine.stats().running_rows == 0


def test_deadline_removes_rows(engine: Engine) -> None:
    rng = np.random.default_rng(2)
    ticket = engine.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED), timeout=0.001)
    with pytest.raises(DeadlineExceededError):
        ticket.wait(10)
    _wait_idle(engine)


def test_seed_makes_forecast_reproducible_whatever_shares_the_batch(engine: Engine) -> None:
    rng = np.random.default_rng(4)
    target = random_series(rng, 30, 20, SamplingParams(temperature=1.0, top_p=0.9, sample_count=2, seed=42))
    alone = engine.submit(target).wait(30)
    noise = [engine.submit(random_series(rng, 50, 20, SAMPLED)) for _ in range(3)]
    together = engine.submit(target).wait(30)
    for t in noise:
        t.wait(30)
    np.testing.assert_array_equal(alone.mean, together.mean)
    unseeded = random_series(rng, 30, 20, SamplingParams(temperature=1.0, top_p=0.9, sample_count=2))
    a, b = engine.submit(unseeded).wait(30), engine.submit(unseeded).wait(30)
    assert not np.array_equal(a.mean, b.mean)  # no seed: fresh randomness each time


def test_every_uint64_seed_is_served_and_only_its_low_32_bits_pick_the_draws(engine: Engine) -> None:
    """What the proto's seed comment says: the whole uint64 range is accepted and echoed, and
    torch's CPU generator (mt19937) is seeded from the low 32 bits, so seeds equal modulo 2^32
    give the same forecast."""
    rng = np.random.default_rng(13)
    prep = random_series(rng, 30, 8, SamplingParams(temperature=1.0, top_p=0.9, sample_count=2, seed=5))
    low = engine.submit(prep).wait(30)
    for seed in (2**32 + 5, 2**63 + 5, 2**64 - 2**32 + 5):
        sampling = dataclasses.replace(prep.sampling, seed=seed)
        got = engine.submit(dataclasses.replace(prep, sampling=sampling)).wait(30)
        assert got.seed == seed
        assert np.array_equal(got.mean, low.mean), seed
    other = dataclasses.replace(prep, sampling=dataclasses.replace(prep.sampling, seed=6))
    assert not np.array_equal(engine.submit(other).wait(30).mean, low.mean)
    with pytest.raises(InvalidInputError) as err:
        random_series(rng, 30, 8, SamplingParams(seed=2**64))
    assert err.value.field == "seed" and "[0, 2^64)" in err.value.message


def test_quantiles_bracket_the_median_and_mean(engine: Engine) -> None:
    rng = np.random.default_rng(5)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, sample_count=32, seed=9, quantiles=(0.1, 0.5, 0.9))
    forecast = engine.submit(random_series(rng, 40, 12, sampling)).wait(60)
    q10, q50, q90 = (forecast.quantiles[q] for q in (0.1, 0.5, 0.9))
    assert np.all(q10 <= q50) and np.all(q50 <= q90)
    assert np.any(q90 > q10)  # 32 sampled paths at T=1 are not all identical
    assert np.all(forecast.mean >= q10.min(axis=0) - 1e-3 * np.abs(forecast.mean))


def test_stream_yields_every_step_matching_the_final_forecast(engine: Engine) -> None:
    rng = np.random.default_rng(6)
    for n, p in ((30, 10), (60, 12)):  # growing only; crossing into the slide
        prep = random_series(rng, n, p, SamplingParams(temperature=1.0, top_p=0.9, sample_count=3, seed=5))

        async def collect() -> tuple[list[StepUpdate], Forecast]:
            ticket = engine.submit(prep, stream=True)  # noqa: B023
            steps = [s async for s in ticket.steps()]
            return steps, await ticket.result()

        steps, final = asyncio.run(collect())
        assert [s.step for s in steps] == list(range(p))
        assert [s.timestamp for s in steps] == list(prep.y_timestamps)
        got = np.stack([s.values for s in steps])
        assert got.dtype == final.mean.dtype and np.array_equal(got, final.mean)  # bit for bit
        # the same tokens as the unary forecast, decoded incrementally: equal to rounding
        unary = engine.submit(prep).wait(60).mean
        np.testing.assert_allclose(final.mean, unary, rtol=1e-5, atol=1e-4 * float(prep.std.max()))


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine])
def test_stream_final_quantiles_come_from_the_streamed_rows(
    parity_bundle: ModelBundle, engine_class: type[Engine]
) -> None:
    """One sample path: every quantile is that path, so each equals the steps exactly."""
    eng = engine_class(parity_bundle, EngineConfig())
    eng.start()
    try:
        rng = np.random.default_rng(12)
        sampling = SamplingParams(temperature=1.0, top_p=0.9, sample_count=1, seed=8, quantiles=(0.1, 0.9))
        prep = random_series(rng, 60, 12, sampling)  # crosses max_context: slides

        async def collect() -> tuple[list[StepUpdate], Forecast]:
            ticket = eng.submit(prep, stream=True)
            return [s async for s in ticket.steps()], await ticket.result()

        steps, final = asyncio.run(collect())
        got = np.stack([s.values for s in steps])
        assert np.array_equal(got, final.mean)
        assert sorted(final.quantiles) == [0.1, 0.9]
        for q in (0.1, 0.9):
            assert np.array_equal(final.quantiles[q], got), q
    finally:
        eng.stop(5)


@pytest.mark.parametrize("engine_class", [Engine, ReferenceEngine])
def test_stop_drains_running_work_then_refuses(
    parity_bundle: ModelBundle,
    engine_class: type[Engine],
) -> None:
    eng = engine_class(parity_bundle, EngineConfig())
    eng.start()
    rng = np.random.default_rng(8)
    tickets = [eng.submit(random_series(rng, 40, 20, SAMPLED)) for _ in range(3)]
    eng.stop(grace=30)
    for t in tickets:
        assert t.wait(0).mean.shape == (20, 6)
    with pytest.raises(UnavailableError):
        eng.submit(random_series(rng, 40, 5, SAMPLED))


def test_stop_with_zero_grace_answers_every_ticket(parity_bundle: ModelBundle) -> None:
    eng = Engine(parity_bundle, EngineConfig())
    eng.start()
    rng = np.random.default_rng(9)
    tickets = [eng.submit(random_series(rng, 60, MAX_CONTEXT, SAMPLED)) for _ in range(3)]
    started = time.monotonic()
    eng.stop(grace=0)
    assert time.monotonic() - started < 5
    for t in tickets:  # nothing hangs: each finished or was refused as unavailable
        with contextlib.suppress(UnavailableError):
            assert t.wait(0).mean.shape == (MAX_CONTEXT, 6)


def test_memory_returns_after_load(engine: Engine) -> None:
    rng = np.random.default_rng(10)
    tickets = [engine.submit(random_series(rng, 30, 8, SAMPLED)) for _ in range(16)]
    for t in tickets:
        t.wait(60)
    _wait_idle(engine)
    st = engine.stats()
    assert st.cache_capacity_rows == 4  # back to the minimum once idle
