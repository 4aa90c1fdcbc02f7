"""Throughput of 3 replicas against 1, on this machine, in one run.

    python benchmarks/bench_replicas.py [--quick] [--seconds S] [--rounds N] [--json OUT]

Each configuration starts `kronos-serve serve` processes on loopback (the embedded default
model, free ports), then CALLERS client threads call PredictSingle back to back through one
KronosClient balancing round robin over every replica, for S seconds after a warm-up. The
configurations run in turn, round after round, so that drift hits them alike; the figure is
the median over rounds of the completed calls per second, and the ratio of 3 replicas to 1.

On a 2-core machine the replicas share the same two cores (and the load generator runs
beside them), so the ratio measures process-level parallelism against one engine's batching,
not what 3 machines would give.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness import percentile, use_checkout

use_checkout()

from tests.processes import ServerProcess, make_keys  # noqa: E402
from tests.rpc.helpers import request  # noqa: E402

from kronos.v1 import predictor_pb2 as pb  # noqa: E402
from kronos_client import ClientConfig, KronosClient  # noqa: E402


@dataclass(frozen=True)
class Setup:
    name: str
    replicas: int
    torch_threads: int


SETUPS = (
    Setup("1 replica, 2 torch threads", 1, 2),
    Setup("1 replica, 1 torch thread", 1, 1),
    Setup("3 replicas, 1 torch thread each", 3, 1),
)


def run_load(client: KronosClient, req: pb.PredictRequest, callers: int, seconds: float) -> dict[str, Any]:
    """Closed-loop load for ``seconds``; calls/s and latency percentiles of the calls in it."""
    stop = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def caller() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                client.predict_request(req)
            except Exception as exc:  # a benchmark reports failures instead of dying
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(callers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    with lock:
        done, elapsed = len(latencies), time.perf_counter() - start
        lat = np.asarray(latencies) * 1e3
    for t in threads:
        t.join(60)
    return {
        "calls": done,
        "errors": len(errors),
        "calls_per_s": done / elapsed,
        "p50_ms": percentile(lat, 50) if done else None,
        "p95_ms": percentile(lat, 95) if done else None,
    }


def measure(setup: Setup, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    keys, key = make_keys(Path(tempfile.mkdtemp(dir=tmp)), "bench")
    env = {
        "KRONOS_HOST": "127.0.0.1",
        "KRONOS_GRPC_PORT": "0",
        "KRONOS_HTTP_PORT": "0",
        "KRONOS_API_KEYS_FILE": str(keys),
        "KRONOS_RATE_LIMIT": "1000000/minute",
        "KRONOS_TORCH_THREADS": str(setup.torch_threads),
    }
    replicas = [ServerProcess("serve", env=env) for _ in range(setup.replicas)]
    try:
        for replica in replicas:
            replica.wait_ready()
        config = ClientConfig([r.target for r in replicas], container="bench", key=key, timeout=120)
        req = request(args.history, args.pred_len, seed=7)
        with KronosClient(config) as client:
            run_load(client, req, args.callers, args.warmup)
            return run_load(client, req, args.callers, args.seconds)
    finally:
        for replica in replicas:
            replica.stop()


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--callers", type=int, default=12)
    parser.add_argument("--history", type=int, default=400)
    parser.add_argument("--pred-len", type=int, default=24)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:  # a smoke run: small calls, so even a busy machine completes some
        args.rounds, args.seconds, args.warmup = 1, 4.0, 1.0
        args.callers, args.history, args.pred_len = 4, 64, 4

    print(
        f"PredictSingle {args.history} -> {args.pred_len}, default model, {args.callers} callers, "
        f"{args.seconds:.0f} s per run, {args.rounds} round(s)",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in SETUPS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            for setup in SETUPS:
                result = measure(setup, args, Path(tmp))
                runs[setup.name].append(result)
                print(
                    f"round {round_no + 1} {setup.name:34s} {result['calls_per_s']:8.1f} calls/s  "
                    f"p50 {ms(result['p50_ms'])}  p95 {ms(result['p95_ms'])}  errors {result['errors']}",
                    flush=True,
                )
    summary = {
        name: {
            "calls_per_s_median": statistics.median(r["calls_per_s"] for r in results),
            "p50_ms_median": median([r["p50_ms"] for r in results]),
            "p95_ms_median": median([r["p95_ms"] for r in results]),
            "errors": sum(r["errors"] for r in results),
        }
        for name, results in runs.items()
    }
    print("\n| setup | calls/s (median) | p50 | p95 | errors |\n|---|---|---|---|---|")
    for name, s in summary.items():
        print(
            f"| {name} | {s['calls_per_s_median']:.1f} | {ms(s['p50_ms_median'])} | "
            f"{ms(s['p95_ms_median'])} | {s['errors']} |"
        )
    three = summary[SETUPS[2].name]["calls_per_s_median"]
    ratios = {
        "three_vs_one_2threads": three / summary[SETUPS[0].name]["calls_per_s_median"],
        "three_vs_one_1thread": three / summary[SETUPS[1].name]["calls_per_s_median"],
    }
    for key, value in ratios.items():
        print(f"RATIO {key} {value:.2f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "runs": runs,
                    "summary": summary,
                    "ratios": ratios,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
