"""kronos-client: health (grpc_health_probe exit codes), predict --csv, info."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kronos_client.cli import build_parser, client_config, main
from kronos_client.probe import parse_args as probe_parse_args
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
        ["-addr", ""],
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
    assert len(lines) == 6  # the header, 4 steps, then P(close up) of each step
    label, _, values = lines[5].partition(": ")
    assert label == "P(close up)" and all(0 <= float(v) <= 1 for v in values.split())
    assert len(values.split()) == 4


def test_predict_without_credentials_fails_clearly(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "--target", grpc_server.target, "--csv", str(CSV), "--tail", "50", "--pred-len", "2"]
    assert main(argv, env={}) == 2  # the caller's mistake, as kronos-serve's exit 2
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
    assert main(["predict", *creds(grpc_server), "--csv", str(bad), "--pred-len", "1"]) == 2
    assert "no timestamp column" in capsys.readouterr().err


# -- the server's address, exit codes, version -------------------------------------------


def test_health_takes_target_and_the_environment(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--target", grpc_server.target, "--service", READINESS], env={}) == 0
    assert main(["health"], env={"KRONOS_CLIENT_TARGET": grpc_server.target}) == 0
    # an explicit flag wins over the environment
    env = {"KRONOS_CLIENT_TARGET": f"127.0.0.1:{free_port()}"}
    assert main(["health", "-addr", grpc_server.target], env=env) == 0
    assert capsys.readouterr().out == "status: SERVING\n" * 3
    assert main(["health", "-connect-timeout", "300ms"], env=env) == 2  # the environment's (closed) port
    assert env["KRONOS_CLIENT_TARGET"] in capsys.readouterr().err


def test_without_target_or_environment_the_server_default_is_used() -> None:
    assert probe_parse_args([], {}).addr == "localhost:50051"
    args = build_parser().parse_args(["info"])
    assert client_config(args, {}).target_list() == ["localhost:50051"]
    assert client_config(args, {"KRONOS_CLIENT_TARGET": "h:1"}).target_list() == ["h:1"]


def test_info_target_from_the_environment(grpc_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"KRONOS_CLIENT_TARGET": grpc_server.target, "KRONOS_CLIENT_CONTAINER": grpc_server.container}
    assert main(["info", "--key", grpc_server.key], env=env) == 0
    assert json.loads(capsys.readouterr().out)["max_context"] == 64


def test_a_request_the_server_refuses_as_invalid_exits_2(
    grpc_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", *creds(grpc_server), "--csv", str(CSV), "--tail", "50", "--pred-len", "500"]
    assert main(argv, env={}) == 2  # beyond the served model's max_context (64)
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "pred_len" in err


def test_an_unreachable_server_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{free_port()}"
    argv = ["info", "--target", target, "--timeout", "2", "--retries", "0"]
    assert main(argv, env={}) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_a_missing_key_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["info", "--target", "127.0.0.1:1", "--key-file", str(tmp_path / "absent.txt")]
    assert main(argv, env={}) == 2
    assert "absent.txt" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"kronos-client {metadata.version('kronos-serve')}\n"


# -- the one CSV reader, prediction timestamps (issue 11 items 4, 9, 10) ------------------


def _server_error(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from kronos_server.cli import main as serve_main

    code = serve_main(["forecast", "--csv", str(path), "--pred-len", "2"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("header", ["timestamps", "timestamp", "Datetime", "date", "Time", "DATE"])
def test_predict_accepts_every_timestamp_header(
    grpc_server: Any, header: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = CSV.read_text().strip().splitlines()[-40:]
    path = tmp_path / "x.csv"
    path.write_text(
        "\n".join([header + ",open,high,low,close", *(",".join(r.split(",")[:5]) for r in lines)])
    )
    assert main(["predict", *creds(grpc_server), "--csv", str(path), "--pred-len", "2"]) == 0, (
        capsys.readouterr()
    )
    body = json.loads(capsys.readouterr().out)
    assert len(body["forecast"]) == 2
    assert all(row["volume"] == 0 and row["amount"] == 0 for row in body["forecast"])


@pytest.mark.parametrize(
    "text",
    [
        "when,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n",
        "Datetime,open,high,low\n2024-01-01,1,2,0.5\n",
        "Date,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,2,0.5,x\n",
        "time,open,high,low,close\n2024-01-01,1,2,0.5,1.5\n2024-01-02,1,2\n",
        "timestamp,open,high,low,close\n",
        "",
    ],
)
def test_both_clis_refuse_a_bad_csv_with_the_same_message(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    server_code, server_err = _server_error(path, capsys)
    client_code = main(["predict", "--target", "127.0.0.1:1", "--csv", str(path), "--pred-len", "2"], env={})
    client_err = capsys.readouterr().err
    assert server_code == client_code == 2
    assert server_err.startswith("error: ") and client_err == server_err


def test_predict_freq_b_continues_friday_with_monday(
    grpc_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime, timedelta

    rows = CSV.read_text().strip().splitlines()[-40:]
    days: list[str] = []
    day = datetime(2024, 5, 13)
    while len(days) < len(rows):
        if day.weekday() < 5:
            days.append(day.date().isoformat())
        day += timedelta(days=1)
    assert datetime.fromisoformat(days[-1]).weekday() == 4
    path = tmp_path / "d.csv"
    path.write_text(
        "\n".join(
            [
                "Date,open,high,low,close",
                *(f"{d}," + ",".join(r.split(",")[1:5]) for d, r in zip(days, rows, strict=True)),
            ]
        )
    )
    argv = ["predict", *creds(grpc_server), "--csv", str(path), "--pred-len", "2", "--freq", "B"]
    assert main(argv) == 0
    stamps = [row["timestamp"] for row in json.loads(capsys.readouterr().out)["forecast"]]
    assert stamps == ["2024-07-08T00:00:00", "2024-07-09T00:00:00"]


def test_predict_prediction_timestamps_and_offsets(
    grpc_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import datetime, timedelta

    rows = CSV.read_text().strip().splitlines()[-40:]
    path = tmp_path / "sh.csv"
    first = datetime(2024, 6, 18, 9, 30)
    stamps = [(first + timedelta(minutes=5 * i)).isoformat() + "+08:00" for i in range(len(rows))]
    path.write_text(
        "\n".join(
            [
                "timestamps,open,high,low,close",
                *(f"{t}," + ",".join(r.split(",")[1:5]) for t, r in zip(stamps, rows, strict=True)),
            ]
        )
    )
    future = tmp_path / "future.txt"
    wanted = ["2024-06-19T09:30:00+08:00", "2024-06-19T09:35:00+08:00"]
    future.write_text("\n".join(wanted) + "\n")
    argv = ["predict", *creds(grpc_server), "--csv", str(path), "--prediction-timestamps", str(future)]
    assert main(argv) == 0
    assert [row["timestamp"] for row in json.loads(capsys.readouterr().out)["forecast"]] == wanted


def test_predict_bad_freq_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["predict", "--csv", str(CSV), "--pred-len", "2", "--freq", "5m"])
    assert info.value.code == 2
    assert "--freq" in capsys.readouterr().err
