"""Which workers may take a new lablet session: one rule for the scheduler (lablet-controller) and for the
reservation (control plane). No I/O.

The scheduler decides from a worker list read a moment earlier; the control plane reserves against the
worker as stored when the reservation commits. Both apply this rule, so a worker that turned unhealthy or
started draining between the two is refused at reservation time instead of receiving a session it cannot
serve.
"""

from __future__ import annotations

from lcm_core.domain.enums import HealthStatus, ServiceStatus, WorkerStatus

#: Health levels a worker may take new sessions in. Degraded (a threshold crossed, one compute unhealthy)
#: still runs labs; critical, unreachable and unknown (never measured since it started) do not.
PLACEABLE_HEALTH = frozenset({HealthStatus.HEALTHY, HealthStatus.DEGRADED})


def placement_refusal(*, status: str, service_status: str, health_status: str) -> str | None:
    """Why a worker in this state may not take a new session ("draining", "not running", "CML unavailable",
    "health unreachable", ...), or None when it may. Plain strings are accepted: the lablet-controller reads
    the values from JSON."""
    if status == WorkerStatus.DRAINING:
        return "draining"
    if status != WorkerStatus.RUNNING:
        return "not running"
    if service_status != ServiceStatus.AVAILABLE:
        return "CML unavailable"
    if health_status not in PLACEABLE_HEALTH:
        return f"health {health_status}"
    return None
