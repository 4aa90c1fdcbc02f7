"""KronosPredictor servicer: decode protobuf -> call the dataplane -> encode, and report each
forecast call's input sizes and inference time to the metrics (the REST routes report
theirs alike)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from grpc.aio import ServicerContext

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.backtest.types import BacktestInput
from kronos_server.dataplane import Dataplane
from kronos_server.errors import KronosError, UnavailableError
from kronos_server.forecast.types import Forecast, SeriesInput
from kronos_server.observability.metrics import Metrics
from kronos_server.rpc import context as call
from kronos_server.rpc import convert


def _request_id() -> str | None:
    state = call.current()
    return state.request_id if state and state.request_id else None


def _annotate(series: SeriesInput) -> None:
    """Rows, pred_len and series_id of a single-series call, for its access-log line."""
    state = call.current()
    if state is not None:
        pred_len = series.pred_len
        if pred_len is None and series.prediction_timestamps is not None:
            pred_len = len(series.prediction_timestamps)
        state.log_fields.update(series_id=series.series_id, rows=len(series.close), pred_len=pred_len)


def _annotate_backtest(backtest: BacktestInput) -> None:
    """Rows, horizon, origins and series_id of a backtest, for its access-log line."""
    state = call.current()
    if state is not None:
        state.log_fields.update(
            series_id=backtest.series.series_id,
            rows=len(backtest.series.close),
            horizon=backtest.horizon,
            origins=backtest.origins,
        )


class KronosPredictorServicer(pb_grpc.KronosPredictorServicer):
    def __init__(self, max_request_bytes: int, metrics: Metrics | None = None):
        self.dataplane: Dataplane | None = None  # set once the model is loaded and warm
        self.max_request_bytes = max_request_bytes
        self.metrics = metrics

    def _observe(self, endpoint: str, series: list[SeriesInput], started: float | None) -> None:
        """Input rows of each series; inference time when ``started`` is set (success)."""
        if self.metrics is not None:
            seconds = None if started is None else time.perf_counter() - started
            self.metrics.observe_forecast(endpoint, [len(s.close) for s in series], seconds)

    def _dp(self) -> Dataplane:
        if self.dataplane is None:
            raise UnavailableError("the model is still loading; retry shortly")
        return self.dataplane

    def _encode(self, forecast: Forecast) -> pb.PredictResponse:
        dp = self._dp()
        return convert.forecast_to_pb(forecast, dp.model_version, dp.tokenizer_version)

    async def PredictSingle(self, request: pb.PredictRequest, context: ServicerContext) -> pb.PredictResponse:
        dp = self._dp()
        series = convert.series_from_pb(request)
        _annotate(series)
        started = time.perf_counter()
        try:
            forecast = await dp.predict(series, timeout=context.time_remaining(), request_id=_request_id())
        except BaseException:
            self._observe("PredictSingle", [series], None)
            raise
        self._observe("PredictSingle", [series], started)
        return self._encode(forecast)

    async def PredictBatch(
        self, request: pb.PredictBatchRequest, context: ServicerContext
    ) -> pb.PredictBatchResponse:
        dp = self._dp()
        items: list[SeriesInput] = []
        refused: dict[int, KronosError] = {}  # items that cannot even be decoded: their own error
        for i, item in enumerate(request.items):
            try:
                items.append(convert.series_from_pb(item))
            except KronosError as exc:
                refused[i] = exc
        started = time.perf_counter()
        try:
            outcomes = await dp.predict_batch(
                items, timeout=context.time_remaining(), request_id=_request_id()
            )
        except BaseException:
            self._observe("PredictBatch", items, None)
            raise
        self._observe("PredictBatch", items, started)
        response = pb.PredictBatchResponse()
        decoded = iter(outcomes)
        for i in range(len(request.items)):
            outcome = refused[i] if i in refused else next(decoded)
            if isinstance(outcome, KronosError):
                response.results.add(error=convert.error_to_pb(outcome))
            else:
                response.results.add(forecast=self._encode(outcome))
        return response

    async def PredictStream(
        self, request: pb.PredictRequest, context: ServicerContext
    ) -> AsyncIterator[pb.PredictStreamEvent]:
        dp = self._dp()
        series = convert.series_from_pb(request)
        _annotate(series)
        started: float | None = time.perf_counter()
        try:
            async for item in dp.stream(series, timeout=context.time_remaining(), request_id=_request_id()):
                if isinstance(item, Forecast):
                    self._observe("PredictStream", [series], started)
                    started = None
                    yield pb.PredictStreamEvent(final=self._encode(item))
                else:
                    yield convert.step_to_pb(item)
        finally:
            if started is not None:
                self._observe("PredictStream", [series], None)

    async def Backtest(self, request: pb.BacktestRequest, context: ServicerContext) -> pb.BacktestResponse:
        dp = self._dp()
        backtest = convert.backtest_from_pb(request)
        _annotate_backtest(backtest)
        started = time.perf_counter()
        try:
            result = await dp.backtest(backtest, timeout=context.time_remaining(), request_id=_request_id())
        except BaseException:
            self._observe("Backtest", [backtest.series], None)
            raise
        self._observe("Backtest", [backtest.series], started)
        return convert.backtest_to_pb(result)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: ServicerContext) -> pb.ModelInfo:
        return convert.model_info_to_pb(self._dp().info(), self.max_request_bytes)
