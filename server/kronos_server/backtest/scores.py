"""The scores of a backtest: how close each forecaster's forecasts came to what happened.

Everything is about the **close** price. Shapes: O origins, H horizon steps, S sample paths.

Inputs
    ``actual`` [O, H]: the realised closes at steps 1..H after each origin;
    ``last`` [O]: each origin's last context close (= ``context_closes[:, -1]``);
    ``context_closes`` [O, C]: each origin's context window (C >= 2), from which the baselines
    (:mod:`.baselines`) and ``scale`` are computed;
    ``scale`` [O]: the MASE scale of each origin, the mean absolute one-step change of the close
    over that origin's context window (:func:`mase_scale`).

Forecasters
    The model is probabilistic through its S sample paths [O, S, H]; its point forecast is the
    mean of its paths, its q quantile ``np.quantile(paths, q, axis=S, method="linear")`` (as
    predict's quantiles). The volatility random walk is probabilistic analytically (a normal
    per cell). Naive and drift are point forecasters, scored as point masses.

Each score is a mean over cells (origin, step): ``by_step[h]`` over the O origins at step h + 1,
``overall`` over all O * H cells. With e = point - actual:

- ``mae`` = mean |e|; ``rmse`` = sqrt(mean e**2) (overall: over all O * H errors);
- ``mape`` = 100 * mean |e| / |actual|, in percent. Prices are > 0 (callers validate), so an
  actual of 0 is refused (ValueError) rather than scored;
- ``mase`` = mean |e| / scale[o]. A flat context window (scale 0) leaves MASE undefined, so
  :func:`score_all` refuses it with :class:`FlatContextError` naming the origins
  (:func:`flat_origins` finds them beforehand);
- ``direction_accuracy``: a cell scores 1 if sign(point - last) == sign(actual - last), both
  nonzero; 0.5 if the forecast says "no change" (point == last) or the close did not change
  (actual == last); 0 otherwise. Naive and volatility always forecast "no change": 0.5;
- ``crps``: the continuous ranked probability score. From S samples the ensemble (energy)
  estimator E|X - y| - 0.5 E|X - X'| over the empirical distribution of the samples (the
  ``properscoring.crps_ensemble`` default and scoringrules' ``estimator="nrg"``, which the tests
  check it against; not the "fair" variant that divides the spread by S(S - 1)); for a normal
  N(mu, s**2) the closed form s * (w (2 Phi(w) - 1) + 2 phi(w) - 1/sqrt(pi)), w = (y - mu)/s
  (|y - mu| when s = 0); for a point forecast exactly |e|, its MAE;
- ``pinball``: per requested quantile level q (ascending), mean max(q d, (q - 1) d) with
  d = actual - f_q;
- ``coverage``: for every requested pair (q, 1 - q) with q < 0.5 (1 - q matched within 1e-9),
  the fraction of cells with f_q <= actual <= f_{1-q}, reported at level 1 - 2q (ascending);
- ``brier_up``: mean (P - outcome)**2 with outcome = 1 if actual > last else 0, and P the
  forecast probability of a close above the last close: for the model the fraction of its
  paths above ``last`` at that step, for the volatility random walk 0.5;
- point forecasters have no pinball, no coverage (empty) and no Brier score (None);
- ``mae_skill``, ``rmse_skill``, ``crps_skill`` = 1 - X / X_naive against the naive forecast
  of the same cells (naive's CRPS is its MAE); None where X_naive is 0. Naive's own skills
  are 0, a perfect forecast's 1, one worse than naive's negative.

Pure numpy: no model, no transport. Inputs must be finite (callers validate; score_all checks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from kronos_server.backtest import baselines
from kronos_server.backtest.baselines import GaussianForecast

Array = npt.NDArray[np.float64]

#: how close 1 - q must be to a requested level to pair it with q as a central interval
PAIR_TOLERANCE = 1e-9

_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Scores:
    """One forecaster's scores over one horizon step, or over all of them (see the module doc)."""

    mae: float
    rmse: float
    mape: float  # percent
    mase: float
    direction_accuracy: float
    crps: float | None
    pinball: tuple[tuple[float, float], ...]  # (q, loss), ascending q
    coverage: tuple[tuple[float, float], ...]  # (level, fraction), ascending level
    brier_up: float | None
    mae_skill: float | None = None
    rmse_skill: float | None = None
    crps_skill: float | None = None


