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
``/v1/models``), or ``other``. Each logical request is counted once: the gRPC calls the
in-process REST bridge makes are not counted again under their method path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
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
