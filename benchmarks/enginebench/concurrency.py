"""Section 3: concurrent forecasts against the same ones one at a time, through one engine."""

from __future__ import annotations

import statistics
import time
from typing import Any

from enginebench.workload import REQUEST_SEED, Candles, Plan, SumObserver, make_series, run_one, start_engine
from harness import PhaseLoad, Report, fmt_s, section, summary, table
from kronos_server.model.bundle import ModelBundle


def bench_concurrency(
    report: Report, bundle: ModelBundle, candles: Candles, plan: Plan, threads: int
) -> None:
    k = plan.concurrent
    title = f"3. {k} concurrent {plan.n}->{plan.grow_len} forecasts vs the same {k} one at a time"
    with section(report, "concurrency", title) as out:
        obs = SumObserver()
        engine = start_engine(bundle, threads, obs)
        try:
            series = [
                make_series(
                    candles, plan, i * plan.window_stride, plan.grow_len, 1, REQUEST_SEED + i, f"w{i}"
                )
                for i in range(k)
            ]
            # warm-up: one burst (grows the cache to k rows once), not counted
            for t in [engine.submit(s) for s in series]:
                t.wait()
            runs: dict[str, list[dict[str, Any]]] = {"concurrent": [], "sequential": []}
            mode_load = {"concurrent": PhaseLoad(), "sequential": PhaseLoad()}
            for _ in range(plan.concurrency_repeats):
                # concurrent: all submitted at once
                obs.reset()
                with mode_load["concurrent"].timed():
                    t0 = time.perf_counter()
                    tickets = [engine.submit(s) for s in series]
                    done_at: list[float] = []
                    for t in tickets:
                        t.wait()
                        done_at.append(time.perf_counter() - t0)
                    wall = time.perf_counter() - t0
                runs["concurrent"].append(
                    {"wall": wall, "latency_median": statistics.median(done_at), **obs.snapshot()}
                )
                # sequential: one at a time
                obs.reset()
                with mode_load["sequential"].timed():
                    t0 = time.perf_counter()
                    lat = []
                    for s in series:
                        dt, _ = run_one(engine, s)
                        lat.append(dt)
                    wall = time.perf_counter() - t0
                runs["sequential"].append(
                    {"wall": wall, "latency_median": statistics.median(lat), **obs.snapshot()}
                )
            cache_bytes = engine.stats().cache_bytes_per_row
        finally:
            engine.stop(grace=60)

        rows = []
        agg: dict[str, dict[str, Any]] = {}
        for mode in ("concurrent", "sequential"):
            rs = runs[mode]
            wall_s = summary([r["wall"] for r in rs])
            part = {
                kind: summary([r["seconds"][kind] for r in rs])
                for kind in ("step", "prefill", "decode", "slide")
            }
            other = summary(
                [
                    r["seconds"]["step"]
                    - r["seconds"]["prefill"]
                    - r["seconds"]["decode"]
                    - r["seconds"]["slide"]
                    for r in rs
                ]
            )
            outside = summary([r["wall"] - r["seconds"]["step"] for r in rs])
            lat_s = summary([r["latency_median"] for r in rs])
            steps = rs[0]["calls"]["step"]
            decode_calls = rs[0]["calls"]["decode"]
            agg[mode] = {
                "wall_s": wall_s,
                "parts_s": part,
                "heads_sampling_final_s": other,
                "outside_steps_s": outside,
                "request_latency_median_s": lat_s,
                "steps": steps,
                "decode_calls": decode_calls,
                "throughput_forecasts_per_s": k / wall_s["median"],
                "other_cores": mode_load[mode].other_cores(),
                "runs": rs,
            }
            rows.append(
                [
                    mode,
                    str(wall_s["n"]),
                    fmt_s(wall_s).split("  ", 1)[1],
                    f"{k / wall_s['median']:.2f}",
                    f"{lat_s['median']:.2f}",
                    f"{part['prefill']['median']:.2f}",
                    f"{part['decode']['median']:.2f}",
                    f"{part['slide']['median']:.2f}",
                    f"{other['median']:.2f}",
                    str(steps),
                    f"{1000 * part['decode']['median'] / max(decode_calls, 1):.1f}",
                ]
            )
        table(
            [
                "mode",
                "runs",
                "wall s min / median / max",
                "forecasts/s",
                "latency med s",
                "prefill s",
                "decode s",
                "slide s",
                "heads+final s",
                "steps",
                "ms/decode pass",
            ],
            rows,
        )
        print(
            "   (prefill/decode/slide/heads+final: engine-thread seconds summed per run, medians over runs;"
        )
        print("    heads+final = step time not in prefill/decode/slide: s1/s2 heads, sampling, final decode)")
        print(
            f"   runs interleaved (concurrent, sequential, ...); other processes' CPU use, concurrent "
            f"runs {mode_load['concurrent'].other_cores():.2f} cores, sequential runs "
            f"{mode_load['sequential'].other_cores():.2f} cores"
        )
        ratio = agg["sequential"]["wall_s"]["median"] / agg["concurrent"]["wall_s"]["median"]
        out.update(
            {"requests": k, "modes": agg, "throughput_ratio": ratio, "cache_bytes_per_row": cache_bytes}
        )
        report.ratio("concurrency", f"{k} at once vs one at a time: throughput", ratio)
