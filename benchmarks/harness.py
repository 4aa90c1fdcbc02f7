"""What every benchmark script shares: timing, medians, the machine's CPU/torch/thread facts,
other processes' CPU use during a section, probe subprocesses, and the report (RATIO lines,
sections, tables, JSON output).

Scripts import it as ``harness`` (the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: set in the environment when a script re-ran itself under OMP_WAIT_POLICY=PASSIVE
REEXEC_MARK = "KRONOS_BENCH_OMP"


def use_checkout() -> None:
    """Put the checkout first on ``sys.path``: the scripts reuse the tests' server helpers."""
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------------------------
# statistics and timing
# --------------------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "values": list(values),
    }


def fmt_s(s: dict[str, Any], unit: float = 1.0, digits: int = 3) -> str:
    """'n=5  0.91 / 0.95 / 1.10' (min / median / max)."""
    f = f"{{:.{digits}f}}"
    lo, med, hi = (f.format(s[k] * unit) for k in ("min", "median", "max"))
    return f"n={int(s['n'])}  {lo} / {med} / {hi}"


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_call(fn: Callable[[], object], inner: int) -> float:
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t0) / inner


# --------------------------------------------------------------------------------------------
# the machine: its facts, other processes' load, this process' memory
# --------------------------------------------------------------------------------------------
def _proc_stat_busy() -> int:
    """Busy jiffies of the whole machine (all CPUs)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields[:8]) - idle


def _self_jiffies() -> int:
    with open("/proc/self/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])  # utime + stime of all threads


class LoadMeter:
    """CPU used by *other* processes during a section, in cores (0 .. nproc)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.t0 = time.monotonic()
        self.busy0 = _proc_stat_busy()
        self.own0 = _self_jiffies()

    def read(self) -> dict[str, float]:
        dt = time.monotonic() - self.t0
        busy = _proc_stat_busy() - self.busy0
        own = _self_jiffies() - self.own0
        return {
            "seconds": dt,
            "own_cores": own / self.tick / dt if dt > 0 else 0.0,
            "other_cores": max(0, busy - own) / self.tick / dt if dt > 0 else 0.0,
            "loadavg_1m": os.getloadavg()[0],
        }


class PhaseLoad:
    """Other processes' CPU use summed over several timed intervals of one kind (e.g. engine runs)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.other_jiffies = 0
        self._meter: LoadMeter | None = None

    @contextmanager
    def timed(self) -> Iterator[None]:
        meter = LoadMeter()
        yield
        dt = time.monotonic() - meter.t0
        busy = _proc_stat_busy() - meter.busy0
        own = _self_jiffies() - meter.own0
        self.seconds += dt
        self.other_jiffies += max(0, busy - own)

    def other_cores(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        return self.other_jiffies / tick / self.seconds if self.seconds > 0 else 0.0


def proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def mib(kib: float) -> float:
    return kib / 1024.0


def machine_info(threads: int) -> dict[str, Any]:
    """The CPU, Python, torch and thread facts a result is read against."""
    import torch  # only the benchmarks that measure torch pay for importing it

    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "parallel_backend": "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "other",
        "parallel_info": torch.__config__.parallel_info(),
        "platform": platform.platform(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "omp_wait_policy_set_by_script": os.environ.get(REEXEC_MARK) == "set-by-script",
    }


def passive_omp_or_reexec(policy: str) -> None:
    """With ``policy`` "passive", re-run this script under OMP_WAIT_POLICY=PASSIVE unless the
    variable is already set: OpenMP reads it once, when torch loads it."""
    if policy == "passive" and "OMP_WAIT_POLICY" not in os.environ and REEXEC_MARK not in os.environ:
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", REEXEC_MARK: "set-by-script"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def run_probe(cmd: list[str], tag: str, *, timeout: float, env: dict[str, str] | None = None) -> Any:
    """Run a probe in a fresh process; the JSON it printed after ``tag`` on one line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(tag + " ")), None)
    if proc.returncode != 0 or line is None:
        print(proc.stdout[-2000:], proc.stderr[-4000:])
        raise SystemExit(f"{tag} probe failed with exit code {proc.returncode}")
    return json.loads(line[len(tag) + 1 :])


def print_probe_result(tag: str, result: Any) -> None:
    print(f"{tag} " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
class Report:
    """Every measurement of a run (``data``, the JSON output) and its RATIO lines.

    Targets are evaluated in the ``full`` mode only; a quick run's ratios say nothing about them.
    """

    def __init__(self, mode: str, targets: dict[str, float]) -> None:
        self.mode = mode
        self.targets = targets
        self.data: dict[str, Any] = {}
        self.ratios: list[dict[str, Any]] = []

    def ratio(self, key: str, label: str, value: float, unit: str = "x") -> None:
        target = self.targets.get(key)
        if self.mode != "full" or target is None:
            verdict = "target not evaluated in quick mode" if self.mode != "full" else ""
            met = None
        else:
            met = value >= target
            verdict = f"target >= {target:g}{unit}: {'MET' if met else 'NOT MET'}"
        shown = f"{value:.1%}" if unit == "%" else f"{value:.2f}x"
        if unit == "%" and target is not None and self.mode == "full":
            verdict = f"target >= {target:.0%}: {'MET' if met else 'NOT MET'}"
        print(f"RATIO {key:<18} {label:<52} {shown:>9}   {verdict}")
        self.ratios.append({"key": key, "label": label, "value": value, "target": target, "met": met})

    def print_summary(self, wall: float) -> None:
        """The closing block: every ratio against its target, other processes' CPU use, wall time."""
        print("\n== Summary ==")
        for r in self.ratios:
            shown = f"{r['value']:.1%}" if r["key"].startswith("prefill") else f"{r['value']:.2f}x"
            if r["met"] is None:
                verdict = "(quick mode: not evaluated)" if self.mode != "full" else ""
            else:
                tgt = f"{r['target']:.0%}" if r["key"].startswith("prefill") else f"{r['target']:g}x"
                verdict = f"target >= {tgt}: {'MET' if r['met'] else 'NOT MET'}"
            print(f"   {r['label']:<60} {shown:>9}  {verdict}")
        loads = {
            k: v["load"]["other_cores"] for k, v in self.data.items() if isinstance(v, dict) and "load" in v
        }
        print(
            "   other processes' CPU use per section (cores of "
            f"{os.cpu_count()}): " + ", ".join(f"{k} {v:.2f}" for k, v in loads.items())
        )
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"   total wall time {wall:.1f} s; loadavg at end: {load}")


@contextmanager
def section(report: Report, key: str, title: str, child: bool = False) -> Iterator[dict[str, Any]]:
    print(f"\n== {title} ==", flush=True)
    meter = LoadMeter()
    out: dict[str, Any] = {}
    yield out
    load = out.pop("_measured_load", None) or meter.read()  # a section may measure its own window
    out["load"] = load
    out["load_includes_child_processes"] = child
    report.data[key] = out
    print(
        f"   [section wall {load['seconds']:.1f} s; this process used {load['own_cores']:.2f} cores, "
        f"other processes{' (incl. its child processes)' if child else ''} "
        f"{load['other_cores']:.2f} of {os.cpu_count()} cores; "
        f"loadavg(1m) {load['loadavg_1m']:.2f}]",
        flush=True,
    )


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print("   " + line)
    print("   " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float) + "\n")
