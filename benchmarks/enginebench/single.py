"""Sections 1 and 2: single forecasts (growing, sliding, sample_count > 1), engine vs recompute."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from enginebench.workload import (
    REQUEST_SEED,
    Candles,
    Plan,
    SumObserver,
    agreement,
    make_series,
    run_one,
    run_recompute,
)
from harness import PhaseLoad, Report, fmt_s, section, summary, table
from kronos_server.engine.engine import Engine
from kronos_server.model.bundle import ModelBundle


def bench_single(
    report: Report,
    bundle: ModelBundle,
    engine: Engine,
    obs: SumObserver,
    candles: Candles,
    plan: Plan,
    recompute_repeats: int,
) -> None:
    cases = [
        ("single_grow", plan.grow_len, 1),
        ("single_slide", plan.slide_len, 1),
        ("samples", plan.grow_len, plan.samples),
    ]
    for key, pred_len, samples in cases:
        label = f"{plan.n}->{pred_len}, sample_count {samples}"
        # step i sees c = n + i known tokens and slides when c > max_context (spec §5, §7)
        slide_steps = max(0, plan.n + pred_len - 1 - plan.max_context)
        title = {
            "single_grow": f"1a. Single forecast {plan.n}->{pred_len}: engine vs recompute",
            "single_slide": f"1b. Single forecast {plan.n}->{pred_len} ({slide_steps} sliding steps): "
            "engine vs recompute",
            "samples": f"2. {plan.n}->{pred_len} with sample_count {samples}: engine vs recompute",
        }[key]
        with section(report, key, title) as out:
            series = make_series(candles, plan, 0, pred_len, samples, REQUEST_SEED, key)
            run_one(engine, series)  # warm-up for this shape, not counted
            eng_t: list[float] = []
            parts: list[dict[str, Any]] = []
            forecast = None
            rec_t: list[float] = []
            ref = None
            eng_load, rec_load = PhaseLoad(), PhaseLoad()
            # engine runs in recompute_repeats + 1 chunks around the recompute runs, so that a load
            # change during the long baseline hits both paths
            chunks = np.array_split(np.arange(plan.engine_repeats), recompute_repeats + 1)
            order: list[str] = []
            for i, chunk in enumerate(chunks):
                for _ in chunk:
                    obs.reset()
                    with eng_load.timed():
                        dt, forecast = run_one(engine, series)
                    eng_t.append(dt)
                    parts.append(obs.snapshot())
                    order.append("E")
                if i < recompute_repeats:
                    with rec_load.timed():
                        dt, ref = run_recompute(bundle, series)
                    rec_t.append(dt)
                    order.append("R")
            assert forecast is not None and ref is not None
            diff = agreement(forecast.mean, ref, series)
            e, r = summary(eng_t), summary(rec_t)
            speedup = r["median"] / e["median"]
            out.update(
                {
                    "case": label,
                    "sliding_steps": slide_steps,
                    "engine_s": e,
                    "recompute_s": r,
                    "speedup": speedup,
                    "max_diff_normalised": diff,
                    "engine_parts": parts,
                    "run_order": "".join(order),
                    "other_cores_engine_runs": eng_load.other_cores(),
                    "other_cores_recompute_runs": rec_load.other_cores(),
                }
            )
            table(
                ["path", "runs", "seconds min / median / max", "steps/s (median)"],
                [
                    [
                        "engine (submit->result)",
                        str(e["n"]),
                        fmt_s(e).split("  ", 1)[1],
                        f"{pred_len / e['median']:.1f}",
                    ],
                    [
                        "recompute (generate)",
                        str(r["n"]),
                        fmt_s(r).split("  ", 1)[1],
                        f"{pred_len / r['median']:.2f}",
                    ],
                ],
            )
            med = {k: statistics.median(p["seconds"][k] for p in parts) for k in SumObserver.KINDS}
            dec_calls = parts[0]["calls"]["decode"]
            rest = med["step"] - med["prefill"] - med["decode"] - med["slide"]
            print(
                f"   engine inside (medians): prefill {med['prefill']:.3f} s, decode {med['decode']:.3f} s "
                f"({dec_calls} passes, {1000 * med['decode'] / max(dec_calls, 1):.1f} ms each), "
                f"slide {med['slide']:.3f} s ({parts[0]['calls']['slide']} passes), "
                f"heads+sampling+final decode {rest:.3f} s, outside steps {e['median'] - med['step']:.3f} s"
            )
            print(
                f"   run order {''.join(order)} (E engine, R recompute); other processes' CPU use during the "
                f"engine runs {eng_load.other_cores():.2f} cores, during the recompute runs "
                f"{rec_load.other_cores():.2f} cores"
            )
            print(
                f"   engine vs recompute forecast: max |diff| = {diff:.2e} (normalised units; "
                "same seed, same tokens expected)"
            )
            if samples > 1:
                per_row = engine.stats().cache_bytes_per_row
                print(
                    f"   KV cache held by this request: {samples} slots x {per_row / 2**20:.1f} MiB = "
                    f"{samples * per_row / 2**20:.0f} MiB (the shared {plan.n}-position prefix is stored, "
                    "and read each step, once per sample)"
                )
            report.ratio(key, f"{label}: recompute / engine (median)", speedup)
