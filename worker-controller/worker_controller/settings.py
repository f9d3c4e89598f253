"""Settings of the worker-controller (one typed object, injected).

Discovery, monitoring and idle values here are the *fallback*: each cycle re-reads SystemSettings from the
control plane and uses these only when it cannot (seed 000, ADR-012).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from lcm_core.controller_host import CmlAccessSettings, ControllerSettings


class WorkerControllerSettings(ControllerSettings, CmlAccessSettings):
    """Everything the worker-controller reads from its environment."""

    port: int = Field(default=8031, ge=1, le=65535, validation_alias="WORKER_CONTROLLER_PORT")
    """Port of the health/status HTTP server."""

    leader_lease_ttl: int = Field(default=15, ge=3, le=300, validation_alias="WORKER_CONTROLLER_LEADER_LEASE_TTL")
    """Lease TTL of the leader election, in seconds (the leader renews every third of it)."""

    discovery_enabled: bool = Field(default=True, validation_alias="WORKER_DISCOVERY_ENABLED")
    """Run the discovery loop (fallback of `settings.discovery.enabled`)."""

    discovery_regions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["us-east-1"], validation_alias="WORKER_DISCOVERY_REGIONS")
    """Comma-separated AWS regions to scan (fallback of `settings.discovery.regions`)."""

    discovery_ami_name: str = Field(default="CML-*", min_length=1, validation_alias="WORKER_DISCOVERY_AMI_NAME")
    """AMI name glob of CML images (fallback of `settings.discovery.ami_name_pattern`)."""

    discovery_interval_seconds: float = Field(default=300, ge=1, validation_alias="WORKER_DISCOVERY_INTERVAL")
    """Seconds between discovery scans (fallback of `settings.discovery.scan_interval_seconds`)."""

    reconcile_interval_seconds: float = Field(
        default=30, ge=1, validation_alias="WORKER_CONTROLLER_RECONCILE_INTERVAL")
    """Periodic resync of every worker (etcd watches trigger reconciles in between)."""

    metrics_poll_interval_seconds: float = Field(default=60, ge=1, validation_alias="METRICS_POLL_INTERVAL")
    """Seconds between metrics cycles (fallback of `settings.monitoring.metrics_poll_interval_seconds`)."""

    idle_check_interval_seconds: float = Field(default=60, ge=1, validation_alias="IDLE_CHECK_INTERVAL")
    """Minimum seconds between two idle detections of one worker."""

    reconcile_concurrency: int = Field(default=20, ge=1, le=500, validation_alias="WORKER_RECONCILE_CONCURRENCY")
    """Workers reconciled at once."""

    aws_region: str = Field(default="us-east-1", validation_alias="AWS_REGION")
    """Default region of AWS clients (discovery regions override it per call)."""

    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    """Custom AWS endpoint (the local stack's moto); unset for real AWS."""

    aws_access_key_id: str | None = Field(default=None, validation_alias="AWS_ACCESS_KEY_ID")
    """Static AWS credentials; unset to use boto3's chain (instance profile, IRSA, SSO, shared config)."""

    aws_secret_access_key: SecretStr | None = Field(default=None, validation_alias="AWS_SECRET_ACCESS_KEY")
    """Secret of the static AWS credentials."""

    aws_session_token: SecretStr | None = Field(default=None, validation_alias="AWS_SESSION_TOKEN")
    """Session token of temporary static credentials (STS)."""

    aws_max_concurrency: int = Field(default=8, ge=1, le=64, validation_alias="AWS_MAX_CONCURRENCY")
    """Blocking boto3 calls in flight at once (a bounded thread pool)."""

    cml_license_token: SecretStr | None = Field(default=None, validation_alias="CML_LICENSE_TOKEN")
    """Smart Licensing token used when an operator asks to register a worker."""

    ec2_timeout_minutes: float = Field(default=10, gt=0, validation_alias="WORKER_EC2_TIMEOUT_MINUTES")
    """How long an EC2 transition (start, stop, provisioning) may take before the worker is failed."""

    cml_boot_timeout_minutes: float = Field(default=15, gt=0, validation_alias="WORKER_CML_BOOT_TIMEOUT_MINUTES")
    """How long CML may take to become ready after the instance runs."""

    @field_validator("discovery_regions", mode="before")
    @classmethod
    def _split_regions(cls, value: object) -> object:
        if isinstance(value, str):
            return [r.strip() for r in value.split(",") if r.strip()]
        return value
