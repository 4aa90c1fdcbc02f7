"""Closed-loop workers: each sends its next call as soon as the previous one answered.

One thread per worker. gRPC workers share one :class:`KronosClient` (one HTTP/2 channel);
REST workers each keep one keep-alive ``http.client`` connection. A level warms up for
``warmup`` seconds (calls not recorded), then records every call that starts in its window:
``duration`` seconds, or exactly ``requests`` calls.

Python client overhead (the GIL, protobuf and JSON work) limits what one process can
drive: ``client_cpu_pct`` near 100 % per core means the client, not the server, is the limit.
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit

import grpc

from kronos_client.client import KronosClient
from kronos_client.errors import KronosClientError
from kronos_client.loadtest.workload import Pool

REST_PATHS = {"single": "/v1/predict/single", "batch": "/v1/predict/batch"}


@dataclass
class CallResult:
    """What one call gave: no ``error`` = success; batch items may still fail one by one."""

    error: str | None = None
    series: int = 0
    rows: int = 0
    item_errors: tuple[str, ...] = ()
    first_event_s: float | None = None


class Caller(Protocol):
    def call(self, index: int) -> CallResult: ...

    def close(self) -> None: ...


CallerFactory = Callable[[], Caller]


# -- gRPC ---------------------------------------------------------------------------------


class GrpcCaller:
    """PredictSingle / PredictBatch / PredictStream on a shared client (thread-safe)."""

    def __init__(self, client: KronosClient, pool: Pool) -> None:
        self.client = client
        self.pool = pool

    def call(self, index: int) -> CallResult:
        request = self.pool.grpc[index % len(self.pool)]
        shape = self.pool.shape
        try:
            if shape.name == "stream":
                return self._stream(request)
            method = "PredictBatch" if shape.name == "batch" else "PredictSingle"
            response, _ = self.client.call(method, request)
        except KronosClientError as exc:
            return CallResult(error=exc.code_name)
        except grpc.RpcError as exc:  # pragma: no cover - the client wraps these
            return CallResult(error=KronosClientError.from_rpc_error(exc).code_name)
        if shape.name == "batch":
            failed = tuple(r.error.code for r in response.results if r.HasField("error"))
            ok = len(response.results) - len(failed)
            return CallResult(series=ok, rows=ok * shape.pred_len, item_errors=failed)
        return CallResult(series=1, rows=shape.pred_len)

    def _stream(self, request: Any) -> CallResult:
        start = time.perf_counter()
        first: float | None = None
        final = False
        for event, _ in self.client.stream_raw(request):
            if first is None:
                first = time.perf_counter() - start
            final = event.HasField("final")
        if not final:
            return CallResult(error="NO_FINAL", first_event_s=first)
        return CallResult(series=1, rows=self.pool.shape.pred_len, first_event_s=first)

    def close(self) -> None:
        pass


# -- REST ---------------------------------------------------------------------------------


def rest_headers(auth: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """gRPC auth metadata -> the bridge's headers (X-Container-Name, Authorization)."""
    names = {"x-container-name": "X-Container-Name", "authorization": "Authorization"}
    out = {"Content-Type": "application/json", "Accept": "application/json"}
    out.update({names.get(k, k): v for k, v in auth})
    return out


class RestCaller:
    """POSTs to /v1/predict/single or /batch on its own keep-alive connection.

    ``timeout`` applies to each socket operation (connect, send, each read), as
    http.client does it; errors are the HTTP status ("401", "503") or the exception's name.
    """

    def __init__(
        self,
        base_url: str,
        pool: Pool,
        headers: dict[str, str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if pool.shape.name not in REST_PATHS:
            raise ValueError(f"the REST API has no {pool.shape.name} call")
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--rest-url must be http(s)://HOST[:PORT], got {base_url!r}")
        self.https = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.https else 80)
        self.path = url.path.rstrip("/") + REST_PATHS[pool.shape.name]
        self.pool = pool
        self.headers = headers
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            if self.https:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.ssl_context
                )
            else:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.connect()
            if self.conn.sock is not None:
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def call(self, index: int) -> CallResult:
        body = self.pool.rest[index % len(self.pool)]
        shape = self.pool.shape
        try:
            conn = self._connection()
            conn.request("POST", self.path, body=body, headers=self.headers)
            reply = conn.getresponse()
            data = reply.read()
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            self.close()  # a fresh connection for the next call
            return CallResult(error="timeout" if isinstance(exc, TimeoutError) else type(exc).__name__)
        if reply.will_close:
            self.close()
        if reply.status != 200:
            return CallResult(error=str(reply.status))
        if shape.name != "batch":
            return CallResult(series=1, rows=shape.pred_len)
        results = json.loads(data)
        failed = tuple(str(r.get("status", "error")) for r in results if "error" in r)
        ok = len(results) - len(failed)
        return CallResult(series=ok, rows=ok * shape.pred_len, item_errors=failed)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- one level ----------------------------------------------------------------------------


