"""SystemSettings (a singleton aggregate) and WorkerTemplate (docs/architecture.md, 'Domain model')."""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from control_plane_api.domain.worker_state import Resources
from lcm_core.domain.types import AwsRegion, Count, Flag, InstanceType, Instant, Integer, Label, Number

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DiscoverySettings(_Strict):
    enabled: Flag = True
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1, max_length=30)
    ami_name_pattern: Annotated[Label, Field(min_length=1, max_length=128)] = "CML-*"
    scan_interval_seconds: Number = Field(default=300, ge=5, le=86400)

    @field_validator("regions")
    @classmethod
    def _valid_regions(cls, regions: list[str]) -> list[str]:
        bad = [r for r in regions if not _REGION.match(r)]
        if bad:
            raise ValueError(f"not AWS region names: {', '.join(bad)}")
        return list(dict.fromkeys(regions))

    @field_validator("ami_name_pattern")
    @classmethod
    def _valid_pattern(cls, pattern: str) -> str:
        fnmatch.translate(pattern)  # glob syntax as EC2 name filters use it (*, ?)
        return pattern


class MonitoringSettings(_Strict):
    metrics_poll_interval_seconds: Number = Field(default=60, ge=5, le=3600)
    cpu_threshold: Number = Field(default=90.0, gt=0, le=100)
    memory_threshold: Number = Field(default=90.0, gt=0, le=100)
    disk_threshold: Number = Field(default=90.0, gt=0, le=100)
    notification_webhooks: list[HttpUrl] = Field(default_factory=list, max_length=10)


class IdleSettings(_Strict):
    enabled: Flag = True
    threshold_minutes: Number = Field(default=30, ge=0.05, le=10080)
    """Idle this long (no running nodes, no CML activity) → eligible for auto-pause; fractions allowed."""
    snooze_minutes_after_resume: Integer = Field(default=60, ge=0, le=10080)
    auto_pause: Flag = True


class SystemSettings(_Strict):
    """The singleton. Controllers read it periodically with env-var fallback."""

    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    idle: IdleSettings = Field(default_factory=IdleSettings)
    customized: list[Literal["discovery", "monitoring", "idle"]] = Field(default_factory=list)
    """Sections an operator has set; the others are defaults, and controllers use their environment instead."""
    version: Count = 0
    updated_at: Instant | None = None
    updated_by: Label | None = None


class RegionPlacement(_Strict):
    subnet_id: str | None = Field(default=None, pattern=r"^subnet-[0-9a-f]{8,17}$")
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        default_factory=list, max_length=16)
    iam_instance_profile: Label | None = None
    key_name: Label | None = Field(default=None, max_length=255)


class EbsSettings(_Strict):
    volume_type: Literal["io1", "gp3"] = "gp3"
    size_gb: Integer = Field(default=500, ge=20, le=16384)
    iops: Integer | None = Field(default=None, ge=100, le=64000)


class CmlNodeLimits(_Strict):
    max_nodes_unlicensed: Integer = Field(default=5, ge=0, le=100_000)
    max_nodes_licensed: Integer = Field(default=200, ge=0, le=100_000)


class WorkerTemplate(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    instance_type: InstanceType = "m5zn.metal"
    ami_name_pattern: Annotated[Label, Field(min_length=1, max_length=128)] = "CML-*"
    regions: dict[AwsRegion, RegionPlacement] = Field(default_factory=dict, max_length=30)
    ebs: EbsSettings = Field(default_factory=EbsSettings)
    capacity: Resources = Field(default_factory=Resources)
    cost_per_hour_usd: Number | None = Field(default=None, ge=0, le=10_000)
    cml: CmlNodeLimits = Field(default_factory=CmlNodeLimits)
    enabled: Flag = True
    version: Count = 0
    created_at: Instant | None = None
    updated_at: Instant | None = None
