"""The backtest's plan: defaults and origins as the proto's BacktestRequest describes them,
every refusal naming its field (also as the transports spell it), the windows cut per origin."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from kronos_server.backtest.origins import (
    actual_closes,
    charged_origins,
    context_closes,
    origin_seed,
    origin_series,
    plan_backtest,
)
from kronos_server.backtest.types import DEFAULT_BACKTEST_QUANTILES, BacktestInput
from kronos_server.errors import InvalidInputError
from kronos_server.forecast import fields
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import SamplingParams, SeriesInput

LIMITS = Limits(max_context=64, max_backtest_origins=40)
HOUR_NS = 3600 * 10**9


def series(n: int = 200, seed: int = 0, **changes: Any) -> SeriesInput:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    ts = np.datetime64("2024-01-01", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * HOUR_NS
    base = SeriesInput(
        "s",
        ts,
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        volume=rng.uniform(1, 2, n),
    )
    return replace(base, **changes)


def refused(request: BacktestInput, limits: Limits = LIMITS, **kw: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        plan_backtest(request, limits, **kw)
    return info.value


def test_defaults_follow_the_proto() -> None:
    # context = min(256, max_context - horizon, rows - horizon); step = horizon; as many
    # origins as fit, the last at rows - horizon, none with fewer than context rows before it
    plan = plan_backtest(BacktestInput(series(200), horizon=8), LIMITS)
    assert plan.context == 56 and plan.origin_step == 8
    assert plan.origins.tolist() == list(range(56, 193, 8))
    assert plan.sample_count == 8 and plan.quantiles == DEFAULT_BACKTEST_QUANTILES
    # a short history caps the context at rows - horizon: one origin, at the last row
    short = plan_backtest(BacktestInput(series(30), horizon=10), LIMITS)
    assert (short.context, short.origins.tolist()) == (20, [20])


def test_origins_count_step_and_the_limit() -> None:
    plan = plan_backtest(BacktestInput(series(200), horizon=4, context=16, origins=5, origin_step=3), LIMITS)
    assert plan.origins.tolist() == [184, 187, 190, 193, 196]  # ends at rows - horizon
    # unset: as many as fit, at most max_backtest_origins (40 here; 45 would fit)
    capped = plan_backtest(BacktestInput(series(200), horizon=4, context=16), LIMITS)
    assert capped.count == 40 and capped.origins[-1] == 196
    # exactly as many as fit is accepted; one more is refused naming origins
    fit = (200 - 4 - 16) // 4 + 1
    ok = plan_backtest(
        BacktestInput(series(200), horizon=4, context=16, origins=fit),
        replace(LIMITS, max_backtest_origins=fit),
    )
    assert ok.origins[0] == 16
    err = refused(
        BacktestInput(series(200), horizon=4, context=16, origins=fit + 1),
        replace(LIMITS, max_backtest_origins=99),
    )
    assert err.field == "origins" and f"fit {fit}" in err.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"horizon": None}, "horizon"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 65}, "horizon"),
        ({"horizon": 63}, "horizon"),  # leaves fewer than 2 context candles in max_context 64
        ({"horizon": 8, "context": 1}, "context"),
        ({"horizon": 8, "context": 57}, "context"),  # past max_context - horizon
        ({"horizon": 8, "origin_step": 0}, "origin_step"),
        ({"horizon": 8, "origins": 0}, "origins"),
        ({"horizon": 8, "origins": 41}, "origins"),  # past max_backtest_origins
    ],
)
def test_scalar_refusals_name_their_field(changes: dict[str, Any], field: str) -> None:
    err = refused(BacktestInput(series(200), **changes))
    assert err.field == field and err.message.startswith(f"{field}: ")
    # the backtest's own fields have the same name in the proto and in REST
    assert fields.proto_path(field) == field and fields.rest_path(field) == field


def test_too_little_history_names_the_timestamps() -> None:
    err = refused(BacktestInput(series(40), horizon=8, context=40))
    assert err.field == "timestamps" and "48 rows" in err.message
    assert fields.proto_path(err.field) == "history.timestamps_ms"
    assert fields.rest_path(err.field) == "timestamps"


def test_history_values_are_checked_with_whole_history_indices() -> None:
    s = series(200)
    close = s.close.copy()
    close[150] = -1.0
    err = refused(BacktestInput(replace(s, close=close), horizon=8))
    assert err.field == "close[150]"
    assert fields.proto_path(err.field) == "history.close[150]"
    ts = s.timestamps.copy()
    ts[3] = ts[2]
    assert refused(BacktestInput(replace(s, timestamps=ts), horizon=8)).field == "timestamps[3]"
    assert refused(BacktestInput(s, horizon=8), replace(LIMITS, max_history=100)).field == "timestamps"
    assert refused(BacktestInput(replace(s, timezone="Mars/Olympus"), horizon=8)).field == "timezone"


@pytest.mark.parametrize(
    ("sampling", "field"),
    [
        (SamplingParams(top_p=2.0), "top_p"),
        (SamplingParams(sample_count=0), "sample_count"),
        (SamplingParams(quantiles=(0.1, 1.5)), "quantiles[1]"),
    ],
)
def test_sampling_refusals(sampling: SamplingParams, field: str) -> None:
    err = refused(BacktestInput(series(200, sampling=sampling), horizon=8))
    assert err.field == field
    assert fields.proto_path(field) == f"sampling.{field}"


def test_admission_limit_caps_the_default_and_refuses_a_count_that_never_fits() -> None:
    s = series(200, sampling=SamplingParams(sample_count=4))
    plan = plan_backtest(BacktestInput(s, horizon=8), LIMITS, max_rows=20)
    assert plan.count == 5 and plan.rows == 20  # as many as the engine can ever admit
    err = refused(BacktestInput(s, horizon=8, origins=6), max_rows=20)
    assert err.field == "origins" and "24 engine rows" in err.message and "at most 5 origins" in err.message
    assert refused(BacktestInput(s, horizon=8), max_rows=3).field == "sample_count"


def test_a_flat_context_window_is_refused_naming_the_close() -> None:
    s = series(200)
    close, open_, high, low = (np.asarray(a).copy() for a in (s.close, s.open, s.high, s.low))
    close[100:140] = open_[100:140] = high[100:140] = low[100:140] = 50.0
    flat = replace(s, close=close, open=open_, high=high, low=low)
    err = refused(BacktestInput(flat, horizon=8, context=16))
    assert err.field == "close" and "MASE" in err.message
    assert fields.proto_path("close") == "history.close"


def test_windows_seeds_and_timestamps_per_origin() -> None:
    s = series(120, sampling=SamplingParams(seed=2**64 - 2, quantiles=(0.9, 0.1)))
    request = BacktestInput(s, horizon=5, context=20, origins=3, origin_step=7, return_forecasts=True)
    plan = plan_backtest(request, LIMITS)
    assert plan.origins.tolist() == [101, 108, 115]
    windows = origin_series(request, plan)
    for o, (t, w) in enumerate(zip(plan.origins.tolist(), windows, strict=True)):
        assert w.timestamps.tolist() == s.timestamps[t - 20 : t].tolist()
        assert w.close.tolist() == s.close[t - 20 : t].tolist()
        assert w.volume is not None and w.volume.tolist() == np.asarray(s.volume)[t - 20 : t].tolist()
        assert w.prediction_timestamps is not None
        assert w.prediction_timestamps.tolist() == s.timestamps[t : t + 5].tolist()
        assert w.return_paths and w.sampling.sample_count == 8
        assert w.sampling.quantiles == (0.1, 0.9)
        assert w.sampling.seed == (2**64 - 2 + o) % 2**64
    assert [w.sampling.seed for w in windows] == [2**64 - 2, 2**64 - 1, 0]
    assert origin_seed(None, 3) is None
    np.testing.assert_array_equal(context_closes(s, plan)[1], s.close[88:108])
    np.testing.assert_array_equal(actual_closes(s, plan)[2], s.close[115:120])
    # without return_forecasts the origins compute no quantiles (the scores take theirs from paths)
    plain = origin_series(replace(request, return_forecasts=False), plan)
    assert all(w.sampling.quantiles == () for w in plain)


def test_charged_origins_never_raises_and_matches_the_plan() -> None:
    limits = LIMITS
    kw: dict[str, Any] = {"context": None, "origins": None, "origin_step": None, "limits": limits}
    assert (
        charged_origins(rows=200, horizon=8, **kw)
        == plan_backtest(BacktestInput(series(200), horizon=8), limits).count
    )
    assert charged_origins(rows=200, horizon=4, **{**kw, "context": 16}) == 40  # capped
    assert charged_origins(rows=200, horizon=8, **{**kw, "origins": 7}) == 7
    assert charged_origins(rows=200, horizon=8, **{**kw, "origins": 10_000}) == 40
    for bad in ({"horizon": None}, {"horizon": 0}, {"horizon": 8, "rows": 3}, {"horizon": 8, "origins": -5}):
        args = {"rows": 200, **kw, **bad}
        assert charged_origins(**args) == 1
