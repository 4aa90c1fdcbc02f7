"""GET /v1/docs: Swagger UI from files shipped in a Python package, so it works offline.

FastAPI's own docs page loads Swagger UI from a CDN and is blank without internet. The
fastapi-offline distribution ships Swagger UI's dist files; they are served under
/v1/docs/static and the page names only those (and no online validator).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/v1/docs"
STATIC_URL = f"{DOCS_URL}/static"
# Swagger UI's default validator badge would fetch an image from an online validator
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

router = APIRouter()


def assets() -> Path:
    """The directory holding swagger-ui-bundle.js, swagger-ui.css and favicon.png."""
    return Path(str(files("fastapi_offline").joinpath("static")))


@router.get(DOCS_URL, include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    app = request.app
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=f"{app.title} - docs",
        swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


def mount(app: FastAPI) -> None:
    """The docs page and its static files."""
    app.mount(STATIC_URL, StaticFiles(directory=assets()), name="docs-static")
    app.include_router(router)
