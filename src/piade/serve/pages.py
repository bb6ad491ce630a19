"""The server's pages and what its OpenAPI description says about request bodies.

``/`` is one self-contained HTML file (``page.html``: no CDN, no web fonts); ``/docs`` is Swagger UI
served from the fastapi-swagger package's copy of its files. Both work without a network.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

_BINARY = {"type": "string", "format": "binary"}
ONE_IMAGE = {  # what the endpoints read themselves (the body is not parsed by FastAPI)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": _BINARY}, "required": ["file"]}
            },
            "image/*": {"schema": _BINARY},
        },
    }
}
IMAGES = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": _BINARY}},
                    "required": ["files"],
                }
            }
        },
    }
}


def add_pages(app: FastAPI) -> None:
    """``/`` (the page, one self-contained HTML file) and ``/docs`` (Swagger UI from the
    fastapi-swagger package's copy of its files, so it works without a network)."""
    swagger = resources.files("fastapi_swagger") / "resources"
    page = resources.files("piade.serve").joinpath("page.html").read_text(encoding="utf-8")
    app.mount("/static/swagger", StaticFiles(directory=str(swagger)), name="swagger")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="piade API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
