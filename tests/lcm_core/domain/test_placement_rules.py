"""The one rule deciding which workers may take a new lablet session (scheduler and reservation alike)."""

from __future__ import annotations

import pytest

from lcm_core.domain.enums import HealthStatus, ServiceStatus, WorkerStatus
from lcm_core.domain.placement_rules import placement_refusal


@pytest.mark.parametrize(("status", "service", "health", "why"), [
    ("running", "available", "healthy", None),
    ("running", "available", "degraded", None),
    ("running", "available", "critical", "health critical"),
    ("running", "available", "unreachable", "health unreachable"),
    ("running", "available", "unknown", "health unknown"),
    ("draining", "available", "healthy", "draining"),
    ("stopped", "available", "healthy", "not running"),
    ("starting", "starting", "unknown", "not running"),
    ("running", "starting", "healthy", "CML unavailable"),
    ("running", "unavailable", "unreachable", "CML unavailable"),
])
def test_placement_refusal(status: str, service: str, health: str, why: str | None) -> None:
    assert placement_refusal(status=status, service_status=service, health_status=health) == why


@pytest.mark.parametrize("health", list(HealthStatus))
def test_enums_and_their_wire_strings_are_judged_alike(health: HealthStatus) -> None:
    as_enum = placement_refusal(status=WorkerStatus.RUNNING, service_status=ServiceStatus.AVAILABLE,
                                health_status=health)
    assert as_enum == placement_refusal(status="running", service_status="available", health_status=health.value)
    assert (as_enum is None) == (health in (HealthStatus.HEALTHY, HealthStatus.DEGRADED))
