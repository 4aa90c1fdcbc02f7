"""--plot: p50/p95/p99 latency against concurrency, one colour per transport and shape."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kronos_client.plot import require_pyplot

STYLES = (("p50", "-", "o"), ("p95", "--", "s"), ("p99", ":", "^"))


def plot_latency(path: str | Path, levels: Sequence[dict[str, Any]]) -> Path:
    """A PNG with concurrency (log 2) on x and latency (ms, log) on y; ImportError without matplotlib."""
    plt = require_pyplot()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for level in levels:
        groups.setdefault((level["transport"], level["shape"]), []).append(level)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        concurrencies: set[int] = set()
        for i, ((transport, shape), group) in enumerate(groups.items()):
            group = sorted(group, key=lambda lv: lv["concurrency"])
            colour = colours[i % len(colours)]
            for stat, linestyle, marker in STYLES:
                points = [(lv["concurrency"], lv["latency_ms"][stat]) for lv in group]
                points = [(x, y) for x, y in points if y is not None]
                if not points:
                    continue
                concurrencies.update(x for x, _ in points)
                ax.plot(
                    [x for x, _ in points],
                    [y for _, y in points],
                    linestyle=linestyle,
                    marker=marker,
                    color=colour,
                    label=f"{transport} {shape} {stat}",
                )
        ax.set_xscale("log", base=2)
        if concurrencies:
            ticks = sorted(concurrencies)
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_yscale("log")
        ax.set_xlabel("concurrency (closed-loop callers)")
        ax.set_ylabel("latency (ms)")
        ax.set_title("Kronos Serve latency under load")
        ax.grid(True, which="both", alpha=0.3)
        if groups:
            ax.legend(loc="best", fontsize="small", ncol=max(1, len(groups) // 3))
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100, bbox_inches="tight")
        return out
    finally:
        plt.close(fig)
