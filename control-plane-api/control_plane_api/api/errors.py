"""The one place where LCM's typed errors become HTTP answers (404, 409, 422, 429, 503)."""

from __future__ import annotations

import logging
import math
from typing import Any

from bson.errors import InvalidDocument
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def not_valid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_details(exc.errors()[:50])}, status_code=422)

    @app.exception_handler(LcmError)
    async def lcm_error(_request: Request, exc: LcmError) -> JSONResponse:
        code = status_for(exc)
        if code == 500:
            logger.error("unmapped LCM error: %s", exc.message)
        headers = None
        if isinstance(exc, TooManyRequestsError):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
        return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=code, headers=headers)

    @app.exception_handler(InvalidDocument)
    async def not_storable(_request: Request, exc: InvalidDocument) -> JSONResponse:
        # Input validation should have caught it; refusing the request is still right.
        return JSONResponse({"detail": f"a value cannot be stored: {str(exc)[:200]}", "code": "invalid"},
                            status_code=422)

    @app.exception_handler(PyMongoError)
    async def mongo_down(_request: Request, exc: PyMongoError) -> JSONResponse:
        # Connection failures and timeouts: the database is unavailable, not the request wrong.
        logger.warning("MongoDB error: %s", type(exc).__name__)
        return JSONResponse({"detail": "the database is unavailable, retry later", "code": "unavailable"},
                            status_code=503, headers={"Retry-After": "5"})
