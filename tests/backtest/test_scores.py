"""Backtest scores: hand-computed small cases, and scoringrules as an independent oracle."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
import scoringrules as sr  # type: ignore[import-untyped]  # no py.typed

from kronos_server.backtest import baselines
from kronos_server.backtest.scores import (
    FlatContextError,
    ForecasterScores,
    Scores,
    central_intervals,
    crps_ensemble,
    crps_gaussian,
    flat_origins,
    mase_scale,
    pinball,
    score_all,
    score_paths,
    score_point,
)

approx = pytest.approx


def table(rows: object) -> np.ndarray:
    """Nested tuples of numbers as one float array (pytest.approx compares arrays, not nesting)."""
    return np.asarray(rows, dtype=np.float64)


# ---- case A: a point forecaster, 2 origins x 2 steps -------------------------------------------
# context o0 [9, 8, 10]: last 10, diffs -1, 2 -> scale 1.5; o1 [20, 23, 21]: last 21, diffs 3, -2 -> 2.5
A_CONTEXT = np.array([[9.0, 8.0, 10.0], [20.0, 23.0, 21.0]])
A_LAST = A_CONTEXT[:, -1]
A_SCALE = np.array([1.5, 2.5])
A_ACTUAL = np.array([[11.0, 9.0], [21.0, 24.0]])
A_POINT = np.array([[12.0, 11.0], [20.0, 24.0]])  # errors point - actual: [[1, 2], [-1, 0]]


def score_a() -> ForecasterScores:
    return score_point("p", actual=A_ACTUAL, last=A_LAST, scale=A_SCALE, point=A_POINT)


def test_point_errors_by_hand() -> None:
    s = score_a()
    one, two = s.by_step
    # |e|: step 1 (1, 1), step 2 (2, 0)
    assert (one.mae, two.mae, s.overall.mae) == approx((1.0, 1.0, 1.0))
    # e**2: step 1 (1, 1), step 2 (4, 0); overall over all four errors
    assert (one.rmse, two.rmse, s.overall.rmse) == approx((1.0, math.sqrt(2.0), math.sqrt(6 / 4)))
    # |e| / actual in percent
    assert one.mape == approx(100 * (1 / 11 + 1 / 21) / 2)
    assert two.mape == approx(100 * (2 / 9 + 0 / 24) / 2)
    assert s.overall.mape == approx(100 * (1 / 11 + 2 / 9 + 1 / 21 + 0) / 4)
    # |e| / scale of the origin (1.5, 2.5)
    assert one.mase == approx((1 / 1.5 + 1 / 2.5) / 2)
    assert two.mase == approx((2 / 1.5 + 0 / 2.5) / 2)
    assert s.overall.mase == approx((1 / 1.5 + 2 / 1.5 + 1 / 2.5 + 0) / 4)


def test_direction_accuracy_by_hand() -> None:
    s = score_a()
    # o0 (last 10): s1 up (12) / up (11) -> 1; s2 up (11) / down (9) -> 0
    # o1 (last 21): s1 down (20) / unchanged (21) -> 0.5; s2 up (24) / up (24) -> 1
    assert [b.direction_accuracy for b in s.by_step] == [0.75, 0.5]
    assert s.overall.direction_accuracy == 2.5 / 4
    # a forecast of "no change" scores 0.5 whatever happened
    flat = score_point(
        "n", actual=A_ACTUAL, last=A_LAST, scale=A_SCALE, point=np.repeat(A_LAST[:, None], 2, 1)
    )
    assert flat.overall.direction_accuracy == 0.5


def test_point_forecaster_is_a_point_mass() -> None:
    s = score_a()
    for scores in (s.overall, *s.by_step):
        assert scores.crps == scores.mae  # CRPS of a point mass is |e|
        assert scores.pinball == ()
        assert scores.coverage == ()
        assert scores.brier_up is None


def test_mase_scale_by_hand() -> None:
    assert mase_scale(A_CONTEXT) == approx(A_SCALE)
    # ragged windows, one array per origin: [1, 4] -> 3; [2, 2, 5, 4] -> (0 + 3 + 1) / 3
    ragged: list[npt.ArrayLike] = [[1.0, 4.0], np.array([2.0, 2.0, 5.0, 4.0])]
    assert mase_scale(ragged) == approx([3.0, 4 / 3])
    with pytest.raises(ValueError, match="context_closes"):
        mase_scale(np.array([[1.0], [2.0]]))
    with pytest.raises(ValueError, match=r"context_closes\[1\]"):
        mase_scale([[1.0, 2.0], [3.0]])


# ---- case B: sample paths, 2 origins x 2 steps x 3 samples -------------------------------------
# last o0 = 3, o1 = 5 (context [4, 2, 3]: scale 1.5; [5, 7, 5]: scale 2)
B_CONTEXT = np.array([[4.0, 2.0, 3.0], [5.0, 7.0, 5.0]])
B_LAST = B_CONTEXT[:, -1]
B_ACTUAL = np.array([[3.0, 8.0], [4.0, 6.0]])
# samples per cell: o0 s1 {1, 2, 4}, o0 s2 {2, 3, 7}, o1 s1 {5, 5, 5}, o1 s2 {3, 6, 9}
B_PATHS = np.array(
    [
        [[1.0, 7.0], [4.0, 2.0], [2.0, 3.0]],
        [[5.0, 9.0], [5.0, 3.0], [5.0, 6.0]],
    ]
)


def score_b(quantiles: list[float]) -> ForecasterScores:
    return score_paths(
        "model", actual=B_ACTUAL, last=B_LAST, scale=mase_scale(B_CONTEXT), paths=B_PATHS, quantiles=quantiles
    )


def test_crps_ensemble_by_hand() -> None:
    # {1, 2, 4} vs 3: E|X - y| = (2 + 1 + 1) / 3; sum over ordered pairs |x - x'| = 2 (1 + 3 + 2) = 12
    assert crps_ensemble(3.0, [1.0, 2.0, 4.0]) == approx(4 / 3 - 0.5 * 12 / 9)
    s = score_b([])
    # cells: 2/3; {2, 3, 7} vs 8: 12/3 - 0.5 * 20/9 = 26/9; {5, 5, 5} vs 4: 1; {3, 6, 9} vs 6: 2 - 0.5 * 24/9
    cells = [[2 / 3, 26 / 9], [1.0, 2 - 12 / 9]]
    assert [b.crps for b in s.by_step] == approx([(2 / 3 + 1) / 2, (26 / 9 + 2 / 3) / 2])
    assert s.overall.crps == approx(np.mean(cells))
    assert crps_ensemble(B_ACTUAL, B_PATHS, sample_axis=1) == approx(np.array(cells))


def test_model_point_is_the_mean_of_its_paths() -> None:
    s = score_b([])
    # means 7/3, 4, 5, 6 vs actual 3, 8, 4, 6
    assert s.overall.mae == approx((2 / 3 + 4 + 1 + 0) / 4)
    # o0 s1: 7/3 down, actual unchanged -> 0.5; o0 s2: up / up -> 1; o1 s1: mean 5 == last -> 0.5;
    # o1 s2: 6 up / 6 up -> 1
    assert [b.direction_accuracy for b in s.by_step] == [0.5, 1.0]


def test_brier_up_by_hand() -> None:
    s = score_b([])
    # P(up) = share of paths above last: o0 s1 1/3 (y 3 not > 3: 0), o0 s2 1/3 (y 8: 1),
    # o1 s1 0 (y 4: 0), o1 s2 2/3 (y 6 > 5: 1)
    assert s.by_step[0].brier_up == approx(((1 / 3) ** 2 + 0) / 2)
    assert s.by_step[1].brier_up == approx(((2 / 3) ** 2 + (1 / 3) ** 2) / 2)
    assert s.overall.brier_up == approx((1 / 9 + 4 / 9 + 0 + 1 / 9) / 4)


def test_pinball_and_coverage_of_sample_quantiles_by_hand() -> None:
    s = score_b([0.75, 0.25])
    # linear quantiles of 3 sorted samples at positions 0.5 and 1.5:
    # q0.25: o0 1.5, 2.5; o1 5, 4.5.   q0.75: o0 3, 5; o1 5, 7.5
    # loss q0.25 (d = y - f): 0.25*1.5, 0.25*5.5, 0.75*1, 0.25*1.5
    # loss q0.75: 0, 0.75*3, 0.25*1, 0.25*1.5
    assert [q for q, _ in s.overall.pinball] == [0.25, 0.75]
    assert table(s.by_step[0].pinball) == approx(table(((0.25, (0.375 + 0.75) / 2), (0.75, (0 + 0.25) / 2))))
    assert table(s.by_step[1].pinball) == approx(
        table(((0.25, (1.375 + 0.375) / 2), (0.75, (2.25 + 0.375) / 2)))
    )
    assert table(s.overall.pinball) == approx(table(((0.25, 2.875 / 4), (0.75, 2.875 / 4))))
    # [f0.25, f0.75] holds y: o0 s1 3 in [1.5, 3] yes (closed); o0 s2 8 in [2.5, 5] no;
    # o1 s1 4 in [5, 5] no; o1 s2 6 in [4.5, 7.5] yes
    assert table(s.overall.coverage) == approx(table(((0.5, 0.5),)))
    assert table([b.coverage for b in s.by_step]) == approx(table([((0.5, 0.5),), ((0.5, 0.5),)]))


def test_coverage_counts_each_cell() -> None:
    # one origin, 4 steps, samples 0..10 (quantiles 1 and 9 at 0.1 / 0.9); actual in, edge, out, out
    paths = np.tile(np.arange(11.0)[None, :, None], (1, 1, 4))
    actual = np.array([[5.0, 9.0, 9.5, 0.5]])
    s = score_paths(
        "m", actual=actual, last=np.array([5.0]), scale=np.array([1.0]), paths=paths, quantiles=[0.9, 0.1]
    )
    assert table([b.coverage for b in s.by_step]) == approx(
        table([((0.8, 1.0),), ((0.8, 1.0),), ((0.8, 0.0),), ((0.8, 0.0),)])
    )
    assert table(s.overall.coverage) == approx(table(((0.8, 0.5),)))


def test_central_intervals_pair_levels() -> None:
    assert table(central_intervals([0.1, 0.5, 0.9])) == approx(table(((0.8, 0.1, 0.9),)))
    assert table(central_intervals([0.9, 0.25, 0.1, 0.75])) == approx(
        table(((0.5, 0.25, 0.75), (0.8, 0.1, 0.9)))
    )
    assert central_intervals([0.3, 0.5, 0.6]) == ()
    assert table(central_intervals([0.1, 0.9 + 5e-10])) == approx(table(((0.8, 0.1, 0.9),)))
    assert central_intervals([0.1, 0.9 + 1e-8]) == ()
    for bad in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="quantile"):
            central_intervals([bad])


def test_pinball_by_hand() -> None:
    # q 0.1, y 10, f 12: d = -2 -> max(-0.2, 1.8); f 7: d = 3 -> max(0.3, -2.7)
    assert pinball([10.0, 10.0], [12.0, 7.0], 0.1) == approx([1.8, 0.3])


# ---- the oracle: scoringrules, on fixed random cases -----------------------------------------


def test_crps_ensemble_matches_scoringrules() -> None:
    rng = np.random.default_rng(7)
    for samples in (1, 2, 8, 33):
        y = rng.normal(100, 3, size=(5, 4))
        x = rng.normal(100, 3, size=(5, samples, 4))
        ours = crps_ensemble(y, x, sample_axis=1)
        assert ours == approx(sr.crps_ensemble(y, x, m_axis=1, estimator="nrg"), rel=1e-12, abs=1e-12)
        if samples > 1:  # not the "fair" estimator (spread over S(S - 1)), which reads lower
            assert np.all(ours > sr.crps_ensemble(y, x, m_axis=1, estimator="fair"))


def test_crps_gaussian_matches_scoringrules() -> None:
    rng = np.random.default_rng(8)
    mu = rng.normal(0, 5, 200)
    sd = rng.uniform(0.01, 4, 200)
    y = mu + sd * rng.normal(0, 3, 200)  # w up to about +-10
    assert crps_gaussian(y, mu, sd) == approx(sr.crps_normal(y, mu, sd), rel=1e-10, abs=1e-12)
    assert crps_gaussian([3.0, -1.0], [1.0, 1.0], [0.0, 0.0]) == approx([2.0, 2.0])


def test_pinball_matches_scoringrules() -> None:
    rng = np.random.default_rng(9)
    y, f = rng.normal(size=50), rng.normal(size=50)
    for q in (0.05, 0.1, 0.5, 0.9, 0.975):
        assert pinball(y, f, q) == approx(sr.quantile_score(y, f, q), rel=1e-12, abs=1e-15)


def random_backtest(
    seed: int, origins: int = 6, samples: int = 9, horizon: int = 5, width: int = 24
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    context = 50 + np.cumsum(rng.normal(0, 1, (origins, width)), axis=1)
    last = context[:, -1]
    actual = last[:, None] + np.cumsum(rng.normal(0, 1, (origins, horizon)), axis=1)
    paths = last[:, None, None] + np.cumsum(rng.normal(0.1, 1.2, (origins, samples, horizon)), axis=2)
    return {"actual": actual, "last": last, "context_closes": context, "model_paths": paths}


def test_score_all_matches_scoringrules_cell_by_cell() -> None:
    case = random_backtest(10)
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    model, _, _, volatility = score_all(quantiles=levels, **case)
    y, last, paths = case["actual"], case["last"], case["model_paths"]

    crps = sr.crps_ensemble(y, paths, m_axis=1, estimator="nrg")
    assert model.overall.crps == approx(crps.mean(), rel=1e-12)
    assert [b.crps for b in model.by_step] == approx(list(crps.mean(axis=0)), rel=1e-12)
    brier = sr.brier_score((y > last[:, None]).astype(float), np.mean(paths > last[:, None, None], axis=1))
    assert model.overall.brier_up == approx(brier.mean(), rel=1e-12)
    assert [b.brier_up for b in model.by_step] == approx(list(brier.mean(axis=0)), rel=1e-12)
    for (q, loss), q_levels in zip(model.overall.pinball, levels, strict=True):
        assert q == q_levels
        f_q = np.quantile(paths, q, axis=1, method="linear")
        assert loss == approx(sr.quantile_score(y, f_q, q).mean(), rel=1e-12)
    lo, hi = (np.quantile(paths, q, axis=1) for q in (0.1, 0.9))
    assert [level for level, _ in model.overall.coverage] == approx([0.5, 0.8])
    assert model.overall.coverage[1][1] == np.mean((lo <= y) & (y <= hi))

    sigma = np.std(np.diff(case["context_closes"], axis=1), axis=1)
    std = sigma[:, None] * np.sqrt(np.arange(1, y.shape[1] + 1))[None, :]
    assert volatility.overall.crps == approx(sr.crps_normal(y, last[:, None], std).mean(), rel=1e-10)
    for q, loss in volatility.overall.pinball:
        f_q = last[:, None] + std * baselines.standard_normal_quantile(q)
        assert loss == approx(sr.quantile_score(y, f_q, q).mean(), rel=1e-12)
    assert volatility.overall.brier_up == 0.25


def test_score_all_order_and_shapes() -> None:
    case = random_backtest(11, horizon=3)
    found = score_all(quantiles=[0.9, 0.1], **case)
    assert [f.name for f in found] == ["model", "naive", "drift", "volatility"]
    assert all(len(f.by_step) == 3 for f in found)
    assert [q for q, _ in found[0].overall.pinball] == [0.1, 0.9]
    without = score_all(
        actual=case["actual"],
        last=case["last"],
        context_closes=case["context_closes"],
        model_paths=None,
        quantiles=[],
    )
    assert [f.name for f in without] == ["naive", "drift", "volatility"]
    assert without[0] == found[1]
    assert isinstance(found[0].overall, Scores)


# ---- skill against naive -------------------------------------------------------------------


def test_naive_skill_is_zero_and_a_perfect_forecast_scores_one() -> None:
    case = random_backtest(12)
    perfect = np.repeat(case["actual"][:, None, :], 4, axis=1)
    model, naive, drift, _ = score_all(quantiles=[0.1, 0.9], **{**case, "model_paths": perfect})
    for s in (naive.overall, *naive.by_step):
        assert (s.mae_skill, s.rmse_skill, s.crps_skill) == (0.0, 0.0, 0.0)
        assert s.crps == s.mae
    for s in (model.overall, *model.by_step):
        assert (s.mae_skill, s.rmse_skill, s.crps_skill) == (1.0, 1.0, 1.0)
        assert s.coverage == ((0.8, 1.0),)
    assert drift.overall.mae_skill == approx(1 - drift.overall.mae / naive.overall.mae)
    assert drift.by_step[2].rmse_skill == approx(1 - drift.by_step[2].rmse / naive.by_step[2].rmse)


def test_skill_is_none_where_naive_is_perfect() -> None:
    # step 1 closes exactly at the last close (naive's error 0), step 2 does not
    context = np.array([[1.0, 2.0, 3.0], [5.0, 4.0, 6.0]])
    actual = np.array([[3.0, 4.0], [6.0, 5.0]])
    paths = np.array([[[3.5, 4.5], [2.5, 3.5]], [[6.0, 5.0], [7.0, 6.0]]])
    model, naive, _, _ = score_all(
        actual=actual, last=context[:, -1], context_closes=context, model_paths=paths, quantiles=[]
    )
    for f in (model, naive):
        assert (f.by_step[0].mae_skill, f.by_step[0].rmse_skill, f.by_step[0].crps_skill) == (
            None,
            None,
            None,
        )
        assert f.by_step[1].mae_skill is not None
    # model step 2: means 4, 5.5 vs 4, 5 -> MAE 0.25; naive: |3 - 4|, |6 - 5| -> 1
    assert model.by_step[1].mae_skill == approx(1 - 0.25 / 1.0)


# ---- refused input -------------------------------------------------------------------------


def test_flat_context_is_refused_naming_the_origins() -> None:
    case = random_backtest(13)
    case["context_closes"][[1, 4]] = 50.0
    case["last"] = case["context_closes"][:, -1]
    assert flat_origins(case["context_closes"]) == (1, 4)
    with pytest.raises(FlatContextError, match="origin\\(s\\) 1, 4 ") as caught:
        score_all(quantiles=[], **case)
    assert caught.value.origins == (1, 4)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"actual": np.zeros((6, 5))}, "nonzero"),
        ({"last": np.zeros(6)}, "last must be"),
        ({"last": np.zeros(5)}, "shapes disagree"),
        ({"actual": np.ones(5)}, "actual must be 2-D"),
        ({"model_paths": np.ones((6, 9, 4))}, "model_paths must be"),
        ({"model_paths": np.full((6, 9, 5), np.nan)}, "model_paths must be finite"),
    ],
)
def test_inconsistent_input_is_refused(change: dict[str, np.ndarray], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        score_all(quantiles=[0.5], **{**random_backtest(14), **change})


def test_bad_quantile_level_is_refused() -> None:
    with pytest.raises(ValueError, match="quantile levels"):
        score_all(quantiles=[0.1, 1.0], **random_backtest(15))
