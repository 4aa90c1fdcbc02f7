"""kronos-client as its own distribution (clients/pyproject.toml): no torch, no server code, the
version of kronos-serve, and a wheel that works from a fresh virtual environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kronos_client import KronosClient
from kronos_client._version import __version__
from kronos_client.csvinput import read_candles
from tests.processes import ServerProcess, make_keys, parity_env

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
CSV = ROOT / "server/kronos_server/default_model/data/regression_input.csv"
READINESS = "kronos.v1.KronosPredictor"
VERSION_ATTR = {"attr": "kronos_client._version.__version__"}
# what the client's own wheel may hold at its top level: the client and the generated stubs
TOP_LEVEL = {"kronos_client", "kronos"}
STUBS = ("predictor_pb2.py", "predictor_pb2.pyi", "predictor_pb2_grpc.py")


def clean_env() -> dict[str, str]:
    """This environment without anything that would let a fresh interpreter see the repository."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}


def build_client_wheel(tmp: Path) -> Path:
    """`pip wheel ./clients`, built from a copy so no build/ or egg-info lands in the repository."""
    src = tmp / "clients-src"
    shutil.copytree(CLIENTS, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    out = tmp / "wheel"
    # offline: no build isolation (the dev extras bring setuptools, as for the image's wheel test)
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)]
    done = subprocess.run([sys.executable, "-m", *build], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("kronos_client-*.whl")
    return wheel


def test_importing_the_client_loads_no_torch_and_no_server_code() -> None:
    # the public API, both command lines' modules and the load tester
    imports = "kronos_client, kronos_client.aio, kronos_client.cli, kronos_client.loadtest.command"
    code = (
        f"import sys, json, {imports}; print(json.dumps(sorted(m for m in sys.modules"
        " if m == 'torch' or m.startswith(('torch.', 'kronos_server', 'kronos_bridge')))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=clean_env()
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_both_distributions_read_the_one_version() -> None:
    for pyproject in (ROOT / "pyproject.toml", CLIENTS / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())
        assert "version" not in project["project"] and "version" in project["project"]["dynamic"], pyproject
        assert project["tool"]["setuptools"]["dynamic"]["version"] == VERSION_ATTR, pyproject
    # the installed root distribution (reinstalled by make whenever _version.py changes)
    assert metadata.version("kronos-serve") == __version__


def test_the_client_wheel_holds_only_the_client_and_the_stubs(tmp_path: Path) -> None:
    wheel = build_client_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        info = Parser().parsestr(zf.read(meta).decode())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    assert info["Name"] == "kronos-client"
    assert info["Version"] == __version__ == metadata.version("kronos-serve")
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == TOP_LEVEL
    assert {f"kronos/v1/{stub}" for stub in STUBS} <= set(names)
    assert "kronos_client/py.typed" in names
    required = {
        re.match(r"[\w.-]+", r).group(0).lower()  # type: ignore[union-attr]
        for r in info.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    # no torch, and nothing of the server's
    assert required == {"grpcio", "protobuf", "grpcio-health-checking", "grpcio-status", "numpy"}
    extras = set(info.get_all("Provides-Extra") or [])
    assert extras == {"pandas", "plot", "calendars"}
    assert "kronos-client = kronos_client.cli:main" in scripts


# -- the wheel in a fresh virtual environment against a real server ----------------------------

CALLS = """
import json, sys
import kronos_client
from kronos_client import Forecast, KronosClient
from kronos_client._version import __version__
from kronos_client.csvinput import read_candles

target, container, key, csv = sys.argv[1:5]
tail = read_candles(csv).tail(48)
window = {"timestamps": tail.timestamps, **tail.columns}
with KronosClient(target, container=container, key=key) as client:
    single = client.predict(**window, pred_len=3, sample_count=2, seed=7)
    batch = client.predict_batch([{**window, "pred_len": 2, "seed": 1}, {**window, "pred_len": 4, "seed": 2}])
    events = list(client.stream(**window, pred_len=3, sample_count=2, seed=7))
    print(json.dumps({
        "client_file": kronos_client.__file__,
        "version": __version__,
        "single_close": [float(v) for v in single.close],
        "batch_lengths": [len(r.close) for r in batch if isinstance(r, Forecast)],
        "stream_steps": sum(1 for e in events if not isinstance(e, Forecast)),
        "stream_final_close": [float(v) for v in events[-1].close],
        "health": client.health(),
        "readiness": client.health("kronos.v1.KronosPredictor"),
    }))
"""


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with only the client wheel (and what it requires) installed."""
    tmp = tmp_path_factory.mktemp("client-dist")
    wheel = build_client_wheel(tmp)
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600, env=clean_env(), cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir


def run_in(env_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=180, env=clean_env(), cwd=cwd)


@pytest.mark.slow
def test_the_client_wheel_works_without_torch_from_a_fresh_venv(fresh_venv: Path, tmp_path: Path) -> None:
    python = str(fresh_venv / "bin" / "python")
    for absent in ("torch", "kronos_server", "kronos_bridge"):
        done = run_in(fresh_venv, python, "-c", f"import {absent}", cwd=tmp_path)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, (absent, done.stderr)

    keys, key = make_keys(tmp_path)
    server = ServerProcess("serve", env=parity_env(keys))
    try:
        server.wait_ready()
        script = tmp_path / "calls.py"
        script.write_text(CALLS)
        done = run_in(fresh_venv, python, str(script), server.target, "tester", key, str(CSV), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        got: dict[str, Any] = json.loads(done.stdout)
        # the package imported is the installed wheel's, not the repository's
        assert Path(got["client_file"]).is_relative_to(fresh_venv), got["client_file"]
        assert got["version"] == __version__
        assert got["batch_lengths"] == [2, 4]
        assert got["stream_steps"] == 3
        assert got["health"] == got["readiness"] == "SERVING"
        # the same call from the repository's client gives the same forecast
        tail = read_candles(CSV).tail(48)
        with KronosClient(server.target, container="tester", key=key) as client:
            here = client.predict(tail.timestamps, **tail.columns, pred_len=3, sample_count=2, seed=7)
        assert got["single_close"] == [float(v) for v in here.close]
        assert len(got["stream_final_close"]) == 3

        script_bin = fresh_venv / "bin" / "kronos-client"
        done = run_in(fresh_venv, str(script_bin), "--version", cwd=tmp_path)
        assert done.stdout.strip() == f"kronos-client {__version__}", done.stdout + done.stderr
        done = run_in(
            fresh_venv, str(script_bin), "health", "-addr", server.target, "-service", READINESS, cwd=tmp_path
        )
        assert (done.returncode, done.stdout) == (0, "status: SERVING\n"), done.stderr
        predict = ["predict", "--target", server.target, "--container", "tester", "--key", key]
        done = run_in(
            fresh_venv,
            str(script_bin),
            *predict,
            "--csv",
            str(CSV),
            "--tail",
            "48",
            "--pred-len",
            "3",
            "--seed",
            "7",
            "--sample-count",
            "2",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert [row["close"] for row in body["forecast"]] == pytest.approx(got["single_close"], rel=1e-6)
    finally:
        server.stop()
