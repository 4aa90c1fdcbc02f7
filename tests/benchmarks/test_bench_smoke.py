"""Smoke tests: the engine, REST, replica, load and backtest benchmarks run end to end, quick modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``benchmarks/<script> args`` from the checkout; fails the test with its output."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


RATIO_KEYS = ("single_grow", "single_slide", "samples", "concurrency", "prefill_fraction")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_engine_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run_bench("bench_engine.py", "--quick", "--json", str(out))
    ratio_lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RATIO ")]
    for key in RATIO_KEYS:
        assert any(ln.split()[1] == key for ln in ratio_lines), f"no RATIO line for {key}:\n{proc.stdout}"
    data = json.loads(out.read_text())
    assert {r["key"] for r in data["ratios"]} >= set(RATIO_KEYS)
    assert all(r["value"] > 0 for r in data["ratios"])
    assert data["memory"]["cache_bytes_per_row"] > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_rest_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "rest.json"
    proc = run_bench("bench_rest.py", "--quick", "--json", str(out))
    assert any(line.startswith("RESULT rest_minus_dataplane_p50_ms ") for line in proc.stdout.splitlines())
    data = json.loads(out.read_text())
    assert len(data["rounds"]) == 3
    assert data["median"]["rest_p50_ms"] > 0 and data["median"]["dataplane_p50_ms"] > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_replicas_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "replicas.json"
    proc = run_bench("bench_replicas.py", "--quick", "--json", str(out))
    ratios = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("RATIO ")]
    assert ratios == ["three_vs_one_2threads", "three_vs_one_1thread"]
    data = json.loads(out.read_text())
    assert all(s["calls_per_s_median"] > 0 and s["errors"] == 0 for s in data["summary"].values())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_load_quick_mode(tmp_path: Path) -> None:
    """The orchestration: servers in both engine modes, the loadtest command, the summary."""
    only = "default-recompute,small-batched-c1"
    run_bench("bench_load.py", "--quick", "--out", str(tmp_path), "--only", only)
    runs = json.loads((tmp_path / "load-summary.json").read_text())
    assert [(r["config"], r["mode"]) for r in runs] == [
        ("default-recompute", "recompute"),
        ("small-batched-c1", "batched"),
    ]
    for run in runs:
        levels = run["result"]["levels"]
        assert levels and all(level["ok"] > 0 and not level["errors"] for level in levels), levels
        assert "/kronos-client loadtest --target 127.0.0.1:" in run["command"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_backtest_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "backtest.json"
    proc = run_bench("bench_backtest.py", "--quick", "--json", str(out))
    assert any(line.startswith("RATIO backtest_vs_one_at_a_time ") for line in proc.stdout.splitlines())
    data = json.loads(out.read_text())
    assert data["same_paths"] is True and data["ratio"] > 0
    for mode in ("backtest", "one at a time"):
        assert data[mode]["wall_s"]["median"] > 0 and data[mode]["steps"] > 0
    assert data["backtest"]["steps"] < data["one at a time"]["steps"]  # origins shared steps
