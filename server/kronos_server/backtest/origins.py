"""A backtest's plan: defaults resolved, every field checked, the origins chosen, the windows cut.

The rules are the proto's (``BacktestRequest``). Origin o (0-based, oldest first) is the row
index t_o of the history: the model sees rows t_o - context .. t_o - 1 and forecasts rows
t_o .. t_o + horizon - 1, whose timestamps are the prediction timestamps. The last origin
is rows - horizon; the others go back ``origin_step`` rows at a time.

Errors are :class:`~kronos_server.errors.InvalidInputError` naming the field in the domain's
terms (``horizon``, ``context``, ``origins``, ``origin_step``, ``timestamps`` for the
history's rows, ``close[17]``, ``top_p``, ...), which the transports turn into their own
paths (``history.timestamps_ms``, ``sampling.top_p``, ...). Pure numpy; no engine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kronos_server.backtest.scores import flat_origins, quantile_levels
from kronos_server.backtest.types import (
    DEFAULT_BACKTEST_CONTEXT,
    DEFAULT_BACKTEST_QUANTILES,
    DEFAULT_BACKTEST_SAMPLES,
    MIN_BACKTEST_CONTEXT,
    BacktestInput,
)
from kronos_server.errors import InvalidInputError
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import ResolvedSampling, SamplingParams, SeriesInput

SEED_MODULUS = 2**64


def _bad(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", field=field)


@dataclass(frozen=True)
class BacktestPlan:
    """What a backtest will run: every default filled in, every value checked."""

    horizon: int
    context: int
    origin_step: int
    origins: np.ndarray  # int64 [O]: row indices of the history, ascending
    sampling: SamplingParams  # every origin's settings (sample_count and quantiles filled in)
    resolved: ResolvedSampling  # the same, with the server's defaults applied
    quantiles: tuple[float, ...]  # the levels scored, ascending, each once

    @property
    def count(self) -> int:
        return int(self.origins.size)

    @property
    def sample_count(self) -> int:
        return self.resolved.sample_count

    @property
    def rows(self) -> int:
        """Engine rows of the whole backtest (its cost against admission)."""
        return self.count * self.sample_count


def origin_seed(seed: int | None, origin: int) -> int | None:
    """The seed of origin ``origin`` (0-based): seed + origin mod 2^64; None stays None."""
    return None if seed is None else (seed + origin) % SEED_MODULUS


def backtest_sampling(sampling: SamplingParams) -> SamplingParams:
    """The request's sampling with the backtest's own defaults: 8 paths, the default quantiles."""
    return replace(
        sampling,
        sample_count=DEFAULT_BACKTEST_SAMPLES if sampling.sample_count is None else sampling.sample_count,
        quantiles=tuple(sampling.quantiles) or DEFAULT_BACKTEST_QUANTILES,
    )


def _check_scalars(request: BacktestInput, limits: Limits) -> int:
    """The checks that need no history; returns the horizon."""
    horizon, m = request.horizon, limits.max_context
    if horizon is None:
        raise _bad("horizon", f"required: the steps to forecast at each origin, 1..max_context={m}")
    if not 1 <= horizon <= m:
        raise _bad("horizon", f"must lie in [1, max_context={m}], got {horizon}")
    context = request.context
    if context is None:
        if m - horizon < MIN_BACKTEST_CONTEXT:
            raise _bad(
                "horizon",
                f"context + horizon must stay within max_context={m}: horizon {horizon} leaves "
                f"fewer than {MIN_BACKTEST_CONTEXT} context candles",
            )
    elif not MIN_BACKTEST_CONTEXT <= context <= m - horizon:
        raise _bad(
            "context",
            f"must lie in [{MIN_BACKTEST_CONTEXT}, max_context - horizon = {m - horizon}], got {context}",
        )
    if request.origin_step is not None and request.origin_step < 1:
        raise _bad("origin_step", f"must be >= 1, got {request.origin_step}")
    most = limits.max_backtest_origins
    if request.origins is not None and not 1 <= request.origins <= most:
        raise _bad("origins", f"must lie in [1, max_backtest_origins={most}], got {request.origins}")
    return horizon


def validate_history(series: SeriesInput, limits: Limits) -> ResolvedSampling:
    """Check the whole history, its time zone and sampling settings as a forecast's are
    checked (the same rules and field names: ``close[17]``, ``timestamps``, ``top_p``)."""
    ts = np.asarray(series.timestamps, dtype=np.int64).reshape(-1)
    # prepare wants something to forecast: one instant past the history stands in for it
    # (a last timestamp of int64's maximum, past the year 2262, has no successor)
    after = int(ts[-1]) + 1 if ts.size else 0
    if after > np.iinfo(np.int64).max:
        raise _bad(f"timestamps[{ts.size - 1}]", "must lie within the years 1677-2262")
    whole = replace(
        series, prediction_timestamps=np.array([after], dtype=np.int64), pred_len=None, return_paths=False
    )
    return prepare(whole, limits).sampling


def plan_backtest(request: BacktestInput, limits: Limits, *, max_rows: int | None = None) -> BacktestPlan:
    """Resolve the defaults and check the request; ``max_rows`` is the engine's admission limit
    (queued plus running rows): a backtest whose origins x samples exceed it can never run."""
    horizon = _check_scalars(request, limits)
    sampling = backtest_sampling(request.sampling)
    resolved = validate_history(replace(request.series, sampling=sampling), limits)
    rows = int(np.asarray(request.series.timestamps).size)

    m = limits.max_context
    context = request.context
    if context is None:
        context = min(DEFAULT_BACKTEST_CONTEXT, m - horizon, rows - horizon)
    needed = max(context, MIN_BACKTEST_CONTEXT) + horizon
    if rows < needed:
        raise _bad(
            "timestamps",
            f"a backtest needs context + horizon = {needed} rows for one origin, the history has {rows}",
        )
    step = horizon if request.origin_step is None else request.origin_step
    fit = (rows - horizon - context) // step + 1
    samples = resolved.sample_count
    if max_rows is not None and samples > max_rows:
        raise _bad("sample_count", f"{samples} paths per origin exceed the engine's {max_rows} rows")
    if request.origins is None:
        count = min(fit, limits.max_backtest_origins)
        if max_rows is not None:
            count = min(count, max_rows // samples)
    else:
        count = request.origins
        if count > fit:
            raise _bad(
                "origins",
                f"{count} origins {step} rows apart need {context + horizon + (count - 1) * step} rows "
                f"(context {context}, horizon {horizon}); the history's {rows} rows fit {fit}",
            )
    if max_rows is not None and count * samples > max_rows:
        raise _bad(
            "origins",
            f"{count} origins x sample_count {samples} = {count * samples} engine rows exceed the "
            f"server's admission limit of {max_rows} rows; ask for at most "
            f"{max_rows // samples} origins, or fewer samples",
        )
    last = rows - horizon
    origins = last - step * np.arange(count - 1, -1, -1, dtype=np.int64)
    plan = BacktestPlan(
        horizon=horizon,
        context=context,
        origin_step=step,
        origins=origins,
        sampling=sampling,
        resolved=resolved,
        quantiles=quantile_levels(resolved.quantiles),
    )
    flat = flat_origins(context_closes(request.series, plan))
    if flat:
        shown = ", ".join(str(int(origins[i])) for i in flat[:10]) + (", ..." if len(flat) > 10 else "")
        raise _bad(
            "close",
            f"the close is constant over the {context} context candles of the origin(s) at row(s) "
            f"{shown}, so MASE (errors scaled by the window's mean absolute close change) is undefined; "
            "choose another context or origins",
        )
    return plan


def _window(values: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[starts[:, None] + np.arange(length)[None, :]]


def context_closes(series: SeriesInput, plan: BacktestPlan) -> np.ndarray:
    """[O, context]: the closes each origin's model sees, oldest first."""
    return _window(series.close, plan.origins - plan.context, plan.context)


