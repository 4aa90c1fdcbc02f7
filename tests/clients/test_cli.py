"""kronos-client: health (grpc_health_probe exit codes), predict --csv, info."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kronos_client.cli import main
from kronos_client.probe import parse_duration
from tests.clients.conftest import free_port
from tests.servers import start_server

CSV = Path(__file__).parents[2] / "server/kronos_server/default_model/data/regression_input.csv"
READINESS = "kronos.v1.KronosPredictor"


@pytest.fixture(scope="module")
def loading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server that is up (liveness SERVING) but has not loaded its model (readiness NOT_SERVING)."""
    running = start_server(tmp_path_factory.mktemp("loading"), load=False)
    yield running
    running.stop()


def creds(running: Any) -> list[str]:
    return ["--target", running.target, "--container", running.container, "--key", running.key]


# -- health ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", READINESS])
def test_health_serving(grpc_server: Any, service: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "-addr", grpc_server.target, "-service", service]) == 0
    assert capsys.readouterr().out == "status: SERVING\n"


def test_health_not_serving_until_the_model_is_loaded(
    loading: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "-addr", loading.target]) == 0
    assert main(["health", f"-addr={loading.target}", f"-service={READINESS}"]) == 4
    assert "NOT_SERVING" in capsys.readouterr().err


def test_health_connection_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "-addr", f"127.0.0.1:{free_port()}", "-connect-timeout", "300ms"]) == 2
    assert "failed to connect" in capsys.readouterr().err


def test_health_rpc_failure_for_an_unknown_service(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "-addr", grpc_server.target, "-service", "no.such.Service"]) == 3
    assert "NOT_FOUND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["-addr", "h:1", "-bogus"],
        ["-addr", "h:1", "-tls-ca-cert", "ca.pem"],
        ["-addr", "h:1", "-tls", "-tls-no-verify", "-tls-ca-cert", "ca.pem"],
        ["-addr", "h:1", "-tls", "-tls-client-cert", "c.pem"],
        ["-addr", "h:1", "-connect-timeout", "0s"],
        ["-addr", "h:1", "-rpc-timeout", "soon"],
    ],
)
def test_health_bad_flags_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", *argv]) == 1
    assert capsys.readouterr().err.startswith("error:")


def test_durations() -> None:
    assert parse_duration("1s") == 1.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("2.5") == 2.5


def test_console_script(grpc_server: Any) -> None:
    script = Path(sys.executable).parent / "kronos-client"
    if not script.exists():
        pytest.skip("kronos-client is not installed (pip install -e .)")
    done = subprocess.run(
        [str(script), "health", "-addr", grpc_server.target], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "status: SERVING\n"


# -- predict / info ---------------------------------------------------------------------


def test_predict_csv_prints_json(grpc_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", *creds(grpc_server), "--csv", str(CSV), "--tail", "100", "--pred-len", "4"]
    assert main([*argv, "--seed", "3", "--sample-count", "3", "--quantiles", "0.1,0.9"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["forecast"]) == 4
    assert set(body["forecast"][0]) == {"timestamp", "open", "high", "low", "close", "volume", "amount"}
    assert set(body["quantiles"]) == {"0.1", "0.9"} and len(body["quantiles"]["0.9"]) == 4
    assert body["seed"] == 3 and body["sample_count"] == 3 and body["model_version"]
    last = CSV.read_text().strip().splitlines()[-1].split(",")[0]
    assert body["forecast"][0]["timestamp"] > last.replace(" ", "T")


def test_predict_credentials_from_the_environment_and_table_output(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "KRONOS_CLIENT_TARGET": grpc_server.target,
        "KRONOS_CLIENT_CONTAINER": grpc_server.container,
        "KRONOS_CLIENT_KEY": grpc_server.key,
    }
    argv = ["predict", "--csv", str(CSV), "--tail", "100", "--pred-len", "4", "--format", "table"]
    assert main(argv, env=env) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["timestamp", "open", "high", "low", "close", "volume", "amount"]
    assert len(lines) == 5


def test_predict_without_credentials_fails_clearly(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "--target", grpc_server.target, "--csv", str(CSV), "--tail", "50", "--pred-len", "2"]
    assert main(argv, env={}) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_predict_plot_writes_a_png(
    grpc_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "forecast.png"
    argv = ["predict", *creds(grpc_server), "--csv", str(CSV), "--tail", "100", "--pred-len", "4"]
    assert main([*argv, "--sample-count", "4", "--quantiles", "0.1,0.9", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out)["forecast"]


def test_plot_without_matplotlib_says_how_to_install(
    grpc_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    real = importlib.import_module

    def no_matplotlib(name: str, *args: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_matplotlib)
    argv = ["predict", *creds(grpc_server), "--csv", str(CSV), "--tail", "60", "--pred-len", "2"]
    assert main([*argv, "--plot", str(tmp_path / "x.png")]) == 1
    assert "pip install matplotlib" in capsys.readouterr().err


def test_info_prints_model_info_json(grpc_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", *creds(grpc_server)]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["max_context"] == 64
    assert body["limits"]["max_pred_len"] == 64 and body["defaults"]["top_p"] > 0


def test_bad_csv_is_a_clear_error(
    grpc_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,open,high,low,close\n2024-01-01,1,1,1,1\n")
    assert main(["predict", *creds(grpc_server), "--csv", str(bad), "--pred-len", "1"]) == 1
    assert "no timestamp column" in capsys.readouterr().err