@dataclass(frozen=True)
class ForecasterScores:
    """A forecaster's scores: overall and per horizon step (``by_step[h]`` is step h + 1)."""

    name: str  # "model", "naive", "drift", "volatility"
    overall: Scores
    by_step: tuple[Scores, ...]  # len H


class FlatContextError(ValueError):
    """Some origins' context windows have a constant close: MASE (scaled by it) is undefined."""

    def __init__(self, origins: Sequence[int]):
        self.origins = tuple(origins)
        shown = ", ".join(str(o) for o in self.origins[:10]) + (", ..." if len(self.origins) > 10 else "")
        super().__init__(
            f"the context window of origin(s) {shown} has a constant close, so MASE (errors scaled "
            "by the window's mean absolute close change) is undefined"
        )


# ---- per-cell rules ---------------------------------------------------------------------------


def mase_scale(context_closes: npt.ArrayLike | Sequence[npt.ArrayLike]) -> Array:
    """[O]: mean |diff(close)| of each origin's context: a 2-D array [O, C] or one 1-D array each."""
    if isinstance(context_closes, np.ndarray) and context_closes.ndim == 2:
        if context_closes.shape[1] < 2:
            raise ValueError(f"context_closes needs >= 2 closes per origin, got shape {context_closes.shape}")
        diffs = np.diff(np.asarray(context_closes, dtype=np.float64), axis=1)
        return np.asarray(np.mean(np.abs(diffs), axis=1), dtype=np.float64)
    scales = []
    for i, row in enumerate(context_closes):  # type: ignore[arg-type]
        closes = np.asarray(row, dtype=np.float64)
        if closes.ndim != 1 or closes.size < 2:
            raise ValueError(f"context_closes[{i}] must be 1-D with >= 2 closes, got shape {closes.shape}")
        scales.append(float(np.mean(np.abs(np.diff(closes)))))
    return np.asarray(scales, dtype=np.float64)


def flat_origins(context_closes: npt.ArrayLike) -> tuple[int, ...]:
    """The origins whose context window [O, C] has a constant close (MASE scale 0)."""
    return tuple(
        int(i) for i in np.flatnonzero(mase_scale(np.asarray(context_closes, dtype=np.float64)) == 0)
    )


def crps_ensemble(actual: npt.ArrayLike, samples: npt.ArrayLike, *, sample_axis: int = -1) -> Array:
    """CRPS of the samples' empirical distribution per cell: E|X - y| - 0.5 E|X - X'|.

    ``samples`` has the shape of ``actual`` plus the sample axis. With the samples sorted,
    sum_{i,j} |x_i - x_j| = 2 sum_k (2k - S - 1) x_(k) (k = 1..S), so the spread costs a sort.
    """
    x = np.moveaxis(np.asarray(samples, dtype=np.float64), sample_axis, -1)
    y = np.asarray(actual, dtype=np.float64)
    # the weights sum to 0, so the spread may be taken of x - y: small numbers, not price levels
    # (less cancellation; samples all equal to y score exactly 0)
    d = np.sort(x - y[..., None], axis=-1)
    s = d.shape[-1]
    weights = 2.0 * np.arange(1, s + 1, dtype=np.float64) - s - 1.0
    half_spread = (d @ weights) / (s * s)
    crps = np.mean(np.abs(d), axis=-1) - half_spread
    return np.asarray(np.maximum(crps, 0.0), dtype=np.float64)  # >= 0, also after rounding