def actual_closes(series: SeriesInput, plan: BacktestPlan) -> np.ndarray:
    """[O, horizon]: the closes that followed each origin."""
    return _window(series.close, plan.origins, plan.horizon)


def origin_series(request: BacktestInput, plan: BacktestPlan) -> list[SeriesInput]:
    """One forecast per origin: its context window, the actual rows' timestamps to predict,
    its seed, its sample paths returned (they are scored); quantiles only when the forecasts
    are returned (the scores take theirs from the paths)."""
    series = request.series
    seed = plan.sampling.seed
    out = []
    for o, t in enumerate(int(t) for t in plan.origins):
        window = slice(t - plan.context, t)

        def cut(values: np.ndarray | None, window: slice = window) -> np.ndarray | None:
            if values is None or len(values) == 0:
                return values
            return np.asarray(values)[window]

        out.append(
            replace(
                series,
                timestamps=np.asarray(series.timestamps, dtype=np.int64)[window],
                open=np.asarray(series.open)[window],
                high=np.asarray(series.high)[window],
                low=np.asarray(series.low)[window],
                close=np.asarray(series.close)[window],
                volume=cut(series.volume),
                amount=cut(series.amount),
                prediction_timestamps=np.asarray(series.timestamps, dtype=np.int64)[t : t + plan.horizon],
                pred_len=None,
                sampling=replace(
                    plan.sampling,
                    seed=origin_seed(seed, o),
                    quantiles=plan.quantiles if request.return_forecasts else (),
                ),
                return_paths=True,
            )
        )
    return out


def charged_origins(
    *,
    rows: int,
    horizon: int | None,
    context: int | None,
    origins: int | None,
    origin_step: int | None,
    limits: Limits,
) -> int:
    """How many origins a backtest request costs against the caller's rate limit, from its
    fields as sent (before validation, which it never raises): the origins it asks for (at
    most max_backtest_origins), or, unset, as many as fit its history; at least 1."""
    most = limits.max_backtest_origins
    if origins is not None:
        return max(1, min(origins, most))
    m = limits.max_context
    if horizon is None or not 1 <= horizon <= m:
        return 1
    if context is None:
        context = min(DEFAULT_BACKTEST_CONTEXT, m - horizon, rows - horizon)
    step = horizon if origin_step is None or origin_step < 1 else origin_step
    if context < MIN_BACKTEST_CONTEXT or rows < context + horizon:
        return 1
    return max(1, min((rows - horizon - context) // step + 1, most))
