"""Engine.submit_group admits a group whole or not at all; estimate_group prices its waves."""

from __future__ import annotations

import numpy as np
import pytest

from kronos_server.engine.cost import CostModel, Estimate, engine_plan, refuse_group_past_deadline
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.errors import InvalidInputError, OverloadedError
from kronos_server.forecast.types import SamplingParams
from kronos_server.model.bundle import ModelBundle
from tests.engine.conftest import random_series


def costs() -> CostModel:
    """Pass times on two sizes each, so that every line has a fixed and a per-unit part."""
    model = CostModel()
    for x, s in ((100, 0.2), (400, 0.5)):
        model.add_window(x, s)  # 0.1 s + 1 ms a position
    for x, s in ((1, 0.011), (9, 0.019)):
        model.add_decode(x, s)  # 10 ms + 1 ms a row
        model.add_heads(x, s / 10)
    return model


def test_one_wave_shares_its_steps_and_waves_follow_the_batch_limit() -> None:
    model = costs()
    plan = engine_plan(100, 10, 4, 512)
    alone = model.estimate(plan).seconds
    assert model.estimate_group([plan], 64).seconds == pytest.approx(alone)
    together = model.estimate_group([plan, plan], 64).seconds
    # both prefills, then 9 decode steps and 10 heads of 8 rows, once
    want = 2 * model.window.seconds(100) + 9 * model.decode.seconds(8) + 10 * model.heads.seconds(8)
    assert together == pytest.approx(want)
    assert together < 2 * alone  # sharing steps is cheaper than running them apart
    # a batch limit of 4 rows: one request a wave, the two run one after the other
    assert model.estimate_group([plan, plan], 4).seconds == pytest.approx(2 * alone)


def test_a_group_past_its_deadline_is_refused_naming_the_field() -> None:
    slow = Estimate(seconds=10.0, slide_steps=0, max_context=512, measured=True)
    with pytest.raises(InvalidInputError) as info:
        refuse_group_past_deadline(slow, 4.0, requests=16, sample_count=8, what="origins", field="origins")
    assert info.value.field == "origins" and "16 origins" in info.value.message
    refuse_group_past_deadline(slow, 5.0, requests=16, sample_count=8, what="origins", field="origins")
    unmeasured = Estimate(seconds=10.0, slide_steps=0, max_context=512, measured=False)
    refuse_group_past_deadline(unmeasured, 1.0, requests=16, sample_count=8, what="origins", field="origins")


def test_all_or_none(parity_bundle: ModelBundle) -> None:
    engine = Engine(parity_bundle, EngineConfig(max_queued_rows=10, max_batch_rows=8))
    engine.start()
    try:
        rng = np.random.default_rng(5)
        group = [random_series(rng, 30, 5, SamplingParams(sample_count=4, seed=i)) for i in range(3)]
        with pytest.raises(OverloadedError):
            engine.submit_group(group)  # 12 rows > 10: none of them is queued
        stats = engine.stats()
        assert stats.queued_rows == 0 and stats.queued_requests == 0 and stats.rejected_total == 1
        tickets = engine.submit_group(group[:2], request_ids=["a", "b"])
        assert [t.request_id for t in tickets] == ["a", "b"]
        forecasts = [t.wait(30) for t in tickets]
        # each as it would be alone: seeded sampling does not depend on the batch
        alone = [engine.submit(s).wait(30) for s in group[:2]]
        for got, want in zip(forecasts, alone, strict=True):
            np.testing.assert_array_equal(got.mean, want.mean)
        big = random_series(rng, 30, 5, SamplingParams(sample_count=9, seed=1))
        with pytest.raises(InvalidInputError) as info:  # past max_batch_rows: never runs
            engine.submit_group([group[0], big])
        assert info.value.field == "sample_count" and engine.stats().queued_rows == 0
    finally:
        engine.stop(grace=5)
