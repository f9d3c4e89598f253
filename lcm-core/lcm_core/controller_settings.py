"""Settings every controller process shares (the control plane, the election, its health server) and how the
controllers reach CML (`CmlAccessSettings.cml_client` builds the CML client). Kept apart from the controllers'
host (`lcm_core.controller_host`: FastAPI, uvicorn, etcd) so that a use case may read its service's settings
without pulling those in."""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lcm_core.cml import CmlClient
from lcm_core.settings import EtcdSettings, LcmSettings


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
