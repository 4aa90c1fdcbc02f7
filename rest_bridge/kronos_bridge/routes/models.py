"""GET /v1/models: the model served, as the ModelInfo message (auth and rate limits apply)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kronos_bridge.routes.responses import CREDENTIALS, errors
from kronos_bridge.schemas import ModelsBody
from kronos_bridge.state import Bridge, Info
from kronos_bridge.translate import message_to_json
from kronos_server.rpc.convert import model_info_to_pb

router = APIRouter(prefix="/v1", tags=["models"])


@router.get(
    "/models",
    response_model=None,
    responses={200: {"model": ModelsBody}, **errors(401, 403, 429, 503)},
    openapi_extra=CREDENTIALS,
)
async def models(bridge: Bridge, info: Info) -> JSONResponse:
    """The model served: names, content-hash versions, dimensions, limits and defaults."""
    plane = bridge.connected()
    with bridge.gate.admitted(info.call):
        model = await plane.model_info()
    limit = model.max_request_bytes or bridge.settings.max_request_bytes
    return JSONResponse({"models": [message_to_json(model_info_to_pb(model, limit))]})
