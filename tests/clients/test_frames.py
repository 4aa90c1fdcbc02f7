"""predict_df: the Kronos KronosPredictor.predict call shape over gRPC (pandas optional)."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import numpy as np
import pytest

from kronos_client import AsyncKronosClient, KronosClient
from kronos_client.frames import require_pandas

pd = pytest.importorskip("pandas")

COLUMNS = ["open", "high", "low", "close", "volume", "amount"]


@pytest.fixture(scope="module")
def frame(series: dict[str, Any]) -> tuple[Any, Any, Any]:
    df = pd.DataFrame({c: series[c] for c in ("open", "high", "low", "close", "volume")})
    x_timestamp = pd.Series(pd.to_datetime([t.replace(tzinfo=None) for t in series["timestamps"]]))
    y_timestamp = pd.Series(
        pd.date_range(x_timestamp.iloc[-1] + pd.Timedelta(minutes=5), periods=4, freq="5min")
    )
    return df, x_timestamp, y_timestamp


def test_predict_df_mirrors_kronos_predictor(
    client: KronosClient, series: dict[str, Any], frame: tuple[Any, Any, Any]
) -> None:
    df, x_timestamp, y_timestamp = frame
    out = client.predict_df(
        df, x_timestamp, y_timestamp, pred_len=4, T=1.0, top_k=0, top_p=0.9, sample_count=2, seed=5
    )
    assert list(out.columns) == COLUMNS
    assert list(out.index) == list(y_timestamp)
    expected = client.predict(
        **series,
        prediction_timestamps=list(y_timestamp),
        temperature=1.0,
        top_k=0,
        top_p=0.9,
        sample_count=2,
        seed=5,
    )
    assert out["close"].tolist() == expected.close.tolist()
    assert out["amount"].tolist() == expected.amount.tolist()
    assert expected.to_dataframe()["close"].tolist() == expected.close.tolist()


def test_predict_df_verbose_streams_progress(
    client: KronosClient, frame: tuple[Any, Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    df, x_timestamp, y_timestamp = frame
    quiet = client.predict_df(df, x_timestamp, y_timestamp, 4, seed=9)
    loud = client.predict_df(df, x_timestamp, y_timestamp, 4, verbose=True, seed=9)
    # verbose streams: its result is what the steps said (the incremental decode), which may
    # differ from the unary forecast's full-window decode in the last float32 place
    assert list(loud.columns) == list(quiet.columns) and loud.index.equals(quiet.index)
    np.testing.assert_allclose(loud.to_numpy(), quiet.to_numpy(), rtol=1e-5, atol=1e-6)
    assert "step 4/4" in capsys.readouterr().err


def test_predict_df_without_volume_and_async(grpc_server: Any, frame: tuple[Any, Any, Any]) -> None:
    df, x_timestamp, y_timestamp = frame
    prices = df[["open", "high", "low", "close"]]

    async def scenario() -> Any:
        async with AsyncKronosClient(
            grpc_server.target, container=grpc_server.container, key=grpc_server.key
        ) as client:
            return await client.predict_df(prices, x_timestamp, y_timestamp, 4, seed=2)

    out = asyncio.run(scenario())
    assert list(out.columns) == COLUMNS and len(out) == 4


def test_predict_df_batch(client: KronosClient, frame: tuple[Any, Any, Any]) -> None:
    df, x_timestamp, y_timestamp = frame
    single = client.predict_df(df, x_timestamp, y_timestamp, 4, seed=4)
    outs = client.predict_df_batch(
        [df, df], [x_timestamp, x_timestamp], [y_timestamp, y_timestamp], 4, seed=4
    )
    assert len(outs) == 2 and all(o.equals(single) for o in outs)


def test_missing_price_column(client: KronosClient, frame: tuple[Any, Any, Any]) -> None:
    df, x_timestamp, y_timestamp = frame
    with pytest.raises(ValueError, match="close"):
        client.predict_df(df.drop(columns=["close"]), x_timestamp, y_timestamp, 4)


def test_without_pandas_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def no_pandas(name: str, *args: Any) -> Any:
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas"):
        require_pandas()


def test_pandas_timestamps(client: KronosClient) -> None:
    from kronos_client import InvalidInputError
    from kronos_client.timestamps import to_epoch_ms

    aware = pd.Series(pd.to_datetime(["2024-01-01 09:00"]).tz_localize("Asia/Tokyo"))
    assert to_epoch_ms(aware) == [1704067200000]
    assert to_epoch_ms(pd.DatetimeIndex(["2024-01-01 09:00"]), "Asia/Tokyo") == [1704067200000]
    with pytest.raises(InvalidInputError) as info:
        to_epoch_ms(pd.Series([pd.Timestamp("2024-01-01"), pd.NaT]))
    assert info.value.field == "timestamps[1]"
