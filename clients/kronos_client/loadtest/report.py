"""Figures per (transport, shape, concurrency): a Markdown table and the JSON document."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kronos_client.loadtest.runner import LevelRecord
from kronos_client.loadtest.workload import Shape

REDACTED = "***"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_ms(values: Sequence[float]) -> dict[str, float | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1e3, 3)

    return {
        "p50": ms(percentile(values, 50)),
        "p95": ms(percentile(values, 95)),
        "p99": ms(percentile(values, 99)),
        "mean": ms(sum(values) / len(values)) if values else None,
        "min": ms(min(values)) if values else None,
        "max": ms(max(values)) if values else None,
    }


def summarise(
    transport: str, shape: Shape, record: LevelRecord, server: dict[str, float | None] | None
) -> dict[str, Any]:
    """One level's figures; latencies in ms, throughput per second of the measured window."""
    elapsed = record.elapsed_s
    level: dict[str, Any] = {
        "transport": transport,
        "shape": shape.name,
        "concurrency": record.concurrency,
        "history": shape.history,
        "pred_len": shape.pred_len,
        "batch_size": shape.batch_size,
        "sample_count": shape.sample_count,
        "seed": shape.seed,
        "elapsed_s": round(elapsed, 3),
        "warmup_s": round(record.warmup_s, 3),
        "calls": record.calls,
        "ok": record.calls - record.failed,
        "errors": dict(sorted(record.errors.items())),
        "item_errors": dict(sorted(record.item_errors.items())),
        "latency_ms": latency_ms(record.latencies),
        "first_event_ms": latency_ms(record.first_events) if shape.name == "stream" else None,
        "throughput": {
            "calls_per_s": round(record.calls / elapsed, 3),
            "ok_calls_per_s": round((record.calls - record.failed) / elapsed, 3),
            "series_per_s": round(record.series / elapsed, 3),
            "rows_per_s": round(record.rows / elapsed, 3),
        },
        "client_cpu_pct": round(100 * record.client_cpu_s / elapsed, 1),
        "server": server,
        "interrupted": record.interrupted,
    }
    return level


def _num(value: Any, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


COLUMNS = (
    "transport",
    "shape",
    "conc",
    "calls",
    "errors",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "first p50 ms",
    "calls/s",
    "series/s",
    "rows/s",
    "rows/step",
    "qwait mean ms",
    "qwait p95 ms",
)


def table_row(level: dict[str, Any]) -> list[str]:
    lat, thr, srv = level["latency_ms"], level["throughput"], level["server"] or {}
    first = level["first_event_ms"]
    shape = f"{level['shape']} {level['batch_size']}x" if level["shape"] == "batch" else level["shape"]
    return [
        level["transport"],
        f"{shape}{level['history']}->{level['pred_len']}",
        str(level["concurrency"]),
        str(level["calls"]),
        str(sum(level["errors"].values())),
        _num(lat["p50"]),
        _num(lat["p95"]),
        _num(lat["p99"]),
        _num(first["p50"]) if first else "-",
        _num(thr["calls_per_s"], ".2f"),
        _num(thr["series_per_s"], ".2f"),
        _num(thr["rows_per_s"], ".0f"),
        _num(srv.get("rows_per_step_mean"), ".2f"),
        _num(srv.get("queue_wait_mean_ms")),
        _num(srv.get("queue_wait_p95_ms")),
    ]


def format_table(levels: Sequence[dict[str, Any]]) -> str:
    """A Markdown table, then the errors by status of every level that had any."""
    rows = [table_row(level) for level in levels]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                (c.ljust(w) if i < 2 else c.rjust(w))
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = [(":" + "-" * (w + 1)) if i < 2 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)]
    out = [line(COLUMNS), "|" + "|".join(rule) + "|"]
    out += [line(r) for r in rows]
    notes = []
    for level in levels:
        where = f"{level['transport']} {level['shape']} c={level['concurrency']}"
        if level["errors"]:
            notes.append(f"{where}: errors " + ", ".join(f"{k} x{v}" for k, v in level["errors"].items()))
        if level["item_errors"]:
            items = ", ".join(f"{k} x{v}" for k, v in level["item_errors"].items())
            notes.append(f"{where}: batch items failed {items}")
        if level["interrupted"]:
            notes.append(f"{where}: interrupted")
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def redact(argv: Sequence[str]) -> list[str]:
    """The command line with the value of --key hidden."""
    out: list[str] = []
    hide = False
    for arg in argv:
        if hide:
            out.append(REDACTED)
            hide = False
        elif arg == "--key":
            out.append(arg)
            hide = True
        elif arg.startswith("--key="):
            out.append("--key=" + REDACTED)
        else:
            out.append(arg)
    return out


def machine_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def document(
    argv: Sequence[str],
    args: dict[str, Any],
    levels: Sequence[dict[str, Any]],
    server: dict[str, Any],
    started: datetime,
) -> dict[str, Any]:
    args = {k: (REDACTED if k == "key" and v is not None else v) for k, v in args.items()}
    return {
        "tool": "kronos-client loadtest",
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "command": ["kronos-client", *redact(argv)],
        "args": args,
        "machine": machine_info(),
        "server": server,
        "levels": list(levels),
    }


def write_json(path: str | Path, doc: dict[str, Any]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return out
