"""A `kronos-serve serve` subprocess under load: its /proc figures, its /v1/metrics, and the
calls the stress tests make (raw gRPC stubs and plain HTTP, no client library, no retries).

Every call helper returns an :class:`Outcome` instead of raising, so a load thread records
every answer; anything the helpers do not recognise is an outcome of kind ``"bad"`` with
the reason, which the tests assert never happens.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.processes import PORT_LINE, make_keys, parity_env

CONTAINER = "tester"
SERVICE = "/kronos.v1.KronosPredictor/"
ROUTES = {
    "single": SERVICE + "PredictSingle",
    "batch": SERVICE + "PredictBatch",
    "stream": SERVICE + "PredictStream",
    "rest_single": "/v1/predict/single",
    "rest_batch": "/v1/predict/batch",
}
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "amount")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]  # (name, labels) -> value


@dataclass
class Outcome:
    """One call as the client saw it.

    ``kind``: ``ok`` (answered; for a batch, every item answered with a forecast or an
    engine refusal), ``overloaded`` (the whole call refused by the admission limit, with
    retry-after), ``invalid``, ``cancelled`` (by us), ``deadline`` (our short deadline
    passed) or ``bad`` (anything else: the reason is in ``detail``)."""

    route: str
    kind: str
    seconds: float
    detail: str = ""
    items_ok: int = 0  # batch items answered with a forecast (1 for a successful single call)
    items_overloaded: int = 0  # batch items refused by the engine's admission limit


def _finite_candles(rows: Sequence[Sequence[float]], pred_len: int) -> str:
    """'' when every one of ``pred_len`` rows is there and finite, else what is wrong."""
    if len(rows) != pred_len:
        return f"{len(rows)} rows, expected {pred_len}"
    if not all(math.isfinite(v) for row in rows for v in row):
        return "non-finite value"
    return ""


def check_pb(forecast: pb.Candles, pred_len: int) -> str:
    columns = [getattr(forecast, f) for f in CANDLE_FIELDS]
    if any(len(c) != len(forecast.timestamps_ms) for c in columns):
        return "ragged candle columns"
    return _finite_candles(list(zip(*columns, strict=True)), pred_len)


def check_json(payload: Any, pred_len: int) -> str:
    try:
        rows = [[float(c[f]) for f in CANDLE_FIELDS] for c in payload["prediction"]]
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed forecast: {exc!r}"
    return _finite_candles(rows, pred_len)


class Server:
    """`kronos-serve serve` in a subprocess whose output goes to a file: under load, a pipe
    read by a thread of this (busy, GIL-bound) process would fill up and block the server's
    logging, and with it the server's event loop."""

    def __init__(self, tmp: Path, env: dict[str, str], key: str) -> None:
        self.log = tmp / "server.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kronos_server.cli", "serve"],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.proc.pid
        self.key = key
        ports: dict[str, int] = {}
        end = time.monotonic() + 90
        while len(ports) < 2:
            assert self.proc.poll() is None and time.monotonic() < end, self.log.read_text()
            ports = {m.group(1): int(m.group(2)) for m in PORT_LINE.finditer(self.log.read_text())}
            time.sleep(0.05)
        self.target = f"127.0.0.1:{ports['gRPC']}"
        self.http_port = ports["HTTP"]
        self.metadata = (("x-container-name", CONTAINER), ("authorization", f"Bearer {key}"))
        self.headers = {
            "X-Container-Name": CONTAINER,
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
        }

    def wait_ready(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v1/readyz", timeout=2):
                    return
            except OSError:
                pass
            assert self.proc.poll() is None and time.monotonic() < end, self.log.read_text()
            time.sleep(0.05)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def troubles(self) -> list[str]:
        """Output lines that are errors or not log records at all (a traceback on stderr)."""
        return [line for line in self.lines() if not line.startswith("{") or '"level":"ERROR"' in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    # -- the process, from /proc ----------------------------------------------------------
    def status(self, name: str) -> int:
        """A number of /proc/<pid>/status (VmRSS in KiB, Threads, ...)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        raise KeyError(name)

    def rss_mib(self) -> float:
        return self.status("VmRSS") / 1024

    def threads(self) -> int:
        return self.status("Threads")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def access_latencies(self, status: str, since: int = 0) -> list[float]:
        """Seconds the server spent on each call it logged with ``status`` (gRPC and REST access
        lines), from output line ``since`` on: its own view, without the client's queueing."""
        out = []
        for line in self.lines()[since:]:
            if line.startswith("{") and f'"status":"{status}"' in line:
                record = json.loads(line)
                if record.get("message") in ("request finished", "http request finished"):
                    out.append(float(record["latency_ms"]) / 1000)
        return out

    # -- /v1/metrics ----------------------------------------------------------------------
    def metrics(self) -> Samples:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v1/metrics", timeout=10) as r:
            text = r.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    @staticmethod
    def total(samples: Samples, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        want = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)

    def settle(self, check: Callable[[Samples], bool], timeout: float = 20) -> Samples:
        """Scrape until ``check`` holds (the server records a call just after answering it)."""
        end = time.monotonic() + timeout
        while True:
            samples = self.metrics()
            if check(samples) or time.monotonic() > end:
                return samples
            time.sleep(0.1)

    # -- calls ----------------------------------------------------------------------------
    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    def rest(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)


@contextmanager
def running_server(tmp: Path, **settings: str) -> Iterator[Server]:
    """`kronos-serve serve` with the parity model, one torch thread and no practical rate
    limit, plus ``settings`` (KRONOS_ variables without the prefix, e.g. MAX_QUEUED_ROWS)."""
    keys, key = make_keys(tmp, CONTAINER)
    env = {
        **parity_env(keys),
        "KRONOS_TORCH_THREADS": "1",
        "KRONOS_RATE_LIMIT": "100000000/minute",
        **{f"KRONOS_{k}": v for k, v in settings.items()},
    }
    server = Server(tmp, env, key)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _batch_refused(outcome: Outcome, items: int) -> Outcome:
    """A batch refused as a whole because the engine admitted none of it: the engine counted
    one overload rejection per item."""
    if outcome.kind == "overloaded":
        outcome.items_overloaded = items
    return outcome


def _grpc_failure(route: str, err: grpc.RpcError, seconds: float) -> Outcome:
    code = err.code()
    trailers = dict(err.trailing_metadata() or ())
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        if "retry-after" in trailers and "x-ratelimit-limit" not in trailers:
            return Outcome(route, "overloaded", seconds)
        return Outcome(route, "bad", seconds, f"RESOURCE_EXHAUSTED without overload trailers: {trailers}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return Outcome(route, "invalid", seconds, err.details())
    if code == grpc.StatusCode.CANCELLED:
        return Outcome(route, "cancelled", seconds)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Outcome(route, "deadline", seconds)
    return Outcome(route, "bad", seconds, f"{code}: {err.details()}")


def grpc_single(
    stub: pb_grpc.KronosPredictorStub, md: Any, req: pb.PredictRequest, deadline: float
) -> Outcome:
    started = time.perf_counter()
    try:
        reply = stub.PredictSingle(req, metadata=md, timeout=deadline)
    except grpc.RpcError as err:
        return _grpc_failure("single", err, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    problem = check_pb(reply.forecast, req.pred_len)
    return Outcome("single", "bad" if problem else "ok", seconds, problem, items_ok=1)


def grpc_batch(
    stub: pb_grpc.KronosPredictorStub, md: Any, items: list[pb.PredictRequest], deadline: float
) -> Outcome:
    started = time.perf_counter()
    try:
        reply = stub.PredictBatch(pb.PredictBatchRequest(items=items), metadata=md, timeout=deadline)
    except grpc.RpcError as err:
        return _batch_refused(_grpc_failure("batch", err, time.perf_counter() - started), len(items))
    seconds = time.perf_counter() - started
    out = Outcome("batch", "ok", seconds)
    if len(reply.results) != len(items):
        return Outcome("batch", "bad", seconds, f"{len(reply.results)} results for {len(items)} items")
    for item, result in zip(items, reply.results, strict=True):
        if result.HasField("forecast"):
            problem = check_pb(result.forecast.forecast, item.pred_len)
            if problem:
                return Outcome("batch", "bad", seconds, problem)
            out.items_ok += 1
        elif result.error.code == "RESOURCE_EXHAUSTED":
            out.items_overloaded += 1
        else:
            return Outcome("batch", "bad", seconds, f"item error {result.error}")
    return out


def grpc_stream(
    stub: pb_grpc.KronosPredictorStub,
    md: Any,
    req: pb.PredictRequest,
    deadline: float,
    cancel_after: int | None = None,
) -> Outcome:
    """The whole stream: pred_len steps, then a final forecast with the same values;
    ``cancel_after``: cancel once that many steps arrived (unless the stream already ended)."""
    started = time.perf_counter()
    call = stub.PredictStream(req, metadata=md, timeout=deadline)
    steps: list[pb.PredictStep] = []
    final: pb.PredictResponse | None = None
    try:
        for event in call:
            if event.HasField("step"):
                steps.append(event.step)
            elif final is None:
                final = event.final
            else:
                return Outcome("stream", "bad", time.perf_counter() - started, "two final events")
            if cancel_after is not None and final is None and len(steps) >= cancel_after:
                call.cancel()
                return Outcome("stream", "cancelled", time.perf_counter() - started)
    except grpc.RpcError as err:
        return _grpc_failure("stream", err, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if final is None:
        return Outcome("stream", "bad", seconds, "no final event")
    problem = check_pb(final.forecast, req.pred_len)
    if not problem and [s.step for s in steps] != list(range(req.pred_len)):
        problem = f"steps {[s.step for s in steps]}"
    if not problem:
        # the same values up to float rounding (the steps are decoded incrementally)
        worst = max(
            abs(getattr(s, f) - getattr(final.forecast, f)[i]) / max(1.0, abs(getattr(s, f)))
            for i, s in enumerate(steps)
            for f in CANDLE_FIELDS
        )
        if worst > 1e-5:
            problem = f"steps differ from the final forecast (relative {worst:.2g})"
    return Outcome("stream", "bad" if problem else "ok", seconds, problem, items_ok=1)


def rest_call(
    conn: http.client.HTTPConnection, headers: dict[str, str], route: str, payload: bytes
) -> tuple[int, dict[str, str], Any, float]:
    """POST on a kept-alive connection; (status, headers, JSON body, seconds)."""
    started = time.perf_counter()
    try:
        conn.request("POST", ROUTES[route], body=payload, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        # the server closed this kept-alive connection while it sat idle (uvicorn's keep-alive
        # timeout, reachable on a loaded machine): the request was never sent; send it again on
        # a fresh connection, as HTTP clients do with a stale connection
        conn.close()
        conn.request("POST", ROUTES[route], body=payload, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    seconds = time.perf_counter() - started
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed, seconds


def rest_predict(
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    route: str,
    payload: bytes,
    pred_lens: list[int],
) -> Outcome:
    """A REST forecast (single: ``payload`` is one body's JSON; batch: {"items": [...]})."""
    try:
        status, hdrs, parsed, seconds = rest_call(conn, headers, route, payload)
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return Outcome(route, "bad", 0.0, f"transport: {exc!r}")
    if status == 503:
        if isinstance(parsed, dict) and parsed.get("error") == "overloaded" and "retry-after" in hdrs:
            items = 0 if route == "rest_single" else len(pred_lens)
            return _batch_refused(Outcome(route, "overloaded", seconds), items)
        return Outcome(route, "bad", seconds, f"503 {parsed} {hdrs}")
    if status in (400, 422):
        return Outcome(route, "invalid", seconds, str(parsed))
    if status != 200:
        return Outcome(route, "bad", seconds, f"{status} {parsed}")
    if route == "rest_single":
        problem = check_json(parsed, pred_lens[0])
        return Outcome(route, "bad" if problem else "ok", seconds, problem, items_ok=1)
    out = Outcome(route, "ok", seconds)
    if not isinstance(parsed, list) or len(parsed) != len(pred_lens):
        return Outcome(route, "bad", seconds, f"batch answer {str(parsed)[:200]}")
    for slot, pred_len in zip(parsed, pred_lens, strict=True):
        if "prediction" in slot:
            problem = check_json(slot, pred_len)
            if problem:
                return Outcome(route, "bad", seconds, problem)
            out.items_ok += 1
        elif slot.get("error") == "overloaded" and slot.get("status") == 503:
            out.items_overloaded += 1
        else:
            return Outcome(route, "bad", seconds, f"item {slot}")
    return out


def rest_abandon(port: int, headers: dict[str, str], payload: Any, after: float) -> Outcome:
    """Send a REST single forecast and hang up ``after`` seconds later, unanswered or not."""
    started = time.perf_counter()
    data = json.dumps(payload).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    raw = f"POST {ROUTES['rest_single']} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(data)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw.encode() + data)
        time.sleep(after)
    return Outcome("rest_single", "cancelled", time.perf_counter() - started)


@dataclass
class Tally:
    """Outcomes from many threads."""

    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def of(self, *, route: str | None = None, kind: str | None = None) -> list[Outcome]:
        with self.lock:
            return [
                o
                for o in self.outcomes
                if (route is None or o.route == route) and (kind is None or o.kind == kind)
            ]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]
