"""docs/PERFORMANCE.md quotes the recorded load run, not figures typed from memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "PERFORMANCE.md").read_text()
RESULTS = ROOT / "benchmarks" / "results"


def levels(name: str) -> list[dict[str, Any]]:
    return list(json.loads((RESULTS / f"load-{name}.json").read_text())["levels"])


def grpc_single(name: str) -> dict[int, dict[str, Any]]:
    return {
        lv["concurrency"]: lv for lv in levels(name) if lv["transport"] == "grpc" and lv["shape"] == "single"
    }


def test_the_full_table_is_the_recorded_one() -> None:
    for level in levels("default-batched"):
        calls_per_s = level["throughput"]["calls_per_s"]
        row_start = f"| {level['transport']:<9} |"
        rows = [ln for ln in DOC.splitlines() if ln.startswith(row_start)]
        assert any(f"| {level['calls']:>5} |" in ln and f"{calls_per_s:.2f}" in ln for ln in rows), level


def test_the_comparison_with_the_original_algorithm_is_the_recorded_one() -> None:
    ours, original = grpc_single("default-batched"), grpc_single("default-recompute")
    for callers in (1, 4, 16):
        mine, theirs = (
            ours[callers]["throughput"]["calls_per_s"],
            original[callers]["throughput"]["calls_per_s"],
        )
        row = f"| {callers} | {mine:.2f} |"
        assert row in DOC, row
        assert f"**{mine / theirs:.1f}×**" in DOC, (callers, mine / theirs)
    assert original[64]["ok"] == 0 and original[64]["errors"] == {"DEADLINE_EXCEEDED": original[64]["calls"]}
    small, small_original = grpc_single("small-batched"), grpc_single("small-recompute")
    ratio = small[16]["throughput"]["calls_per_s"] / small_original[1]["throughput"]["calls_per_s"]
    assert f"**{ratio:.1f}×**" in DOC
    alone = small_original[1]["latency_ms"]["p50"] / grpc_single("small-batched-c1")[1]["latency_ms"]["p50"]
    assert f"**{alone:.1f}×**" in DOC


def test_the_knob_rows_are_the_recorded_ones() -> None:
    for name, setting in (
        ("default-batch-rows-8", "KRONOS_MAX_BATCH_ROWS=8"),
        ("default-threads-1", "KRONOS_TORCH_THREADS=1"),
    ):
        for callers, level in grpc_single(name).items():
            row = f"| `{setting}` | {callers} | {level['throughput']['calls_per_s']:.2f} |"
            assert row in DOC, row


def test_the_backtest_figures_are_the_recorded_ones() -> None:
    run = json.loads((RESULTS / "backtest-cpu.json").read_text())
    section = DOC[DOC.index("## Backtest") :]
    section = section[: section.index("\n## ", 1)]
    for mode in ("backtest", "one at a time"):
        wall = run[mode]["wall_s"]
        assert f"{wall['min']:.2f} / {wall['median']:.2f} / {wall['max']:.2f}" in section, mode
    assert f"**{run['ratio']:.2f}×**" in section
    assert run["same_paths"] is True
