"""What every leader-elected controller process shares: election, loops and a small HTTP app (their settings:
`lcm_core.controller_settings`).

Every replica serves `/health` (process alive), `/ready` (its election reaches etcd) and `/status`
(leadership and loop stats). Only the leader runs the loops; they are cancelled when leadership is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import aetcd
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.controller_settings import ControllerSettings
from lcm_core.errors import LcmError
from lcm_core.leader import ElectionConfig, LeaderElection, Leadership, LoopStats
from lcm_core.leader.fence import LeaseFence
from lcm_core.logging import configure_logging
from lcm_core.telemetry import exported_traces

logger = logging.getLogger(__name__)


class Loop(Protocol):
    """A controller loop (PeriodicLoop or ReconcileLoop)."""

    name: str
    stats: LoopStats

    async def run(self) -> None: ...


class ControllerHost:
    """Runs the election and, while leading, the loops; serves health and status."""

    def __init__(
        self,
        service: str,
        settings: ControllerSettings,
        lease_ttl_seconds: int,
        loops: Sequence[Loop] = (),
    ) -> None:
        self.service = service
        self.settings = settings
        self.loops = list(loops)
        self.started_at = datetime.now(UTC)
        self.election = LeaderElection(
            ElectionConfig(
                service=service,
                identity=settings.identity,
                ttl_seconds=lease_ttl_seconds,
                prefix=settings.etcd_prefix,
                call_timeout_seconds=settings.etcd_timeout_seconds,
            ),
            client_factory=lambda: aetcd.Client(
                host=settings.etcd_host, port=settings.etcd_port, timeout=int(settings.etcd_timeout_seconds)
            ),
            work=self._lead,
        )
        self.fence = LeaseFence(self.election.lease_remaining, self.election.action_margin_seconds)
        """Checked immediately before every EC2 or CML call that changes something (`lcm_core.leader.fence`)."""
        self.control_plane = ControlPlaneClient(
            settings.control_plane_api_url,
            settings.control_plane_api_key.get_secret_value(),
            epoch_provider=lambda: self.election.epoch,
        )
        """The internal-API client of this replica; mutating calls carry the current leader epoch."""

    async def _report_status(self) -> None:
        """Every replica reports (followers too): `GET /api/system/controllers` shows them all. A report is
        sent every interval and at once when leadership changes; a failed report is logged, never fatal."""
        interval = self.settings.status_report_interval_seconds
        last_sent, last_leading = 0.0, None
        while True:
            leading = self.election.is_leader
            now = time.monotonic()
            if leading != last_leading or now - last_sent >= interval:
                try:
                    await self.control_plane.report_controller_status(self.status())
                    last_sent, last_leading = now, leading
                except LcmError as exc:
                    logger.warning("status report to the control plane failed: %s", exc)
                    last_sent = now
            await asyncio.sleep(min(1.0, interval))

    async def _lead(self, leadership: Leadership) -> None:
        """Leader work: every loop at once; any loop that dies makes the leader step down."""
        if not self.loops:
            await leadership.lost.wait()
            return
        async with asyncio.TaskGroup() as group:
            for loop in self.loops:
                group.create_task(loop.run(), name=f"{self.service}-{loop.name}")

    def status(self) -> dict[str, Any]:
        election = self.election
        return {
            "service": self.service,
            "identity": self.settings.identity,
            "is_leader": election.is_leader,
            "epoch": election.epoch,
            "terms": election.terms,
            "fenced_actions": self.fence.refused,
            "report_interval_seconds": self.settings.status_report_interval_seconds,
            "etcd_reachable": election.etcd_reachable,
            "last_error": election.last_error,
            "started_at": self.started_at.isoformat(),
            "loops": [loop.stats.to_dict() for loop in self.loops],
        }

    def create_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            tasks = [asyncio.create_task(self.election.run(), name=f"{self.service}-election")]
            if self.settings.status_report_interval_seconds > 0:
                tasks.append(asyncio.create_task(self._report_status(), name=f"{self.service}-status-report"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.control_plane.aclose()

        # FastAPI's own OpenTelemetry (0.165+) stays off: a span per health probe would bury the units of work.
        app = FastAPI(title=f"LCM {self.service}", lifespan=lifespan, docs_url=None, redoc_url=None,
                      telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False})

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/ready", response_model=None)
        async def ready() -> JSONResponse:
            ok = self.election.etcd_reachable
            return JSONResponse(
                {"status": "ready" if ok else "not_ready", "is_leader": self.election.is_leader},
                status_code=200 if ok else 503,
            )

        @app.get("/status")
        async def status() -> dict[str, Any]:
            return self.status()

        return app


def run_controller(service: str, settings: ControllerSettings, host: ControllerHost, port: int) -> None:
    """Console entry point body shared by the controllers: logging, tracing, then serve until stopped (the last
    spans are flushed after)."""
    configure_logging(service, settings.log_level, settings.log_format)
    with exported_traces(service, settings.otel_exporter_otlp_endpoint,
                         traces_endpoint=settings.otel_exporter_otlp_traces_endpoint, instance_id=settings.identity):
        uvicorn.run(host.create_app(), host=settings.host, port=port, log_config=None, access_log=False)
