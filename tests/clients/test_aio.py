"""AsyncKronosClient: the same answers as the sync client and the raw stub."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
import pytest

from kronos_client import AsyncKronosClient, Forecast, ItemError, KronosClient, KronosClientError, Step

SAMPLING = {"pred_len": 3, "sample_count": 2, "seed": 11, "quantiles": [0.5]}


@pytest.fixture(scope="module")
def expected(client: KronosClient, series: dict[str, Any]) -> Forecast:
    return client.predict(**series, **SAMPLING)


def same(a: Forecast, b: Forecast) -> bool:
    return all(getattr(a, f).tolist() == getattr(b, f).tolist() for f in ("timestamps_ms", "close", "amount"))


def test_async_predict_stream_batch_info_and_health(
    grpc_server: Any, series: dict[str, Any], expected: Forecast
) -> None:
    bad = {**series, "high": np.asarray(series["low"]) - 1}

    async def scenario() -> None:
        async with AsyncKronosClient(
            grpc_server.target, container=grpc_server.container, key=grpc_server.key
        ) as client:
            forecast, info, live, ready = await asyncio.gather(
                client.predict(**series, **SAMPLING, request_id="aio-1"),
                client.model_info(),
                client.health(),
                client.health("kronos.v1.KronosPredictor"),
            )
            assert same(forecast, expected)
            assert forecast.quantiles[0.5].close.tolist() == expected.quantiles[0.5].close.tolist()
            assert forecast.request_id == "aio-1"
            assert info.max_context == 64 and info.model_version == forecast.model_version
            assert (live, ready) == ("SERVING", "SERVING")

            events = [e async for e in client.stream(**series, **SAMPLING)]
            assert [type(e) for e in events] == [Step, Step, Step, Forecast]
            final = events[-1]
            # a stream decodes step by step, PredictSingle the whole window at once: equal up to
            # float32 rounding (the proto's PredictStreamEvent.final says so)
            assert (
                isinstance(final, Forecast)
                and final.timestamps_ms.tolist() == expected.timestamps_ms.tolist()
            )
            for name in ("close", "amount"):
                np.testing.assert_allclose(getattr(final, name), getattr(expected, name), rtol=1e-5)

            results = await client.predict_batch([{**series, **SAMPLING}, {**bad, **SAMPLING}])
            assert isinstance(results[0], Forecast) and same(results[0], expected)
            assert isinstance(results[1], ItemError) and results[1].code == "INVALID_ARGUMENT"

    asyncio.run(scenario())


def test_async_errors_carry_the_status(grpc_server: Any, series: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with AsyncKronosClient(grpc_server.target) as anonymous:
            with pytest.raises(KronosClientError) as info:
                await anonymous.predict(**series, pred_len=1)
            assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(KronosClientError) as stream_info:
                async for _ in anonymous.stream(**series, pred_len=1):
                    pass
            assert stream_info.value.code == grpc.StatusCode.UNAUTHENTICATED

    asyncio.run(scenario())
