"""GET / and GET /v1: a small index (name, versions, links), so the bare address is not a 404."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from kronos.v1 import predictor_pb2 as pb
from kronos_bridge.schemas import IndexBody, IndexLinks

router = APIRouter(tags=["operations"])
NAME = "Kronos Serve"
API_VERSION = "v1"
GRPC_SERVICE = pb.DESCRIPTOR.services_by_name["KronosPredictor"].full_name
_LINKS = {
    "docs": "/v1/docs",
    "openapi": "/v1/openapi.json",
    "healthz": "/v1/healthz",
    "readyz": "/v1/readyz",
    "metrics": "/v1/metrics",
    "models": "/v1/models",
}


@cache
def package_version() -> str:
    try:
        return version("kronos-serve")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _index(request: Request) -> IndexBody:
    root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy that strips a prefix
    return IndexBody(
        name=NAME,
        version=package_version(),
        api_version=API_VERSION,
        grpc_service=GRPC_SERVICE,
        links=IndexLinks(**{key: root + path for key, path in _LINKS.items()}),
    )


@router.get("/", response_model=IndexBody, summary="Index")
async def root(request: Request) -> IndexBody:
    """What answers here and where to go next. No credentials needed."""
    return _index(request)


@router.get("/v1", response_model=IndexBody, summary="Index of /v1")
async def v1(request: Request) -> IndexBody:
    """The same index under the API's prefix."""
    return _index(request)
