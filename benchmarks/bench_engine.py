#!/usr/bin/env python
"""Engine benchmark: KV-cached continuous-batching engine vs the recompute path.

Run from the repository root::

    python benchmarks/bench_engine.py [--quick] [--json OUT] [--threads N]
        [--no-thread-sweep] [--no-streaming] [--omp-wait-policy passive|inherit]

The script re-runs itself under OMP_WAIT_POLICY=PASSIVE unless the variable is set or
``--omp-wait-policy inherit`` is given (section 6 measures why: on a CPU shared with other
processes, spinning OpenMP workers make every parallel region wait for a time slice).

Random weights at Kronos-small dimensions (predictor d_model 512, 8 layers; tokenizer-base
dimensions), real candles from ``regression_input.csv``, sampling T=1.0, top_p=0.9, top_k=0
with fixed seeds. Every figure is measured in the same run; timings are reported as
min/median/max over the stated number of repeats and ratios use medians.

Sections:
  1. single forecasts, engine vs recompute (400->100 grows only; 400->120 slides its last 7 steps)
  2. 400->100 with sample_count 8, engine vs recompute
  3. 16 concurrent forecasts vs the same 16 one at a time through the engine
  4. prefill GFLOP/s against torch.mm GFLOP/s on the pass's own GEMM shapes
  5. memory: RSS after load, peak RSS with 16 requests in flight (fresh subprocess), KV bytes/row
  6. torch threads 1 vs 2 x OMP_WAIT_POLICY unset/PASSIVE (fresh subprocesses)
  7. streaming (every step published) vs plain requests

The sections live in ``enginebench/`` (one module each, the workload in ``workload.py``);
timing, load, machine facts and the report in ``harness.py``.

``--quick`` uses tiny dimensions and short series (a smoke test, < 60 s); its ratios say
nothing about the targets, which are only evaluated in the full mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from enginebench import concurrency, memory, prefill, single, streaming, threads, workload
from enginebench.workload import FULL, QUICK, REQUEST_SEED, TARGETS, TEMPERATURE, TOP_K, TOP_P
from harness import REEXEC_MARK, Report, machine_info, passive_omp_or_reexec, print_probe_result, write_json
from randomweights import MODEL_SEED


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny dimensions, short series (smoke test, < 60 s)")
    ap.add_argument("--json", type=Path, help="also write every measurement to this JSON file")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--recompute-repeats", type=int, default=None, help="runs of each recompute baseline")
    ap.add_argument("--engine-repeats", type=int, default=None, help="runs of each engine measurement (>= 3)")
    ap.add_argument("--no-streaming", action="store_true", help="skip section 7 (streaming vs plain)")
    ap.add_argument("--no-thread-sweep", action="store_true", help="skip section 6 (threads x OMP policy)")
    ap.add_argument(
        "--omp-wait-policy",
        choices=("passive", "inherit"),
        default="passive",
        help="passive (default): re-run under OMP_WAIT_POLICY=PASSIVE unless the variable is set; "
        "inherit: leave the environment as it is",
    )
    ap.add_argument("--_memory-probe", dest="memory_probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_thread-probe", dest="thread_probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if argv is None:
        passive_omp_or_reexec(args.omp_wait_policy)

    plan = QUICK if args.quick else FULL
    if args.engine_repeats is not None:
        plan = replace(
            plan,
            engine_repeats=args.engine_repeats,
            concurrency_repeats=args.engine_repeats,
            thread_repeats=args.engine_repeats,
        )
    if args.memory_probe:
        print_probe_result(memory.MEMORY_TAG, memory.memory_probe(plan, args.threads))
        return 0
    if args.thread_probe:
        print_probe_result(threads.THREAD_TAG, threads.thread_probe(plan, args.threads, plan.engine_repeats))
        return 0
    recompute_repeats = args.recompute_repeats or plan.recompute_repeats

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    report = Report(plan.name, TARGETS)
    report.data["machine"] = info
    report.data["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    report.data["loadavg_start"] = os.getloadavg()
    print(f"Kronos engine benchmark ({plan.name} mode)  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"   machine: {info['nproc']} CPUs ({info['cpu_model']}), torch {info['torch']}, "
        f"torch threads {args.threads}, Python {info['python']}"
    )
    print(f"   loadavg at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    omp = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    how = (
        " (set by this script; --omp-wait-policy inherit leaves it alone)"
        if os.environ.get(REEXEC_MARK) == "set-by-script"
        else ""
    )
    print(f"   OMP_WAIT_POLICY={omp}{how}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}")
    p, tk = plan.predictor, plan.tokenizer
    print(
        f"   predictor: d_model {p.d_model}, {p.n_layers} layers, {p.n_heads} heads, ff {p.ff_dim}, "
        f"s1/s2 bits {p.s1_bits}/{p.s2_bits}; tokenizer: d_model {tk.d_model}, {tk.n_enc_layers}+"
        f"{tk.n_dec_layers} layers, ff {tk.ff_dim}; max_context {plan.max_context}; random weights, "
        f"seed {MODEL_SEED}"
    )
    print(
        f"   sampling: T={TEMPERATURE}, top_p={TOP_P}, top_k={TOP_K}, request seeds from {REQUEST_SEED}; "
        f"repeats: engine {plan.engine_repeats} (concurrency {plan.concurrency_repeats}, "
        f"threads {plan.thread_repeats}), recompute {recompute_repeats}"
    )
    print("   times are seconds unless marked; 'min / median / max' over the stated runs; ratios use medians")

    measured_memory = memory.run_memory_probe(plan, args.threads)  # first: see run_memory_probe
    bundle = workload.build_bundle(plan)
    candles = workload.load_candles()
    print(f"   data: {candles.path} ({candles.ts.size} candles), windows of {plan.n} rows")
    n_pred = sum(x.numel() for x in bundle.predictor.parameters())
    n_tok = sum(x.numel() for x in bundle.tokenizer.parameters())
    print(f"   parameters: predictor {n_pred / 1e6:.2f} M, tokenizer {n_tok / 1e6:.2f} M")
    report.data["plan"] = {
        "name": plan.name,
        "max_context": plan.max_context,
        "n": plan.n,
        "grow_len": plan.grow_len,
        "slide_len": plan.slide_len,
        "samples": plan.samples,
        "concurrent": plan.concurrent,
        "engine_repeats": plan.engine_repeats,
        "recompute_repeats": recompute_repeats,
        "predictor": p.to_dict(),
        "tokenizer": tk.to_dict(),
        "params_predictor": n_pred,
        "params_tokenizer": n_tok,
    }

    # logits sanity: random weights must not give a degenerate distribution
    with torch.inference_mode():
        probe = workload.make_series(candles, plan, 0, 1, 1, 0, "probe")
        s1, s2 = bundle.tokenizer.encode(torch.from_numpy(probe.x_norm).unsqueeze(0))
        st = torch.from_numpy(probe.x_stamps).unsqueeze(0)
        h = bundle.predictor.hidden(s1, s2, st)
        logits = bundle.predictor.s1_logits(h[:, -1])[0]
        probs = torch.softmax(logits / TEMPERATURE, -1)
        kept = int((torch.sort(probs, descending=True).values.cumsum(0) <= TOP_P).sum()) + 1
    distinct = len(set(s1[0].tolist()))
    print(
        f"   input tokens: {distinct} distinct s1 ids in {plan.n} rows; last-step s1 logits std "
        f"{float(logits.std()):.2f}, top_p {TOP_P} keeps ~{kept} of {logits.numel()} ids"
    )

    with workload.warm_engine(bundle, candles, plan, args.threads) as (engine, obs):
        single.bench_single(report, bundle, engine, obs, candles, plan, recompute_repeats)
        report.data["cache_bytes_per_row"] = engine.stats().cache_bytes_per_row
    concurrency.bench_concurrency(report, bundle, candles, plan, args.threads)
    prefill.bench_prefill_flops(report, bundle, plan)
    memory.bench_memory(report, plan, measured_memory)
    if not args.no_thread_sweep:
        threads.bench_threads(report, plan, plan.thread_repeats)
    if not args.no_streaming:
        with workload.warm_engine(bundle, candles, plan, args.threads) as (engine, obs):
            streaming.bench_streaming(report, engine, obs, candles, plan)

    wall = time.perf_counter() - t_start
    report.data["wall_s"] = wall
    report.data["loadavg_end"] = os.getloadavg()
    report.data["ratios"] = report.ratios
    report.print_summary(wall)
    if args.json:
        write_json(args.json, report.data)
        print(f"   JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
