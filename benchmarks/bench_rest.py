"""REST overhead: the same forecast via REST minus calling the in-process dataplane directly.

    python benchmarks/bench_rest.py [--quick] [--rounds N] [--repeats N] [--json OUT]

One process runs the server (the tiny parity model) and the REST API on its event loop, as
`kronos-serve serve` does. Each round times the same forecast (64 candles -> 8 steps,
seeded) two ways, interleaved so that drift hits both alike, and takes the p50 of each:
POST /v1/predict/single over a keep-alive HTTP connection (HTTP, the call gate, JSON decode
and encode), and ``dataplane.predict`` called directly on the server's loop with the decoded
series, from the same client thread (the engine's time, and the thread hop both share). The
figure is the median over the rounds of (REST p50 - dataplane p50); the target is <= 0.5 ms.
Each round also times the JSON codec alone (decode the body to the series, encode the
forecast), the part of the difference that is REST's format rather than its transport.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server helpers; benchmarks are run from the checkout

from tests.rest_bridge.helpers import body  # noqa: E402
from tests.servers import RunningServer, start_server  # noqa: E402

from kronos_bridge.routes.predict import parse_json  # noqa: E402
from kronos_bridge.routes.responses import FastJSONResponse  # noqa: E402
from kronos_bridge.server import HttpServer  # noqa: E402
from kronos_bridge.translate import check_ranges  # noqa: E402
from kronos_server.app import build_rest_app  # noqa: E402
from kronos_server.dataplane import Dataplane  # noqa: E402
from kronos_server.forecast.json_codec import forecast_to_response, series_from_request  # noqa: E402
from kronos_server.forecast.types import Forecast, SeriesInput  # noqa: E402

TARGET_MS = 0.5


def p50_ms(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 50)) * 1e3


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def codec(payload: bytes, forecast: Forecast) -> None:
    """What a REST call adds in format alone: body -> series, forecast -> body (as the route)."""
    check_ranges(series_from_request(parse_json(payload)))
    FastJSONResponse(forecast_to_response(forecast, model_version="m", tokenizer_version="t"))


def one_round(
    running: RunningServer,
    dp: Dataplane,
    series: SeriesInput,
    conn: http.client.HTTPConnection,
    payload: bytes,
    headers: dict[str, str],
    repeats: int,
) -> dict[str, float]:
    direct_times, rest_times, codec_times = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        forecast = asyncio.run_coroutine_threadsafe(dp.predict(series), running.loop).result(60)
        direct_times.append(time.perf_counter() - t)
        assert forecast.mean.shape[0] == 8
        t = time.perf_counter()
        codec(payload, forecast)
        codec_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        conn.request("POST", "/v1/predict/single", body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        rest_times.append(time.perf_counter() - t)
        assert response.status == 200, data[:300]
    d, r = p50_ms(direct_times), p50_ms(rest_times)
    return {
        "dataplane_p50_ms": d,
        "rest_p50_ms": r,
        "rest_minus_dataplane_p50_ms": r - d,
        "codec_p50_ms": p50_ms(codec_times),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 30 calls")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=200, help="calls per path per round")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rounds, repeats = (3, 30) if args.quick else (args.rounds, args.repeats)
    logger.remove()  # the per-request log lines would be timed too
    logger.add(sys.stderr, level="WARNING")

    request = body(64, 8, seed=1)
    payload = json.dumps(request).encode()
    series = series_from_request(request)
    with tempfile.TemporaryDirectory() as tmp:
        running = start_server(Path(tmp))
        dp = running.server.dataplane
        assert dp is not None
        http_server = HttpServer(build_rest_app(running.settings, running.server), "127.0.0.1", 0, grace=1)
        port = running.call(http_server.start())
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            headers = {
                "Content-Type": "application/json",
                "X-Container-Name": running.container,
                "Authorization": f"Bearer {running.key}",
            }
            one_round(running, dp, series, conn, payload, headers, 20)  # warm both paths
            results: list[dict[str, Any]] = []
            for i in range(rounds):
                result = one_round(running, dp, series, conn, payload, headers, repeats)
                results.append(result)
                print(
                    f"round {i + 1}/{rounds}: dataplane p50 {result['dataplane_p50_ms']:.3f} ms, "
                    f"REST p50 {result['rest_p50_ms']:.3f} ms, "
                    f"REST - dataplane {result['rest_minus_dataplane_p50_ms']:.3f} ms, "
                    f"of it JSON codec {result['codec_p50_ms']:.3f} ms ({repeats} calls each)"
                )
            conn.close()
        finally:
            running.call(http_server.stop())
            running.stop()
    keys = ("dataplane_p50_ms", "rest_p50_ms", "rest_minus_dataplane_p50_ms", "codec_p50_ms")
    summary = {key: statistics.median(r[key] for r in results) for key in keys}
    print(
        f"median over {rounds} rounds: dataplane p50 {summary['dataplane_p50_ms']:.3f} ms, "
        f"REST p50 {summary['rest_p50_ms']:.3f} ms, JSON codec p50 {summary['codec_p50_ms']:.3f} ms "
        f"(CPU: {cpu_name()})"
    )
    overhead = summary["rest_minus_dataplane_p50_ms"]
    verdict = "ok" if overhead <= TARGET_MS else "over target"
    print(f"RESULT rest_minus_dataplane_p50_ms {overhead:.3f} (target <= {TARGET_MS} ms: {verdict})")
    if args.json is not None:
        out = {
            "rounds": results,
            "median": summary,
            "repeats": repeats,
            "cpu": cpu_name(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        }
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
