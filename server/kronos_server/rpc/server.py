"""The gRPC server: binds, serves health at once, loads + warms the model, drains on stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import numpy as np
from grpc_reflection.v1alpha import reflection
from loguru import logger

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_server.dataplane import Dataplane, open_dataplane
from kronos_server.forecast.types import SamplingParams, SeriesInput
from kronos_server.gate import Gate
from kronos_server.observability.metrics import EngineMetrics, Metrics
from kronos_server.rpc.health import Health
from kronos_server.rpc.interceptors import build_interceptors
from kronos_server.rpc.servicer import KronosPredictorServicer
from kronos_server.settings import Settings

DataplaneFactory = Callable[[Settings], Dataplane]


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    key = settings.tls_key_file.read_bytes()
    cert = settings.tls_cert_file.read_bytes()
    ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def warmup_series(n: int = 64, pred_len: int = 2) -> SeriesInput:
    """A small synthetic series that exercises prefill and decode once before serving."""
    t = np.arange(n, dtype=np.float64)
    close = 100 + np.sin(t / 5)
    ts = (1_700_000_000 + 300 * np.arange(n, dtype=np.int64)) * 1_000_000_000
    return SeriesInput(
        series_id="warmup",
        timestamps=ts,
        open=close,
        high=close + 0.1,
        low=close - 0.1,
        close=close,
        volume=np.full(n, 10.0),
        pred_len=pred_len,
        sampling=SamplingParams(sample_count=1, seed=0),
    )


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC core options: message limits, no port sharing, and the optional connection age."""
    # the core refuses messages far past our limit; between the two, the size
    # interceptor answers (and counts) RESOURCE_EXHAUSTED with a clear message
    core_limit = max(2 * settings.max_request_bytes, settings.max_request_bytes + 4 * 1024 * 1024)
    options = [
        ("grpc.max_receive_message_length", core_limit),
        ("grpc.max_send_message_length", core_limit),
        ("grpc.so_reuseport", 0),
    ]
    if settings.max_connection_age > 0:
        # GOAWAY after the age (gRPC adds +-10% jitter); calls already running get the
        # inference timeout to finish before the connection is closed
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.inference_timeout * 1000)),
        ]
    return options


class GrpcServer:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        gate: Gate,
        dataplane_factory: DataplaneFactory | None = None,
    ):
        """``gate``: the call gate every call of the service passes (shared with REST)."""
        self.settings = settings
        self.metrics = metrics
        self.gate = gate
        self.health = Health()
        self.servicer = KronosPredictorServicer(settings.max_request_bytes, metrics)
        self._factory = dataplane_factory or self._open
        self._server = grpc.aio.server(
            interceptors=build_interceptors(gate, settings.limits()), options=server_options(settings)
        )
        pb_grpc.add_KronosPredictorServicer_to_server(self.servicer, self._server)  # type: ignore[no-untyped-call]
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self._server)
        reflection.enable_server_reflection(
            (
                pb.DESCRIPTOR.services_by_name["KronosPredictor"].full_name,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        self.port = 0
        self._draining = False

    def _open(self, settings: Settings) -> Dataplane:
        return open_dataplane(settings, observer=EngineMetrics(self.metrics))

    @property
    def dataplane(self) -> Dataplane | None:
        return self.servicer.dataplane

    async def start(self) -> int:
        """Bind and serve health at once; returns the bound port. Call :meth:`load` next."""
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        creds = _credentials(self.settings)
        if creds is None:
            self.port = self._server.add_insecure_port(address)
        else:
            self.port = self._server.add_secure_port(address, creds)
        await self._server.start()
        await self.health.live()
        logger.info("gRPC listening on {}:{} (tls={})", self.settings.host, self.port, creds is not None)
        return self.port

    async def load(self) -> Dataplane:
        """Load the model, run one warm-up forecast, then report ready."""
        started = time.monotonic()
        dataplane = await asyncio.to_thread(self._factory, self.settings)
        await dataplane.warm_up(warmup_series())  # counted by the engine metrics, not as a request
        self.servicer.dataplane = dataplane
        if not self._draining:
            await self.health.ready(True)
        self.metrics.model_loaded.set(1)
        self.metrics.model_info.labels(
            dataplane.model_name,
            dataplane.model_version,
            dataplane.tokenizer_name,
            dataplane.tokenizer_version,
            str(dataplane.bundle.device),
        ).set(1)
        engine = dataplane.engine
        self.metrics.engine.watch(engine.stats, engine.config.max_queued_rows)
        logger.info(
            "model {} ({}) and tokenizer {} ({}) ready in {:.1f}s",
            dataplane.model_name,
            dataplane.model_version,
            dataplane.tokenizer_name,
            dataplane.tokenizer_version,
            time.monotonic() - started,
        )
        return dataplane

    async def start_draining(self) -> None:
        """Readiness NOT_SERVING from now on (a load that finishes later keeps it so); calls are
        still served until :meth:`stop`."""
        self._draining = True
        await self.health.ready(False)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: readiness NOT_SERVING, refuse new calls, let in-flight ones finish, then
        close the dataplane within what is left of ``grace``."""
        grace = self.settings.shutdown_grace if grace is None else grace
        started = time.monotonic()
        await self.stop_serving(grace)
        await self.close(max(0.0, grace - (time.monotonic() - started)))

    async def stop_serving(self, grace: float | None = None) -> None:
        """Readiness NOT_SERVING, refuse new calls, let in-flight ones finish within ``grace``."""
        grace = self.settings.shutdown_grace if grace is None else grace
        await self.start_draining()
        await self._server.stop(grace)

    async def close(self, grace: float = 0.0) -> None:
        """Stop the engine (its running rows get ``grace``); call after every front has stopped."""
        if self.servicer.dataplane is not None:
            await self.servicer.dataplane.close(grace)
        self.metrics.model_loaded.set(0)
        logger.info("gRPC server stopped")
