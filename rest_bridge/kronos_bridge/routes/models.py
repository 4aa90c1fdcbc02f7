"""GET /v1/models: GetModelInfo with the caller's credentials (auth and rate limits apply)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kronos.v1 import predictor_pb2 as pb
from kronos_bridge.routes.responses import CREDENTIALS, errors
from kronos_bridge.schemas import ModelsBody
from kronos_bridge.state import Bridge, Info
from kronos_bridge.translate import message_to_json

router = APIRouter(prefix="/v1", tags=["models"])


@router.get(
    "/models",
    response_model=None,
    responses={200: {"model": ModelsBody}, **errors(401, 403, 429, 503)},
    openapi_extra=CREDENTIALS,
)
async def models(request: Request, bridge: Bridge, info: Info) -> JSONResponse:
    """The model served: names, content-hash versions, dimensions, limits and defaults."""
    upstream = bridge.connected()
    md = upstream.metadata(info.request_id, request.headers)
    reply = await upstream.call(upstream.predictor.GetModelInfo, pb.GetModelInfoRequest(), md)
    return JSONResponse({"models": [message_to_json(reply)]})
