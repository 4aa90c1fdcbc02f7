"""The shipped monitoring against real components: the server (``kronos-serve serve``) and a real
Prometheus on loopback scraping it with the shipped scrape config and alert rules. After traffic of
every kind, every dashboard query and every alert expression evaluates, and those that should have
data do."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.security.keys import add_key
from tests.monitoring.shipped import ALERTS, SCRAPE, alert_rules, panel_queries, substitute
from tests.processes import parity_env
from tests.rest_bridge.helpers import body
from tests.rpc.helpers import request

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)"),
]
KRONOS_SERVE = Path(sys.executable).with_name("kronos-serve")
SINGLE = "/v1/predict/single"
MAX_QUEUED_ROWS = 64
# may be empty: the cgroup memory limit is absent where the process is unlimited, and a healthy
# server has no server faults to count
MAY_BE_EMPTY = ("kronos_memory_limit_bytes > 0", 'status="error"')


class Proc:
    """A child process whose output lines are collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not seen; output:\n{''.join(self.lines[-40:])}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http(
    url: str, data: Any = None, headers: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, Any]:
    raw = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(
        url, data=raw, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def kronos_server(tmp: Path) -> Iterator[tuple[Proc, int, int, dict[str, str], dict[str, str]]]:
    keys = tmp / "api-keys.json"
    key = add_key(keys, "tester")
    limited_key = add_key(keys, "limited", rate_limit="3/minute")
    env = {
        **os.environ,
        **parity_env(keys),
        "KRONOS_RATE_LIMIT": "100000/second",
        "KRONOS_MAX_QUEUED_ROWS": str(MAX_QUEUED_ROWS),
        "KRONOS_MAX_BATCH_ROWS": str(2 * MAX_QUEUED_ROWS),
        "KRONOS_MAX_SAMPLE_COUNT": "256",
        "KRONOS_MAX_BATCH_ITEMS": "2",
        "KRONOS_DEV_KEYS_DIR": str(tmp / "dev"),
        "KRONOS_LOG_FORMAT": "text",
    }
    proc = Proc([str(KRONOS_SERVE), "serve"], env)
    try:
        grpc_port = int(proc.wait_for(r"gRPC listening on [^\s]*:(\d+)", 60).group(1))
        http_port = int(proc.wait_for(r"HTTP listening on [^\s]*:(\d+)", 60).group(1))
        auth = {"X-Container-Name": "tester", "Authorization": f"Bearer {key}"}
        limited = {"X-Container-Name": "limited", "Authorization": f"Bearer {limited_key}"}
        yield proc, grpc_port, http_port, auth, limited
    finally:
        proc.stop()


@contextmanager
def prometheus(tmp: Path, target: str) -> Iterator[str]:
    config = yaml.safe_load(SCRAPE.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s", static_configs=[{"targets": [target]}])
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    assert PROMETHEUS is not None
    proc = Proc(
        [
            PROMETHEUS,
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        dict(os.environ),
    )
    try:
        proc.wait_for(r"Server is ready to receive web requests", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def drive_traffic(grpc_port: int, base: str, auth: dict[str, str], limited: dict[str, str]) -> None:
    """Success, invalid, unauthorized, rate limited, too large, timeout and overload, REST and gRPC."""
    assert http(f"{base}{SINGLE}", body(30, 2), auth)[0] == 200
    assert http(f"{base}/v1/predict/batch", {"items": [body(20, 1), body(25, 2)]}, auth)[0] == 200
    assert http(f"{base}/v1/models", headers=auth)[0] == 200
    assert http(f"{base}{SINGLE}", {"candles": "nope"}, auth)[0] in (400, 422)  # invalid
    assert http(f"{base}{SINGLE}", body(30, 2))[0] == 401  # unauthorized
    bad_key = {"X-Container-Name": "tester", "Authorization": "Bearer wrong"}
    assert http(f"{base}{SINGLE}", body(30, 2), bad_key)[0] == 401
    assert http(f"{base}/v1/predict/batch", {"items": [body(10, 1)] * 3}, auth)[0] == 413  # too large
    over = http(f"{base}{SINGLE}", body(30, 2, sample_count=MAX_QUEUED_ROWS + 1), auth)
    assert over[0] == 503, over  # overloaded: more rows than admission allows
    codes = [http(f"{base}/v1/models", headers=limited)[0] for _ in range(6)]
    assert 429 in codes, codes  # rate limited
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = pb_grpc.KronosPredictorStub(channel)
    md = (("x-container-name", "tester"), ("authorization", f"Bearer {auth['Authorization'][7:]}"))
    stub.PredictSingle(request(30, 2), metadata=md)
    stub.PredictBatch(pb.PredictBatchRequest(items=[request(20, 1)]), metadata=md)
    assert list(stub.PredictStream(request(30, 2), metadata=md))
    stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=md)
    with pytest.raises(grpc.RpcError):
        stub.PredictSingle(request(30, 2))  # unauthorized
    with pytest.raises(grpc.RpcError):  # too large: more items than KRONOS_MAX_BATCH_ITEMS
        stub.PredictBatch(pb.PredictBatchRequest(items=[request(20, 1)] * 3), metadata=md)
    # timeout: a forecast of 64 steps x 64 samples outlives a short deadline
    for deadline in (0.05, 0.1, 0.2, 0.4):
        try:
            stub.PredictSingle(request(60, 64, sample_count=64, seed=1), metadata=md, timeout=deadline)
        except grpc.RpcError as err:
            if (
                err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                and b"kronos_timeouts_total{" in http(f"{base}/v1/metrics")[1]
            ):
                break
    channel.close()


def query(prom: str, expr: str) -> dict[str, Any]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, raw = http(url)
    answer: dict[str, Any] = json.loads(raw)
    assert status == 200 and answer["status"] == "success", (expr, answer)
    return answer


def results(prom: str, expr: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = query(prom, expr)["data"]["result"]
    return data


def test_dashboard_and_alerts_against_a_real_prometheus(tmp_path: Path) -> None:
    started = time.monotonic()
    with kronos_server(tmp_path) as (_, grpc_port, http_port, auth, limited):
        base = f"http://127.0.0.1:{http_port}"
        with prometheus(tmp_path, f"127.0.0.1:{http_port}") as prom:
            poll(
                lambda: [r["value"][1] for r in results(prom, 'up{job="kronos-api"}')] == ["1"],
                30,
                "the first scrape",
            )
            drive_traffic(grpc_port, base, auth, limited)
            # a second round after a scrape: every counter then has a rate, not just a value
            time.sleep(2.5)
            drive_traffic(grpc_port, base, auth, limited)
            poll(
                lambda: bool(results(prom, 'kronos_requests_total{status="rate_limited"} > 0')),
                30,
                "the traffic to be scraped",
            )
            time.sleep(2.5)

            statuses = {
                r["metric"]["status"] for r in results(prom, "sum by (status) (kronos_requests_total)")
            }
            for status in (
                "success",
                "invalid",
                "unauthorized",
                "rate_limited",
                "too_large",
                "overloaded",
                "timeout",
            ):
                assert status in statuses, (status, statuses)
            routes = {r["metric"]["route"] for r in results(prom, "sum by (route) (kronos_requests_total)")}
            for route in (
                SINGLE,
                "/v1/predict/batch",
                "/v1/models",
                "/kronos.v1.KronosPredictor/PredictSingle",
                "/kronos.v1.KronosPredictor/PredictBatch",
                "/kronos.v1.KronosPredictor/PredictStream",
                "/kronos.v1.KronosPredictor/GetModelInfo",
            ):
                assert route in routes, (route, routes)
            assert results(prom, 'kronos_rate_limit_hits_total{container="limited"} > 0')
            assert results(prom, 'kronos_security_events_total{event="unauthorized"} > 0')
            assert results(prom, 'kronos_request_size_rejections_total{container="tester"} > 0')
            assert results(prom, "kronos_engine_overload_rejections_total > 0")
            assert results(prom, "kronos_timeouts_total > 0")
            assert results(prom, "kronos_model_loaded == 1")
            assert results(prom, f"kronos_engine_max_queued_rows == {MAX_QUEUED_ROWS}")
            assert results(prom, 'sum(rate(kronos_requests_total{route=~".*"}[1m])) > 0')

            for title, expr in panel_queries():
                data = results(prom, substitute(expr))
                if not any(part in expr for part in MAY_BE_EMPTY):
                    assert data, (title, expr)

            for rule in alert_rules():
                query(prom, rule["expr"])  # evaluates; none fires on a healthy server
            groups = json.loads(http(f"{prom}/api/v1/rules")[1])["data"]["groups"]
            loaded = {r["name"]: r for g in groups for r in g["rules"]}
            assert set(loaded) == {r["alert"] for r in alert_rules()}
            assert all(r["health"] == "ok" for r in loaded.values()), loaded
    assert time.monotonic() - started < 120
