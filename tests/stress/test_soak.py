"""Soak: 10,000 mixed requests against one `kronos-serve serve` process leak nothing.

PredictSingle, PredictBatch and PredictStream over gRPC and REST single and batch calls,
with varied shapes, seeds and sampling settings; some are cancelled mid-way (gRPC cancel,
a stream dropped after its first event, a REST client hanging up), some have deadlines too
short to finish, some are invalid. After a warm-up the process's memory, threads, file
descriptors and event-loop tasks are recorded; after the rest they must be back where they
were, the engine empty, the metrics free of errors and consistent with what the callers saw,
and every forecast the right length and finite.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rest_bridge.helpers import body
from tests.rpc.helpers import request
from tests.stress.harness import (
    ROUTES,
    Outcome,
    Server,
    Tally,
    grpc_batch,
    grpc_single,
    grpc_stream,
    rest_abandon,
    rest_predict,
    running_server,
)

TOTAL = 10_000
WARMUP = 1_000
WORKERS = 8
PREPARED = 400  # distinct prepared requests the soak draws from
DEADLINE = 60.0  # ordinary calls' deadline: never reached
RSS_GROWTH = 0.05
THREADS_MARGIN = 2
FDS_MARGIN = 4
TASKS_MARGIN = 2

# kind -> weight; "cancel_*" are cancelled by us, "short_*" get a deadline of a few ms
MIX = {
    "single": 24,
    "batch": 10,
    "stream": 10,
    "rest_single": 14,
    "rest_batch": 6,
    "cancel_single": 3,
    "cancel_stream": 3,
    "cancel_rest": 2,
    "short_single": 4,
    "short_stream": 2,
    "invalid_single": 6,
    "invalid_rest": 6,
}
INVALID_GRPC = ("history", "samples", "nan")
INVALID_REST = ("json", "field", "history")


@dataclass(frozen=True)
class Prepared:
    """One series' request, both as protobuf and as REST JSON, built once."""

    message: pb.PredictRequest
    body: dict[str, Any]
    pred_len: int


def _prepare(rng: random.Random) -> Prepared:
    n = rng.randint(20, 100)  # past the parity model's 64-step context: the sliding path too
    pred_len = rng.randint(1, 12)
    start = rng.randint(0, 400)
    sampling: dict[str, Any] = {"sample_count": rng.randint(1, 3), "seed": rng.randint(0, 2**31)}
    if rng.random() < 0.3:
        sampling |= {"temperature": rng.choice([0.5, 1.0, 1.5]), "top_p": rng.choice([0.5, 0.9, 1.0])}
    if rng.random() < 0.2:
        sampling["top_k"] = rng.choice([1, 5, 50])
    message = request(n, pred_len, start=start, **sampling)
    rest = body(n, pred_len, start=start, **sampling)
    if rng.random() < 0.2:
        message.sampling.quantiles.extend([0.1, 0.5, 0.9])
        rest["overrides"]["quantiles"] = [0.1, 0.5, 0.9]
    return Prepared(message, rest, pred_len)


