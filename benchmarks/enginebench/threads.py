"""Section 6: torch threads 1 vs 2 x OMP_WAIT_POLICY unset/PASSIVE, each in a fresh process."""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

from enginebench.workload import (
    REQUEST_SEED,
    SCRIPT,
    Plan,
    SumObserver,
    build_bundle,
    load_candles,
    make_series,
    run_one,
    start_engine,
)
from harness import REEXEC_MARK, Report, fmt_s, run_probe, section, summary, table, time_call

THREAD_TAG = "THREADPROBE"


def thread_probe(plan: Plan, threads: int, repeats: int) -> dict[str, Any]:
    """Runs in a fresh process (own OpenMP runtime and env): engine single forecast, then one
    full-window pass on the main thread after the engine stopped (as the recompute path runs)."""
    torch.set_num_threads(threads)
    bundle = build_bundle(plan)
    candles = load_candles()
    series = make_series(candles, plan, 0, plan.grow_len, 1, REQUEST_SEED, "threads")
    obs = SumObserver()
    engine = start_engine(bundle, threads, obs)
    eng_t: list[float] = []
    decode_ms: list[float] = []
    try:
        run_one(engine, series)  # warm-up
        for _ in range(repeats):
            obs.reset()
            eng_t.append(run_one(engine, series)[0])
            snap = obs.snapshot()
            decode_ms.append(1000 * snap["seconds"]["decode"] / max(snap["calls"]["decode"], 1))
    finally:
        engine.stop(grace=60)
    pred = bundle.predictor
    probe = make_series(candles, plan, 0, 1, 1, 0, "probe")
    with torch.inference_mode():
        s1, s2 = bundle.tokenizer.encode(torch.from_numpy(probe.x_norm).unsqueeze(0))
        stamps = torch.from_numpy(probe.x_stamps).unsqueeze(0)
        pred.hidden(s1, s2, stamps)
        hid_t = [time_call(lambda: pred.hidden(s1, s2, stamps), 1) for _ in range(repeats)]
    return {
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "engine_s": summary(eng_t),
        "decode_pass_ms": summary(decode_ms),
        "hidden_s": summary(hid_t),
    }


def bench_threads(report: Report, plan: Plan, repeats: int) -> None:
    title = (
        f"6. torch threads 1 vs 2 x OpenMP wait policy (fresh subprocess each): engine {plan.n}->"
        f"{plan.grow_len}, and one [1,{plan.n}] pass on the main thread"
    )
    with section(report, "threads", title, child=True) as out:
        results = []
        for policy in ("(unset)", "PASSIVE"):
            for threads in (1, 2):
                env = dict(os.environ)
                env.pop("OMP_WAIT_POLICY", None)
                env[REEXEC_MARK] = "1"
                if policy != "(unset)":
                    env["OMP_WAIT_POLICY"] = policy
                cmd = [sys.executable, str(SCRIPT), "--_thread-probe", "--threads", str(threads)]
                cmd += ["--engine-repeats", str(repeats), "--omp-wait-policy", "inherit"]
                if plan.name == "quick":
                    cmd.append("--quick")
                results.append(run_probe(cmd, THREAD_TAG, timeout=900, env=env))
        rows = [
            [
                str(r["threads"]),
                r["omp_wait_policy"],
                fmt_s(r["engine_s"]),
                f"{r['decode_pass_ms']['median']:.1f}",
                fmt_s(r["hidden_s"], 1000, 1),
            ]
            for r in results
        ]
        table(
            [
                "threads",
                "OMP_WAIT_POLICY",
                f"engine {plan.n}->{plan.grow_len} s  min / med / max",
                "ms/decode pass (med)",
                f"predictor.hidden [1,{plan.n}] ms  min / med / max",
            ],
            rows,
        )
        out["runs"] = results
        by = {(r["threads"], r["omp_wait_policy"]): r for r in results}
        for policy in ("(unset)", "PASSIVE"):
            e1, e2 = by[(1, policy)]["engine_s"]["median"], by[(2, policy)]["engine_s"]["median"]
            h1, h2 = by[(1, policy)]["hidden_s"]["median"], by[(2, policy)]["hidden_s"]["median"]
            out[f"speedup_2_over_1_{policy.strip('()')}"] = {"engine": e1 / e2, "hidden": h1 / h2}
            print(
                f"   OMP_WAIT_POLICY {policy}: 2 threads vs 1: engine forecast {e1 / e2:.2f}x, "
                f"main-thread pass {h1 / h2:.2f}x (>1 = 2 threads faster)"
            )
