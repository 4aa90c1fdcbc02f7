"""Wiring: the FastAPI app of the /v1 API over a dataplane: the server's own (in-process) or a
remote one over a gRPC channel (standalone), which the lifespan opens and closes."""

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
from kronos_bridge.middleware import GateMiddleware, info_of
from kronos_bridge.plane import RestPlane
from kronos_bridge.remote import RemoteDataplane, channel_credentials, open_channel
from kronos_bridge.routes import backtest, docs, health, index, models, predict
from kronos_bridge.routes import metrics as metrics_route
from kronos_bridge.routes.responses import SECURITY_SCHEMES
from kronos_bridge.schemas import BacktestRequestBody, BatchRequestBody, PredictRequestBody
from kronos_bridge.state import BridgeState
from kronos_server.gate import Gate
from kronos_server.observability.metrics import Metrics
from kronos_server.settings import Settings, SettingsError

TITLE = "Kronos Serve REST API"
VERSION = "v1"
REQUEST_MODELS = (PredictRequestBody, BatchRequestBody, BacktestRequestBody)


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
    plane: RestPlane | None = None,
    gate: Gate | None = None,
    grpc_target: str | None = None,
    channel: grpc.aio.Channel | None = None,
) -> FastAPI:
    """The /v1 app.

    In-process (``kronos-serve serve``): the server's ``plane`` and ``gate`` (its metrics,
    authenticator and rate limits, shared with gRPC). Standalone: a remote dataplane over
    ``grpc_target`` (or over ``channel``, not closed here) and a gate of its own that checks
    sizes, assigns request ids and counts calls, leaving authentication and rate limits to
    the gRPC server; model versions for readyz come from GetModelInfo with the
    KRONOS_BRIDGE_* credentials, if set.
    """
    if (plane is None) == (grpc_target is None and channel is None):
        raise ValueError("give a plane, or a grpc_target or channel, not both")
    if grpc_target is not None and channel is not None:
        raise ValueError("give grpc_target or channel, not both")
    if gate is None:
        gate = Gate(
            Metrics(),
            authenticator=None,
            limiter=None,
            max_request_bytes=settings.max_request_bytes,
            max_batch_items=settings.max_batch_items,
        )
    state = BridgeState(settings, gate.metrics, gate)
    credentials = bridge_credentials(settings) if plane is None else ()
    tls = channel_credentials(settings) if grpc_target is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if plane is not None:
            state.plane = plane
            yield
            state.plane = None
            return
        ch = channel if channel is not None else open_channel(grpc_target or "", tls)
        remote = RemoteDataplane(ch, credentials=credentials)
        state.plane = remote
        try:
            yield
        finally:
            state.plane = None
            if channel is None:
                await remote.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description="Forecasts of OHLCV candlesticks by the Kronos model, the same service as the "
        "gRPC API kronos.v1.KronosPredictor. Send `X-Container-Name` and `Authorization: Bearer <key>` "
        "(the Authorize button here).",
        openapi_url="/v1/openapi.json",
        docs_url=None,  # routes/docs.py: the same page without a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.bridge = state
    for module in (index, predict, backtest, models, health, metrics_route):
        app.include_router(module.router)
    docs.mount(app)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    direct = {
        (method, route.path): route.endpoint
        for route in (*predict.router.routes, *backtest.router.routes)
        if isinstance(route, predict.DirectRoute)
        for method in route.methods or ()
    }
    app.add_middleware(GateMiddleware, gate=gate, direct=direct)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def start_draining(app: FastAPI) -> None:
    """From now on readyz answers 503 (called first on SIGTERM)."""
    state: BridgeState = app.state.bridge
    state.draining = True
