"""The client's probabilistic outputs: predict(return_paths=True), P(close up), predict_df's
quantile and prob_close_up columns, and the CLI's --return-paths and CSV output."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kronos_client import AsyncKronosClient, KronosClient
from kronos_client.cli import main
from kronos_client.results import FIELDS
from tests.clients.test_cli import CSV, creds

OPTIONS: dict[str, Any] = {"pred_len": 4, "sample_count": 5, "seed": 21, "quantiles": [0.1, 0.9]}


def test_predict_returns_paths_and_prob_close_up(client: KronosClient, series: dict[str, Any]) -> None:
    forecast = client.predict(**series, **OPTIONS, return_paths=True)
    assert len(forecast.paths) == 5
    paths = forecast.path_array()
    assert paths.shape == (5, 4, 6)
    np.testing.assert_allclose(paths.mean(axis=0)[:, 3], forecast.close, rtol=2e-6)
    np.testing.assert_allclose(paths.mean(axis=0)[:, 0], forecast.open, rtol=2e-6)
    last = np.float32(series["close"][-1])
    assert forecast.prob_close_up.tolist() == (paths[:, :, 3].astype(np.float32) > last).mean(axis=0).tolist()
    for q, columns in forecast.quantiles.items():
        expected = np.quantile(paths[:, :, 3], q, axis=0).astype(np.float32)
        np.testing.assert_array_equal(columns.close.astype(np.float32), expected)
    body = forecast.to_dict()
    assert len(body["paths"]) == 5 and body["paths"][0][0].keys() == body["forecast"][0].keys()
    assert body["prob_close_up"] == forecast.prob_close_up.tolist()


def test_without_return_paths(client: KronosClient, series: dict[str, Any]) -> None:
    forecast = client.predict(**series, **OPTIONS)
    assert forecast.paths == () and forecast.path_array().shape == (0, 4, 6)
    assert forecast.prob_close_up.shape == (4,)
    assert "paths" not in forecast.to_dict()
    same = client.predict(**series, **OPTIONS, return_paths=True)
    assert same.prob_close_up.tolist() == forecast.prob_close_up.tolist()


def test_the_async_client_too(grpc_server: Any, series: dict[str, Any]) -> None:
    async def run() -> Any:
        async with AsyncKronosClient(
            grpc_server.target, container=grpc_server.container, key=grpc_server.key
        ) as c:
            return await c.predict(**series, **OPTIONS, return_paths=True)

    forecast = asyncio.run(run())
    with KronosClient(grpc_server.target, container=grpc_server.container, key=grpc_server.key) as c:
        sync = c.predict(**series, **OPTIONS, return_paths=True)
    np.testing.assert_array_equal(forecast.path_array(), sync.path_array())


def test_predict_df_quantile_and_prob_columns(client: KronosClient, series: dict[str, Any]) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({c: series[c] for c in ("open", "high", "low", "close", "volume")})
    x = pd.Series(pd.to_datetime([t.replace(tzinfo=None) for t in series["timestamps"]]))
    y = pd.Series(pd.date_range(x.iloc[-1] + pd.Timedelta(minutes=5), periods=4, freq="5min"))
    out = client.predict_df(df, x, y, 4, sample_count=5, seed=21, quantiles=[0.9, 0.1], prob_close_up=True)
    quantile_columns = [f"{f}_q{q}" for q in ("0.1", "0.9") for f in FIELDS]
    assert list(out.columns) == [*FIELDS, *quantile_columns, "prob_close_up"]
    expected = client.predict(
        **series, prediction_timestamps=list(y), temperature=1.0, top_k=0, top_p=0.9,
        sample_count=5, seed=21, quantiles=[0.1, 0.9],
    )  # fmt: skip
    assert out["close_q0.1"].tolist() == expected.quantiles[0.1].close.tolist()
    assert out["volume_q0.9"].tolist() == expected.quantiles[0.9].volume.tolist()
    assert out["prob_close_up"].tolist() == expected.prob_close_up.tolist()
    plain = client.predict_df(df, x, y, 4, sample_count=5, seed=21)
    assert list(plain.columns) == list(FIELDS)  # Kronos' shape unless asked
    frames = client.predict_df_batch(
        [df], [x], [y], 4, sample_count=5, seed=21, quantiles=[0.5], prob_close_up=True
    )
    assert "close_q0.5" in frames[0].columns and "prob_close_up" in frames[0].columns
    whole = expected.to_dataframe()
    assert list(whole.columns) == [*FIELDS, *quantile_columns, "prob_close_up"]


def test_cli_return_paths_and_csv(
    grpc_server: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["predict", *creds(grpc_server), "--csv", str(CSV), "--tail", "100", "--pred-len", "3"]
    argv += ["--seed", "3", "--sample-count", "4", "--quantiles", "0.1,0.9"]
    assert main([*argv, "--return-paths"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert len(body["paths"]) == 4 and len(body["paths"][0]) == 3
    assert len(body["prob_close_up"]) == 3
    assert main([*argv, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    quantile_columns = [f"{f}_q{q}" for q in ("0.1", "0.9") for f in FIELDS]
    assert list(rows[0]) == ["timestamp", *FIELDS, *quantile_columns, "prob_close_up"]
    assert [r["timestamp"] for r in rows] == [r["timestamp"] for r in body["forecast"]]
    assert [float(r["close"]) for r in rows] == [r["close"] for r in body["forecast"]]
    assert [float(r["close_q0.9"]) for r in rows] == [r["close"] for r in body["quantiles"]["0.9"]]
    assert [float(r["prob_close_up"]) for r in rows] == body["prob_close_up"]
    assert main([*argv, "--format", "table"]) == 0
    assert "P(close up):" in capsys.readouterr().out