@dataclass
class LevelRecord:
    """The recorded calls of one level (latencies in seconds)."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    first_events: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    item_errors: Counter[str] = field(default_factory=Counter)
    series: int = 0
    rows: int = 0
    elapsed_s: float = 0.0
    warmup_s: float = 0.0
    client_cpu_s: float = 0.0
    interrupted: bool = False

    @property
    def calls(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def add(self, latency: float, result: CallResult) -> None:
        self.latencies.append(latency)
        if result.error is not None:
            self.errors[result.error] += 1
        self.series += result.series
        self.rows += result.rows
        self.item_errors.update(result.item_errors)
        if result.first_event_s is not None and result.error is None:
            self.first_events.append(result.first_event_s)


class Progress:
    """One updating stderr line per level on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, plain_every: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.plain_every = plain_every
        self._last_plain = -math.inf

    def show(self, line: str, elapsed: float, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        elif final or elapsed - self._last_plain >= self.plain_every:
            self._last_plain = -math.inf if final else elapsed
            self.stream.write(line + "\n")
        self.stream.flush()

    def update(
        self, label: str, elapsed: float, done: int, errors: int, rate: float, final: bool = False
    ) -> None:
        line = f"{label}  {elapsed:6.1f} s  done {done}  errors {errors}  {rate:.1f} calls/s"
        self.show(line, elapsed, final)

    def warming(self, label: str, elapsed: float, answered: int, concurrency: int) -> None:
        self.show(f"{label}  {elapsed:6.1f} s  warm-up: {answered}/{concurrency} callers answered", elapsed)


class _Window:
    """When the measured window opens and closes (shared by the workers and the main thread)."""

    def __init__(self, concurrency: int) -> None:
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.all_done = threading.Event()
        self.t0: float | None = None
        self.t_end: float | None = None
        self.answered = 0  # workers whose first call has returned
        self.alive = concurrency
        self.last_finish = 0.0


def run_level(
    factory: CallerFactory,
    concurrency: int,
    *,
    duration: float = 30.0,
    requests: int | None = None,
    warmup: float = 0.0,
    on_measure: Callable[[], None] | None = None,
    on_end: Callable[[], None] | None = None,
    progress: Progress | None = None,
    label: str = "",
    tick: float = 0.5,
) -> LevelRecord:
    """Run ``concurrency`` closed-loop workers and record one measured window.

    Warm-up: ``warmup`` seconds and until every worker's first call has returned (so the
    pipeline is full); none when ``warmup`` is 0. Then ``on_measure`` runs and the window
    opens. With ``duration``, the calls that end inside the window are recorded and
    throughput is over exactly ``duration`` (calls still running at its end are awaited,
    not recorded); with ``requests``, exactly that many calls that start inside it.
    ``on_end`` runs as the window closes, before those stragglers are awaited.
    Ctrl-C stops the level early: ``interrupted`` is set and the calls so far are kept.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    record = LevelRecord(concurrency)
    w = _Window(concurrency)
    counter = itertools.count()
    tickets = itertools.count()
    callers = [factory() for _ in range(concurrency)]
    cpu = [time.process_time(), 0.0]  # at the window's opening and closing
    start = time.perf_counter()

    def open_window() -> None:
        if on_measure is not None:
            on_measure()
        cpu[0] = time.process_time()
        with w.lock:
            w.t0 = time.perf_counter()
            if requests is None:
                w.t_end = w.t0 + duration

    def worker(caller: Caller) -> None:
        answered = False
        try:
            while not w.stop.is_set():
                opened_at_start = w.t0 is not None
                if opened_at_start and requests is not None and next(tickets) >= requests:
                    return
                began = time.perf_counter()
                try:
                    result = caller.call(next(counter))
                except Exception as exc:  # a load tool reports failures instead of dying
                    result = CallResult(error=type(exc).__name__)
                ended = time.perf_counter()
                with w.lock:
                    if not answered:
                        answered = True
                        w.answered += 1
                    if requests is not None:
                        measured = opened_at_start
                    else:
                        measured = w.t0 is not None and w.t_end is not None and w.t0 <= ended <= w.t_end
                    if measured:
                        record.add(ended - began, result)
                        w.last_finish = max(w.last_finish, ended)
        finally:
            caller.close()
            with w.lock:
                w.alive -= 1
                if w.alive == 0:
                    w.all_done.set()

    if warmup <= 0:
        open_window()
    threads = [
        threading.Thread(target=worker, args=(c,), daemon=True, name=f"loadtest-{i}")
        for i, c in enumerate(callers)
    ]
    for t in threads:
        t.start()

    def wait_s() -> float:
        now = time.perf_counter()
        if w.t0 is None:
            return max(0.0, min(tick, start + warmup - now)) if now < start + warmup else min(tick, 0.05)
        if w.t_end is not None and not w.stop.is_set():
            return max(0.0, min(tick, w.t_end - now))
        return tick

    ended = False
    last_done, last_t = 0, time.perf_counter()
    try:
        while not w.all_done.wait(wait_s()):
            now = time.perf_counter()
            if w.t0 is None:
                if now >= start + warmup and w.answered >= concurrency:
                    open_window()
                    last_t = now
                elif progress is not None:
                    progress.warming(label, now - start, w.answered, concurrency)
                continue
            if w.t_end is not None and now >= w.t_end and not w.stop.is_set():
                w.stop.set()
                cpu[1] = time.process_time()
                if on_end is not None:
                    on_end()
                ended = True
            if progress is not None and not w.stop.is_set():
                with w.lock:
                    done, errors = record.calls, record.failed
                rate = (done - last_done) / max(now - last_t, 1e-9)
                last_done, last_t = done, now
                progress.update(label, now - w.t0, done, errors, rate)
    except KeyboardInterrupt:
        record.interrupted = True
        w.stop.set()
        for t in threads:
            t.join(5)
    now = time.perf_counter()
    if not ended and on_end is not None and w.t0 is not None:
        on_end()
    t0 = w.t0 if w.t0 is not None else now
    record.warmup_s = t0 - start
    record.client_cpu_s = (cpu[1] if ended else time.process_time()) - cpu[0]
    with w.lock:
        if requests is None and not record.interrupted:
            record.elapsed_s = duration
        else:
            end = w.last_finish if record.calls and not record.interrupted else now
            record.elapsed_s = max(end - t0, 1e-9)
    if progress is not None:
        rate = record.calls / record.elapsed_s
        progress.update(label, record.elapsed_s, record.calls, record.failed, rate, final=True)
    return record
