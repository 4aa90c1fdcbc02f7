"""The engine benchmark's workload: its two plans (full, quick), the random-weight model, the
candles, the requests, and the engine plumbing every section uses."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import ROOT
from kronos_server.engine.engine import Engine, EngineConfig
from kronos_server.engine.recompute import generate, mean_over_samples
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.prepare import denormalize, prepare
from kronos_server.forecast.types import Forecast, PreparedSeries, SamplingParams, SeriesInput
from kronos_server.model.bundle import ModelBundle
from kronos_server.model.checkpoint import Loaded
from kronos_server.model.config import PredictorConfig, TokenizerConfig
from randomweights import MODEL_SEED, SMALL, TINY, random_models

#: the entry point; the memory and thread probes run it again in fresh processes
SCRIPT = ROOT / "benchmarks" / "bench_engine.py"
DATA_CANDIDATES = (
    ROOT / "server" / "kronos_server" / "default_model" / "data" / "regression_input.csv",
    Path("/work/shared/data/regression_input.csv"),
)
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


@contextmanager
def warm_engine(
    bundle: ModelBundle, candles: Candles, plan: Plan, threads: int
) -> Iterator[tuple[Engine, SumObserver]]:
    """A started engine with its observer, after one short forecast (not counted); stopped after."""
    obs = SumObserver()
    engine = start_engine(bundle, threads, obs)
    try:
        run_one(engine, make_series(candles, plan, 0, 4, 1, 0, "warm"))
        yield engine, obs
    finally:
        engine.stop(grace=60)


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
