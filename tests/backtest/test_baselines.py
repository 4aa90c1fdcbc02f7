"""Backtest baselines: exact values by hand, quantiles against statistics.NormalDist."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
import scoringrules as sr  # type: ignore[import-untyped]  # no py.typed

from kronos_server.backtest import baselines
from kronos_server.backtest.scores import crps_gaussian, mase_scale, score_gaussian

# o0 [1, 2, 4]: last 4, diffs 1, 2; o1 [10, 10, 7]: last 7, diffs 0, -3
CONTEXT = np.array([[1.0, 2.0, 4.0], [10.0, 10.0, 7.0]])


def test_naive_repeats_the_last_close() -> None:
    assert baselines.naive(CONTEXT, 3).tolist() == [[4.0, 4.0, 4.0], [7.0, 7.0, 7.0]]


def test_drift_continues_the_line_through_first_and_last() -> None:
    # slopes (4 - 1) / 2 = 1.5 and (7 - 10) / 2 = -1.5 per step
    assert baselines.drift(CONTEXT, 3).tolist() == [[5.5, 7.0, 8.5], [5.5, 4.0, 2.5]]


def test_volatility_sigma_is_the_population_std_of_the_changes() -> None:
    # diffs (1, 2): mean 1.5, variance (0.25 + 0.25) / 2 -> 0.5 (ddof 1 would give sqrt(0.5));
    # diffs (0, -3): mean -1.5, variance (2.25 + 2.25) / 2 -> 1.5
    assert baselines.volatility_sigma(CONTEXT).tolist() == [0.5, 1.5]
    forecast = baselines.volatility(CONTEXT, 4)
    assert forecast.mean.tolist() == baselines.naive(CONTEXT, 4).tolist()
    assert forecast.std == pytest.approx(np.array([[0.5], [1.5]]) * np.sqrt([[1.0, 2.0, 3.0, 4.0]]))
    assert forecast.p_up.tolist() == [[0.5] * 4] * 2


@pytest.mark.parametrize("q", [0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975])
def test_volatility_quantiles_are_normal_quantiles(q: float) -> None:
    rng = np.random.default_rng(3)
    context = 100 + np.cumsum(rng.normal(0, 2, (5, 30)), axis=1)
    forecast = baselines.volatility(context, 6)
    sigma = np.std(np.diff(context, axis=1), axis=1)
    want = [
        [NormalDist(context[o, -1], sigma[o] * math.sqrt(h)).inv_cdf(q) for h in range(1, 7)]
        for o in range(5)
    ]
    assert forecast.quantile(q) == pytest.approx(np.array(want), rel=1e-14)


def test_volatility_crps_matches_scoringrules() -> None:
    rng = np.random.default_rng(4)
    context = 100 + np.cumsum(rng.normal(0, 2, (5, 30)), axis=1)
    forecast = baselines.volatility(context, 6)
    actual = context[:, -1:] + np.cumsum(rng.normal(0, 2, (5, 6)), axis=1)
    ours = crps_gaussian(actual, forecast.mean, forecast.std)
    assert ours == pytest.approx(sr.crps_normal(actual, forecast.mean, forecast.std), rel=1e-10)


def test_flat_context_makes_the_volatility_walk_a_point_mass() -> None:
    context = np.array([[5.0, 5.0, 5.0], [1.0, 2.0, 4.0]])
    forecast = baselines.volatility(context, 2)
    assert forecast.std[0].tolist() == [0.0, 0.0]
    for q in (0.1, 0.5, 0.9):
        assert forecast.quantile(q)[0].tolist() == [5.0, 5.0]
    actual = np.array([[6.0, 3.0], [4.5, 3.0]])
    crps = crps_gaussian(actual, forecast.mean, forecast.std)
    assert crps[0].tolist() == [1.0, 2.0]  # |e|
    assert crps[1] == pytest.approx(sr.crps_normal(actual[1], 4.0, forecast.std[1]))
    # scored as a forecaster, the flat origin's cells are the point mass's (the scale is made up:
    # score_all itself refuses a flat window for MASE)
    s = score_gaussian(
        "volatility",
        actual=actual,
        last=context[:, -1],
        scale=np.array([1.0, *mase_scale(context[1:])]),
        forecast=forecast,
        quantiles=[0.1, 0.9],
    )
    assert s.overall.crps == pytest.approx(np.mean(crps))
    assert s.overall.brier_up == 0.25


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="context_closes"):
        baselines.naive(np.array([[1.0], [2.0]]), 2)
    with pytest.raises(ValueError, match="context_closes"):
        baselines.drift(np.array([1.0, 2.0, 3.0]), 2)
    with pytest.raises(ValueError, match="horizon"):
        baselines.volatility(CONTEXT, 0)
    with pytest.raises(ValueError, match="quantile"):
        baselines.standard_normal_quantile(1.0)
