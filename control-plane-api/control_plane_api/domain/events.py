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


# Event types (docs/events.md says what each carries).
WORKER_CREATED = "worker.created"
WORKER_IMPORTED = "worker.imported"
WORKER_STATUS_UPDATED = "worker.status.updated"
WORKER_METRICS_UPDATED = "worker.metrics.updated"
WORKER_LABS_UPDATED = "worker.labs.updated"
WORKER_TERMINATED = "worker.terminated"
WORKER_SNAPSHOT = "worker.snapshot"
WORKER_HEALTH_CHANGED = "worker.health.changed"
WORKER_ALERT_RAISED = "worker.alert.raised"
WORKER_ALERT_CLEARED = "worker.alert.cleared"
WORKER_HEALTH_ALERT = "worker.health.alert"
WORKER_HEALTH_RECOVERED = "worker.health.recovered"
WORKER_PAUSED = "worker.paused"
WORKER_RESUMED = "worker.resumed"
WORKER_DESIRED_STATUS_CHANGED = "worker.desired_status.changed"
WORKER_IDLE_DETECTION_TOGGLED = "worker.idle_detection.toggled"
WORKER_REFRESH_REQUESTED = "worker.refresh.requested"
WORKER_LICENSE_REQUESTED = "worker.license.requested"
WORKER_LICENSE_UPDATED = "worker.license.updated"
WORKER_LAB_TRACK_CHANGED = "worker.lab_track.changed"
WORKER_CAPACITY_UPDATED = "worker.capacity.updated"
WORKER_DRAINING = "worker.draining"
WORKER_DRAINED = "worker.drained"
WORKER_DRAIN_CANCELLED = "worker.drain.cancelled"
WORKER_INSTANCE_CONFLICT = "worker.instance.conflict"
WORKER_POOL_CHANGED = "worker.pool.changed"
WORKER_LAUNCH_FAILED = "worker.launch.failed"
POOL_CREATED = "pool.created"
POOL_UPDATED = "pool.updated"
POOL_SCALED = "pool.scaled"
POOL_DECISION_RECORDED = "pool.decision.recorded"
POOL_PHASE_CHANGED = "pool.phase.changed"
POOL_CAPACITY_UPDATED = "pool.capacity.updated"
POOL_DRAINING = "pool.draining"
POOL_DRAIN_CANCELLED = "pool.drain.cancelled"
POOL_DELETING = "pool.deleting"
POOL_TERMINATED = "pool.terminated"
POOL_WORKER_ADOPTED = "pool.worker.adopted"
POOL_WORKER_RELEASED = "pool.worker.released"
LABLET_DEFINITION_CREATED = "lablet.definition.created"
LABLET_DEFINITION_UPDATED = "lablet.definition.updated"
LABLET_DEFINITION_ACTIVATED = "lablet.definition.activated"
LABLET_DEFINITION_DEACTIVATED = "lablet.definition.deactivated"
LABLET_DEFINITION_REVIEW_FLAGGED = "lablet.definition.review_flagged"
LABLET_DEFINITION_OBSERVATIONS_APPLIED = "lablet.definition.observations_applied"
LABLET_SESSION_CREATED = "lablet.session.created"
LABLET_SESSION_SCHEDULED = "lablet.session.scheduled"
LABLET_SESSION_SCHEDULING_FAILED = "lablet.session.scheduling_failed"
LABLET_SESSION_STATUS_CHANGED = "lablet.session.status.changed"
LABLET_SESSION_READY = "lablet.session.ready"
LABLET_SESSION_TERMINATE_REQUESTED = "lablet.session.terminate.requested"
LABLET_SESSION_OBSERVE_REQUESTED = "lablet.session.observe.requested"
LABLET_SESSION_RESOURCES_OBSERVED = "lablet.session.resources.observed"
LABLET_SESSION_PORT_DRIFT_DETECTED = "lablet.session.port_drift.detected"
TEMPLATE_CREATED = "template.created"
TEMPLATE_UPDATED = "template.updated"
TEMPLATE_DELETED = "template.deleted"
SETTINGS_UPDATED = "settings.updated"
CONTROLLER_STATUS = "controller.status"
HEARTBEAT = "heartbeat"
