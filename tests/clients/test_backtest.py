"""The client's backtest: Client.backtest / AsyncKronosClient.backtest, the typed result (its
table, dict and DataFrame), and ``kronos-client backtest`` with --json and --plot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from kronos.v1 import predictor_pb2 as pb
from kronos_client import AsyncKronosClient, BacktestResult, KronosClient, KronosClientError
from kronos_client.backtest import build_backtest_request
from kronos_client.cli import main
from tests.clients.test_cli import CSV, creds

OPTIONS: dict[str, Any] = {"horizon": 4, "context": 32, "origins": 5, "sample_count": 4, "seed": 3}


def test_backtest_returns_the_servers_scores(client: KronosClient, series: dict[str, Any]) -> None:
    result = client.backtest(**series, **OPTIONS)
    assert isinstance(result, BacktestResult)
    assert list(result.scores) == ["model", "naive", "drift", "volatility"]
    assert result.origins.tolist() == [60, 64, 68, 72, 76]  # 80 rows, the last leaves 4 after it
    assert (result.horizon, result.context, result.origin_step, result.seed) == (4, 32, 4, 3)
    assert result.request_id
    raw = client.stub.Backtest(
        build_backtest_request(**series, **OPTIONS), metadata=client.metadata("raw-1"), timeout=60
    )
    for name, scores in result.scores.items():
        theirs = next(s for s in raw.scores if s.forecaster == name)
        assert scores.overall.mae == theirs.overall.mae
        assert scores.curve("rmse") == [s.rmse for s in theirs.by_step]
    model = result.model.overall
    assert set(model.coverage) == {0.5, 0.8, 0.9} and model.brier_up is not None
    naive = result.scores["naive"].overall
    assert naive.pinball == {} and naive.brier_up is None and naive.mae_skill == 0.0
    # naive by hand: each origin's last context close, repeated
    close = np.asarray(series["close"])
    errors = [close[o + h] - close[o - 1] for o in result.origins for h in range(4)]
    assert naive.mae == pytest.approx(np.mean(np.abs(errors)), rel=1e-12)


def test_the_result_as_table_dict_and_frame(client: KronosClient, series: dict[str, Any]) -> None:
    result = client.backtest(**series, **OPTIONS, return_forecasts=True)
    table = result.table()
    assert "5 origins" in table and all(name in table for name in result.scores)
    body = result.to_dict()
    assert [s["forecaster"] for s in body["scores"]] == list(result.scores)
    assert body["scores"][0]["overall"]["mae"] == result.model.overall.mae
    assert [f["origin"] for f in body["forecasts"]] == result.origins.tolist()
    assert len(result.forecasts[0].mean.close) == 4 and len(result.forecasts[0].quantiles) == 7
    json.dumps(body)  # JSON-ready
    pd = pytest.importorskip("pandas")
    frame = result.to_dataframe()
    assert list(frame.index) == list(result.scores)
    assert frame.loc["model", "mae"] == result.model.overall.mae
    assert frame.loc["model", "coverage_0.8"] == result.model.overall.coverage[0.8]
    assert pd.isna(frame.loc["naive", "crps_skill"]) or frame.loc["naive", "crps_skill"] == 0.0
    steps = result.to_dataframe(by_step=True)
    assert steps.loc[("drift", 2), "rmse"] == result.scores["drift"].by_step[1].rmse
    assert len(steps) == 4 * 4


def test_async_backtest_is_the_same(grpc_server: Any, series: dict[str, Any]) -> None:
    async def run() -> BacktestResult:
        async with AsyncKronosClient(
            grpc_server.target, container=grpc_server.container, key=grpc_server.key
        ) as c:
            return await c.backtest(**series, **OPTIONS)

    result = asyncio.run(run())
    with KronosClient(grpc_server.target, container=grpc_server.container, key=grpc_server.key) as c:
        sync = c.backtest(**series, **OPTIONS)
    assert result.to_dict() == sync.to_dict()


def test_refusals_name_the_field(client: KronosClient, series: dict[str, Any]) -> None:
    with pytest.raises(KronosClientError) as caught:
        client.backtest(**series, **{**OPTIONS, "origins": 40})
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and caught.value.field == "origins"
    with pytest.raises(KronosClientError) as caught:
        client.backtest(**series, horizon=0)
    assert caught.value.field == "horizon"
    assert isinstance(build_backtest_request(**series, horizon=2), pb.BacktestRequest)


def test_cli_prints_the_table_and_writes_json_and_plot(
    grpc_server: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["backtest", *creds(grpc_server), "--csv", str(CSV), "--tail", "200", "--horizon", "4"]
    argv += ["--origins", "6", "--context", "48", "--sample-count", "3", "--seed", "5"]
    out_json = tmp_path / "bt.json"
    assert main([*argv, "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "6 origins" in printed and "volatility" in printed
    body = json.loads(out_json.read_text())
    assert [s["forecaster"] for s in body["scores"]] == ["model", "naive", "drift", "volatility"]
    assert body["origins"] == [176, 180, 184, 188, 192, 196] and body["seed"] == 5
    model_mae = body["scores"][0]["overall"]["mae"]
    assert f"{model_mae:.4g}" in printed
    assert main([*argv, "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == body  # seeded: the same again
    pytest.importorskip("matplotlib")
    png = tmp_path / "bt.png"
    assert main([*argv, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refusal_exits_2_naming_the_field(grpc_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["backtest", *creds(grpc_server), "--csv", str(CSV), "--tail", "50", "--horizon", "4"]
    assert main([*argv, "--origins", "100"]) == 2
    assert "(field origins)" in capsys.readouterr().err


def test_plot_backtest_takes_plain_arrays(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from kronos_client.plot import Fan, plot_backtest, spread

    assert spread(10) == [0, 4, 9] and spread(2) == [0, 1]
    close = list(100 + np.sin(np.arange(60) / 4))
    fans = [
        Fan(40, close[40:44], [c - 1 for c in close[40:44]], [c + 1 for c in close[40:44]]),
        Fan(50, close[50:54]),
    ]
    out = plot_backtest(tmp_path / "p.png", close=close, fans=fans, curves={"model": [0.1, None, 0.3, 0.4]})
    assert out.stat().st_size > 1000
