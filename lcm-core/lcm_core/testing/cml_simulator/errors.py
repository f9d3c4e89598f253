"""CML's error body (`{"code", "description"}`) for every 4xx/5xx the simulator answers.

Clients (virl2-client, the LCM client) read `description`; FastAPI's own `{"detail": ...}` bodies and
its 422 validation status would make the simulator look unlike a controller, so they are rewritten.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

M = TypeVar("M", bound=BaseModel)


class CmlError(Exception):
    """An error answer of the simulated controller."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def error_response(status: int, description: str) -> JSONResponse:
    return JSONResponse({"code": status, "description": description}, status_code=status)


def not_found(kind: str, element_id: str) -> CmlError:
    """The 404 of a missing element; `Lab not found: <id>` is what virl2-client looks for."""
    return CmlError(404, f"{kind} not found: {element_id}")


async def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400 like CML's for an unparsable one."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CmlError(400, f"Request body is not valid JSON: {exc}") from None


def validate(model: type[M], data: Any) -> M:
    """Validate a body against a request schema; violations become a 400 (CML never answers 422)."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise CmlError(400, _describe(exc.errors())) from None


def _describe(errors: Any) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def on_cml_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CmlError)
        return error_response(exc.status, exc.description)

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, _describe(exc.errors()))

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(exc.status_code, str(exc.detail))

    app.add_exception_handler(CmlError, on_cml_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
