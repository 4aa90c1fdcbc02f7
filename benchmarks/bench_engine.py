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

``--quick`` uses tiny dimensions and short series (a smoke test, < 60 s); its ratios say
nothing about the targets, which are only evaluated in the full mode.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kronos_server.engine.cache import KVCache
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.passes import window_pass
from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, prepare
from kronos_server.forecast.types import Forecast, PreparedSeries, SamplingParams, SeriesInput
from kronos_server.model.bundle import ModelBundle
from kronos_server.model.checkpoint import Loaded
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from randomweights import MODEL_SEED, SMALL, TINY, random_models

ROOT = Path(__file__).resolve().parent.parent
DATA_CANDIDATES = (
    ROOT / "server" / "kronos_server" / "default_model" / "data" / "regression_input.csv",
    Path("/work/shared/data/regression_input.csv"),
)
REEXEC_MARK = "KRONOS_BENCH_OMP"
REQUEST_SEED = 1234
TEMPERATURE, TOP_K, TOP_P = 1.0, 0, 0.9


# --------------------------------------------------------------------------------------------
# configuration of a run
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    name: str
    predictor: PredictorConfig
    tokenizer: TokenizerConfig
    max_context: int
    n: int  # history rows of every forecast
    grow_len: int  # pred_len that stays inside the context window
    slide_len: int  # pred_len whose last steps slide
    samples: int  # sample_count of section 2
    concurrent: int  # requests of section 3
    window_stride: int  # rows between the windows of section 3
    engine_repeats: int
    concurrency_repeats: int
    thread_repeats: int
    recompute_repeats: int
    flop_repeats: int


FULL = Plan(
    name="full",
    predictor=SMALL.predictor,
    tokenizer=SMALL.tokenizer,
    max_context=512,
    n=400,
    grow_len=100,
    slide_len=120,
    samples=8,
    concurrent=16,
    window_stride=100,
    engine_repeats=5,
    concurrency_repeats=3,
    thread_repeats=3,
    recompute_repeats=1,
    flop_repeats=10,
)

QUICK = Plan(
    name="quick",
    predictor=TINY.predictor,
    tokenizer=TINY.tokenizer,
    max_context=128,
    n=100,
    grow_len=25,
    slide_len=36,  # 100 + 36 - 1 - 128 = 7 sliding steps, as 400 -> 120 has at 512
    samples=4,
    concurrent=16,
    window_stride=100,
    engine_repeats=3,
    concurrency_repeats=3,
    thread_repeats=3,
    recompute_repeats=1,
    flop_repeats=5,
)

TARGETS = {
    "single_grow": 20.0,
    "single_slide": 8.0,
    "samples": 60.0,
    "concurrency": 2.5,
    "prefill_fraction": 0.5,
}


# --------------------------------------------------------------------------------------------
# small helpers: statistics, machine load, memory
# --------------------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "values": list(values),
    }


def fmt_s(s: dict[str, Any], unit: float = 1.0, digits: int = 3) -> str:
    """'n=5  0.91 / 0.95 / 1.10' (min / median / max)."""
    f = f"{{:.{digits}f}}"
    lo, med, hi = (f.format(s[k] * unit) for k in ("min", "median", "max"))
    return f"n={int(s['n'])}  {lo} / {med} / {hi}"


def _proc_stat_busy() -> int:
    """Busy jiffies of the whole machine (all CPUs)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


def _self_jiffies() -> int:
    with open("/proc/self/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])  # utime + stime of all threads


class LoadMeter:
    """CPU used by *other* processes during a section, in cores (0 .. nproc)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.t0 = time.monotonic()
        self.busy0 = _proc_stat_busy()
        self.own0 = _self_jiffies()

    def read(self) -> dict[str, float]:
        dt = time.monotonic() - self.t0
        busy = _proc_stat_busy() - self.busy0
        own = _self_jiffies() - self.own0
        return {
            "seconds": dt,
            "own_cores": own / self.tick / dt if dt > 0 else 0.0,
            "other_cores": max(0, busy - own) / self.tick / dt if dt > 0 else 0.0,
            "loadavg_1m": os.getloadavg()[0],
        }


