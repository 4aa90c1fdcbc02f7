"""The KV-cached engine equals full-window recomputation (the original algorithm)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kronos_server.engine.engine import Engine
from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, prepare
from kronos_server.forecast.types import SamplingParams
from kronos_server.model.bundle import ModelBundle
from tests.conftest import CASES, case_series, expected_pred, load_case
from tests.engine.conftest import MAX_CONTEXT, random_series

GREEDY = SamplingParams(temperature=1.0, top_k=1, top_p=1.0, sample_count=1)


def _close(got: np.ndarray, want: np.ndarray, std: np.ndarray) -> None:
    tol = 1e-4 * np.abs(want) + 1e-4 * (std + 1e-5)
    assert np.all(np.abs(got - want) <= tol), float(np.abs(got - want).max())


@pytest.mark.parametrize("name", [c for c in CASES if load_case(c)["kind"] == "predict"])
def test_engine_reproduces_parity_cases(name: str, engine: Engine) -> None:
    case = load_case(name)
    limits = Limits(max_context=case["model"]["max_context"])
    tickets = [engine.submit(prepare(s, limits)) for s in case_series(case)]
    for ticket, exp in zip(tickets, case["expected"]["series"], strict=True):
        forecast = ticket.wait(30)
        _close(forecast.mean, expected_pred(exp), np.asarray(exp["norm_std"], np.float32))


# (history rows, pred_len): growing only, crossing into the slide, at the edge, beyond M
SHAPES = [(20, 10), (50, 30), (MAX_CONTEXT, 5), (MAX_CONTEXT - 1, 4), (100, 12), (5, MAX_CONTEXT)]


@pytest.mark.parametrize(("n", "pred_len"), SHAPES)
@pytest.mark.parametrize("seed", [1, 2])
def test_cached_tokens_equal_recompute_sampled(
    n: int, pred_len: int, seed: int, engine: Engine, parity_bundle: ModelBundle
) -> None:
    """Same seed, same random draws: the cached engine must pick the very same tokens."""
    rng = np.random.default_rng(seed)
    sampling = SamplingParams(temperature=0.8, top_k=0, top_p=0.95, sample_count=3, seed=seed)
    prep = random_series(rng, n, pred_len, sampling)
    forecast = engine.submit(prep).wait(60)
    gen = torch.Generator()
    gen.manual_seed(seed)
    ref = generate(parity_bundle.tokenizer, parity_bundle.predictor, [prep], MAX_CONTEXT, gen)
    want = denormalize(mean_over_samples(ref.samples, 3)[0].numpy(), prep.mean, prep.std)
    _close(forecast.mean, want, prep.std)


def test_concurrent_mixed_requests_match_individual_results(
    engine: Engine, parity_bundle: ModelBundle
) -> None:
    """Different lengths, horizons and settings share steps; each equals its own solo run."""
    rng = np.random.default_rng(7)
    preps = []
    for i, (n, p) in enumerate([(10, 60), (70, 9), (40, 30), (63, 3), (30, 1), (64, 20)]):
        sampling = SamplingParams(
            temperature=0.5 + 0.2 * i, top_k=[0, 5][i % 2], top_p=0.9, sample_count=1 + i % 3, seed=100 + i
        )
        preps.append(random_series(rng, n, p, sampling, f"s{i}"))
    tickets = [engine.submit(p) for p in preps]
    results = [t.wait(60) for t in tickets]
    for prep, got in zip(preps, results, strict=True):
        solo = engine.submit(prep).wait(60)
        np.testing.assert_allclose(got.mean, solo.mean, rtol=1e-5, atol=1e-5 * float(prep.std.max()))
        assert got.series_id == prep.series_id
        assert got.mean.shape == (prep.pred_len, 6)
