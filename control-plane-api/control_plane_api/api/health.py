"""Liveness and readiness: the only routes reachable without credentials (besides login)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

router = APIRouter(prefix="/api", tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


#: What the CPA cannot serve without: every read and write is a MongoDB query. Without Redis (event log, SSO
#: sessions) or etcd (leader epochs) it serves on, degraded; failing readiness for them would take every
#: replica out of its Service at once and stop the whole API instead.
REQUIRED = ("mongodb",)

ReadinessStatus = Literal["ready", "degraded", "not_ready"]


class Readiness(BaseModel):
    status: ReadinessStatus
    """ready: every dependency answers; degraded: MongoDB answers, Redis or etcd does not (still 200, the
    replica keeps serving); not_ready: MongoDB does not answer (503, the replica leaves its Service)."""
    checks: dict[str, str]
    """Each dependency (mongodb, redis, etcd): "ok", or why it did not answer."""


@router.get("/health", summary="Liveness: the process serves HTTP")
async def health() -> Liveness:
    return Liveness()


@router.get("/ready", summary="Readiness: MongoDB answers (Redis and etcd reported, not required)",
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "MongoDB does not answer"}})
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, str] = await request.app.state.infrastructure.check()
    serving = all(checks.get(name) == "ok" for name in REQUIRED)
    status: ReadinessStatus
    if not serving:
        status = "not_ready"
    elif all(value == "ok" for value in checks.values()):
        status = "ready"
    else:
        status = "degraded"
    answer = Readiness(status=status, checks=checks)
    return JSONResponse(answer.model_dump(), status_code=200 if serving else 503)
