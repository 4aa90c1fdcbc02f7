"""GET /v1/healthz (liveness, always cheap) and GET /v1/readyz (the model is ready)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from kronos_bridge.errors import HttpError
from kronos_bridge.routes.responses import errors
from kronos_bridge.schemas import HealthBody, ReadyBody
from kronos_bridge.state import Bridge

router = APIRouter(prefix="/v1", tags=["operations"])
RETRY_AFTER = {"Retry-After": "1"}


@router.get("/healthz", response_model=HealthBody)
async def healthz() -> HealthBody:
    """Liveness: the process answers. Touches nothing else."""
    return HealthBody(status="ok")


@router.get("/readyz", response_model=ReadyBody, response_model_exclude_none=True, responses=errors(503))
async def readyz(bridge: Bridge) -> ReadyBody:
    """Readiness: 503 until the model is loaded and warm and again while draining."""
    if bridge.draining:
        raise HttpError(
            503, "unavailable", "draining: shutting down", "unavailable", {"draining": True}, RETRY_AFTER
        )
    plane = bridge.connected()
    if not await plane.ready():
        raise HttpError(
            503,
            "unavailable",
            "not ready: the model is loading or the gRPC service is unreachable",
            "unavailable",
            {"model_loaded": False, "draining": False},
            RETRY_AFTER,
        )
    versions = await plane.versions()
    return ReadyBody(ready=True, model_loaded=True, **(asdict(versions) if versions else {}))
