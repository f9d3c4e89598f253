"""What every leader-elected controller process shares: settings, election, loops and a small HTTP app.

Every replica serves `/health` (process alive), `/ready` (its election reaches etcd) and `/status`
(leadership and loop stats). Only the leader runs the loops; they are cancelled when leadership is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import aetcd
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lcm_core.cml import CmlClient
from lcm_core.control_plane_client import ControlPlaneClient
from lcm_core.errors import LcmError
from lcm_core.leader import ElectionConfig, LeaderElection, Leadership, LoopStats
from lcm_core.leader.fence import LeaseFence
from lcm_core.logging import configure_logging
from lcm_core.settings import EtcdSettings, LcmSettings
from lcm_core.telemetry import configure_telemetry

logger = logging.getLogger(__name__)


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ControllerSettings(LcmSettings, EtcdSettings):
    """Settings shared by the controllers (each adds its own, with its own env names)."""

    control_plane_api_url: str = Field(
        default="http://localhost:8030", validation_alias="CONTROL_PLANE_API_URL"
    )
    """Base URL of the control-plane API."""

    control_plane_api_key: SecretStr = Field(
        default=SecretStr("change-me"), validation_alias="CONTROL_PLANE_API_KEY"
    )
    """Key sent as `X-API-Key` to the internal endpoints."""

    identity: str = Field(default_factory=default_identity, validation_alias="CONTROLLER_IDENTITY")
    """This replica's name in the election (default: hostname-pid)."""

    host: str = Field(default="127.0.0.1", validation_alias="CONTROLLER_HOST")
    """Interface of the health/status HTTP server."""

    status_report_interval_seconds: float = Field(
        default=15.0, ge=0, validation_alias="CONTROLLER_STATUS_REPORT_INTERVAL"
    )
    """How often each replica reports its leadership and loop stats to the CPA (0: never)."""


class CmlAccessSettings(BaseSettings):
    """How controllers reach the CML API of every worker (both controllers talk to CML)."""

    model_config = SettingsConfigDict(extra="ignore", env_ignore_empty=True)

    cml_url_template: str = Field(default="https://{ip_address}", validation_alias="CML_WORKER_URL_TEMPLATE")
    """Base URL of a worker's CML API; `{ip_address}` (private, else public IP) and `{instance_id}` are filled."""

    cml_username: str = Field(default="admin", validation_alias="CML_WORKER_API_USERNAME")
    """CML API user on every worker."""

    cml_password: SecretStr = Field(default=SecretStr("change-me"), validation_alias="CML_WORKER_API_PASSWORD")
    """CML API password on every worker."""

    cml_verify_tls: str = Field(default="true", validation_alias="CML_WORKER_VERIFY_TLS")
    """`true`, `false` (CML ships self-signed certificates) or the path of a CA bundle."""

    cml_max_concurrency: int = Field(default=100, ge=1, le=2000, validation_alias="CML_MAX_CONCURRENCY")
    """CML API calls in flight across the fleet."""

    cml_timeout_seconds: float = Field(default=15.0, gt=0, validation_alias="CML_TIMEOUT")
    """Per-request timeout of CML API calls."""

    def cml_tls(self) -> tuple[bool, str | None]:
        """`CML_WORKER_VERIFY_TLS`: (verify, CA bundle path or None)."""
        lowered = self.cml_verify_tls.strip().lower()
        if lowered in ("false", "0", "no", "off"):
            return False, None
        if lowered in ("true", "1", "yes", "on", ""):
            return True, None
        return True, self.cml_verify_tls

    def cml_client(self) -> CmlClient:
        """The process's one CML client for the whole fleet, configured from these settings."""
        verify, ca_file = self.cml_tls()
        return CmlClient(self.cml_username, self.cml_password.get_secret_value(), verify_tls=verify,
                         ca_file=ca_file, timeout=self.cml_timeout_seconds, max_in_flight=self.cml_max_concurrency)


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

        app = FastAPI(title=f"LCM {self.service}", lifespan=lifespan, docs_url=None, redoc_url=None)

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
    """Console entry point body shared by the controllers: logging, tracing, then serve until stopped."""
    configure_logging(service, settings.log_level, settings.log_format)
    configure_telemetry(service, settings.otel_exporter_otlp_endpoint)
    uvicorn.run(host.create_app(), host=settings.host, port=port, log_config=None, access_log=False)
