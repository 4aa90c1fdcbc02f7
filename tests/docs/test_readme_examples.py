"""Every request example in the README runs, as written, against a real server.

The shell examples are read out of README.md: each `curl ... -d '{...}'` body is posted to the
REST path it names, each `grpcurl ... -d '{...}' ... Service/Method` body is parsed as protobuf
JSON (as grpcurl does) and sent to that method, and the Python client example is run with only
its target and key file pointed at the test server.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from tests.rest_bridge.conftest import Bridged, bridge

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text(encoding="utf-8")
# a body in single quotes after -d, then (for grpcurl) the target and the method
CURL = re.compile(r"curl [^\n]*?(localhost:8000(/v1/[a-z/]+))[^\n]*?-d '(\{[^']*\})'", re.DOTALL)
GRPCURL = re.compile(r"grpcurl [^\n]*?-d '(\{[^']*\})' \S+ kronos\.v1\.KronosPredictor/(\w+)", re.DOTALL)
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)


def curl_examples() -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in CURL.finditer(TEXT)]


def grpcurl_examples() -> list[tuple[str, str]]:
    return [(m.group(2), m.group(1)) for m in GRPCURL.finditer(TEXT)]


def test_the_readme_has_the_examples_this_file_runs() -> None:
    assert {path for path, _ in curl_examples()} >= {
        "/v1/predict/single",
        "/v1/predict/batch",
        "/v1/backtest",
    }
    assert {method for method, _ in grpcurl_examples()} >= {"PredictSingle", "PredictStream", "Backtest"}
    assert any("KronosClient(" in block for block in PYTHON.findall(TEXT))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridged]:
    # the README's examples call as container "dev"
    with bridge(tmp_path_factory.mktemp("readme"), key_name="dev") as b:
        yield b


@pytest.mark.parametrize(("path", "body"), curl_examples(), ids=lambda v: v if v.startswith("/") else "")
def test_curl_example_succeeds(served: Bridged, path: str, body: str) -> None:
    headers = {**served.auth, "Content-Type": "application/json"}
    response = served.client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    if path == "/v1/backtest":
        scores = response.json()["scores"]
        assert [s["forecaster"] for s in scores] == ["model", "naive", "drift", "volatility"]
        assert scores[0]["overall"]["mae"] >= 0 and response.json()["origins"]
        return
    answers: list[dict[str, Any]] = response.json() if path.endswith("batch") else [response.json()]
    for answer in answers:
        assert "error" not in answer, answer
        assert answer["prediction"], answer


@pytest.mark.parametrize(("method", "body"), grpcurl_examples(), ids=lambda v: v if v.isidentifier() else "")
def test_grpcurl_example_succeeds(served: Bridged, method: str, body: str) -> None:
    with grpc.insecure_channel(served.running.target) as channel:
        stub = pb_grpc.KronosPredictorStub(channel)
        metadata = served.running.auth_metadata
        if method == "Backtest":
            backtest = json_format.Parse(body, pb.BacktestRequest())
            answer = stub.Backtest(backtest, metadata=metadata, timeout=60)
            assert [s.forecaster for s in answer.scores] == ["model", "naive", "drift", "volatility"]
            assert all(len(s.by_step) == backtest.horizon for s in answer.scores) and answer.origins
            return
        request = json_format.Parse(body, pb.PredictRequest())
        if method == "PredictSingle":
            response = stub.PredictSingle(request, metadata=metadata, timeout=60)
            assert len(response.forecast.close) == request.pred_len
            assert [q.q for q in response.quantiles] == list(request.sampling.quantiles)
        else:
            events = list(stub.PredictStream(request, metadata=metadata, timeout=60))
            steps = [e.step for e in events if e.WhichOneof("event") == "step"]
            assert [s.step for s in steps] == list(range(request.pred_len))
            assert events[-1].WhichOneof("event") == "final"
            assert list(events[-1].final.forecast.close) == [s.close for s in steps]


def _client_blocks() -> list[str]:
    return [b for b in PYTHON.findall(TEXT) if "KronosClient(" in b and "dev-key.txt" in b]


def _run(served: Bridged, tmp_path: Path, block: str) -> list[str]:
    """A README block as written, its target the test server, its CSV path from the repository."""
    (tmp_path / ".kronos").mkdir()
    (tmp_path / ".kronos" / "dev-key.txt").write_text(served.running.key + "\n", encoding="utf-8")
    code = block.replace("localhost:50051", served.running.target)
    (tmp_path / "server").symlink_to(README.parent / "server")  # the shipped CSV, as in a checkout
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    return out.getvalue().splitlines()


def test_the_quick_start_forecast_and_backtest_run(served: Bridged, tmp_path: Path) -> None:
    (block,) = [b for b in _client_blocks() if "backtest" in b]
    lines = _run(served, tmp_path, block)
    # the forecast line, then the backtest's table: its line on the run, a header, 4 forecasters
    assert len(lines) == 7, lines
    assert lines[1].startswith("backtest of the series: 16 origins"), lines
    assert [line.split()[0] for line in lines[3:]] == ["model", "naive", "drift", "volatility"]


def test_python_client_example_runs(served: Bridged, tmp_path: Path) -> None:
    (block,) = [b for b in _client_blocks() if "client.stream(" in b]
    (tmp_path / ".kronos").mkdir()
    (tmp_path / ".kronos" / "dev-key.txt").write_text(served.running.key + "\n", encoding="utf-8")
    code = block.replace("localhost:50051", served.running.target)
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    # the forecast line, three Steps and the final Forecast
    assert len(lines) == 5, lines
    assert lines[1].startswith("Step(") and lines[-1].startswith("Forecast("), lines
