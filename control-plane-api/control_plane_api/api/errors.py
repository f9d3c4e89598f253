"""The one place where LCM's typed errors become HTTP answers (404, 409, 422, 429, 503).

Every `ConflictError` is a 409 with its message as `detail` and `conflict` as `code`: a stale version
(`VersionConflict`, which reaches a caller only once the use case's own retries are spent, or when the caller
named the version), a deposed or foreign controller leader (`FencedError`, "stale leader epoch ..."), a state
that does not allow the change, or a duplicate.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from bson.errors import InvalidDocument
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lcm_core.errors import (
    ConflictError,
    InvalidError,
    LcmError,
    NotFoundError,
    TooManyRequestsError,
    UnavailableError,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[LcmError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidError, 422),
    (TooManyRequestsError, 429),
    (UnavailableError, 503),
)


def status_for(error: LcmError) -> int:
    for kind, code in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return code
    return 500


#: How much of a rejected value a 422 repeats back: enough to recognise it, never the whole body.
ECHO_CHARS = 100


def _echo_text(value: str, limit: int = ECHO_CHARS) -> str:
    # A lone surrogate cannot be encoded as UTF-8; replaced, the rest of the answer stays readable.
    text = value if len(value) <= limit else value[:limit] + "..."
    return text.encode("utf-8", "replace").decode("utf-8")


def _echo(value: Any) -> Any:
    """A scalar as it can be sent back in JSON (finite, short, encodable); `None` for anything else."""
    if isinstance(value, bool) or value is None or (isinstance(value, int) and abs(value) < 2**63):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _echo_text(value)
    return None


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors in FastAPI's shape (`type`, `loc`, `msg`, `input`, `ctx`), made safe to encode:
    the input of a request may be NaN, a lone surrogate or ten megabytes, and its echo must not turn a
    422 into a 500 (or into ten megabytes again). Containers are not echoed, long strings are cut."""
    details = []
    for error in errors:
        item: dict[str, Any] = {
            "type": _echo_text(str(error.get("type", "invalid"))),
            "loc": [part if isinstance(part, int) else _echo_text(str(part)) for part in error.get("loc", ())],
            "msg": _echo_text(str(error.get("msg", "invalid value")), 500),
            "input": _echo(error.get("input")),
        }
        ctx = error.get("ctx")
        if isinstance(ctx, dict):
            item["ctx"] = {_echo_text(str(k)): _echo(v) if _echo(v) is not None else _echo_text(str(v))
                           for k, v in list(ctx.items())[:10]}
        details.append(item)
    return details


def refused(message: str, code: str = "invalid") -> JSONResponse:
    """A 422 for input a route or the domain refused, in the same shape as pydantic's: the document
    promises one shape per status, and clients read `detail` of a 422 as a list of errors."""
    item: dict[str, Any] = {"type": _echo_text(code), "loc": [], "msg": _echo_text(message, 500), "input": None}
    return JSONResponse({"detail": [item], "code": code}, status_code=422)


def allowed_methods(request: Request) -> set[str]:
    """The methods the API's document gives the request's path: of its most specific path when several match
    (`/workers/bulk-import` is that path, not `/workers/{worker_id}` with an odd id)."""
    patterns = getattr(request.app.state, "documented_methods", None)
    if patterns is None:
        patterns = []
        for path, operations in request.app.openapi().get("paths", {}).items():
            regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"
            patterns.append((path.count("{"), re.compile(regex), {method.upper() for method in operations}))
        patterns.sort(key=lambda entry: entry[0])
        request.app.state.documented_methods = patterns
    matches = [(params, methods) for params, pattern, methods in patterns if pattern.match(request.url.path)]
    return {method for params, methods in matches if params == matches[0][0] for method in methods}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def not_valid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_details(exc.errors()[:50])}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 422 and isinstance(exc.detail, str):
            return refused(exc.detail)
        if exc.status_code == 405:
            # The router names the methods of one route of the path only; a path served by several routes
            # (GET and POST of a collection) must list them all.
            methods = allowed_methods(request)
            if methods:
                exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
        return await http_exception_handler(request, exc)

    @app.exception_handler(LcmError)
    async def lcm_error(_request: Request, exc: LcmError) -> JSONResponse:
        code = status_for(exc)
        if code == 500:
            logger.error("unmapped LCM error: %s", exc.message)
        headers = None
        if isinstance(exc, TooManyRequestsError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
        if code == 422:
            return refused(exc.message, exc.code)
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=code, headers=headers)

    @app.exception_handler(InvalidDocument)
    async def not_storable(_request: Request, exc: InvalidDocument) -> JSONResponse:
        # Input validation should have caught it; refusing the request is still right.
        return refused(f"a value cannot be stored: {str(exc)[:200]}")

    @app.exception_handler(PyMongoError)
    async def mongo_down(_request: Request, exc: PyMongoError) -> JSONResponse:
        # Connection failures and timeouts: the database is unavailable, not the request wrong.
        logger.warning("MongoDB error: %s", type(exc).__name__)
        return JSONResponse({"detail": "the database is unavailable, retry later", "code": "unavailable"},
                            status_code=503, headers={"Retry-After": "5"})
