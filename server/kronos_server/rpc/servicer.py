"""KronosPredictor servicer: decode protobuf -> call the dataplane -> encode. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator

from grpc.aio import ServicerContext

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.dataplane import Dataplane
from kronos_server.errors import KronosError, UnavailableError
from kronos_server.forecast.types import Forecast
from kronos_server.rpc import context as call
from kronos_server.rpc import convert


def _request_id() -> str | None:
    state = call.current()
    return state.request_id if state and state.request_id else None


class KronosPredictorServicer(pb_grpc.KronosPredictorServicer):
    def __init__(self, max_request_bytes: int):
        self.dataplane: Dataplane | None = None  # set once the model is loaded and warm
        self.max_request_bytes = max_request_bytes

    def _dp(self) -> Dataplane:
        if self.dataplane is None:
            raise UnavailableError("the model is still loading; retry shortly")
        return self.dataplane

    def _encode(self, forecast: Forecast) -> pb.PredictResponse:
        dp = self._dp()
        return convert.forecast_to_pb(forecast, dp.model_version, dp.tokenizer_version)

    async def PredictSingle(self, request: pb.PredictRequest, context: ServicerContext) -> pb.PredictResponse:
        forecast = await self._dp().predict(
            convert.series_from_pb(request), timeout=context.time_remaining(), request_id=_request_id()
        )
        return self._encode(forecast)

    async def PredictBatch(
        self, request: pb.PredictBatchRequest, context: ServicerContext
    ) -> pb.PredictBatchResponse:
        dp = self._dp()
        items = []
        for item in request.items:
            items.append(convert.series_from_pb(item))
        outcomes = await dp.predict_batch(items, timeout=context.time_remaining(), request_id=_request_id())
        response = pb.PredictBatchResponse()
        for outcome in outcomes:
            if isinstance(outcome, KronosError):
                response.results.add(error=convert.error_to_pb(outcome))
            else:
                response.results.add(forecast=self._encode(outcome))
        return response

    async def PredictStream(
        self, request: pb.PredictRequest, context: ServicerContext
    ) -> AsyncIterator[pb.PredictStreamEvent]:
        series = convert.series_from_pb(request)
        async for item in self._dp().stream(
            series, timeout=context.time_remaining(), request_id=_request_id()
        ):
            if isinstance(item, Forecast):
                yield pb.PredictStreamEvent(final=self._encode(item))
            else:
                yield convert.step_to_pb(item)

    async def GetModelInfo(self, request: pb.GetModelInfoRequest, context: ServicerContext) -> pb.ModelInfo:
        return convert.model_info_to_pb(self._dp().info(), self.max_request_bytes)
