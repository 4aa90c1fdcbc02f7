"""AsyncKronosClient: the grpc.aio twin of KronosClient (same arguments, same results)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Unpack

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_client.channel import Rotation, aio_channel, open_channels
from kronos_client.config import ClientConfig
from kronos_client.core import BatchItem, ClientCore, PredictOptions, as_request, progress
from kronos_client.errors import KronosClientError, metadata_dict
from kronos_client.frames import frame_request, frame_result
from kronos_client.messages import Column, build_request
from kronos_client.results import BatchResult, Forecast, StreamEvent, batch_results, stream_event
from kronos_client.retry import Deadline


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
        self._opened: tuple[list[grpc.aio.Channel], Rotation[Any]] | None = None

    def _open(self) -> tuple[list[grpc.aio.Channel], Rotation[Any]]:
        if self._opened is None:
            channels = open_channels(self.config, aio_channel)
            self._opened = channels, Rotation([pb_grpc.KronosPredictorStub(c) for c in channels])  # type: ignore[no-untyped-call]
        return self._opened

    @property
    def channels(self) -> list[grpc.aio.Channel]:
        return self._open()[0]

    @property
    def stub(self) -> pb_grpc.KronosPredictorStub:
        return self._open()[1].items[0]

    async def close(self) -> None:
        if self._opened is not None:
            channels, self._opened = self._opened[0], None
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
        stubs = self._open()[1]
        deadline = Deadline(self.timeout(timeout))
        rid = self.request_id(request_id)
        attempt = 0
        while True:
            try:
                call = getattr(stubs.next(), method)(
                    request, timeout=deadline.remaining(), metadata=self.metadata(rid)
                )
                response = await call
                return response, metadata_dict(await call.initial_metadata()).get("x-request-id", rid)
            except grpc.RpcError as exc:
                error = KronosClientError.from_rpc_error(exc, rid)
            wait = self.policy.delay(attempt, error, deadline.remaining())
            if wait is None:
                raise error
            await asyncio.sleep(wait)
            attempt += 1

    async def stream_raw(
        self, request: pb.PredictRequest, *, timeout: float | None = None, request_id: str | None = None
    ) -> AsyncIterator[tuple[pb.PredictStreamEvent, str]]:
        """PredictStream with retries until the first message arrives (never after)."""
        stubs = self._open()[1]
        deadline = Deadline(self.timeout(timeout))
        rid = self.request_id(request_id)
        attempt = 0
        while True:
            call = stubs.next().PredictStream(
                request, timeout=deadline.remaining(), metadata=self.metadata(rid)
            )
            received = False
            try:
                async for event in call:
                    if not received:
                        rid = metadata_dict(await call.initial_metadata()).get("x-request-id", rid)
                        received = True
                    yield event, rid
                return
            except grpc.RpcError as exc:
                error = KronosClientError.from_rpc_error(exc, rid)
                if received:
                    raise error from None
            finally:
                call.cancel()
            wait = self.policy.delay(attempt, error, deadline.remaining())
            if wait is None:
                raise error
            await asyncio.sleep(wait)
            attempt += 1

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
        requests = [as_request(item) for item in items]
        batch = pb.PredictBatchRequest(items=requests)
        response, rid = await self.call("PredictBatch", batch, timeout=timeout, request_id=request_id)
        return batch_results(response, [r.timezone for r in requests], rid)

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

    async def model_info(self, *, timeout: float | None = None) -> pb.ModelInfo:
        response, _ = await self.call("GetModelInfo", pb.GetModelInfoRequest(), timeout=timeout)
        return response

    async def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """grpc.health.v1 status name; needs no credentials; not retried."""
        stub = health_pb2_grpc.HealthStub(self.channels[0])
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout(timeout)
            )
        except grpc.RpcError as exc:
            raise KronosClientError.from_rpc_error(exc) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

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
    ) -> Any:
        """Like ``KronosPredictor.predict``: a DataFrame of the six columns indexed by y_timestamp."""
        request = frame_request(
            df,
            x_timestamp,
            y_timestamp,
            pred_len,
            T=T,
            top_k=top_k,
            top_p=top_p,
            sample_count=sample_count,
            seed=seed,
            timezone=timezone,
        )
        if not verbose:
            return frame_result(await self.predict_request(request, timeout=timeout), y_timestamp)
        async for event in self.stream_request(request, timeout=timeout):
            if isinstance(event, Forecast):
                return frame_result(event, y_timestamp)
            progress(event.step + 1, pred_len)
        raise KronosClientError(grpc.StatusCode.INTERNAL, "the stream ended without a final forecast")
