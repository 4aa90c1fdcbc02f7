"""REST bridge overhead: the same forecast via REST minus via gRPC, measured in one run.

    python benchmarks/bench_rest.py [--quick] [--rounds N] [--repeats N] [--json OUT]

One process runs the gRPC server (the tiny parity model) and the REST bridge in the same
event loop, as `kronos-serve serve` does. Each round times PredictSingle (64 candles -> 8
steps, seeded) over a gRPC channel and POST /v1/predict/single over a keep-alive HTTP
connection, interleaved so that drift hits both alike, and takes the p50 of each. The
figure is the median over the rounds of (REST p50 - gRPC p50); the target is <= 3 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' server helpers; benchmarks are run from the checkout

from tests.rest_bridge.helpers import body  # noqa: E402
from tests.rpc.helpers import request  # noqa: E402
from tests.servers import start_server  # noqa: E402

from kronos.v1 import predictor_pb2_grpc as pb_grpc  # noqa: E402
from kronos_bridge.server import HttpServer  # noqa: E402
from kronos_server.app import build_bridge_app  # noqa: E402

TARGET_MS = 3.0


def p50_ms(values: list[float]) -> float:
    return float(np.percentile(np.asarray(values), 50)) * 1e3


def one_round(
    stub: pb_grpc.KronosPredictorStub,
    md: tuple[tuple[str, str], ...],
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    repeats: int,
) -> dict[str, float]:
    req = request(64, 8, seed=1)
    payload = json.dumps(body(64, 8, seed=1)).encode()
    grpc_times, rest_times = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        reply = stub.PredictSingle(req, metadata=md)
        grpc_times.append(time.perf_counter() - t)
        assert len(reply.forecast.close) == 8
        t = time.perf_counter()
        conn.request("POST", "/v1/predict/single", body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        rest_times.append(time.perf_counter() - t)
        assert response.status == 200, data[:300]
    g, r = p50_ms(grpc_times), p50_ms(rest_times)
    return {"grpc_p50_ms": g, "rest_p50_ms": r, "rest_minus_grpc_p50_ms": r - g}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 30 calls")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=200, help="calls per path per round")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rounds, repeats = (3, 30) if args.quick else (args.rounds, args.repeats)
    logger.remove()  # the servers' per-request log lines would be timed too
    logger.add(sys.stderr, level="WARNING")

    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        running = start_server(Path(tmp), bridge_token=token)
        app = build_bridge_app(running.settings, running.server, token)
        assert app is not None
        http_server = HttpServer(app, "127.0.0.1", 0, grace=1)
        port = running.call(http_server.start())
        try:
            stub = pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))
            md = running.auth_metadata
            conn = http.client.HTTPConnection("127.0.0.1", port)
            headers = {
                "Content-Type": "application/json",
                "X-Container-Name": running.container,
                "Authorization": f"Bearer {running.key}",
            }
            one_round(stub, md, conn, headers, 20)  # warm both paths
            results: list[dict[str, Any]] = []
            for i in range(rounds):
                result = one_round(stub, md, conn, headers, repeats)
                results.append(result)
                print(
                    f"round {i + 1}/{rounds}: gRPC p50 {result['grpc_p50_ms']:.3f} ms, "
                    f"REST p50 {result['rest_p50_ms']:.3f} ms, "
                    f"REST - gRPC {result['rest_minus_grpc_p50_ms']:.3f} ms ({repeats} calls each)"
                )
            conn.close()
        finally:
            running.call(http_server.stop())
            running.stop()
    summary = {
        key: statistics.median(r[key] for r in results)
        for key in ("grpc_p50_ms", "rest_p50_ms", "rest_minus_grpc_p50_ms")
    }
    print(
        f"median over {rounds} rounds: gRPC p50 {summary['grpc_p50_ms']:.3f} ms, "
        f"REST p50 {summary['rest_p50_ms']:.3f} ms"
    )
    overhead = summary["rest_minus_grpc_p50_ms"]
    verdict = "ok" if overhead <= TARGET_MS else "over target"
    print(f"RESULT rest_minus_grpc_p50_ms {overhead:.3f} (target <= {TARGET_MS} ms: {verdict})")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"rounds": results, "median": summary, "repeats": repeats}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
