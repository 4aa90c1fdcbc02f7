"""Wiring: the FastAPI app of the /v1 API. The lifespan opens (and closes) the gRPC channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kronos_bridge.errors import HttpError, error_response
from kronos_bridge.middleware import BridgeMiddleware, info_of
from kronos_bridge.routes import docs, health, index, models, predict
from kronos_bridge.routes import metrics as metrics_route
from kronos_bridge.routes.responses import SECURITY_SCHEMES
from kronos_bridge.schemas import BatchRequestBody, PredictRequestBody
from kronos_bridge.state import BridgeState
from kronos_bridge.upstream import ModelInfoProvider, Upstream
from kronos_server.observability.metrics import Metrics
from kronos_server.settings import Settings, SettingsError

TITLE = "Kronos Serve REST API"
VERSION = "v1"
# the bridge forwards what it is given; the gRPC service enforces the size limit
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
REQUEST_MODELS = (PredictRequestBody, BatchRequestBody)


def bridge_credentials(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The standalone bridge's own metadata for GetModelInfo (readyz versions), if configured."""
    if settings.bridge_container is None:
        return ()
    md = [("x-container-name", settings.bridge_container)]
    path = settings.bridge_key_file
    if path is not None:
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"KRONOS_BRIDGE_KEY_FILE: cannot read {path}: {exc.strerror or exc}"
            ) from None
        md.append(("authorization", f"Bearer {key}"))
    return tuple(md)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request bodies, which the routes parse themselves, and the
    security schemes the routes' ``security`` requirements name."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = doc.setdefault("components", {})
        components["securitySchemes"] = SECURITY_SCHEMES
        schemas = components.setdefault("schemas", {})
        for model in REQUEST_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = doc
    return app.openapi_schema


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """404, 405 and the like, in the one error body."""
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    http = HttpError(exc.status_code, error, str(exc.detail), "invalid", headers=dict(exc.headers or {}))
    return error_response(http, info_of(request).request_id)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    where = ".".join(str(p) for p in problems[0]["loc"]) if problems else "request"
    http = HttpError(422, "invalid_argument", f"{where}: {problems[0]['msg'] if problems else ''}", "invalid")
    http.details["field"] = where
    return error_response(http, info_of(request).request_id)


def create_app(
    settings: Settings,
    *,
    grpc_target: str | None = None,
    channel: grpc.aio.Channel | None = None,
    metrics: Metrics | None = None,
    model_info_provider: ModelInfoProvider | None = None,
    bridge_token: str | None = None,
) -> FastAPI:
    """The /v1 app over the gRPC service at ``grpc_target`` (or over ``channel``, not closed here).

    In-process (``kronos-serve serve``): the server's ``metrics``, its ``bridge_token`` and a
    ``model_info_provider`` reading the loaded model. Standalone: ``grpc_target`` alone; model
    versions then come from GetModelInfo with the KRONOS_BRIDGE_* credentials, if set.
    """
    if (grpc_target is None) == (channel is None):
        raise ValueError("give grpc_target or channel, not both")
    state = BridgeState(settings, metrics or Metrics())
    credentials = bridge_credentials(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = channel is None
        ch = grpc.aio.insecure_channel(grpc_target or "", options=CHANNEL_OPTIONS) if own else channel
        assert ch is not None
        state.upstream = Upstream(
            ch, bridge_token=bridge_token, model_info_provider=model_info_provider, credentials=credentials
        )
        try:
            yield
        finally:
            state.upstream = None
            if own:
                await ch.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Forecasts of OHLCV candlesticks by the Kronos model, over the gRPC service "
        "kronos.v1.KronosPredictor. Send `X-Container-Name` and `Authorization: Bearer <key>` "
        "(the Authorize button here).",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # routes/docs.py: the same page without a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.bridge = state
    for module in (index, predict, models, health, metrics_route):
        app.include_router(module.router)
    docs.mount(app)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BridgeMiddleware, metrics=state.metrics, max_body_bytes=settings.max_request_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def start_draining(app: FastAPI) -> None:
    """From now on readyz answers 503 (called first on SIGTERM)."""
    state: BridgeState = app.state.bridge
    state.draining = True