class PhaseLoad:
    """Other processes' CPU use summed over several timed intervals of one kind (e.g. engine runs)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.other_jiffies = 0
        self._meter: LoadMeter | None = None

    @contextmanager
    def timed(self) -> Iterator[None]:
        meter = LoadMeter()
        yield
        dt = time.monotonic() - meter.t0
        busy = _proc_stat_busy() - meter.busy0
        own = _self_jiffies() - meter.own0
        self.seconds += dt
        self.other_jiffies += max(0, busy - own)

    def other_cores(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        return self.other_jiffies / tick / self.seconds if self.seconds > 0 else 0.0


def proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def mib(kib: float) -> float:
    return kib / 1024.0


def machine_info(threads: int) -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "other",
        "parallel_info": torch.__config__.parallel_info(),
        "platform": platform.platform(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "omp_wait_policy_set_by_script": os.environ.get(REEXEC_MARK) == "set-by-script",
    }


# --------------------------------------------------------------------------------------------
# model and data
# --------------------------------------------------------------------------------------------
def build_bundle(plan: Plan) -> ModelBundle:
    tok, pred = random_models(plan.predictor, plan.tokenizer, MODEL_SEED)
    here = Path(".")
    return ModelBundle(
        Loaded(tok, "random-tokenizer", "random", here),
        Loaded(pred, "random-predictor", "random", here),
        plan.max_context,
        torch.device("cpu"),
    )


@dataclass
class Candles:
    path: Path
    ts: np.ndarray  # int64 ns
    cols: dict[str, np.ndarray]


def load_candles() -> Candles:
    for path in DATA_CANDIDATES:
        if path.is_file():
            break
    else:
        raise SystemExit(f"no regression_input.csv found in {[str(p) for p in DATA_CANDIDATES]}")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    ts = np.array([r["timestamps"] for r in rows], dtype="datetime64[ns]").astype(np.int64)
    names = ("open", "high", "low", "close", "volume", "amount")
    cols = {k: np.array([float(r[k]) for r in rows], dtype=np.float64) for k in names}
    return Candles(path, ts, cols)


def make_series(
    candles: Candles, plan: Plan, offset: int, pred_len: int, sample_count: int, seed: int, sid: str
) -> PreparedSeries:
    n = plan.n
    end = offset + n
    if end + pred_len > candles.ts.size:
        raise SystemExit(f"window {offset}+{n}+{pred_len} exceeds the {candles.ts.size} candles")
    sl = slice(offset, end)
    sampling = SamplingParams(
        temperature=TEMPERATURE, top_k=TOP_K, top_p=TOP_P, sample_count=sample_count, seed=seed
    )
    series = SeriesInput(
        series_id=sid,
        timestamps=candles.ts[sl],
        open=candles.cols["open"][sl],
        high=candles.cols["high"][sl],
        low=candles.cols["low"][sl],
        close=candles.cols["close"][sl],
        volume=candles.cols["volume"][sl],
        amount=candles.cols["amount"][sl],
        prediction_timestamps=candles.ts[end : end + pred_len],
        sampling=sampling,
    )
    return prepare(series, Limits(max_context=plan.max_context, max_sample_count=64))


# --------------------------------------------------------------------------------------------
# engine plumbing
# --------------------------------------------------------------------------------------------
class SumObserver:
    """An EngineObserver that sums seconds and counts per event kind (engine/stats.py)."""

    KINDS = ("step", "prefill", "decode", "slide", "queue_wait")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.rejects = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.seconds = dict.fromkeys(self.KINDS, 0.0)
            self.calls = dict.fromkeys(self.KINDS, 0)
            self.rows = dict.fromkeys(self.KINDS, 0)
            self.rejects = 0

    def _add(self, kind: str, rows: int, seconds: float) -> None:
        with self._lock:
            self.seconds[kind] += seconds
            self.calls[kind] += 1
            self.rows[kind] += rows

    def step(self, rows: int, seconds: float) -> None:
        self._add("step", rows, seconds)

    def prefill(self, rows: int, positions: int, seconds: float) -> None:
        self._add("prefill", rows, seconds)

    def decode(self, rows: int, seconds: float) -> None:
        self._add("decode", rows, seconds)

    def slide(self, rows: int, seconds: float) -> None:
        self._add("slide", rows, seconds)

    def queue_wait(self, seconds: float) -> None:
        self._add("queue_wait", 0, seconds)

    def rejected(self, reason: str) -> None:
        with self._lock:
            self.rejects += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"seconds": dict(self.seconds), "calls": dict(self.calls), "rows": dict(self.rows)}


def start_engine(bundle: ModelBundle, threads: int, observer: SumObserver | None = None) -> Engine:
    engine = Engine(
        bundle, EngineConfig(max_queued_rows=256, max_batch_rows=64, torch_threads=threads), observer
    )
    engine.start()
    return engine


def run_one(engine: Engine, series: PreparedSeries) -> tuple[float, Forecast]:
    t0 = time.perf_counter()
    forecast = engine.submit(series).wait()
    return time.perf_counter() - t0, forecast


def run_recompute(bundle: ModelBundle, series: PreparedSeries) -> tuple[float, np.ndarray]:
    """The original algorithm (full window every step); returns seconds and the price-space mean."""
    gen = torch.Generator()
    seed = series.sampling.seed
    gen.manual_seed(seed if seed is not None else 0)
    t0 = time.perf_counter()
    ref = generate(bundle.tokenizer, bundle.predictor, [series], bundle.max_context, gen)
    mean = mean_over_samples(ref.samples, series.sampling.sample_count)[0].numpy()
    out = denormalize(mean, series.mean, series.std)
    return time.perf_counter() - t0, out


def agreement(got: np.ndarray, want: np.ndarray, series: PreparedSeries) -> float:
    """Largest engine-vs-recompute difference in normalised units (0 = identical tokens)."""
    return float(np.max(np.abs(got - want) / (series.std + 1e-5)))


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
class Report:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.data: dict[str, Any] = {}
        self.ratios: list[dict[str, Any]] = []

    def ratio(self, key: str, label: str, value: float, unit: str = "x") -> None:
        target = TARGETS.get(key)
        if self.plan.name != "full" or target is None:
            verdict = "target not evaluated in quick mode" if self.plan.name != "full" else ""
            met = None
        else:
            met = value >= target
            verdict = f"target >= {target:g}{unit}: {'MET' if met else 'NOT MET'}"
        shown = f"{value:.1%}" if unit == "%" else f"{value:.2f}x"
        if unit == "%" and target is not None and self.plan.name == "full":
            verdict = f"target >= {target:.0%}: {'MET' if met else 'NOT MET'}"
        print(f"RATIO {key:<18} {label:<52} {shown:>9}   {verdict}")
        self.ratios.append({"key": key, "label": label, "value": value, "target": target, "met": met})


@contextmanager
def section(report: Report, key: str, title: str, child: bool = False) -> Iterator[dict[str, Any]]:
    print(f"\n== {title} ==", flush=True)
    meter = LoadMeter()
    out: dict[str, Any] = {}
    yield out
    load = out.pop("_measured_load", None) or meter.read()  # a section may measure its own window
    out["load"] = load
    out["load_includes_child_processes"] = child
    report.data[key] = out
    print(
        f"   [section wall {load['seconds']:.1f} s; this process used {load['own_cores']:.2f} cores, "
        f"other processes{' (incl. its child processes)' if child else ''} "
        f"{load['other_cores']:.2f} of {os.cpu_count()} cores; "
        f"loadavg(1m) {load['loadavg_1m']:.2f}]",
        flush=True,
    )


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print("   " + line)
    print("   " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
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


def prefill_flops(cfg: PredictorConfig, length: int) -> dict[str, float]:
    """Analytic FLOPs (multiply-add = 2) of one predictor pass over ``length`` positions."""
    d, f, nl = cfg.d_model, cfg.ff_dim, cfg.n_layers
    pairs_causal = length * (length + 1) / 2
    flops = {
        "fusion_proj": 2.0 * length * (2 * d) * d,
        "attn_qkvo_proj": nl * 4 * 2.0 * length * d * d,
        "ffn_w1_w3_w2": nl * 3 * 2.0 * length * d * f,
        # QK^T and AV, all heads: 2 * pairs * head_dim * heads = 2 * pairs * d each; causal pairs only
        "attn_qk_av_causal": nl * 2 * 2.0 * pairs_causal * d,
        "s2_kv_proj": 2 * 2.0 * length * d * d,
    }
    return flops


def _time_call(fn: Callable[[], object], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


def bench_prefill_flops(report: Report, bundle: ModelBundle, plan: Plan) -> None:
    cfg = plan.predictor
    length, d, f = plan.n, cfg.d_model, cfg.ff_dim
    title = f"4. Prefill GFLOP/s vs torch.mm GFLOP/s ([1,{length}] window, d_model {d}, ff {f})"
    with section(report, "prefill_flops", title) as out:
        pred = bundle.predictor
        gen = torch.Generator().manual_seed(7)
        vocab1, vocab2 = 2**cfg.s1_bits, 2**cfg.s2_bits
        s1 = torch.randint(0, vocab1, (1, length), generator=gen)
        s2 = torch.randint(0, vocab2, (1, length), generator=gen)
        stamps = torch.stack(
            [torch.randint(0, hi, (1, length), generator=gen) for hi in (60, 24, 7, 31, 12)], dim=-1
        ) + torch.tensor([0, 0, 0, 1, 1])
        cache = KVCache(pred, bundle.max_context, bundle.device)
        slots = torch.tensor([0])
        flops = prefill_flops(cfg, length)
        hidden_flops = sum(v for k, v in flops.items() if k != "s2_kv_proj")
        window_flops = sum(flops.values())
        shapes = {
            f"[{length},{d}]x[{d},{f}]": (length, d, f),
            f"[{length},{d}]x[{d},{d}]": (length, d, d),
            f"[{length},{f}]x[{f},{d}]": (length, f, d),
        }
        mats = {name: (torch.randn(m, kk), torch.randn(kk, n)) for name, (m, kk, n) in shapes.items()}
        # GEMMs the pass issues, by shape (for the shape-weighted mm reference)
        gemm_by_shape = {
            f"[{length},{d}]x[{d},{f}]": cfg.n_layers * 2 * 2.0 * length * d * f,
            f"[{length},{d}]x[{d},{d}]": (cfg.n_layers * 4 + 2) * 2.0 * length * d * d,
            f"[{length},{f}]x[{f},{d}]": cfg.n_layers * 2.0 * length * f * d
            + (2.0 * length * 2 * d * d if f == 2 * d else 0.0),
        }
        times: dict[str, list[float]] = {"hidden": [], "window_pass": [], **{k: [] for k in shapes}}
        with torch.inference_mode():
            for _ in range(2):  # warm-up
                pred.hidden(s1, s2, stamps)
                window_pass(pred, s1, s2, stamps, cache, slots, True)
                for a, b in mats.values():
                    torch.mm(a, b)
            first = next(iter(mats.values()))
            mm_single = _time_call(partial(torch.mm, *first), 5)
            inner = 20 if mm_single < 0.02 else 3
            # interleaved repeats, so that load changes hit every kernel alike
            for _ in range(plan.flop_repeats):
                times["hidden"].append(_time_call(lambda: pred.hidden(s1, s2, stamps), 1))
                times["window_pass"].append(
                    _time_call(lambda: window_pass(pred, s1, s2, stamps, cache, slots, True), 1)
                )
                for name, (a, b) in mats.items():
                    times[name].append(_time_call(partial(torch.mm, a, b), inner))
        rates: dict[str, float] = {}
        rows = []
        for name, flop in (("hidden", hidden_flops), ("window_pass", window_flops)):
            s = summary(times[name])
            rates[name] = flop / s["median"] / 1e9
            label = "predictor.hidden" if name == "hidden" else "engine window_pass (prefill, keep K/V)"
            rows.append(
                [label, f"{flop / 1e9:.2f}", fmt_s(s, 1000, 1).split("  ", 1)[1], f"{rates[name]:.1f}"]
            )
        for name, (m, kk, n) in shapes.items():
            s = summary(times[name])
            flop = 2.0 * m * kk * n
            rates[name] = flop / s["median"] / 1e9
            rows.append(
                [
                    f"torch.mm {name} (x{inner}/repeat)",
                    f"{flop / 1e9:.3f}",
                    fmt_s(s, 1000, 2).split("  ", 1)[1],
                    f"{rates[name]:.1f}",
                ]
            )
        gemm_total = sum(gemm_by_shape.values())
        mix_time = sum(fl / (rates[name] * 1e9) for name, fl in gemm_by_shape.items())
        rates["mm_mix"] = gemm_total / mix_time / 1e9
        rows.append(
            [
                "torch.mm, mix weighted as the pass uses the shapes",
                f"{gemm_total / 1e9:.2f}",
                f"{1000 * mix_time:.1f} (derived)",
                f"{rates['mm_mix']:.1f}",
            ]
        )
        print(f"   repeats: {plan.flop_repeats} (interleaved), torch threads {torch.get_num_threads()}")
        table(["kernel", "GFLOP", "ms min / median / max", "GFLOP/s (median)"], rows)
        print(
            "   FLOPs counted: "
            + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in flops.items())
            + " GFLOP (causal attention pairs only; norms, RoPE, softmax, embedding lookups not counted;"
        )
        print("   predictor.hidden excludes s2_kv_proj, window_pass includes it)")
        frac_mix = rates["window_pass"] / rates["mm_mix"]
        named = list(shapes)[:2]
        fractions = {name: rates["window_pass"] / rates[name] for name in shapes}
        for name in named:
            print(
                f"   window_pass / torch.mm {name}: {fractions[name]:.1%}; "
                f"hidden / same: {rates['hidden'] / rates[name]:.1%}"
            )
        out.update(
            {
                "length": length,
                "flops": flops,
                "hidden_gflop": hidden_flops / 1e9,
                "window_pass_gflop": window_flops / 1e9,
                "times_s": {k: summary(v) for k, v in times.items()},
                "gflops_per_s": rates,
                "mm_inner_calls": inner,
                "fraction_vs_mm_mix": frac_mix,
                "fraction_vs_mm": fractions,
                "hidden_fraction_vs_mm_mix": rates["hidden"] / rates["mm_mix"],
            }
        )
        report.ratio("prefill_fraction", "window_pass GFLOP/s / torch.mm mix GFLOP/s", frac_mix, unit="%")
        report.ratio(
            "prefill_fraction_" + "dxf", f"window_pass / torch.mm {named[0]}", fractions[named[0]], unit="%"
        )
        report.ratio(
            "prefill_fraction_" + "dxd", f"window_pass / torch.mm {named[1]}", fractions[named[1]], unit="%"
        )


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
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_memory-probe", "--threads", str(threads)]
    cmd += ["--omp-wait-policy", "inherit"]
    if plan.name == "quick":
        cmd.append("--quick")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("MEMPROBE ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout[-2000:], proc.stderr[-4000:])
        raise SystemExit(f"memory probe failed with exit code {proc.returncode}")
    return json.loads(line[len("MEMPROBE ") :]), meter.read()


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


def bench_streaming(report: Report, engine: Engine, obs: SumObserver, candles: Candles, plan: Plan) -> None:
    title = (
        f"7. Streaming (submit(stream=True), every step published) vs plain, {plan.n}->{plan.grow_len}, "
        "one request at a time"
    )
    with section(report, "streaming", title) as out:

        async def one(series: PreparedSeries, stream: bool) -> tuple[float, int]:
            t0 = time.perf_counter()
            ticket = engine.submit(series, stream=stream)
            updates = 0
            if stream:
                async for _ in ticket.steps():
                    updates += 1
            await ticket.result()
            return time.perf_counter() - t0, updates

        rows = []
        for samples in (1, plan.samples):
            series = make_series(candles, plan, 0, plan.grow_len, samples, REQUEST_SEED, f"stream{samples}")
            times: dict[bool, list[float]] = {False: [], True: []}
            steps_s: dict[bool, list[float]] = {False: [], True: []}
            updates = 0
            asyncio.run(one(series, True))  # warm-up
            for _ in range(plan.concurrency_repeats):
                for stream in (False, True):  # interleaved
                    obs.reset()
                    dt, n = asyncio.run(one(series, stream))
                    times[stream].append(dt)
                    steps_s[stream].append(obs.snapshot()["seconds"]["step"])
                    updates = max(updates, n)
            plain, streamed = summary(times[False]), summary(times[True])
            slowdown = streamed["median"] / plain["median"]
            out[f"sample_count_{samples}"] = {
                "plain_s": plain,
                "stream_s": streamed,
                "engine_step_s": {str(k): summary(v) for k, v in steps_s.items()},
                "updates": updates,
                "stream_over_plain": slowdown,
            }
            rows.append([str(samples), fmt_s(plain), fmt_s(streamed), str(updates), f"{slowdown:.2f}x"])
        table(
            [
                "sample_count",
                "plain s  min / med / max",
                "stream s  min / med / max",
                "updates",
                "stream/plain",
            ],
            rows,
        )
        print(
            "   (engine-thread time: each step update re-decodes the job's whole window with the tokenizer)"
        )


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
        hid_t = [_time_call(lambda: pred.hidden(s1, s2, stamps), 1) for _ in range(repeats)]
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
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--_thread-probe",
                    "--threads",
                    str(threads),
                ]
                cmd += ["--engine-repeats", str(repeats), "--omp-wait-policy", "inherit"]
                if plan.name == "quick":
                    cmd.append("--quick")
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900, env=env)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("THREADPROBE ")), None)
                if proc.returncode != 0 or line is None:
                    print(proc.stdout[-2000:], proc.stderr[-4000:])
                    raise SystemExit(f"thread probe failed with exit code {proc.returncode}")
                results.append(json.loads(line[len("THREADPROBE ") :]))
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


# --------------------------------------------------------------------------------------------
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
    if (
        args.omp_wait_policy == "passive"
        and "OMP_WAIT_POLICY" not in os.environ
        and REEXEC_MARK not in os.environ
        and argv is None
    ):
        # OpenMP reads the variable once, when torch loads it: re-run this script with it set
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", REEXEC_MARK: "set-by-script"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    plan = QUICK if args.quick else FULL
    if args.engine_repeats is not None:
        plan = replace(
            plan,
            engine_repeats=args.engine_repeats,
            concurrency_repeats=args.engine_repeats,
            thread_repeats=args.engine_repeats,
        )
    if args.memory_probe:
        print("MEMPROBE " + json.dumps(memory_probe(plan, args.threads)), flush=True)
        return 0
    if args.thread_probe:
        result = thread_probe(plan, args.threads, plan.engine_repeats)
        print("THREADPROBE " + json.dumps(result), flush=True)
        return 0
    recompute_repeats = args.recompute_repeats or plan.recompute_repeats

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    report = Report(plan)
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

    memory = run_memory_probe(plan, args.threads)  # first: see run_memory_probe
    bundle = build_bundle(plan)
    candles = load_candles()
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
        probe = make_series(candles, plan, 0, 1, 1, 0, "probe")
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

    obs = SumObserver()
    engine = start_engine(bundle, args.threads, obs)
    try:
        run_one(engine, make_series(candles, plan, 0, 4, 1, 0, "warm"))  # engine warm-up
        bench_single(report, bundle, engine, obs, candles, plan, recompute_repeats)
        report.data["cache_bytes_per_row"] = engine.stats().cache_bytes_per_row
    finally:
        engine.stop(grace=60)
    bench_concurrency(report, bundle, candles, plan, args.threads)
    bench_prefill_flops(report, bundle, plan)
    bench_memory(report, plan, memory)
    if not args.no_thread_sweep:
        bench_threads(report, plan, plan.thread_repeats)
    if not args.no_streaming:
        obs = SumObserver()
        engine = start_engine(bundle, args.threads, obs)
        try:
            run_one(engine, make_series(candles, plan, 0, 4, 1, 0, "warm"))
            bench_streaming(report, engine, obs, candles, plan)
        finally:
            engine.stop(grace=60)

    wall = time.perf_counter() - t_start
    report.data["wall_s"] = wall
    report.data["loadavg_end"] = os.getloadavg()
    report.data["ratios"] = report.ratios
    print("\n== Summary ==")
    for r in report.ratios:
        shown = f"{r['value']:.1%}" if r["key"].startswith("prefill") else f"{r['value']:.2f}x"
        if r["met"] is None:
            verdict = "(quick mode: not evaluated)" if plan.name != "full" else ""
        else:
            tgt = f"{r['target']:.0%}" if r["key"].startswith("prefill") else f"{r['target']:g}x"
            verdict = f"target >= {tgt}: {'MET' if r['met'] else 'NOT MET'}"
        print(f"   {r['label']:<60} {shown:>9}  {verdict}")
    loads = {
        k: v["load"]["other_cores"] for k, v in report.data.items() if isinstance(v, dict) and "load" in v
    }
    print(
        "   other processes' CPU use per section (cores of "
        f"{os.cpu_count()}): " + ", ".join(f"{k} {v:.2f}" for k, v in loads.items())
    )
    print(f"   total wall time {wall:.1f} s; loadavg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.data, indent=2, default=float) + "\n")
        print(f"   JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