def crps_gaussian(actual: npt.ArrayLike, mean: npt.ArrayLike, std: npt.ArrayLike) -> Array:
    """Closed-form CRPS of N(mean, std**2) per cell; |actual - mean| where std is 0."""
    error = np.asarray(actual, dtype=np.float64) - np.asarray(mean, dtype=np.float64)
    sd = np.broadcast_to(np.asarray(std, dtype=np.float64), error.shape)
    spread = sd > 0
    safe = np.where(spread, sd, 1.0)
    w = error / safe
    cdf = 0.5 * (1.0 + np.asarray(_erf(w / _SQRT2), dtype=np.float64))
    pdf = np.exp(-0.5 * w * w) * _INV_SQRT_2PI
    crps = safe * (w * (2.0 * cdf - 1.0) + 2.0 * pdf - _INV_SQRT_PI)
    return np.asarray(np.where(spread, crps, np.abs(error)), dtype=np.float64)


def pinball(actual: npt.ArrayLike, forecast: npt.ArrayLike, q: float) -> Array:
    """Pinball (quantile) loss per cell of the q quantile forecast: max(q d, (q - 1) d), d = y - f."""
    d = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.asarray(np.maximum(q * d, (q - 1.0) * d), dtype=np.float64)


def covered(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> Array:
    """1.0 per cell where lower <= actual <= upper, else 0.0."""
    y = np.asarray(actual, dtype=np.float64)
    return np.asarray((np.asarray(lower) <= y) & (y <= np.asarray(upper)), dtype=np.float64)


def direction_hits(point: npt.ArrayLike, actual: npt.ArrayLike, last: npt.ArrayLike) -> Array:
    """[O, H]: 1 for the right sign of the change from ``last`` [O], 0.5 for "no change", else 0."""
    base = np.asarray(last, dtype=np.float64)[:, None]
    said = np.sign(np.asarray(point, dtype=np.float64) - base)
    went = np.sign(np.asarray(actual, dtype=np.float64) - base)
    return np.asarray(np.where((said == 0) | (went == 0), 0.5, said == went), dtype=np.float64)


def brier_up(p_up: npt.ArrayLike, actual: npt.ArrayLike, last: npt.ArrayLike) -> Array:
    """[O, H]: (P(close > last) - 1{actual > last})**2."""
    outcome = np.asarray(actual, dtype=np.float64) > np.asarray(last, dtype=np.float64)[:, None]
    return np.asarray((np.asarray(p_up, dtype=np.float64) - outcome) ** 2, dtype=np.float64)


def quantile_levels(quantiles: Sequence[float]) -> tuple[float, ...]:
    """The requested quantile levels, ascending, each once; every one must be in (0, 1)."""
    for q in quantiles:
        if not (math.isfinite(q) and 0.0 < q < 1.0):
            raise ValueError(f"quantile levels must be in (0, 1), got {q}")
    return tuple(sorted({float(q) for q in quantiles}))


def central_intervals(quantiles: Sequence[float]) -> tuple[tuple[float, float, float], ...]:
    """(level, lower q, upper q) of every central interval the levels form, ascending level."""
    levels = quantile_levels(quantiles)
    found = []
    for q in levels:
        if q >= 0.5:
            continue
        partner = next((p for p in levels if abs(p - (1.0 - q)) <= PAIR_TOLERANCE), None)
        if partner is not None:
            found.append((1.0 - 2.0 * q, q, partner))
    return tuple(sorted(found))


# ---- one forecaster ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cells:
    """A forecaster's per-cell scores, [O, H] each."""

    abs_error: Array
    sq_error: Array
    pct_error: Array
    scaled_error: Array
    direction: Array
    crps: Array
    pinball: tuple[tuple[float, Array], ...]
    coverage: tuple[tuple[float, Array], ...]
    brier: Array | None


def _cells(
    *,
    actual: Array,
    last: Array,
    scale: Array,
    point: Array,
    crps: Array,
    quantiles: Mapping[float, Array] | None,
    p_up: Array | None,
) -> _Cells:
    error = point - actual
    abs_error = np.abs(error)
    pinballs: tuple[tuple[float, Array], ...] = ()
    coverage: tuple[tuple[float, Array], ...] = ()
    if quantiles:
        pinballs = tuple((q, pinball(actual, quantiles[q], q)) for q in sorted(quantiles))
        coverage = tuple(
            (level, covered(actual, quantiles[lo], quantiles[hi]))
            for level, lo, hi in central_intervals(list(quantiles))
        )
    return _Cells(
        abs_error=abs_error,
        sq_error=error * error,
        pct_error=100.0 * abs_error / np.abs(actual),
        scaled_error=abs_error / scale[:, None],
        direction=direction_hits(point, actual, last),
        crps=crps,
        pinball=pinballs,
        coverage=coverage,
        brier=None if p_up is None else brier_up(p_up, actual, last),
    )


def _summaries(cells: _Cells, mean: Callable[[Array], Array]) -> list[Scores]:
    """One Scores per entry of ``mean``'s reduction (per step: H of them; overall: 1)."""
    mae = mean(cells.abs_error)
    rmse = np.sqrt(mean(cells.sq_error))
    mape = mean(cells.pct_error)
    mase = mean(cells.scaled_error)
    direction = mean(cells.direction)
    crps = mean(cells.crps)
    pinballs = [(q, mean(c)) for q, c in cells.pinball]
    coverage = [(level, mean(c)) for level, c in cells.coverage]
    brier = None if cells.brier is None else mean(cells.brier)
    return [
        Scores(
            mae=float(mae[k]),
            rmse=float(rmse[k]),
            mape=float(mape[k]),
            mase=float(mase[k]),
            direction_accuracy=float(direction[k]),
            crps=float(crps[k]),
            pinball=tuple((q, float(v[k])) for q, v in pinballs),
            coverage=tuple((level, float(v[k])) for level, v in coverage),
            brier_up=None if brier is None else float(brier[k]),
        )
        for k in range(mae.shape[0])
    ]


def _forecaster(name: str, cells: _Cells) -> ForecasterScores:
    (overall,) = _summaries(cells, lambda a: np.asarray([a.mean()], dtype=np.float64))
    by_step = _summaries(cells, lambda a: np.asarray(a.mean(axis=0), dtype=np.float64))
    return ForecasterScores(name=name, overall=overall, by_step=tuple(by_step))


def score_paths(
    name: str, *, actual: Array, last: Array, scale: Array, paths: Array, quantiles: Sequence[float]
) -> ForecasterScores:
    """A forecaster given as sample paths [O, S, H] (no skills: see :func:`with_skill`)."""
    levels = quantile_levels(quantiles)
    values: dict[float, Array] = {}
    if levels:
        at = np.quantile(paths, levels, axis=1, method="linear")
        values = {q: np.asarray(at[i], dtype=np.float64) for i, q in enumerate(levels)}
    cells = _cells(
        actual=actual,
        last=last,
        scale=scale,
        point=np.asarray(paths.mean(axis=1), dtype=np.float64),
        crps=crps_ensemble(actual, paths, sample_axis=1),
        quantiles=values,
        p_up=np.asarray(np.mean(paths > last[:, None, None], axis=1), dtype=np.float64),
    )
    return _forecaster(name, cells)


def score_point(name: str, *, actual: Array, last: Array, scale: Array, point: Array) -> ForecasterScores:
    """A point forecaster [O, H], scored as a point mass: CRPS = |e|, no quantiles, no Brier."""
    cells = _cells(
        actual=actual,
        last=last,
        scale=scale,
        point=point,
        crps=np.abs(point - actual),
        quantiles=None,
        p_up=None,
    )
    return _forecaster(name, cells)


def score_gaussian(
    name: str,
    *,
    actual: Array,
    last: Array,
    scale: Array,
    forecast: GaussianForecast,
    quantiles: Sequence[float],
) -> ForecasterScores:
    """A forecaster with a normal per cell: exact quantiles and closed-form CRPS."""
    levels = quantile_levels(quantiles)
    cells = _cells(
        actual=actual,
        last=last,
        scale=scale,
        point=forecast.mean,
        crps=crps_gaussian(actual, forecast.mean, forecast.std),
        quantiles={q: forecast.quantile(q) for q in levels},
        p_up=forecast.p_up,
    )
    return _forecaster(name, cells)


def _skill(score: float | None, reference: float | None) -> float | None:
    if score is None or reference is None or reference == 0:
        return None
    return 1.0 - score / reference


def _scores_with_skill(scores: Scores, naive: Scores) -> Scores:
    return replace(
        scores,
        mae_skill=_skill(scores.mae, naive.mae),
        rmse_skill=_skill(scores.rmse, naive.rmse),
        crps_skill=_skill(scores.crps, naive.crps),
    )


def with_skill(scores: ForecasterScores, naive: ForecasterScores) -> ForecasterScores:
    """``scores`` with its skills against ``naive``, overall and step by step."""
    if len(scores.by_step) != len(naive.by_step):
        raise ValueError(f"{scores.name} has {len(scores.by_step)} steps, naive {len(naive.by_step)}")
    return replace(
        scores,
        overall=_scores_with_skill(scores.overall, naive.overall),
        by_step=tuple(_scores_with_skill(s, n) for s, n in zip(scores.by_step, naive.by_step, strict=True)),
    )


# ---- a whole backtest -------------------------------------------------------------------------


def _finite(name: str, value: npt.ArrayLike, ndim: int) -> Array:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def score_all(
    *,
    actual: npt.ArrayLike,
    last: npt.ArrayLike,
    context_closes: npt.ArrayLike,
    model_paths: npt.ArrayLike | None,
    quantiles: Sequence[float],
) -> tuple[ForecasterScores, ...]:
    """Score the model (when its paths are given), naive, drift and volatility, in that order.

    ``actual`` [O, H], ``last`` [O] (must equal ``context_closes[:, -1]``), ``context_closes``
    [O, C >= 2], ``model_paths`` [O, S >= 1, H]. Skills are against naive. Raises ValueError
    for inconsistent or non-finite input, an actual close of 0 or a quantile level outside
    (0, 1), and :class:`FlatContextError` (a ValueError) for a constant context window.
    """
    y = _finite("actual", actual, 2)
    base = _finite("last", last, 1)
    context = _finite("context_closes", context_closes, 2)
    origins, horizon = y.shape
    if origins < 1 or horizon < 1:
        raise ValueError(f"actual must have >= 1 origin and >= 1 step, got shape {y.shape}")
    if base.shape != (origins,) or context.shape[0] != origins or context.shape[1] < 2:
        raise ValueError(
            f"shapes disagree: actual {y.shape}, last {base.shape}, context_closes {context.shape} "
            "(want [O, H], [O], [O, C >= 2])"
        )
    if not np.array_equal(base, context[:, -1]):
        raise ValueError("last must be each origin's last context close (context_closes[:, -1])")
    if np.any(y == 0):
        raise ValueError("actual closes must be nonzero (MAPE divides by them)")
    levels = quantile_levels(quantiles)
    flat = flat_origins(context)
    if flat:
        raise FlatContextError(flat)
    scale = mase_scale(context)

    common = {"actual": y, "last": base, "scale": scale}
    naive = score_point("naive", point=baselines.naive(context, horizon), **common)
    drift = score_point("drift", point=baselines.drift(context, horizon), **common)
    volatility = score_gaussian(
        "volatility", forecast=baselines.volatility(context, horizon), quantiles=levels, **common
    )
    found: list[ForecasterScores] = [naive, drift, volatility]
    if model_paths is not None:
        paths = _finite("model_paths", model_paths, 3)
        if paths.shape[0] != origins or paths.shape[2] != horizon or paths.shape[1] < 1:
            raise ValueError(f"model_paths must be [O={origins}, S >= 1, H={horizon}], got {paths.shape}")
        found.insert(0, score_paths("model", paths=paths, quantiles=levels, **common))
    return tuple(with_skill(f, naive) for f in found)
