"""Liveness and readiness: the only routes reachable without credentials (besides login)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="Liveness: the process serves HTTP")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: MongoDB, Redis and etcd answer", response_model=None)
async def ready(request: Request) -> JSONResponse:
    checks = await request.app.state.infrastructure.check()
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
    )
