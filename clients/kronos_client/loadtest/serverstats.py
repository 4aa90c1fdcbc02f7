"""The server's own view of a level: engine metrics scraped before and after, as deltas.

A minimal reader of the Prometheus text format (enough for the server's ``/v1/metrics``:
``name{label="value",...} number``), counter/histogram deltas, and a bucket-interpolated
quantile as Prometheus' ``histogram_quantile`` computes it. The figures cover everything
the server did in the window, other callers' traffic included.
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

ROWS_PER_STEP = "kronos_engine_rows_per_step"
QUEUE_WAIT = "kronos_engine_queue_wait_seconds"
STEP_SECONDS = "kronos_engine_step_seconds"


def _labels(text: str) -> Labels:
    out = []
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if match is None:
            break
        value = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], match.group(2))
        out.append((match.group(1), value))
        pos = match.end()
    return tuple(sorted(out))


def parse_text(text: str) -> Samples:
    """Prometheus text exposition -> {(sample name, sorted labels): value}; comments skipped."""
    samples: Samples = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        samples[(match.group(1), _labels(match.group(2) or ""))] = value
    return samples


def scrape(url: str, timeout: float = 5.0) -> Samples | None:
    """The samples at ``url``, or None when it cannot be read (the report then says n/a)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return parse_text(reply.read().decode("utf-8", "replace"))
    except (OSError, urllib.error.URLError, ValueError, UnicodeError):
        return None


@dataclass(frozen=True)
class HistogramDelta:
    """Observations of one histogram between two scrapes; buckets are (le, cumulative count)."""

    count: float
    sum: float
    buckets: tuple[tuple[float, float], ...]

    def mean(self) -> float | None:
        return self.sum / self.count if self.count > 0 else None

    def quantile(self, q: float) -> float | None:
        """Linear interpolation inside the bucket holding rank q*count (histogram_quantile);
        a rank in the +Inf bucket gives the largest finite bound."""
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(le):
                    return lower
                if cumulative == below:
                    return le
                return lower + (le - lower) * (rank - below) / (cumulative - below)
            lower, below = le, cumulative
        return lower


def _histogram(samples: Samples, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    want = tuple(sorted(labels.items()))
    buckets: dict[float, float] = {}
    out: dict[str, Any] = {"count": None, "sum": None, "buckets": buckets}
    for (sample, sample_labels), value in samples.items():
        if sample == f"{name}_bucket":
            le = dict(sample_labels).get("le")
            rest = tuple(kv for kv in sample_labels if kv[0] != "le")
            if le is not None and rest == want:
                buckets[float(le)] = value
        elif sample in (f"{name}_count", f"{name}_sum") and sample_labels == want:
            out[sample.rsplit("_", 1)[1]] = value
    return out


def histogram_delta(
    before: Samples, after: Samples, name: str, labels: Mapping[str, str] | None = None
) -> HistogramDelta | None:
    """``after`` minus ``before`` for one histogram (None if absent, or reset in between)."""
    a = _histogram(after, name, labels or {})
    b = _histogram(before, name, labels or {})
    if a["count"] is None or a["sum"] is None:
        return None
    count = a["count"] - (b["count"] or 0.0)
    if count < 0:
        return None  # the server restarted between the scrapes
    buckets = tuple(sorted((le, v - b["buckets"].get(le, 0.0)) for le, v in a["buckets"].items()))
    return HistogramDelta(count, a["sum"] - (b["sum"] or 0.0), buckets)


def engine_delta(before: Samples | None, after: Samples | None) -> dict[str, float | None] | None:
    """Engine figures of the window, or None when either scrape failed (report: n/a).

    ``rows_per_step_mean``: rows decoded together per engine step (batching achieved);
    ``queue_wait_*``: submission to admission; ``step_mean_ms``: one whole engine step.
    """
    if before is None or after is None:
        return None
    rows = histogram_delta(before, after, ROWS_PER_STEP)
    wait = histogram_delta(before, after, QUEUE_WAIT)
    step = histogram_delta(before, after, STEP_SECONDS, {"phase": "step"})

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1e3

    return {
        "engine_steps": rows.count if rows else None,
        "rows_per_step_mean": rows.mean() if rows else None,
        "admitted": wait.count if wait else None,
        "queue_wait_mean_ms": ms(wait.mean()) if wait else None,
        "queue_wait_p95_ms": ms(wait.quantile(0.95)) if wait else None,
        "step_mean_ms": ms(step.mean()) if step else None,
    }
