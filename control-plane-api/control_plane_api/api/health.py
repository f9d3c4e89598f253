"""Liveness and readiness: the only routes reachable without credentials (besides login)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

router = APIRouter(prefix="/api", tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
    """Each dependency (mongodb, redis, etcd): "ok", or why it did not answer."""


@router.get("/health", summary="Liveness: the process serves HTTP")
async def health() -> Liveness:
    return Liveness()


@router.get("/ready", summary="Readiness: MongoDB, Redis and etcd answer", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "A dependency does not answer"}})
async def ready(request: Request) -> JSONResponse:
    checks = await request.app.state.infrastructure.check()
    ok = all(value == "ok" for value in checks.values())
    answer = Readiness(status="ready" if ok else "not_ready", checks=checks)
    return JSONResponse(answer.model_dump(), status_code=200 if ok else 503)
