"""grpc.health.v1: liveness ("") and readiness (the KronosPredictor service name)."""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

from kronos_server.rpc.context import SERVICE

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()
        self.serving = False  # the readiness last reported (REST readyz follows it)

    async def live(self) -> None:
        await self.servicer.set("", SERVING)
        await self.servicer.set(SERVICE, NOT_SERVING)

    async def ready(self, ready: bool) -> None:
        self.serving = ready
        await self.servicer.set(SERVICE, SERVING if ready else NOT_SERVING)
