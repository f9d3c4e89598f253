"""A worker's utilisation over time (the dashboard's Monitoring charts): one sample per metrics report.

Samples live outside the Worker aggregate and its latest telemetry, in their own bounded collection (pruned
by age), so that a metrics cycle over the fleet does not rewrite hours of history per worker.
No I/O here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from lcm_core.domain.workers import WorkerTelemetry


class MetricSample(BaseModel):
    """Derived utilisation at one collection time; `cpu_source` says whether CPU came from CML or CloudWatch
    (memory and disk only come from CML)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    worker_id: str
    at: datetime
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    cpu_source: str | None = None
    labs_count: int | None = None


def sample_of(telemetry: WorkerTelemetry, now: datetime) -> MetricSample | None:
    """The sample a metrics report left, or None when it carried no utilisation at all."""
    u = telemetry.utilisation
    if u.cpu_percent is None and u.memory_percent is None and u.disk_percent is None:
        return None
    return MetricSample(worker_id=telemetry.worker_id, at=telemetry.collected_at or now, cpu_percent=u.cpu_percent,
                        memory_percent=u.memory_percent, disk_percent=u.disk_percent, cpu_source=u.cpu_source,
                        labs_count=telemetry.labs_count)
