"""A whole backtest: plan it, submit every origin at once, await them together, score.

Every origin's forecast is submitted before any is awaited, as one group (all admitted or
none), so the engine runs the origins as rows of the same steps. The backtest has one
deadline: when it passes, or the caller goes away, every origin's ticket is cancelled and
the engine frees their rows at its next step. Knows no transport and no torch: the engine
is reached through the ``submit`` function the dataplane hands in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from kronos_server.backtest.origins import (
    BacktestPlan,
    actual_closes,
    context_closes,
    origin_series,
    plan_backtest,
)
from kronos_server.backtest.scores import ForecasterScores, score_all
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.engine.ticket import Ticket
from kronos_server.errors import DeadlineExceededError
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import prepare
from kronos_server.forecast.types import FEATURES, Forecast, PreparedSeries

CLOSE = FEATURES.index("close")

#: validate-free submission of prepared origins, all or none, under a deadline (seconds)
SubmitGroup = Callable[[Sequence[PreparedSeries], float | None], Sequence[Ticket]]


def prepare_origins(request: BacktestInput, plan: BacktestPlan, limits: Limits) -> list[PreparedSeries]:
    """Each origin's window as the engine's input. The whole history was checked by the plan;
    every origin returns its paths (they are scored), whatever the return_paths limit."""
    per_origin = replace(limits, max_return_paths=max(limits.max_return_paths, plan.sample_count))
    return [prepare(series, per_origin) for series in origin_series(request, plan)]


def _consume(future: asyncio.Future[Forecast]) -> None:
    if not future.cancelled():
        future.exception()


async def await_all(tickets: Sequence[Ticket], timeout: float | None) -> list[Forecast]:
    """Every ticket's forecast, in order. On the deadline (DeadlineExceededError), a failed
    origin (its error) or cancellation, every ticket is cancelled before raising."""
    results = [asyncio.wrap_future(t.future) for t in tickets]
    for result in results:
        result.add_done_callback(_consume)  # the others' errors, once one has failed
    try:
        async with asyncio.timeout(timeout):
            return list(await asyncio.gather(*(asyncio.shield(r) for r in results)))
    except TimeoutError:
        for ticket in tickets:
            ticket.cancel()
        raise DeadlineExceededError(
            "backtest timed out", details={"timeout_s": timeout, "origins": len(tickets)}
        ) from None
    except BaseException:
        for ticket in tickets:
            ticket.cancel()
        raise


def model_paths(forecasts: Sequence[Forecast]) -> np.ndarray:
    """[O, S, H] float64: every origin's sample paths of the close."""
    paths = []
    for forecast in forecasts:
        if forecast.paths is None:
            raise RuntimeError("a backtest origin's forecast came back without its paths")
        paths.append(forecast.paths[:, :, CLOSE])
    return np.stack(paths).astype(np.float64)


def score_backtest(
    request: BacktestInput, plan: BacktestPlan, forecasts: Sequence[Forecast]
) -> tuple[ForecasterScores, ...]:
    """Model (mean of its paths as the point), naive, drift and volatility, scored on the close."""
    context = context_closes(request.series, plan)
    return score_all(
        actual=actual_closes(request.series, plan),
        last=context[:, -1],
        context_closes=context,
        model_paths=model_paths(forecasts),
        quantiles=plan.quantiles,
    )


def result_of(
    request: BacktestInput,
    plan: BacktestPlan,
    forecasts: Sequence[Forecast],
    *,
    model_version: str,
    tokenizer_version: str,
) -> BacktestResult:
    timestamps = np.asarray(request.series.timestamps, dtype=np.int64)
    return BacktestResult(
        series_id=request.series.series_id,
        scores=score_backtest(request, plan, forecasts),
        origins=plan.origins.copy(),
        origin_timestamps=timestamps[plan.origins],
        horizon=plan.horizon,
        context=plan.context,
        origin_step=plan.origin_step,
        sample_count=plan.sample_count,
        seed=request.sampling.seed,
        model_version=model_version,
        tokenizer_version=tokenizer_version,
        quantiles=plan.quantiles,
        forecasts=tuple(replace(f, paths=None) for f in forecasts) if request.return_forecasts else (),
    )


async def run_backtest(
    request: BacktestInput,
    limits: Limits,
    submit: SubmitGroup,
    *,
    timeout: float | None,
    max_rows: int | None,
    model_version: str,
    tokenizer_version: str,
) -> BacktestResult:
    """The backtest end to end. Raises InvalidInputError (a field at fault, or too big for the
    engine's ``max_rows`` admission limit), OverloadedError (no room now), DeadlineExceededError,
    or an origin's own error; nothing stays queued after it raises."""
    plan = plan_backtest(request, limits, max_rows=max_rows)
    prepared = prepare_origins(request, plan, limits)
    tickets = submit(prepared, timeout)
    forecasts = await await_all(tickets, timeout)
    # scoring is numpy work of tens of ms for hundreds of origins: off the event loop, which
    # keeps serving the other calls meanwhile
    return await asyncio.to_thread(
        result_of, request, plan, forecasts, model_version=model_version, tokenizer_version=tokenizer_version
    )
