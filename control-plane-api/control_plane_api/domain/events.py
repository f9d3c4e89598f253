"""Domain events: what changed, emitted by aggregates and relayed to browsers over SSE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SOURCE = "control-plane-api"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DomainEvent:
    """One event. `subject_id` (a worker, session, definition id) lets SSE clients filter."""

    type: str
    data: dict[str, Any]
    subject_id: str | None = None
    time: datetime = field(default_factory=utcnow)
    source: str = SOURCE

    def envelope(self) -> dict[str, Any]:
        """The JSON object sent to browsers: `{type, time, source, data}`."""
        return {"type": self.type, "time": self.time.isoformat(), "source": self.source, "data": self.data}


# Event types (ARCHITECTURE §5).
WORKER_CREATED = "worker.created"
WORKER_IMPORTED = "worker.imported"
WORKER_STATUS_UPDATED = "worker.status.updated"
WORKER_METRICS_UPDATED = "worker.metrics.updated"
WORKER_LABS_UPDATED = "worker.labs.updated"
WORKER_TERMINATED = "worker.terminated"
WORKER_SNAPSHOT = "worker.snapshot"
WORKER_HEALTH_CHANGED = "worker.health.changed"
WORKER_ALERT_RAISED = "worker.alert.raised"
WORKER_PAUSED = "worker.paused"
WORKER_RESUMED = "worker.resumed"
WORKER_DESIRED_STATUS_CHANGED = "worker.desired_status.changed"
WORKER_IDLE_DETECTION_TOGGLED = "worker.idle_detection.toggled"
WORKER_REFRESH_REQUESTED = "worker.refresh.requested"
WORKER_LICENSE_REQUESTED = "worker.license.requested"
WORKER_LICENSE_UPDATED = "worker.license.updated"
TEMPLATE_CREATED = "template.created"
TEMPLATE_UPDATED = "template.updated"
TEMPLATE_DELETED = "template.deleted"
SETTINGS_UPDATED = "settings.updated"
CONTROLLER_STATUS = "controller.status"
HEARTBEAT = "heartbeat"
