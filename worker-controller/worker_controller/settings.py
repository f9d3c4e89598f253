"""Settings of the worker-controller (one typed object, injected).

Discovery and metrics-polling values (`FleetDefaults`) are the *fallback*: each cycle re-reads SystemSettings
from the control plane and uses these for sections an operator never set, or when it cannot ask.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from lcm_core.controller_settings import CmlAccessSettings, ControllerSettings
from lcm_core.settings import FleetDefaults


class WorkerControllerSettings(ControllerSettings, CmlAccessSettings, FleetDefaults):
    """Everything the worker-controller reads from its environment."""

    port: int = Field(default=8031, ge=1, le=65535, validation_alias="WORKER_CONTROLLER_PORT")
    """Port of the health/status HTTP server."""

    leader_lease_ttl: int = Field(default=15, ge=3, le=300, validation_alias="WORKER_CONTROLLER_LEADER_LEASE_TTL")
    """Lease TTL of the leader election, in seconds (the leader renews every third of it)."""

    reconcile_interval_seconds: float = Field(
        default=30, ge=1, validation_alias="WORKER_CONTROLLER_RECONCILE_INTERVAL")
    """Periodic resync of every worker (etcd watches trigger reconciles in between)."""

    autoscaler_interval_seconds: float = Field(default=30, ge=1, validation_alias="WORKER_AUTOSCALER_INTERVAL")
    """Periodic evaluation of every pool (etcd watches on pools trigger evaluations in between)."""

    launch_failure_limit: int = Field(default=3, ge=1, le=1000, validation_alias="WORKER_LAUNCH_FAILURE_LIMIT")
    """Failed launches in a row after which a pool whose worker cannot be launched turns `failed` (and launches
    no more workers until that one is launched). The launch itself is retried with backoff all along: a
    shortage of metal capacity is often temporary."""

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

    deregister_timeout_minutes: float = Field(default=10, gt=0, validation_alias="WORKER_DEREGISTER_TIMEOUT_MINUTES")
    """How long a stop or terminate of a registered worker waits for CML to release its licence before the
    instance goes down anyway (the stranded licence is then reported on the worker)."""

    relicense_on_resume: bool = Field(default=True, validation_alias="WORKER_RELICENSE_ON_RESUME")
    """Register a worker again when it is started after LCM released its licence to stop it."""
