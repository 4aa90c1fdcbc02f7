"""GET /v1/metrics: the process's whole registry (gRPC server and bridge) for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kronos_bridge.state import Bridge

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Prometheus text"}},
)
async def metrics(bridge: Bridge) -> Response:
    """Prometheus text exposition format."""
    return Response(generate_latest(bridge.metrics.registry), media_type=CONTENT_TYPE_LATEST)
