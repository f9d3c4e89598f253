"""The OpenAPI document and its interactive docs, for authenticated users only (viewer role or the API key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from control_plane_api.api.security import viewer_or_api_key

OPENAPI_URL = "/api/openapi.json"


def router(app: FastAPI) -> APIRouter:
    docs = APIRouter(include_in_schema=False)

    @docs.get(OPENAPI_URL)
    async def openapi(_caller: Annotated[str, Depends(viewer_or_api_key)]) -> dict[str, Any]:
        return app.openapi()

    @docs.get("/api/docs", response_class=HTMLResponse)
    async def swagger(_caller: Annotated[str, Depends(viewer_or_api_key)]) -> HTMLResponse:
        # The page fetches the document with the browser's session cookie (log in on the dashboard first).
        return get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{app.title} — API docs")

    return docs
