"""gRPC server overhead, throughput and request decode time, measured in one run.

    python benchmarks/bench_grpc.py [--quick] [--json OUT]

1. Overhead: p50 of PredictSingle (64 candles -> 8 steps, the tiny parity model) over a
   real gRPC channel, minus the p50 of the same forecast through the dataplane in-process.
2. Throughput: PredictSingle calls/s with 32 concurrent callers (asyncio client).
3. Decode: protobuf parse + conversion to the domain of a 2048-candle request.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from harness import percentile, use_checkout, write_json

use_checkout()

from tests.rpc.helpers import request  # noqa: E402
from tests.servers import start_server  # noqa: E402

from kronos.v1 import predictor_pb2 as pb  # noqa: E402
from kronos.v1 import predictor_pb2_grpc as pb_grpc  # noqa: E402
from kronos_server.rpc.convert import series_from_pb  # noqa: E402


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1e3,
        "p90_ms": percentile(values, 90) * 1e3,
        "p99_ms": percentile(values, 99) * 1e3,
        "min_ms": min(values) * 1e3,
    }


def overhead(
    target: str, metadata: tuple[tuple[str, str], ...], running: object, repeats: int
) -> dict[str, object]:
    req = request(64, 8, seed=1)
    stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(target))
    dp = running.server.dataplane  # type: ignore[attr-defined]
    series = series_from_pb(req)
    for _ in range(20):  # warm both paths
        stub.PredictSingle(req, metadata=metadata)
        running.call(dp.predict(series))  # type: ignore[attr-defined]
    grpc_times, engine_times = [], []
    for _ in range(repeats):  # interleaved so drift hits both alike
        t = time.perf_counter()
        stub.PredictSingle(req, metadata=metadata)
        grpc_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        running.call(dp.predict(series))  # type: ignore[attr-defined]
        engine_times.append(time.perf_counter() - t)
    g, e = summary(grpc_times), summary(engine_times)
    return {"grpc": g, "in_process": e, "overhead_p50_ms": g["p50_ms"] - e["p50_ms"]}


async def throughput(
    target: str, metadata: tuple[tuple[str, str], ...], callers: int, seconds: float
) -> dict[str, float]:
    req = request(64, 8, seed=1)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.KronosPredictorStub(channel)
        await stub.PredictSingle(req, metadata=metadata)
        done = 0
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                await stub.PredictSingle(req, metadata=metadata)
                latencies.append(time.perf_counter() - t)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    return {
        "callers": callers,
        "calls": done,
        "seconds": elapsed,
        "calls_per_s": done / elapsed,
        **summary(latencies),
    }


def decode_2048(repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    n = 2048
    close = 100 + np.cumsum(rng.normal(0, 0.1, n))
    candles = pb.Candles(
        timestamps_ms=(1_700_000_000_000 + 300_000 * np.arange(n)).tolist(),
        open=close.tolist(),
        high=(close + 0.2).tolist(),
        low=(close - 0.2).tolist(),
        close=close.tolist(),
        volume=rng.uniform(1, 100, n).tolist(),
        amount=rng.uniform(100, 10_000, n).tolist(),
    )
    data = pb.PredictRequest(history=candles, pred_len=8).SerializeToString()
    parse, convert = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        msg = pb.PredictRequest.FromString(data)
        t1 = time.perf_counter()
        series_from_pb(msg)
        t2 = time.perf_counter()
        parse.append(t1 - t)
        convert.append(t2 - t1)
    return {
        "bytes": len(data),
        "parse_p50_us": percentile(parse, 50) * 1e6,
        "to_domain_p50_us": percentile(convert, 50) * 1e6,
        "total_p50_us": (percentile(parse, 50) + percentile(convert, 50)) * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--threads", type=int, default=0, help="engine torch threads (0 = torch default)")
    args = parser.parse_args()
    repeats, seconds = (30, 2.0) if args.quick else (300, 10.0)
    with tempfile.TemporaryDirectory() as tmp:
        running = start_server(
            Path(tmp), log_level="ERROR", max_queued_rows=4096, max_batch_rows=64, torch_threads=args.threads
        )
        try:
            over = overhead(running.target, running.auth_metadata, running, repeats)
            tput = asyncio.run(throughput(running.target, running.auth_metadata, 32, seconds))
        finally:
            running.stop()
    dec = decode_2048(repeats)
    g, e = over["grpc"], over["in_process"]
    assert isinstance(g, dict) and isinstance(e, dict)
    print(f"gRPC server benchmark (tiny parity model, 64 candles -> 8 steps, engine threads {args.threads})")
    print(f"  PredictSingle over gRPC   p50 {g['p50_ms']:.2f} ms  p90 {g['p90_ms']:.2f} ms")
    print(f"  same forecast in-process  p50 {e['p50_ms']:.2f} ms  p90 {e['p90_ms']:.2f} ms")
    print(f"  server overhead (p50 difference): {over['overhead_p50_ms']:.2f} ms (target <= 2 ms)")
    print(
        f"  32 concurrent callers: {tput['calls_per_s']:.0f} calls/s over {tput['seconds']:.1f} s, "
        f"p50 {tput['p50_ms']:.1f} ms, p99 {tput['p99_ms']:.1f} ms"
    )
    print(
        f"  2048-candle request ({dec['bytes']} bytes): parse {dec['parse_p50_us']:.0f} us + "
        f"to domain {dec['to_domain_p50_us']:.0f} us = {dec['total_p50_us']:.0f} us (p50)"
    )
    if args.json:
        write_json(args.json, {"overhead": over, "throughput": tput, "decode_2048": dec})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
