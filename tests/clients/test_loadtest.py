"""kronos-client loadtest: a real sweep over gRPC and REST (parity model), and its arithmetic."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kronos_client.cli import main
from kronos_client.loadtest import serverstats
from kronos_client.loadtest.report import format_table, percentile, redact
from kronos_client.loadtest.runner import CallResult, Progress, run_level
from kronos_client.loadtest.serverstats import HistogramDelta, histogram_delta, parse_text
from kronos_client.loadtest.workload import build_pool, load_table, make_shape, offsets
from tests.processes import ServerProcess, make_keys, parity_env

# the parity model's window is 64 rows: shapes sized to fit it
SMALL = ["--history", "40", "--pred-len", "8", "--batch-size", "3", "--sample-count", "2", "--seed", "5"]


@dataclass
class Served:
    process: ServerProcess
    key: str
    container: str = "tester"

    @property
    def target(self) -> str:
        return self.process.target

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.process.port('HTTP')}"

    def flags(self, key: str | None = None) -> list[str]:
        creds = ["--container", self.container, "--key", key or self.key]
        return ["--target", self.target, "--rest-url", self.rest_url, *creds]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`kronos-serve serve` (gRPC, REST and /v1/metrics) with the parity model, in its own process:
    a load generator shares no process (nor grpc's pollers) with the server it measures."""
    keys, key = make_keys(tmp_path_factory.mktemp("loadtest"))
    process = ServerProcess("serve", env={**parity_env(keys), "KRONOS_RATE_LIMIT": "1000000/second"})
    try:
        process.wait_ready()
        yield Served(process, key)
    finally:
        process.stop()


