"""AsyncKronosClient: the grpc.aio twin of KronosClient (same arguments, same results)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType
from typing import Any, NamedTuple, Unpack

import grpc
from grpc_health.v1 import health_pb2_grpc

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_client import core
from kronos_client.backtest import BacktestOptions, BacktestResult, build_backtest_request
from kronos_client.channel import Rotation, aio_channel, open_channels
from kronos_client.config import ClientConfig
from kronos_client.core import BatchItem, ClientCore, PredictOptions
from kronos_client.errors import KronosClientError
from kronos_client.frames import frame_request, frame_result
from kronos_client.messages import Column, build_request
from kronos_client.results import BatchResult, Forecast, StreamEvent, batch_results, stream_event


class _Opened(NamedTuple):
    channels: list[grpc.aio.Channel]
    stubs: Rotation[Any]
    rotation: Rotation[grpc.aio.Channel]


class AsyncKronosClient(ClientCore):
    """Asyncio client. Channels open on first use, in the running event loop; use
    ``async with`` (or ``await close()``) in that same loop."""

    def __init__(
        self,
        config: ClientConfig | str | Sequence[str],
        *,
        container: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(config, container, key)
        self._opened: _Opened | None = None

    def _open(self) -> _Opened:
        if self._opened is None:
            channels = open_channels(self.config, aio_channel)
            stubs = Rotation([pb_grpc.KronosPredictorStub(c) for c in channels])  # type: ignore[no-untyped-call]
            self._opened = _Opened(channels, stubs, Rotation(channels))
        return self._opened

    @property
    def channels(self) -> list[grpc.aio.Channel]:
        return self._open().channels

    @property
    def stub(self) -> pb_grpc.KronosPredictorStub:
        return self._open().stubs.items[0]

    async def close(self) -> None:
        if self._opened is not None:
            channels, self._opened = self._opened.channels, None
            for channel in channels:
                await channel.close()

    async def __aenter__(self) -> AsyncKronosClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the retry loop ---------------------------------------------------------------

    async def call(
        self, method: str, request: Any, *, timeout: float | None = None, request_id: str | None = None
    ) -> tuple[Any, str]:
        """Raw unary call by method name with retries -> (response message, request id)."""
        stubs = self._open().stubs
        attempts = self.attempts(timeout, request_id)
        while True:
            try:
                call = getattr(stubs.next(), method)(request, **attempts.options())
                response = await call
                return response, attempts.answered(await call.initial_metadata())
            except grpc.RpcError as exc:
                error = attempts.error(exc)
            await asyncio.sleep(attempts.wait(error))

    async def stream_raw(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> AsyncIterator[tuple[pb.PredictStreamEvent, str]]:
        """PredictStream with retries until the first message arrives (never after)."""
        stubs = self._open().stubs
        attempts = self.attempts(timeout, request_id)
        while True:
            call = stubs.next().PredictStream(request, **attempts.options())
            received = False
            try:
                async for event in call:
                    if not received:
                        attempts.answered(await call.initial_metadata())
                        received = True
                    yield event, attempts.request_id
                return
            except grpc.RpcError as exc:
                error = attempts.error(exc)
                if received:
                    raise error from None
            finally:
                call.cancel()
            await asyncio.sleep(attempts.wait(error))

    # -- the API ----------------------------------------------------------------------

    async def predict_request(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast:
        response, rid = await self.call("PredictSingle", request, timeout=timeout, request_id=request_id)
        return Forecast.from_pb(response, request.timezone, rid)

    async def predict(
        self,
        timestamps: Any,
        open: Column,
        high: Column,
        low: Column,
        close: Column,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        **options: Unpack[PredictOptions],
    ) -> Forecast:
        """Forecast one series (see :func:`kronos_client.messages.build_request` for options)."""
        request = build_request(timestamps, open, high, low, close, **options)
        return await self.predict_request(request, timeout=timeout, request_id=request_id)

    async def predict_batch(
        self, items: Sequence[BatchItem], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[BatchResult]:
        """Many series in one call: a Forecast or an ItemError per item, in order."""
        batch, zones = core.batch_request(items)
        response, rid = await self.call("PredictBatch", batch, timeout=timeout, request_id=request_id)
        return batch_results(response, zones, rid)

    async def stream_request(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> AsyncIterator[StreamEvent]:
        async for event, rid in self.stream_raw(request, timeout=timeout, request_id=request_id):
            yield stream_event(event, request.timezone, rid)

    def stream(
        self,
        timestamps: Any,
        open: Column,
        high: Column,
        low: Column,
        close: Column,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        **options: Unpack[PredictOptions],
    ) -> AsyncIterator[StreamEvent]:
        """Each generated Step as soon as it exists, then the final Forecast (``async for``)."""
        request = build_request(timestamps, open, high, low, close, **options)
        return self.stream_request(request, timeout=timeout, request_id=request_id)

    async def backtest_request(
        self, request: pb.BacktestRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        response, rid = await self.call("Backtest", request, timeout=timeout, request_id=request_id)
        return BacktestResult.from_pb(response, request.timezone, rid)

    async def backtest(
        self,
        timestamps: Any,
        open: Column,
        high: Column,
        low: Column,
        close: Column,
        *,
        horizon: int,
        timeout: float | None = None,
        request_id: str | None = None,
        **options: Unpack[BacktestOptions],
    ) -> BacktestResult:
        """Score the model on the series' own history: forecasts from many past origins at
        once, compared with what followed, beside the naive, drift and volatility baselines
        (see :func:`kronos_client.backtest.build_backtest_request` for the options)."""
        request = build_backtest_request(timestamps, open, high, low, close, horizon=horizon, **options)
        return await self.backtest_request(request, timeout=timeout, request_id=request_id)

    async def model_info(self, *, timeout: float | None = None) -> pb.ModelInfo:
        response, _ = await self.call("GetModelInfo", pb.GetModelInfoRequest(), timeout=timeout)
        return response

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 status name ("SERVING", "NOT_SERVING"); "" is liveness,
        "kronos.v1.KronosPredictor" readiness. Needs no credentials; not retried."""
        stub = health_pb2_grpc.HealthStub(self._open().rotation.next())
        try:
            response = await stub.Check(core.health_request(service), timeout=self.timeout(timeout))
        except grpc.RpcError as exc:
            raise KronosClientError.from_rpc_error(exc) from None
        return core.serving_status(response)

    async def predict_df(
        self,
        df: Any,
        x_timestamp: Any,
        y_timestamp: Any,
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 0.9,
        sample_count: int = 1,
        verbose: bool = False,
        *,
        seed: int | None = None,
        timezone: str = "",
        timeout: float | None = None,
        quantiles: Iterable[float] = (),
        prob_close_up: bool = False,
    ) -> Any:
        """Like ``KronosPredictor.predict``: a DataFrame of the six columns indexed by y_timestamp;
        with ``quantiles``, each level's six columns too (``close_q0.1``, ...), and with
        ``prob_close_up``, the fraction of sample paths closing above the last close per step."""
        request = frame_request(
            df,
            x_timestamp,
            y_timestamp,
            pred_len,
            T,
            top_k,
            top_p,
            sample_count,
            seed,
            timezone,
            quantiles=quantiles,
        )
        if not verbose:
            forecast = await self.predict_request(request, timeout=timeout)
            return frame_result(forecast, y_timestamp, prob_close_up=prob_close_up)
        async for event in self.stream_request(request, timeout=timeout):
            frame = core.df_progress(event, y_timestamp, pred_len, prob_close_up=prob_close_up)
            if frame is not None:
                return frame
        raise core.no_final_forecast()