class Soak:
    """WORKERS threads working through the numbered requests of one phase."""

    def __init__(self, server: Server, channels: list[grpc.Channel]) -> None:
        self.server = server
        self.stubs = [pb_grpc.KronosPredictorStub(c) for c in channels]
        rng = random.Random(20240618)
        self.pool = [_prepare(rng) for _ in range(PREPARED)]
        kinds, weights = zip(*MIX.items(), strict=True)
        self.plan = rng.choices(kinds, weights, k=TOTAL)
        self.tally = Tally()

    def run(self, first: int, last: int) -> None:
        numbers = iter(range(first, last))
        lock = threading.Lock()

        def worker(w: int) -> None:
            stub = self.stubs[w % len(self.stubs)]
            conn = self.server.rest(DEADLINE)
            try:
                while True:
                    with lock:
                        i = next(numbers, None)
                    if i is None:
                        return
                    self.tally.add(self.one(i, stub, conn))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE + 30)
        assert not any(t.is_alive() for t in threads), "a soak call never returned"

    def one(self, i: int, stub: pb_grpc.KronosPredictorStub, conn: Any) -> Outcome:
        rng = random.Random(i)
        kind = self.plan[i]
        picks = [self.pool[rng.randrange(PREPARED)] for _ in range(rng.randint(2, 4))]
        p = picks[0]
        md, headers = self.server.metadata, self.server.headers
        if kind == "single":
            return grpc_single(stub, md, p.message, DEADLINE)
        if kind == "batch":
            return grpc_batch(stub, md, [x.message for x in picks], DEADLINE)
        if kind == "stream":
            return grpc_stream(stub, md, p.message, DEADLINE)
        if kind == "rest_single":
            return rest_predict(conn, headers, kind, json.dumps(p.body).encode(), [p.pred_len])
        if kind == "rest_batch":
            payload = json.dumps({"items": [x.body for x in picks]}).encode()
            return rest_predict(conn, headers, kind, payload, [x.pred_len for x in picks])
        if kind == "cancel_single":
            started = time.perf_counter()
            future = stub.PredictSingle.future(p.message, metadata=md, timeout=DEADLINE)
            time.sleep(rng.uniform(0, 0.02))
            future.cancel()
            try:
                reply = future.result()
            except grpc.FutureCancelledError:
                return Outcome("single", "cancelled", time.perf_counter() - started)
            except grpc.RpcError as err:
                return Outcome("single", "bad", 0, f"cancelled call: {err}")
            ok = len(reply.forecast.close) == p.pred_len  # finished before the cancel
            return Outcome("single", "ok" if ok else "bad", time.perf_counter() - started, items_ok=1)
        if kind == "cancel_stream":
            return grpc_stream(stub, md, p.message, DEADLINE, cancel_after=1)
        if kind == "cancel_rest":
            return rest_abandon(self.server.http_port, headers, p.body, rng.uniform(0.002, 0.02))
        if kind == "short_single":
            return grpc_single(stub, md, p.message, rng.uniform(0.002, 0.03))
        if kind == "short_stream":
            return grpc_stream(stub, md, p.message, rng.uniform(0.002, 0.03))
        if kind == "invalid_single":
            return grpc_single(stub, md, _invalid_pb(p, rng.choice(INVALID_GRPC)), DEADLINE)
        assert kind == "invalid_rest", kind
        payload = _invalid_json(p, rng.choice(INVALID_REST))
        return rest_predict(conn, headers, "rest_single", payload, [p.pred_len])


