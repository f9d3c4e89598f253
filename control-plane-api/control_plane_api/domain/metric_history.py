"""A worker's utilisation over time (the dashboard's Monitoring charts): one sample per metrics report.

Samples live outside the Worker aggregate, in their own bounded collection (pruned by age), so that the
aggregate stays small and a metrics cycle over the fleet does not rewrite hours of history per worker.
No I/O here.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from control_plane_api.domain.worker import Worker


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


def sample_of(worker: Worker, now: datetime) -> MetricSample | None:
    """The sample a metrics report left on `worker`, or None when it carried no utilisation at all."""
    t = worker.telemetry
    if t.cpu_percent is None and t.memory_percent is None and t.disk_percent is None:
        return None
    return MetricSample(worker_id=worker.id, at=t.collected_at or now, cpu_percent=t.cpu_percent,
                        memory_percent=t.memory_percent, disk_percent=t.disk_percent, cpu_source=t.cpu_source,
                        labs_count=t.labs_count)
