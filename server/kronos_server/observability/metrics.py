"""The Prometheus metric set, on a registry owned by the server (never the global one).

``status`` label values (kronos_requests_total):
  success       the call answered normally
  invalid       the client sent bad input (INVALID_ARGUMENT)
  unauthorized  missing or wrong credentials (UNAUTHENTICATED)
  forbidden     a known caller not allowed this method (PERMISSION_DENIED)
  rate_limited  the caller's rate limit was exceeded
  too_large     the request exceeded a size limit
  overloaded    the engine's admission limit was full
  unavailable   the server was starting or draining
  cancelled     the client cancelled
  timeout       the deadline or inference timeout passed
  error         a fault of ours (INTERNAL and anything unexpected)
Only ``error`` and ``timeout`` indicate server trouble; the rest are client outcomes.

``route`` label values: a native gRPC call's method path (``/kronos.v1.KronosPredictor/
PredictSingle``, ...), a REST call's path (``/v1/predict/single``, ``/v1/predict/batch``,
``/v1/models``), or ``other``. Each logical request is counted once, by the call gate
(:mod:`kronos_server.gate`) that both transports pass.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kronos_server.engine.stats import EngineStats
from kronos_server.observability.cgroup import memory_limit_bytes

STATUSES = (
    "success",
    "invalid",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "too_large",
    "overloaded",
    "unavailable",
    "cancelled",
    "timeout",
    "error",
)

# gRPC status code name -> status label, where the code alone decides it
STATUS_BY_CODE = {
    "OK": "success",
    "INVALID_ARGUMENT": "invalid",
    "UNAUTHENTICATED": "unauthorized",
    "PERMISSION_DENIED": "forbidden",
    "RESOURCE_EXHAUSTED": "overloaded",
    "UNAVAILABLE": "unavailable",
    "FAILED_PRECONDITION": "unavailable",
    "CANCELLED": "cancelled",
    "DEADLINE_EXCEEDED": "timeout",
}


class EngineCollector(Collector):
    """The engine's gauges, read from ``Engine.stats()`` at scrape time (0 before the model loads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: Callable[[], EngineStats] | None = None
        self._max_queued_rows = 0

    def watch(self, stats: Callable[[], EngineStats] | None, max_queued_rows: int = 0) -> None:
        with self._lock:
            self._stats = stats
            self._max_queued_rows = max_queued_rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            stats, limit = self._stats, self._max_queued_rows
        snap = stats() if stats is not None else None
        values = {
            "kronos_engine_queued_rows": ("Rows (series x samples) waiting for admission", "queued_rows"),
            "kronos_engine_queued_requests": ("Requests waiting for admission", "queued_requests"),
            "kronos_engine_running_rows": ("Rows being decoded", "running_rows"),
        }
        for name, (doc, attr) in values.items():
            yield GaugeMetricFamily(name, doc, value=getattr(snap, attr) if snap is not None else 0)
        yield GaugeMetricFamily(
            "kronos_engine_max_queued_rows",
            "The engine's admission limit in rows (queued + running); past it requests are overloaded",
            value=limit,
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class EventLoopCollector(Collector):
    """``kronos_event_loop_tasks``: unfinished asyncio tasks of the server's event loop, counted
    at scrape time (0 until a loop is watched: ``kronos-serve serve`` watches its own).

    ``kronos-serve serve`` serves /v1/metrics on that same loop, so the count normally runs on
    the loop's thread (it includes the task answering the scrape). A scrape from another
    thread is safe too: :func:`asyncio.all_tasks` copies the weak task set, retrying if a
    task is created meanwhile, and reads nothing else of the loop; only a task finishing at
    that very moment may or may not be counted.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loop = self._loop
        count = len(asyncio.all_tasks(loop)) if loop is not None and not loop.is_closed() else 0
        yield GaugeMetricFamily(
            "kronos_event_loop_tasks", "Unfinished asyncio tasks in the server's event loop", value=count
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # (metric, label values) -> its child: labels() takes a lock and validates each call;
        # the label values are bounded (routes, statuses, endpoints), so is this
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.requests = Counter(
            "kronos_requests_total", "Requests by route and outcome", ["route", "status"], registry=r
        )
        self.request_duration = Histogram(
            "kronos_request_duration_seconds",
            "End-to-end request latency",
            ["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.inference = Histogram(
            "kronos_model_inference_seconds",
            "Time from engine submission to forecast",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.5, 1, 2, 5, 10),
            registry=r,
        )
        self.concurrent = Gauge("kronos_concurrent_requests", "Requests in progress", registry=r)
        self.timeouts = Counter(
            "kronos_timeouts_total", "Requests that hit a deadline", ["endpoint"], registry=r
        )
        self.input_size = Histogram(
            "kronos_prediction_input_size",
            "History rows per predicted series",
            ["endpoint"],
            buckets=(50, 100, 200, 400, 800, 1600),
            registry=r,
        )
        self.security_events = Counter(
            "kronos_security_events_total",
            "Authentication and authorisation events (unauthorized, blocked, ...)",
            ["event", "container"],
            registry=r,
        )
        self.rate_limit_hits = Counter(
            "kronos_rate_limit_hits_total", "Requests refused by a rate limit", ["container"], registry=r
        )
        self.size_rejections = Counter(
            "kronos_request_size_rejections_total", "Requests refused as too large", ["container"], registry=r
        )
        self.model_loaded = Gauge("kronos_model_loaded", "1 once the model is loaded and warm", registry=r)
        self.model_info = Gauge(
            "kronos_model_info",
            "1 for the loaded model and tokenizer",
            ["model_name", "model_version", "tokenizer_name", "tokenizer_version", "device"],
            registry=r,
        )
        self.engine_rows_per_step = Histogram(
            "kronos_engine_rows_per_step",
            "Rows (series x samples) decoded together in one engine step",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.engine_queue_wait = Histogram(
            "kronos_engine_queue_wait_seconds",
            "Time a request waited between submission and admission to the engine",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10),
            registry=r,
        )
        self.engine_step = Histogram(
            "kronos_engine_step_seconds",
            "Engine time per phase (prefill, decode, slide) and per whole step",
            ["phase"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.engine_overload_rejections = Counter(
            "kronos_engine_overload_rejections_total",
            "Requests refused because the engine's admission limit was full",
            registry=r,
        )
        self.engine = EngineCollector()
        r.register(self.engine)
        self.event_loop = EventLoopCollector()
        r.register(self.event_loop)
        ProcessCollector(registry=r)
        self.memory_limit = Gauge(
            "kronos_memory_limit_bytes", "The cgroup memory limit; 0 when unlimited or unknown", registry=r
        )
        self.memory_limit.set_function(memory_limit_bytes)

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per label values."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe_forecast(self, endpoint: str, rows: list[int], seconds: float | None) -> None:
        """One forecast call of the service: its series' history rows and, when it succeeded,
        the time from engine submission to the answer."""
        size = self.child(self.input_size, endpoint)
        for n in rows:
            size.observe(n)
        if seconds is not None:
            self.child(self.inference, endpoint).observe(seconds)


class EngineMetrics:
    """An :class:`~kronos_server.engine.stats.EngineObserver` feeding :class:`Metrics`
    (prometheus_client metrics are thread-safe; this runs on the engine thread)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def step(self, rows: int, seconds: float) -> None:
        self.metrics.engine_rows_per_step.observe(rows)
        self.metrics.engine_step.labels("step").observe(seconds)

    def prefill(self, rows: int, positions: int, seconds: float) -> None:
        self.metrics.engine_step.labels("prefill").observe(seconds)

    def decode(self, rows: int, seconds: float) -> None:
        self.metrics.engine_step.labels("decode").observe(seconds)

    def slide(self, rows: int, seconds: float) -> None:
        self.metrics.engine_step.labels("slide").observe(seconds)

    def queue_wait(self, seconds: float) -> None:
        self.metrics.engine_queue_wait.observe(seconds)

    def rejected(self, reason: str) -> None:
        self.metrics.engine_overload_rejections.inc()