def sweep(served: Served, tmp_path: Path, *extra: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "report.json"
    argv = ["loadtest", *served.flags(key), *SMALL, "--warmup", "0", "--json", str(out), *extra]
    status = main(argv, env={})
    return status, json.loads(out.read_text())


def test_sweep_over_every_transport_and_shape(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "latency.png"
    status, doc = sweep(served, tmp_path, "--concurrency", "1,2", "--requests", "4", "--plot", str(plot))
    assert status == 0
    levels = doc["levels"]
    combos = [(lv["transport"], lv["shape"], lv["concurrency"]) for lv in levels]
    expected = [
        (t, s, c)
        for t, shapes in (("grpc", ("single", "batch", "stream")), ("rest", ("single", "batch")))
        for s in shapes
        for c in (1, 2)
    ]
    assert combos == expected
    for lv in levels:
        where = combos[levels.index(lv)]
        assert lv["calls"] == 4 and lv["ok"] == 4, where
        assert lv["errors"] == {} and lv["item_errors"] == {}, where
        lat = lv["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"], where
        series = 3 if lv["shape"] == "batch" else 1
        thr = lv["throughput"]
        assert thr["series_per_s"] == pytest.approx(thr["calls_per_s"] * series, rel=1e-2), where
        assert thr["rows_per_s"] == pytest.approx(thr["series_per_s"] * 8, rel=1e-2), where
        assert lv["server"]["rows_per_step_mean"] > 0, where
        assert lv["server"]["queue_wait_mean_ms"] is not None, where
        if lv["shape"] == "stream":
            first = lv["first_event_ms"]
            assert 0 < first["p50"] <= lat["p50"] * 1.5, where
        else:
            assert lv["first_event_ms"] is None
    assert doc["command"][:3] == ["kronos-client", "loadtest", "--target"]
    assert "--key" in doc["command"] and served.key not in json.dumps(doc)
    assert doc["machine"]["cpu_count"] >= 1 and doc["machine"]["platform"]
    assert doc["server"]["model"]["max_context"] == 64
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].startswith("| transport") and "rows/step" in table[0]
    assert len([line for line in table if line.split("|")[1].strip() in ("grpc", "rest")]) == 10
    assert "skipping rest stream" in captured.err
    assert "[grpc stream 40->8 c=2]" in captured.err  # progress, plain lines (not a TTY)


def test_wrong_key_is_reported_by_status(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, doc = sweep(
        served, tmp_path, "--concurrency", "2", "--requests", "4", "--shapes", "single", key="wrong"
    )
    assert status == 0
    by_transport = {lv["transport"]: lv for lv in doc["levels"]}
    assert by_transport["grpc"]["errors"] == {"UNAUTHENTICATED": 4}
    assert by_transport["rest"]["errors"] == {"401": 4}
    for lv in doc["levels"]:
        assert lv["calls"] == 4 and lv["ok"] == 0
        assert lv["throughput"]["series_per_s"] == 0
    out = capsys.readouterr()
    assert "UNAUTHENTICATED x4" in out.out and "401 x4" in out.out
    assert "GetModelInfo failed (UNAUTHENTICATED)" in out.err


def test_duration_mode_and_unreachable_metrics(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, doc = sweep(
        served,
        tmp_path,
        "--transports",
        "grpc",
        "--shapes",
        "single",
        "--concurrency",
        "2",
        "--duration",
        "1",
        "--metrics-url",
        "http://127.0.0.1:1/v1/metrics",
    )
    assert status == 0
    (level,) = doc["levels"]
    assert level["calls"] > 0 and level["errors"] == {}
    assert 1.0 <= level["elapsed_s"] < 5
    assert level["server"] is None
    out = capsys.readouterr()
    assert "unreadable" in out.err
    assert "n/a" in out.out.splitlines()[2]


def test_rest_only_needs_no_grpc_target(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["loadtest", "--rest-url", served.rest_url, "--container", served.container]
    argv += ["--key", served.key, "--transports", "rest", "--shapes", "single,stream"]
    argv += [*SMALL, "--concurrency", "1", "--requests", "2", "--warmup", "0", "--json", str(out)]
    assert main(argv, env={}) == 0
    (level,) = json.loads(out.read_text())["levels"]
    assert (level["transport"], level["shape"], level["ok"]) == ("rest", "single", 2)


# -- units ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 100, 101])
def test_percentile_matches_numpy(n: int) -> None:
    values = list(np.random.default_rng(n).exponential(1.0, n))
    for q in (0, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


METRICS_BEFORE = """\
# HELP kronos_engine_rows_per_step Rows in each engine step.
# TYPE kronos_engine_rows_per_step histogram
kronos_engine_rows_per_step_bucket{le="1.0"} 10.0
kronos_engine_rows_per_step_bucket{le="2.0"} 10.0
kronos_engine_rows_per_step_bucket{le="4.0"} 10.0
kronos_engine_rows_per_step_bucket{le="+Inf"} 10.0
kronos_engine_rows_per_step_count 10.0
kronos_engine_rows_per_step_sum 10.0
kronos_engine_queue_wait_seconds_bucket{le="0.01"} 5.0
kronos_engine_queue_wait_seconds_bucket{le="0.1"} 5.0
kronos_engine_queue_wait_seconds_bucket{le="1.0"} 5.0
kronos_engine_queue_wait_seconds_bucket{le="+Inf"} 5.0
kronos_engine_queue_wait_seconds_count 5.0
kronos_engine_queue_wait_seconds_sum 0.01
kronos_engine_step_seconds_bucket{le="+Inf",phase="step"} 10.0
kronos_engine_step_seconds_count{phase="step"} 10.0
kronos_engine_step_seconds_sum{phase="step"} 0.5
kronos_engine_step_seconds_count{phase="decode"} 3.0
kronos_engine_step_seconds_sum{phase="decode"} 9.0
kronos_requests_total{route="/a \\"b\\"",status="success"} 3.0
"""

METRICS_AFTER = """\
kronos_engine_rows_per_step_bucket{le="1.0"} 10.0
kronos_engine_rows_per_step_bucket{le="2.0"} 12.0
kronos_engine_rows_per_step_bucket{le="4.0"} 30.0
kronos_engine_rows_per_step_bucket{le="+Inf"} 30.0
kronos_engine_rows_per_step_count 30.0
kronos_engine_rows_per_step_sum 78.0
kronos_engine_queue_wait_seconds_bucket{le="0.01"} 5.0
kronos_engine_queue_wait_seconds_bucket{le="0.1"} 15.0
kronos_engine_queue_wait_seconds_bucket{le="1.0"} 24.0
kronos_engine_queue_wait_seconds_bucket{le="+Inf"} 25.0
kronos_engine_queue_wait_seconds_count 25.0
kronos_engine_queue_wait_seconds_sum 4.01
kronos_engine_step_seconds_bucket{le="+Inf",phase="step"} 30.0
kronos_engine_step_seconds_count{phase="step"} 30.0
kronos_engine_step_seconds_sum{phase="step"} 1.5
kronos_engine_step_seconds_count{phase="decode"} 4.0
kronos_engine_step_seconds_sum{phase="decode"} 99.0
"""


def test_parse_text_reads_labels_and_skips_comments() -> None:
    samples = parse_text(METRICS_BEFORE)
    assert samples[("kronos_engine_rows_per_step_count", ())] == 10.0
    assert samples[("kronos_engine_step_seconds_sum", (("phase", "step"),))] == 0.5
    assert samples[("kronos_requests_total", (("route", '/a "b"'), ("status", "success")))] == 3.0
    assert all(not name.startswith("#") for name, _ in samples)


def test_histogram_delta_mean_and_quantile() -> None:
    before, after = parse_text(METRICS_BEFORE), parse_text(METRICS_AFTER)
    rows = histogram_delta(before, after, "kronos_engine_rows_per_step")
    assert rows is not None
    assert (rows.count, rows.sum, rows.mean()) == (20.0, 68.0, 3.4)
    assert rows.buckets == ((1.0, 0.0), (2.0, 2.0), (4.0, 20.0), (float("inf"), 20.0))
    wait = histogram_delta(before, after, "kronos_engine_queue_wait_seconds")
    assert wait is not None and wait.count == 20.0
    # rank 19 of 20 falls in (0.1, 1.0]: 10 below it, 9 of that bucket's 9 -> 0.1 + 0.9 * 9/9
    assert wait.quantile(0.95) == pytest.approx(1.0)
    # rank 10 lies at the top of (0.01, 0.1]
    assert wait.quantile(0.5) == pytest.approx(0.1)
    assert wait.quantile(0.25) == pytest.approx(0.01 + 0.09 * 5 / 10)
    step = histogram_delta(before, after, "kronos_engine_step_seconds", {"phase": "step"})
    assert step is not None and (step.count, step.sum) == (20.0, 1.0)
    engine = serverstats.engine_delta(before, after)
    assert engine is not None
    assert engine["rows_per_step_mean"] == 3.4 and engine["engine_steps"] == 20.0
    assert engine["queue_wait_mean_ms"] == pytest.approx(200.0)
    assert engine["queue_wait_p95_ms"] == pytest.approx(1000.0)
    assert engine["step_mean_ms"] == pytest.approx(50.0)
    assert serverstats.engine_delta(None, after) is None


def test_histogram_quantile_edges() -> None:
    assert HistogramDelta(0, 0, ()).quantile(0.5) is None
    # everything in +Inf: the largest finite bound
    overflow = HistogramDelta(4, 100, ((1.0, 0.0), (5.0, 0.0), (float("inf"), 4.0)))
    assert overflow.quantile(0.95) == 5.0
    # a restart between the scrapes (count went down) has no delta
    after = parse_text(METRICS_BEFORE)
    assert histogram_delta(parse_text(METRICS_AFTER), after, "kronos_engine_rows_per_step") is None
    assert histogram_delta({}, {}, "kronos_engine_rows_per_step") is None


def test_pool_requests_are_distinct_windows() -> None:
    table = load_table(None)
    assert len(set(offsets(len(table), 400, 64))) == 64
    pool = build_pool(table, make_shape("batch", seed=3), size=4)
    assert pool.shape.describe() == "8x200->60" and pool.rows_per_call == 480
    firsts = [item.history.timestamps_ms[0] for batch in pool.grpc for item in batch.items]
    assert len(set(firsts)) == 32
    assert [item.sampling.seed for item in pool.grpc[1].items] == list(range(11, 19))
    body = json.loads(pool.rest[0])
    assert len(body["items"]) == 8 and len(body["items"][0]["candles"]) == 200
    assert body["items"][0]["timestamps"][0].endswith("Z")
    assert body["items"][0]["overrides"] == {"pred_len": 60, "seed": 3}
    single = build_pool(table, make_shape("single"), size=2)
    assert len(single.grpc[0].history.close) == 400 and single.grpc[0].pred_len == 120
    with pytest.raises(ValueError):
        build_pool(table, make_shape("single", history=len(table) + 1), size=1)


def test_redact_and_progress_lines() -> None:
    assert redact(["--key", "s3cret", "--key=x", "--key-file", "f"]) == [
        "--key",
        "***",
        "--key=***",
        "--key-file",
        "f",
    ]
    stream = io.StringIO()
    progress = Progress(stream, plain_every=5)
    progress.update("[l]", 1.0, 3, 0, 3.0)
    progress.update("[l]", 2.0, 6, 0, 3.0)  # within 5 s of the last plain line: not written
    progress.update("[l]", 6.0, 18, 1, 3.0)
    progress.update("[l]", 6.5, 19, 1, 2.9, final=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    assert lines[-1] == "[l]     6.5 s  done 19  errors 1  2.9 calls/s"
    assert format_table([]).startswith("| transport")


class FakeCaller:
    """Answers after ``delay`` seconds; every ``fail_every``-th call raises."""

    def __init__(self, delay: float, fail_every: int = 0) -> None:
        self.delay = delay
        self.fail_every = fail_every
        self.closed = False

    def call(self, index: int) -> CallResult:
        time.sleep(self.delay)
        if self.fail_every and index % self.fail_every == 0:
            raise RuntimeError("boom")
        return CallResult(series=2, rows=10)

    def close(self) -> None:
        self.closed = True


def test_run_level_duration_window_after_warmup() -> None:
    callers: list[FakeCaller] = []
    events: list[str] = []

    def factory() -> FakeCaller:
        callers.append(FakeCaller(0.02))
        return callers[-1]

    record = run_level(
        factory,
        3,
        duration=0.5,
        warmup=0.2,
        on_measure=lambda: events.append("open"),
        on_end=lambda: events.append("close"),
        tick=0.05,
    )
    assert events == ["open", "close"]
    assert record.elapsed_s == 0.5 and record.warmup_s >= 0.2
    assert 3 <= record.calls <= 3 * 0.5 / 0.02 + 3
    assert record.series == 2 * record.calls and record.rows == 10 * record.calls
    assert all(0.02 <= lat < 1 for lat in record.latencies)
    assert len(callers) == 3 and all(c.closed for c in callers)


def test_run_level_exact_requests_and_errors_by_name() -> None:
    record = run_level(lambda: FakeCaller(0.001, fail_every=3), 4, requests=30, tick=0.05)
    assert record.calls == 30
    assert record.errors == {"RuntimeError": 10}
    assert record.series == 2 * 20