def _invalid_pb(p: Prepared, how: str) -> pb.PredictRequest:
    bad = pb.PredictRequest()
    bad.CopyFrom(p.message)
    if how == "history":  # fewer rows than KRONOS_MIN_HISTORY
        bad.history.CopyFrom(request(1).history)
    elif how == "samples":  # past KRONOS_MAX_SAMPLE_COUNT
        bad.sampling.sample_count = 1000
    else:
        bad.history.close[len(bad.history.close) // 2] = float("nan")
    return bad


def _invalid_json(p: Prepared, how: str) -> bytes:
    if how == "json":
        return json.dumps(p.body).encode()[:-7]
    if how == "field":
        return json.dumps({**p.body, "unexpected": 1}).encode()
    return json.dumps(
        {**p.body, "candles": p.body["candles"][:1], "timestamps": p.body["timestamps"][:1]}
    ).encode()


@dataclass(frozen=True)
class Figures:
    rss_mib: float
    threads: int
    fds: int
    tasks: int

    def __str__(self) -> str:
        return f"RSS {self.rss_mib:.1f} MiB, {self.threads} threads, {self.fds} fds, {self.tasks} tasks"


def _figures(server: Server) -> Figures:
    tasks = int(Server.total(server.metrics(), "kronos_event_loop_tasks"))
    return Figures(server.rss_mib(), server.threads(), server.fds(), tasks)


def _quiet(server: Server, baseline: Figures | None, timeout: float = 30) -> Figures:
    """The figures once the engine is empty and, given a baseline, threads, fds and tasks are
    back within their margins (idle worker threads and closing sockets take a moment)."""
    end = time.monotonic() + timeout
    while True:
        samples = server.metrics()
        idle = (
            Server.total(samples, "kronos_engine_running_rows") == 0
            and Server.total(samples, "kronos_engine_queued_rows") == 0
            and Server.total(samples, "kronos_concurrent_requests") == 0
        )
        now = _figures(server)
        back = baseline is None or (
            now.threads <= baseline.threads + THREADS_MARGIN
            and now.fds <= baseline.fds + FDS_MARGIN
            and now.tasks <= baseline.tasks + TASKS_MARGIN
        )
        if (idle and back) or time.monotonic() > end:
            return now
        time.sleep(0.25)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_ten_thousand_mixed_requests_leak_nothing(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        channels = [server.channel() for _ in range(2)]
        soak = Soak(server, channels)
        started = time.monotonic()
        soak.run(0, WARMUP)
        time.sleep(1)
        warm = _quiet(server, None)
        warm_samples = server.metrics()
        mid = time.monotonic()
        soak.run(WARMUP, TOTAL)
        soak_seconds = time.monotonic() - mid
        end = _quiet(server, warm)
        total_seconds = time.monotonic() - started
        samples = server.metrics()

        outcomes = soak.tally.outcomes
        kinds = Counter(o.kind for o in outcomes)
        growth = end.rss_mib / warm.rss_mib - 1
        rate, soak_rate = len(outcomes) / total_seconds, (TOTAL - WARMUP) / soak_seconds
        print(
            f"\nsoak: {len(outcomes)} requests in {total_seconds:.0f}s ({rate:.0f}/s; the "
            f"{TOTAL - WARMUP} after the warm-up in {soak_seconds:.0f}s, {soak_rate:.0f}/s) "
            f"{dict(kinds)}; after the warm-up: {warm}; at the end: {end}; RSS growth {growth * 100:+.1f}%"
        )
        assert len(outcomes) == TOTAL
        bad = [o for o in outcomes if o.kind == "bad"]
        assert not bad, f"{len(bad)} wrong answers, e.g. {bad[:5]}"
        assert kinds["ok"] and kinds["cancelled"] and kinds["deadline"] and kinds["invalid"], kinds

        # nothing leaked
        assert Server.total(samples, "kronos_engine_running_rows") == 0
        assert Server.total(samples, "kronos_engine_queued_rows") == 0
        assert Server.total(samples, "kronos_concurrent_requests") == 0
        assert warm.tasks > 0  # the gauge counts the serving loop's tasks
        assert growth < RSS_GROWTH, (warm, end)
        assert end.threads <= warm.threads + THREADS_MARGIN, (warm, end)
        assert end.fds <= warm.fds + FDS_MARGIN, (warm, end)
        assert end.tasks <= warm.tasks + TASKS_MARGIN, (warm, end)

        # the metrics agree with the callers: no errors, every invalid call counted as invalid,
        # at least every forecast the callers received counted as a success (a call cancelled
        # or out of time on our side may still have been answered), nothing counted twice
        assert Server.total(samples, "kronos_requests_total", status="error") == 0
        assert not server.troubles(), server.troubles()[:5]
        assert Server.total(samples, "kronos_engine_overload_rejections_total") == 0
        for key, route in ROUTES.items():
            mine = [o for o in outcomes if o.route == key]
            given_up = sum(o.kind in ("cancelled", "deadline") for o in mine)
            served = sum(o.kind == "ok" for o in mine)
            invalid = sum(o.kind == "invalid" for o in mine)
            counted = Server.total(samples, "kronos_requests_total", route=route)
            successes = Server.total(samples, "kronos_requests_total", route=route, status="success")
            assert Server.total(samples, "kronos_requests_total", route=route, status="invalid") == invalid
            assert served <= successes <= served + given_up, (route, served, successes, given_up)
            assert len(mine) - given_up <= counted <= len(mine), (route, counted, len(mine), given_up)
        # the engine admitted at least every series that was answered with a forecast
        admitted = Server.total(samples, "kronos_engine_queue_wait_seconds_count") - Server.total(
            warm_samples, "kronos_engine_queue_wait_seconds_count"
        )
        answered = sum(o.items_ok for o in outcomes[WARMUP:])
        assert admitted >= answered, (admitted, answered)
        for channel in channels:
            channel.close()
