"""Faults: clients that go away, deadlines shorter than the work, broken files at start-up.

Which test covers each fault (this module adds only what no other test had):

(a) client disconnects mid-stream: :func:`test_stream_cancelled_after_its_first_steps_frees_the_engine`
    (here). A cancelled unary call: tests/rpc/test_rejections.py
    test_client_cancel_frees_engine_rows; a REST client that hangs up: tests/rest_bridge/
    test_errors.py test_client_going_away_cancels_the_call_and_frees_the_engine.
(b) a deadline shorter than the prefill: :func:`test_deadlines_shorter_than_the_prefill` (here,
    1-250 ms on a 512-row history of the embedded model). A deadline during decoding:
    test_rejections.py test_deadline_frees_engine_rows; the server's own inference timeout:
    test_inference_timeout_setting_applies, and 504 over REST: test_errors.py
    test_inference_timeout_is_504.
(c) SIGTERM under load, nothing lost: tests/rpc/test_lifecycle.py
    test_health_transitions_and_sigterm_loses_nothing (one process, health watched) and
    tests/deploy/test_replicas.py test_sigterm_and_sigkill_under_load_lose_and_duplicate_nothing
    (replicas behind one client); the REST side: tests/rest_bridge/test_process.py
    test_serve_runs_grpc_and_rest_on_free_ports_and_drains_on_sigterm. Nothing added.
(d) model directory missing: test_lifecycle.py test_missing_model_directory_fails_start_up_clearly;
    corrupt (model.safetensors truncated or garbage, config.json not JSON):
    :func:`test_corrupt_checkpoints_fail_start_up_naming_the_file_and_never_serve` (here).
(e) a checkpoint with a wrong tensor shape: :func:`test_a_resized_tensor_names_the_key_and_both_shapes`
    (the loader's message, a missing and an extra key too) and the start-up case in (d)'s test.
(f) keys file unreadable (a directory, not JSON, vanished; chmod 000 does not stop root, and
    the permission error itself is tests/security/test_keys.py
    test_missing_unreadable_and_directory): :func:`test_a_bad_keys_file_fails_start_up_naming_it`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from safetensors.torch import load_file, save_file

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.errors import CheckpointError
from kronos_server.model.bundle import DEFAULT_MODEL_DIR
from kronos_server.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_predictor
from tests.conftest import PARITY
from tests.processes import READINESS, ServerProcess, make_keys, parity_env
from tests.rpc.helpers import request
from tests.servers import RunningServer, start_server

SERVING = health_pb2.HealthCheckResponse.SERVING
RESIZED = "dep_layer.cross_attn.q_proj.weight"  # (32, 32) in the parity predictor


# -- (a) and (b): one server with the embedded model, where long requests take real time ---


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("faults"),
        model_path=DEFAULT_MODEL_DIR / "predictor",
        tokenizer_path=DEFAULT_MODEL_DIR / "tokenizer",
        max_context=512,
    )
    yield running
    running.stop()


def _stub(running: RunningServer) -> pb_grpc.KronosPredictorStub:
    return pb_grpc.KronosPredictorStub(grpc.insecure_channel(running.target))


def _count(running: RunningServer, name: str, **labels: str) -> float:
    return running.metrics.registry.get_sample_value(name, labels) or 0.0


def _poll(check: Callable[[], bool], timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def _wait_idle(running: RunningServer) -> None:
    dp = running.server.dataplane
    assert dp is not None
    _poll(lambda: dp.engine.stats().running_rows == 0 and dp.engine.stats().queued_rows == 0)
    assert dp.engine.stats().running_requests == 0 and dp.engine.stats().queued_requests == 0


def _still_serving(running: RunningServer) -> None:
    """Ready, and a small seeded forecast is answered exactly as a second time."""
    channel = grpc.insecure_channel(running.target)
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=READINESS))
    assert status.status == SERVING
    stub = pb_grpc.KronosPredictorStub(channel)
    small = request(40, 3, seed=5, sample_count=2)
    a = stub.PredictSingle(small, metadata=running.auth_metadata, timeout=60)
    b = stub.PredictSingle(small, metadata=running.auth_metadata, timeout=60)
    assert len(a.forecast.close) == 3 and a.forecast == b.forecast


def test_stream_cancelled_after_its_first_steps_frees_the_engine(heavy: RunningServer) -> None:
    route = "/kronos.v1.KronosPredictor/PredictStream"
    before = _count(heavy, "kronos_requests_total", route=route, status="cancelled")
    dp = heavy.server.dataplane
    assert dp is not None
    stream = _stub(heavy).PredictStream(
        request(400, 300, sample_count=8, seed=1), metadata=heavy.auth_metadata
    )
    first = [next(stream), next(stream)]
    assert [e.step.step for e in first] == [0, 1]
    assert dp.engine.stats().running_rows == 8  # still decoding the other 298 steps
    stream.cancel()
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.CANCELLED
    _wait_idle(heavy)  # the rows are freed at the next step, not after 300
    _poll(lambda: _count(heavy, "kronos_requests_total", route=route, status="cancelled") == before + 1)
    assert _count(heavy, "kronos_requests_total", route=route, status="error") == 0
    _still_serving(heavy)


def test_deadlines_shorter_than_the_prefill(heavy: RunningServer) -> None:
    """512 rows x 8 samples, 64 steps: more work than any of these deadlines allows. The
    shortest expire before the call reaches the server (gRPC fails them client-side); every
    call that does reach it is refused as a timeout, its rows are freed, and it is counted."""
    route = "/kronos.v1.KronosPredictor/PredictSingle"
    dp = heavy.server.dataplane
    assert dp is not None
    stub = _stub(heavy)
    stub.GetModelInfo(pb.GetModelInfoRequest(), metadata=heavy.auth_metadata)  # connected

    def counted() -> dict[str, float]:
        out: dict[str, float] = {}
        for family in heavy.metrics.registry.collect():
            for s in family.samples:
                if s.name == "kronos_requests_total" and s.labels["route"] == route:
                    out[s.labels["status"]] = out.get(s.labels["status"], 0.0) + s.value
        return out

    before, timeouts_before = counted(), _count(heavy, "kronos_timeouts_total", endpoint="PredictSingle")
    steps_before = dp.engine.stats().steps_total
    deadlines_ms = (1, 2, 5, 10, 20, 50, 250)
    for ms in deadlines_ms:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.PredictSingle(
                request(512, 64, sample_count=8, seed=ms), metadata=heavy.auth_metadata, timeout=ms / 1000
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2  # answered at the deadline, not after the work
        _wait_idle(heavy)
    # the server records a call just after its client has the answer
    _poll(lambda: _count(heavy, "kronos_concurrent_requests") == 0)
    after = counted()
    seen = {status: after.get(status, 0.0) - before.get(status, 0.0) for status in after}
    reached = sum(seen.values())
    assert reached >= 1, "no call reached the server: the deadlines were too short to test anything"
    assert seen.get("timeout", 0) == reached, seen  # never success, error or cancelled
    assert _count(heavy, "kronos_timeouts_total", endpoint="PredictSingle") - timeouts_before == reached
    assert dp.engine.stats().steps_total > steps_before  # at least one reached the engine
    _still_serving(heavy)


# -- (d), (e), (f): start-up with broken files -------------------------------------------------


@dataclass
class Startup:
    """A `kronos-serve serve` expected to fail, with every readiness answer it gave."""

    process: ServerProcess
    statuses: list[int | str] = field(default_factory=list)

    def watch(self) -> None:
        """Readiness from the moment the port is known until the process exits."""
        p = self.process
        while "gRPC" not in p.ports:
            if p.proc.poll() is not None:
                return
            time.sleep(0.01)
        with grpc.insecure_channel(f"127.0.0.1:{p.ports['gRPC']}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while p.proc.poll() is None:
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(service=READINESS), timeout=1)
                    self.statuses.append(reply.status)
                except grpc.RpcError as err:
                    self.statuses.append(err.code().name)
                time.sleep(0.01)

    @property
    def text(self) -> str:
        return "".join(self.process.lines)


def _start_all(tmp: Path, cases: dict[str, dict[str, str]]) -> dict[str, tuple[int, Startup]]:
    """Start one failing server per case at once (start-up is mostly importing torch)."""
    keys, _ = make_keys(tmp)
    runs = {
        name: Startup(ServerProcess("serve", env={**parity_env(keys), **env})) for name, env in cases.items()
    }
    watchers = [threading.Thread(target=run.watch, daemon=True) for run in runs.values()]
    for w in watchers:
        w.start()
    try:
        codes = {name: run.process.proc.wait(120) for name, run in runs.items()}
        for w in watchers:
            w.join(10)
    finally:
        for run in runs.values():
            run.process.stop()
    return {name: (codes[name], run) for name, run in runs.items()}


def _broken_copy(tmp: Path, name: str, breaks: Callable[[Path], None]) -> Path:
    target = tmp / name / "predictor"
    target.mkdir(parents=True)
    for file in (CONFIG_FILE, WEIGHTS_FILE):
        (target / file).write_bytes((PARITY / "predictor" / file).read_bytes())
    breaks(target)
    return target


def _truncate(d: Path) -> None:
    data = (d / WEIGHTS_FILE).read_bytes()
    (d / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])


def _garbage(d: Path) -> None:
    (d / WEIGHTS_FILE).write_bytes(bytes(range(256)) * 64)


def _config_not_json(d: Path) -> None:
    (d / CONFIG_FILE).write_text('{"d_model": 32, "n_layers": ')


def _resize(d: Path, key: str = RESIZED) -> None:
    tensors = load_file(str(d / WEIGHTS_FILE))
    rows, cols = tensors[key].shape
    tensors[key] = torch.zeros(rows + 1, cols)
    save_file(tensors, str(d / WEIGHTS_FILE))


@pytest.mark.slow
def test_corrupt_checkpoints_fail_start_up_naming_the_file_and_never_serve(tmp_path: Path) -> None:
    broken = {
        "truncated weights": (_truncate, WEIGHTS_FILE, "is not a readable safetensors file"),
        "garbage weights": (_garbage, WEIGHTS_FILE, "is not a readable safetensors file"),
        "config not JSON": (_config_not_json, CONFIG_FILE, "is not readable JSON"),
        "a resized tensor": (_resize, WEIGHTS_FILE, f"{RESIZED}: file (33, 32) != model (32, 32)"),
    }
    dirs = {name: _broken_copy(tmp_path, name.replace(" ", "-"), b[0]) for name, b in broken.items()}
    results = _start_all(tmp_path, {name: {"KRONOS_MODEL_PATH": str(d)} for name, d in dirs.items()})
    for name, (code, run) in results.items():
        _, file, problem = broken[name]
        assert code == 1, (name, run.text)
        errors = [e["message"] for e in run.process.json_lines() if e.get("level") == "ERROR"]
        assert any(str(dirs[name] / file) in m and problem in m for m in errors), (name, errors)
        assert "Traceback" not in run.text, (name, run.text)  # a clear message, not a crash
        # it bound and answered health while loading, but never said SERVING
        assert SERVING not in run.statuses, (name, run.statuses)
    # the failures come fast after the bind; the watcher saw readiness at least somewhere
    assert any(run.statuses for _, run in results.values()), [run.text for _, run in results.values()]


def test_a_resized_tensor_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    d = _broken_copy(tmp_path, "resized", _resize)
    with pytest.raises(CheckpointError) as err:
        load_predictor(d)
    message = err.value.message
    assert str(d / WEIGHTS_FILE) in message and "does not match the architecture" in message
    assert f"{RESIZED}: file (33, 32) != model (32, 32)" in message
    assert err.value.details["shape_mismatch"] == [f"{RESIZED}: file (33, 32) != model (32, 32)"]
    # a tensor missing and one the model does not have: both named
    tensors = load_file(str(d / WEIGHTS_FILE))
    tensors[RESIZED] = torch.zeros(32, 32)
    tensors["extra.weight"] = tensors.pop("dep_layer.cross_attn.q_proj.bias")
    save_file(tensors, str(d / WEIGHTS_FILE))
    with pytest.raises(CheckpointError) as err:
        load_predictor(d)
    assert "missing keys ['dep_layer.cross_attn.q_proj.bias']" in err.value.message
    assert "unexpected keys ['extra.weight']" in err.value.message


@pytest.mark.slow
def test_a_bad_keys_file_fails_start_up_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "keys-dir"
    directory.mkdir()
    not_json = tmp_path / "keys-not-json.json"
    not_json.write_text('{"version": 1, "containers": {')
    vanished = tmp_path / "keys-vanished.json"
    vanished.write_text(json.dumps({"version": 1, "containers": {}}))
    vanished.unlink()
    cases = {
        "a directory": (directory, "is a directory"),
        "not JSON": (not_json, "is not valid JSON"),
        "vanished": (vanished, "does not exist"),
    }
    results = _start_all(tmp_path, {name: {"KRONOS_API_KEYS_FILE": str(p)} for name, (p, _) in cases.items()})
    for name, (code, run) in results.items():
        path, problem = cases[name]
        assert code == 2, (name, run.text)  # the operator's mistake
        errors = [e["message"] for e in run.process.json_lines() if e.get("level") == "ERROR"]
        assert any("KRONOS_API_KEYS_FILE" in m and str(path) in m and problem in m for m in errors), (
            name,
            errors,
        )
        # refused before binding: nothing ever answered, least of all SERVING
        assert "gRPC" not in run.process.ports and run.statuses == [], (name, run.text)
