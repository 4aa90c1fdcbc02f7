#!/usr/bin/env python
"""Backtest benchmark: one 64-origin, 8-sample backtest against the same 64 forecasts one at a time.

Run from the repository root::

    python benchmarks/bench_backtest.py [--quick] [--repeats N] [--origins N] [--samples N]
        [--context N] [--horizon N] [--threads N] [--json OUT]

Random weights at Kronos-small dimensions (predictor d_model 512, 8 layers, 8 heads, ff 1024;
Kronos-Tokenizer-base dimensions; ``randomweights.SMALL``), max_context 512, real candles from
``regression_input.csv``, sampling T=1.0, top_p=0.9, seeded. One engine (max_batch_rows 64,
admission large enough for the whole backtest) serves both, in the same run, interleaved:

- **backtest**: ``Dataplane.backtest`` with every origin submitted at once (the engine runs
  them as rows of shared steps), scores included;
- **one at a time**: the backtest's 64 origin forecasts (the same windows, prediction
  timestamps and seeds), each ``Dataplane.predict`` awaited before the next is sent.

Both produce the same sample paths (seeded; checked every repeat). Reported: min / median /
max wall seconds, the ratio of the medians (target >= 3x), and where the engine's time went
(prefill, decode passes, the rest of the steps) from an engine observer.

``--quick`` uses tiny dimensions and few origins (a smoke test, seconds); its ratio says
nothing about the target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from enginebench.workload import FULL, QUICK, SumObserver, build_bundle, load_candles
from harness import PhaseLoad, machine_info, passive_omp_or_reexec, summary, table, write_json
from kronos_server.backtest.origins import origin_series, plan_backtest
from kronos_server.backtest.run import score_backtest
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.dataplane import Dataplane
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import Forecast, SamplingParams, SeriesInput

TARGET = 3.0
SEED = 1234
MAX_BATCH_ROWS = 64


def backtest_request(candles: Any, args: argparse.Namespace) -> BacktestInput:
    c = candles.cols
    series = SeriesInput(
        "bench",
        candles.ts,
        c["open"],
        c["high"],
        c["low"],
        c["close"],
        volume=c["volume"],
        amount=c["amount"],
        sampling=SamplingParams(temperature=1.0, top_k=0, top_p=0.9, sample_count=args.samples, seed=SEED),
    )
    return BacktestInput(
        series, horizon=args.horizon, context=args.context, origins=args.origins, origin_step=args.horizon
    )


async def one_at_a_time(plane: Dataplane, windows: list[SeriesInput]) -> list[Forecast]:
    return [await plane.predict(w) for w in windows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny dimensions, 16 origins (smoke test)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="interleaved runs of each mode (default 3, quick 2)"
    )
    ap.add_argument("--origins", type=int, default=None, help="origins (default 64, quick 16)")
    ap.add_argument("--samples", type=int, default=8, help="sample paths per origin (default 8)")
    ap.add_argument("--context", type=int, default=None, help="context candles (default 256, quick 64)")
    ap.add_argument("--horizon", type=int, default=None, help="horizon = origin step (default 16, quick 8)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    args = ap.parse_args(argv)
    if argv is None:
        passive_omp_or_reexec("passive")
    plan = QUICK if args.quick else FULL
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.origins = args.origins or (16 if args.quick else 64)
    args.context = args.context or (64 if args.quick else 256)
    args.horizon = args.horizon or (8 if args.quick else 16)

    import torch

    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    bundle = build_bundle(plan)
    candles = load_candles()
    request = backtest_request(candles, args)
    limits = Limits(max_context=plan.max_context, max_backtest_origins=max(256, args.origins))
    rows = args.origins * args.samples
    observer = SumObserver()
    engine = Engine(
        bundle,
        EngineConfig(max_queued_rows=rows, max_batch_rows=MAX_BATCH_ROWS, torch_threads=args.threads),
        observer,
    )
    engine.start()
    plane = Dataplane(bundle, engine, limits, None)
    p = plan.predictor
    print(f"Backtest benchmark ({plan.name} mode)  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"   machine: {info['nproc']} CPUs ({info['cpu_model']}), torch {info['torch']}, "
        f"torch threads {args.threads}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
    )
    print(
        f"   predictor d_model {p.d_model}, {p.n_layers} layers, {p.n_heads} heads, ff {p.ff_dim} (random "
        f"weights); max_context {plan.max_context}; engine max_batch_rows {MAX_BATCH_ROWS}, "
        f"admission {rows} rows"
    )
    print(
        f"   backtest: {args.origins} origins x {args.samples} samples, context {args.context}, horizon "
        f"{args.horizon} (= origin step), {candles.ts.size} candles of {candles.path.name}; "
        f"{args.repeats} interleaved repeats"
    )
    bt_plan = plan_backtest(request, limits, max_rows=rows)
    windows = [replace(w, return_paths=True) for w in origin_series(request, bt_plan)]
    try:
        asyncio.run(plane.backtest(replace(request, origins=2)))  # warm-up, not counted
        walls: dict[str, list[float]] = {"backtest": [], "one at a time": []}
        parts: dict[str, list[dict[str, Any]]] = {"backtest": [], "one at a time": []}
        load = {"backtest": PhaseLoad(), "one at a time": PhaseLoad()}
        agree = []
        for _ in range(args.repeats):
            observer.reset()
            with load["backtest"].timed():
                t0 = time.perf_counter()
                result: BacktestResult = asyncio.run(plane.backtest(request))
                walls["backtest"].append(time.perf_counter() - t0)
            parts["backtest"].append(observer.snapshot())
            observer.reset()
            with load["one at a time"].timed():
                t0 = time.perf_counter()
                forecasts = asyncio.run(one_at_a_time(plane, windows))
                walls["one at a time"].append(time.perf_counter() - t0)
            parts["one at a time"].append(observer.snapshot())
            # seeded: the same paths, so the one-at-a-time forecasts score as the backtest's model
            agree.append(score_backtest(request, bt_plan, forecasts)[0] == result.scores[0])
    finally:
        engine.stop(grace=60)

    rows_out = []
    out: dict[str, Any] = {"machine": info, "command": " ".join([Path(sys.executable).name, *sys.argv])}
    for mode in walls:
        s = summary(walls[mode])
        secs = {
            k: statistics.median(r["seconds"][k] for r in parts[mode]) for k in ("step", "prefill", "decode")
        }
        steps = parts[mode][0]["calls"]["step"]
        decode_calls = max(1, parts[mode][0]["calls"]["decode"])
        out[mode] = {"wall_s": s, "engine_s": secs, "steps": steps, "other_cores": load[mode].other_cores()}
        rows_out.append(
            [
                mode,
                f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f}",
                f"{secs['prefill']:.2f}",
                f"{secs['decode']:.2f}",
                f"{secs['step'] - secs['prefill'] - secs['decode']:.2f}",
                str(steps),
                f"{1000 * secs['decode'] / decode_calls:.1f}",
                f"{load[mode].other_cores():.2f}",
            ]
        )
    table(
        [
            "mode",
            "wall s min / median / max",
            "prefill s",
            "decode s",
            "heads+final s",
            "steps",
            "ms/decode pass",
            "other procs (cores)",
        ],
        rows_out,
    )
    ratio = statistics.median(walls["one at a time"]) / statistics.median(walls["backtest"])
    out.update(
        {"ratio": ratio, "target": TARGET, "same_paths": all(agree), "args": vars(args) | {"json": None}}
    )
    print(
        "   the one-at-a-time forecasts' paths scored as the backtest's model: identical in "
        f"{sum(agree)}/{len(agree)} runs"
    )
    met = "(quick mode)" if args.quick else "MET" if ratio >= TARGET else "NOT MET"
    print(f"RATIO backtest_vs_one_at_a_time {ratio:.2f}x   target >= {TARGET:g}x: {met}")
    if args.json:
        write_json(args.json, out)
    return 0 if all(agree) else 1


if __name__ == "__main__":
    raise SystemExit(main())
