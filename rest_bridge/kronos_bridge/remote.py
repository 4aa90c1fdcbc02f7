"""A :class:`~kronos_server.dataplane.ForecastPlane` over a gRPC channel: the standalone
bridge's dataplane (``kronos-serve bridge --grpc-target HOST:PORT``).

Each call forwards the credentials of the REST call being served (``X-Container-Name``,
``Authorization``, every occurrence) and its request id, so the gRPC server authenticates,
rate-limits and validates it as it would a native call; its errors come back as the
project's errors, decoded from their standard details
(:func:`kronos_server.rpc.status.error_from_rpc`). Readiness is the server's
``grpc.health.v1`` status; readyz's model versions are read with the bridge's own
credentials (KRONOS_BRIDGE_CONTAINER / KRONOS_BRIDGE_KEY_FILE), if set.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_bridge.plane import ModelVersions
from kronos_bridge.translate import backtest_from_pb, backtest_to_pb, forecast_from_pb, series_to_pb
from kronos_server.backtest.types import BacktestInput, BacktestResult
from kronos_server.dataplane import ModelInfo
from kronos_server.errors import KronosError, cause_of_code, error_class
from kronos_server.forecast.fields import domain_path
from kronos_server.forecast.limits import Limits
from kronos_server.forecast.types import Forecast, SeriesInput
from kronos_server.gate import current
from kronos_server.rpc.context import SERVICE
from kronos_server.rpc.status import error_from_rpc
from kronos_server.settings import Settings, SettingsError

FORWARDED_HEADERS = ("x-container-name", "authorization")
READY_CHECK_TIMEOUT_S = 2.0
# the model versions readyz reports are read at most this often (they change on restart)
VERSIONS_TTL_S = 30.0
# the bridge forwards what it is given; the gRPC service enforces its size limit
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]

Reply = TypeVar("Reply")
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RemoteForecast(Forecast):
    """A forecast with the versions of the server that made it."""

    model_version: str = ""
    tokenizer_version: str = ""


def _header_value(value: str) -> str:
    # gRPC metadata values are printable ASCII; anything else is forwarded empty (the service
    # then answers as if the value were absent) rather than failing the call
    return value if value.isascii() and value.isprintable() else ""


def _code_name(code: str | int) -> str:
    if isinstance(code, str):
        return code
    return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")


def item_error(error: pb.ItemError) -> KronosError:
    """A batch item's error as the project's error (a RESOURCE_EXHAUSTED item is overload)."""
    field = domain_path(error.field) if error.field else None
    return error_class(cause_of_code(_code_name(error.code)))(error.message, field=field)


def model_info_from_pb(msg: pb.ModelInfo) -> ModelInfo:
    lim, defaults = msg.limits, msg.defaults
    limits = Limits(
        max_context=lim.max_pred_len,
        min_history=lim.min_history,
        max_history=lim.max_history,
        max_sample_count=lim.max_sample_count,
        max_quantiles=lim.max_quantiles,
        max_return_paths=lim.max_return_paths,
        max_backtest_origins=lim.max_backtest_origins,
        default_temperature=defaults.temperature,
        default_top_k=defaults.top_k,
        default_top_p=defaults.top_p,
        default_sample_count=defaults.sample_count,
    )
    return ModelInfo(
        msg.model_name,
        msg.model_version,
        msg.tokenizer_name,
        msg.tokenizer_version,
        msg.max_context,
        msg.device,
        msg.d_model,
        msg.n_layers,
        msg.n_heads,
        msg.vocab_s1,
        msg.vocab_s2,
        limits,
        max_request_bytes=lim.max_request_bytes,
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS for the bridge's channel (KRONOS_BRIDGE_TLS_*), with a client certificate for mTLS;
    None for plaintext."""
    if settings.bridge_tls_ca_file is None:
        return None
    names = (
        "KRONOS_BRIDGE_TLS_CA_FILE",
        "KRONOS_BRIDGE_TLS_CLIENT_CERT_FILE",
        "KRONOS_BRIDGE_TLS_CLIENT_KEY_FILE",
    )
    paths = (
        settings.bridge_tls_ca_file,
        settings.bridge_tls_client_cert_file,
        settings.bridge_tls_client_key_file,
    )
    pem: list[bytes | None] = []
    for name, path in zip(names, paths, strict=True):
        try:
            pem.append(path.read_bytes() if path is not None else None)
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    ca, cert, key = pem
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def open_channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    """A channel to the gRPC server: TLS when ``credentials`` are given, else plaintext."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


class RemoteDataplane:
    def __init__(self, channel: grpc.aio.Channel, *, credentials: Metadata = ()):
        """``credentials``: the bridge's own metadata, for the model versions readyz reports."""
        self.channel = channel
        self.predictor = pb_grpc.KronosPredictorStub(channel)  # type: ignore[no-untyped-call]
        self.health = health_pb2_grpc.HealthStub(channel)
        self.credentials = credentials
        self._versions: tuple[float, ModelVersions] | None = None

    @staticmethod
    def metadata(request_id: str | None = None) -> Metadata:
        """The current REST call's credentials (each occurrence) and request id."""
        call = current()
        md: list[tuple[str, str]] = []
        rid = request_id or (call.request_id if call is not None else None)
        if rid:
            md.append(("x-request-id", rid))
        if call is not None:
            for name in FORWARDED_HEADERS:
                md.extend((name, _header_value(v)) for v in call.headers.getlist(name))
        return tuple(md)

    async def _call(
        self, method: Callable[..., Awaitable[Reply]], request: Any, md: Metadata, timeout: float | None
    ) -> Reply:
        try:
            return await method(request, metadata=md, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err) from None

    @staticmethod
    def _forecast(reply: pb.PredictResponse, series: SeriesInput) -> RemoteForecast:
        forecast = forecast_from_pb(reply, series.timezone or "UTC")
        return RemoteForecast(
            **vars(forecast), model_version=reply.model_version, tokenizer_version=reply.tokenizer_version
        )

    async def predict(
        self, series: SeriesInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> Forecast:
        message = series_to_pb(series)
        reply = await self._call(self.predictor.PredictSingle, message, self.metadata(request_id), timeout)
        return self._forecast(reply, series)

    async def predict_batch(
        self, items: list[SeriesInput], *, timeout: float | None = None, request_id: str | None = None
    ) -> list[Forecast | KronosError]:
        out: list[Forecast | KronosError | None] = [None] * len(items)
        sent: list[int] = []
        batch = pb.PredictBatchRequest()
        for i, series in enumerate(items):
            try:
                batch.items.append(series_to_pb(series))
            except KronosError as exc:  # a value the proto cannot hold: this item's error
                out[i] = exc
                continue
            sent.append(i)
        reply = await self._call(self.predictor.PredictBatch, batch, self.metadata(request_id), timeout)
        for i, result in zip(sent, reply.results, strict=True):
            out[i] = (
                self._forecast(result.forecast, items[i])
                if result.HasField("forecast")
                else item_error(result.error)
            )
        return [o for o in out if o is not None]

    async def backtest(
        self, request: BacktestInput, *, timeout: float | None = None, request_id: str | None = None
    ) -> BacktestResult:
        """The Backtest RPC with the current call's credentials (the server charges its origins)."""
        message = backtest_to_pb(request)
        reply = await self._call(self.predictor.Backtest, message, self.metadata(request_id), timeout)
        return backtest_from_pb(reply, request.series.timezone or "UTC")

    async def model_info(self) -> ModelInfo:
        """GetModelInfo with the current call's credentials (auth and rate limits apply)."""
        reply = await self._call(self.predictor.GetModelInfo, pb.GetModelInfoRequest(), self.metadata(), None)
        return model_info_from_pb(reply)

    async def ready(self) -> bool:
        """The service's readiness (grpc.health.v1 for the KronosPredictor service)."""
        try:
            reply = await self.health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=READY_CHECK_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def versions_of(self, forecast: Forecast) -> tuple[str, str]:
        if isinstance(forecast, RemoteForecast):
            return forecast.model_version, forecast.tokenizer_version
        return "", ""

    async def versions(self) -> ModelVersions | None:
        """GetModelInfo with the bridge's own credentials when configured (cached), else None."""
        if not self.credentials:
            return None
        now = time.monotonic()
        if self._versions is not None and now - self._versions[0] < VERSIONS_TTL_S:
            return self._versions[1]
        try:
            info = await self.predictor.GetModelInfo(
                pb.GetModelInfoRequest(), metadata=self.credentials, timeout=READY_CHECK_TIMEOUT_S
            )
        except (TimeoutError, grpc.aio.AioRpcError) as err:
            logger.warning("cannot read model info with the bridge credentials: {}", err)
            return None
        versions = ModelVersions.of(model_info_from_pb(info))
        self._versions = (now, versions)
        return versions

    async def close(self) -> None:
        await self.channel.close()
