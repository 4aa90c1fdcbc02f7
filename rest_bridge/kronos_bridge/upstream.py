"""The gRPC side of the bridge: one channel, the metadata each call carries, readiness.

Every call forwards the caller's ``X-Container-Name`` and ``Authorization`` and the
request id, so authentication, rate limits and size limits are enforced by the gRPC
service alone. The in-process bridge adds its token (``x-kronos-bridge``) so that the
service does not count again a call the bridge has counted under its REST route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from loguru import logger
from starlette.datastructures import Headers

from kronos.v1 import predictor_pb2 as pb
from kronos.v1 import predictor_pb2_grpc as pb_grpc
from kronos_bridge.errors import from_rpc_error
from kronos_server.rpc.context import SERVICE
from kronos_server.rpc.interceptors.metrics import BRIDGE_METADATA

FORWARDED_HEADERS = ("x-container-name", "authorization")
READY_CHECK_TIMEOUT_S = 2.0
# the standalone bridge asks for model versions at most this often (they change on restart)
VERSIONS_TTL_S = 30.0

Reply = TypeVar("Reply")


@dataclass(frozen=True)
class ModelVersions:
    """What readyz reports about the model being served."""

    model_name: str
    model_version: str
    tokenizer_name: str
    tokenizer_version: str
    device: str


ModelInfoProvider = Callable[[], ModelVersions | None]


def _header_value(value: str) -> str:
    # gRPC metadata values are printable ASCII; anything else is forwarded empty (the service
    # then answers as if the value were absent) rather than failing the call
    return value if value.isascii() and value.isprintable() else ""


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every occurrence of header ``name``: a repeated credential header reaches the service
    as repeated metadata (which it refuses as ambiguous), never as just one of its values."""
    if isinstance(headers, Headers):
        return headers.getlist(name)
    value = headers.get(name)
    return [] if value is None else [value]


class Upstream:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        bridge_token: str | None = None,
        model_info_provider: ModelInfoProvider | None = None,
        credentials: tuple[tuple[str, str], ...] = (),
    ):
        self.channel = channel
        self.predictor = pb_grpc.KronosPredictorStub(channel)  # type: ignore[no-untyped-call]
        self.health = health_pb2_grpc.HealthStub(channel)
        self.bridge_token = bridge_token
        self.model_info_provider = model_info_provider
        self.credentials = credentials
        self._versions: tuple[float, ModelVersions] | None = None

    def metadata(self, request_id: str, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
        md = [("x-request-id", request_id)]
        for name in FORWARDED_HEADERS:
            md.extend((name, _header_value(value)) for value in _header_values(headers, name))
        if self.bridge_token:
            md.append((BRIDGE_METADATA, self.bridge_token))
        return tuple(md)

    async def call(self, method: Callable[..., Awaitable[Reply]], request: Any, md: Any) -> Reply:
        """One unary call; a failure becomes the :class:`~kronos_bridge.errors.HttpError` to answer."""
        try:
            return await method(request, metadata=md)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def ready(self) -> bool:
        """The service's readiness (grpc.health.v1 for the KronosPredictor service)."""
        try:
            reply = await self.health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE), timeout=READY_CHECK_TIMEOUT_S
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def versions(self) -> ModelVersions | None:
        """In-process: from the server itself. Standalone: GetModelInfo with the bridge's
        own credentials when configured (cached), else None."""
        if self.model_info_provider is not None:
            return self.model_info_provider()
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
        versions = ModelVersions(
            info.model_name, info.model_version, info.tokenizer_name, info.tokenizer_version, info.device
        )
        self._versions = (now, versions)
        return versions
