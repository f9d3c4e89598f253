"""The browser dashboard: a static single-page app at `/`, its own files at `/static/...` and the
browser libraries installed by `npm ci` at `/static/vendor/...` (served from this host: no CDN).

These routes are public and outside the OpenAPI document: they hold no data. Every piece of data the page
shows comes from the authenticated API with the session cookie. A strict Content-Security-Policy (scripts
and styles from this origin only, no inline code) limits what an injected string could ever do.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, PlainTextResponse, Response

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"
STATIC_DIR = DASHBOARD_DIR / "static"
NODE_MODULES = DASHBOARD_DIR / "node_modules"

#: Vendor files the page may load, by public name → path under node_modules (nothing else is served).
VENDOR_FILES = {
    "pico.min.css": "@picocss/pico/css/pico.min.css",
    "uplot.esm.js": "uplot/dist/uPlot.esm.js",
    "uplot.min.css": "uplot/dist/uPlot.min.css",
}

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Revalidate every time (ETag/Last-Modified make that cheap): a new release is never mixed with old files.
    "Cache-Control": "no-cache",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
          ".png": "image/png", ".ico": "image/x-icon"}

router = APIRouter(include_in_schema=False)


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                        headers=SECURITY_HEADERS)


@router.get("/")
async def index() -> FileResponse:
    return _file(STATIC_DIR / "index.html")


@router.get("/static/vendor/{name}", response_model=None)
async def vendor(name: str) -> Response:
    relative = VENDOR_FILES.get(name)
    if relative is None:
        raise HTTPException(404, "not found")
    path = NODE_MODULES / relative
    if not path.is_file():
        return PlainTextResponse(
            f"dashboard library {relative} is not installed: run `make setup` (npm ci in {DASHBOARD_DIR})",
            status_code=503, headers=SECURITY_HEADERS)
    return _file(path)


@router.get("/static/{path:path}")
async def static(path: str) -> FileResponse:
    root = STATIC_DIR.resolve()
    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix not in _TYPES:
        raise HTTPException(404, "not found")
    return _file(target)
