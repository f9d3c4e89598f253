"""The one place where LCM's typed errors become HTTP answers (404, 409, 422, 429, 503)."""

from __future__ import annotations

import logging
import math

from bson.errors import InvalidDocument
from fastapi import FastAPI, Request
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


def install_error_handlers(app: FastAPI) -> None:
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
