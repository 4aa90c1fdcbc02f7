"""Section 5: memory. RSS after load and the peak with requests in flight, in a fresh process."""

from __future__ import annotations

import gc
import resource
import sys
import threading
import time
from typing import Any

import torch

from enginebench.workload import (
    REQUEST_SEED,
    SCRIPT,
    Plan,
    build_bundle,
    load_candles,
    make_series,
    run_one,
    start_engine,
)
from harness import LoadMeter, Report, mib, proc_status_kib, run_probe, section, table

MEMORY_TAG = "MEMPROBE"


def memory_probe(plan: Plan, threads: int) -> dict[str, Any]:
    """Runs in a fresh process: RSS after load, then peak with ``plan.concurrent`` requests in flight."""
    torch.set_num_threads(threads)
    out: dict[str, Any] = {
        "vmrss_start_kib": proc_status_kib("VmRSS"),
        "ru_maxrss_start_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    bundle = build_bundle(plan)
    gc.collect()
    out["vmrss_after_load_kib"] = proc_status_kib("VmRSS")
    out["vmhwm_after_load_kib"] = proc_status_kib("VmHWM")
    out["ru_maxrss_after_load_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    candles = load_candles()
    engine = start_engine(bundle, threads)
    series = [
        make_series(candles, plan, i * plan.window_stride, plan.grow_len, 1, REQUEST_SEED + i, f"m{i}")
        for i in range(plan.concurrent)
    ]
    run_one(engine, series[0])  # warm-up at the minimum cache capacity
    out["vmrss_after_warmup_kib"] = proc_status_kib("VmRSS")
    out["vmhwm_after_warmup_kib"] = proc_status_kib("VmHWM")
    stop = threading.Event()
    peak = {"vmrss_kib": 0, "running_rows": 0, "cache_capacity_rows": 0}

    def sample() -> None:
        while not stop.is_set():
            peak["vmrss_kib"] = max(peak["vmrss_kib"], proc_status_kib("VmRSS"))
            st = engine.stats()
            peak["running_rows"] = max(peak["running_rows"], st.running_rows)
            peak["cache_capacity_rows"] = max(peak["cache_capacity_rows"], st.cache_capacity_rows)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for t in [engine.submit(s) for s in series]:
        t.wait()
    stop.set()
    sampler.join()
    out["in_flight_max_vmrss_sampled_kib"] = peak["vmrss_kib"]
    out["in_flight_max_running_rows"] = peak["running_rows"]
    out["in_flight_max_cache_capacity_rows"] = peak["cache_capacity_rows"]
    out["vmhwm_kib"] = proc_status_kib("VmHWM")
    out["ru_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["cache_bytes_per_row"] = engine.stats().cache_bytes_per_row
    engine.stop(grace=30)
    out["vmrss_after_idle_kib"] = proc_status_kib("VmRSS")
    pred, tok = bundle.predictor, bundle.tokenizer
    out["predictor_param_bytes"] = sum(p.numel() * p.element_size() for p in pred.parameters())
    out["tokenizer_param_bytes"] = sum(p.numel() * p.element_size() for p in tok.parameters())
    return out


def run_memory_probe(plan: Plan, threads: int) -> tuple[dict[str, Any], dict[str, float]]:
    """Start the memory probe. Call it before this process grows: Linux carries ru_maxrss across
    fork+exec, so a child started from a large parent would report the parent's size."""
    meter = LoadMeter()
    cmd = [sys.executable, str(SCRIPT), "--_memory-probe", "--threads", str(threads)]
    cmd += ["--omp-wait-policy", "inherit"]
    if plan.name == "quick":
        cmd.append("--quick")
    return run_probe(cmd, MEMORY_TAG, timeout=600), meter.read()


def bench_memory(report: Report, plan: Plan, probe: tuple[dict[str, Any], dict[str, float]]) -> None:
    title = (
        f"5. Memory (fresh subprocess, run first, before this process loaded anything): model loaded, "
        f"then {plan.concurrent} requests in flight"
    )
    with section(report, "memory", title, child=True) as out:
        m, probe_load = probe
        out.update(m)
        out["_measured_load"] = probe_load
        per_row = m["cache_bytes_per_row"]
        rows = [
            ["VmRSS at interpreter start (torch imported)", f"{mib(m['vmrss_start_kib']):.0f}"],
            ["VmRSS after model load (baseline)", f"{mib(m['vmrss_after_load_kib']):.0f}"],
            ["VmRSS after engine start + one warm-up forecast", f"{mib(m['vmrss_after_warmup_kib']):.0f}"],
            [
                f"VmRSS max sampled while {plan.concurrent} in flight",
                f"{mib(m['in_flight_max_vmrss_sampled_kib']):.0f}",
            ],
            ["peak VmHWM (/proc/self/status)", f"{mib(m['vmhwm_kib']):.0f}"],
            ["peak ru_maxrss (getrusage)", f"{mib(m['ru_maxrss_kib']):.0f}"],
            ["VmRSS after the engine went idle and stopped", f"{mib(m['vmrss_after_idle_kib']):.0f}"],
            ["predictor weights (float32)", f"{m['predictor_param_bytes'] / 2**20:.1f}"],
            ["tokenizer weights (float32)", f"{m['tokenizer_param_bytes'] / 2**20:.1f}"],
            ["KV cache per row (engine.stats().cache_bytes_per_row)", f"{per_row / 2**20:.2f}"],
            [
                f"KV cache for the {m['in_flight_max_cache_capacity_rows']} slots allocated in flight",
                f"{m['in_flight_max_cache_capacity_rows'] * per_row / 2**20:.1f}",
            ],
            ["peak VmHWM - baseline after load", f"{mib(m['vmhwm_kib'] - m['vmrss_after_load_kib']):.0f}"],
        ]
        table(["quantity", "MiB"], rows)
        print(
            f"   ru_maxrss of the child at its start (inherited from this parent across exec): "
            f"{mib(m['ru_maxrss_start_kib']):.0f} MiB (below the peak, so the peak is the child's own)"
        )
        print(
            f"   running rows at most {m['in_flight_max_running_rows']}, cache capacity at most "
            f"{m['in_flight_max_cache_capacity_rows']} rows; cache bytes/row = {per_row}"
        )
