"""KronosClient: the blocking client (one or several servers, retries, typed results)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Unpack

import grpc
from grpc_health.v1 import health_pb2_grpc

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_client import core
from kronos_client.backtest import BacktestOptions, BacktestResult, build_backtest_request
from kronos_client.channel import Rotation, open_channels, sync_channel
from kronos_client.config import ClientConfig
from kronos_client.core import BatchItem, ClientCore, PredictOptions
from kronos_client.errors import KronosClientError
from kronos_client.frames import frame_request, frame_result
from kronos_client.messages import Column, build_request
from kronos_client.results import BatchResult, Forecast, ItemError, StreamEvent, batch_results, stream_event


class KronosClient(ClientCore):
    """Blocking client. ``KronosClient("host:port", container=..., key=...)`` or a ClientConfig.

    Thread-safe; close it (or use ``with``) to release the channels. ``stub`` is the raw
    generated stub of the first channel for anything this class does not wrap.
    """

    def __init__(
        self,
        config: ClientConfig | str | Sequence[str],
        *,
        container: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(config, container, key)
        self.channels: list[grpc.Channel] = open_channels(self.config, sync_channel)
        self._stubs = Rotation([pb_grpc.KronosPredictorStub(c) for c in self.channels])  # type: ignore[no-untyped-call]
        self._channels = Rotation(self.channels)

    @property
    def stub(self) -> pb_grpc.KronosPredictorStub:
        return self._stubs.items[0]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()

    def __enter__(self) -> KronosClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the retry loop ---------------------------------------------------------------

    def call(
        self, method: str, request: Any, *, timeout: float | None = None, request_id: str | None = None
    ) -> tuple[Any, str]:
        """Raw unary call by method name with retries -> (response message, request id)."""
        attempts = self.attempts(timeout, request_id)
        while True:
            try:
                response, call = getattr(self._stubs.next(), method).with_call(request, **attempts.options())
                return response, attempts.answered(call.initial_metadata())
            except grpc.RpcError as exc:
                error = attempts.error(exc)
            time.sleep(attempts.wait(error))

    def stream_raw(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> Iterator[tuple[pb.PredictStreamEvent, str]]:
        """PredictStream with retries until the first message arrives (never after)."""
        attempts = self.attempts(timeout, request_id)
        while True:
            call = self._stubs.next().PredictStream(request, **attempts.options())
            received = False
            try:
                for event in call:
                    if not received:
                        attempts.answered(call.initial_metadata())
                        received = True
                    yield event, attempts.request_id
                return
            except grpc.RpcError as exc:
                error = attempts.error(exc)
                if received:
                    raise error from None
            finally:
                call.cancel()  # a no-op once finished; frees the call if the caller stopped early
            time.sleep(attempts.wait(error))

    # -- the API ----------------------------------------------------------------------

    def predict_request(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast:
        response, rid = self.call("PredictSingle", request, timeout=timeout, request_id=request_id)
        return Forecast.from_pb(response, request.timezone, rid)

    def predict(
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
        return self.predict_request(request, timeout=timeout, request_id=request_id)

    def predict_batch(
        self, items: Sequence[BatchItem], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[BatchResult]:
        """Many series in one call: a Forecast or an ItemError per item, in order."""
        batch, zones = core.batch_request(items)
        response, rid = self.call("PredictBatch", batch, timeout=timeout, request_id=request_id)
        return batch_results(response, zones, rid)

    def stream_request(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> Iterator[StreamEvent]:
        for event, rid in self.stream_raw(request, timeout=timeout, request_id=request_id):
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
    ) -> Iterator[StreamEvent]:
        """Each generated Step as soon as it exists, then the final Forecast."""
        request = build_request(timestamps, open, high, low, close, **options)
        return self.stream_request(request, timeout=timeout, request_id=request_id)

    def backtest_request(
        self, request: pb.BacktestRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        response, rid = self.call("Backtest", request, timeout=timeout, request_id=request_id)
        return BacktestResult.from_pb(response, request.timezone, rid)

    def backtest(
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
        return self.backtest_request(request, timeout=timeout, request_id=request_id)

    def model_info(self, *, timeout: float | None = None) -> pb.ModelInfo:
        response, _ = self.call("GetModelInfo", pb.GetModelInfoRequest(), timeout=timeout)
        return response

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 status name ("SERVING", "NOT_SERVING"); "" is liveness,
        "kronos.v1.KronosPredictor" readiness. Needs no credentials; not retried."""
        stub = health_pb2_grpc.HealthStub(self._channels.next())
        try:
            response = stub.Check(core.health_request(service), timeout=self.timeout(timeout))
        except grpc.RpcError as exc:
            raise KronosClientError.from_rpc_error(exc) from None
        return core.serving_status(response)

    # -- pandas, mirroring Kronos' KronosPredictor -------------------------------------

    def predict_df(
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
            forecast = self.predict_request(request, timeout=timeout)
            return frame_result(forecast, y_timestamp, prob_close_up=prob_close_up)
        for event in self.stream_request(request, timeout=timeout):
            frame = core.df_progress(event, y_timestamp, pred_len, prob_close_up=prob_close_up)
            if frame is not None:
                return frame
        raise core.no_final_forecast()

    def predict_df_batch(
        self,
        df_list: Sequence[Any],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
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
    ) -> list[Any]:
        """Like ``KronosPredictor.predict_batch``: one DataFrame per series (columns as
        predict_df's); any failed series raises its error. ``verbose`` is accepted for
        compatibility."""
        levels = tuple(quantiles)
        requests = [
            frame_request(
                df,
                x,
                y,
                pred_len,
                T,
                top_k,
                top_p,
                sample_count,
                seed,
                timezone,
                series_id=str(i),
                quantiles=levels,
            )
            for i, (df, x, y) in enumerate(zip(df_list, x_timestamp_list, y_timestamp_list, strict=True))
        ]
        results = self.predict_batch(requests, timeout=timeout)
        frames = []
        for result, y in zip(results, y_timestamp_list, strict=True):
            if isinstance(result, ItemError):
                raise result.to_exception()
            frames.append(frame_result(result, y, prob_close_up=prob_close_up))
        return frames
