"""The LabletDefinition aggregate (docs/lablets.md): a versioned CML topology and what one
session of it needs. No I/O.

`version` is the definition's content version, the number sessions pin; every change of the topology or the
requirements makes a new one (older versions are kept as snapshots by the repository). `revision` is the
optimistic-concurrency token of the stored document (bumped on every write, including status changes).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from control_plane_api.domain import events as ev
from control_plane_api.domain.events import DomainEvent
from control_plane_api.domain.fencing import FenceTokens
from control_plane_api.domain.worker_state import STATE_HISTORY_LIMIT, Model, StateChange
from lcm_core.domain.lablet_topology import TopologyError, derive_port_template, estimate_resources, parse_topology
from lcm_core.domain.lablets import LabletDefinitionStatus, PortSpec, ResourceRequirements
from lcm_core.errors import ConflictError, InvalidError, VersionConflict

D = LabletDefinitionStatus


class DefinitionContent(Model):
    """What an operator gives (and may change in a new version)."""

    lab_topology_yaml: str
    resource_requirements: ResourceRequirements | None = None
    lab_track: str | None = None
    license_affinity: list[str] = Field(default_factory=list)
    max_duration_minutes: int = 120
    description: str | None = None


class LabletDefinition(Model):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    name: str
    version: int = 1
    status: LabletDefinitionStatus = D.DRAFT
    lab_topology_yaml: str
    topology_title: str | None = None
    port_template: list[PortSpec] = Field(default_factory=list)
    resource_requirements: ResourceRequirements
    estimated_requirements: ResourceRequirements
    """The estimate from the topology (kept even when an operator declared other values)."""
    lab_track: str | None = None
    license_affinity: list[str] = Field(default_factory=list)
    max_duration_minutes: int = 120
    description: str | None = None
    observation_review: bool = False
    review_reason: str | None = None
    created_by: str | None = None
    state_history: list[StateChange] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    revision: int = 0
    fence: FenceTokens = Field(default_factory=dict)

    def _event(self, type_: str, **data: Any) -> DomainEvent:
        return DomainEvent(type=type_, subject_id=self.id, data={
            "definition_id": self.id, "name": self.name, "version": self.version, "status": self.status.value,
            **data})

    def _record(self, field: str, old: str | None, new: str, at: datetime, reason: str | None, by: str) -> None:
        self.state_history.append(StateChange(field=field, from_=old, to=new, at=at, reason=reason, by=by))
        del self.state_history[:-STATE_HISTORY_LIMIT]

    @staticmethod
    def derive(content: DefinitionContent) -> dict[str, Any]:
        """Everything a version is made of, from the operator's input: the topology parsed and checked, its
        port template and resource estimate. Pure and CPU-heavy for large topologies (the application runs it
        off the event loop and hands the result to `create` or `update`)."""
        try:
            topology = parse_topology(content.lab_topology_yaml)
            template = derive_port_template(topology)
        except TopologyError as exc:
            raise InvalidError(str(exc), field="lab_topology_yaml") from exc
        estimate = estimate_resources(topology)
        title = topology["lab"].get("title")
        return {
            "lab_topology_yaml": content.lab_topology_yaml, "port_template": template,
            "topology_title": title if isinstance(title, str) else None,
            "estimated_requirements": estimate,
            "resource_requirements": content.resource_requirements or estimate,
            "lab_track": content.lab_track, "license_affinity": list(content.license_affinity),
            "max_duration_minutes": content.max_duration_minutes, "description": content.description,
        }

    @classmethod
    def create(cls, name: str, content: DefinitionContent, now: datetime, by: str,
               derived: dict[str, Any] | None = None) -> tuple[LabletDefinition, list[DomainEvent]]:
        fields = derived if derived is not None else cls.derive(content)
        definition = cls(name=name, created_by=by, created_at=now, updated_at=now, **fields)
        definition._record("status", None, D.DRAFT.value, now, "created", by)
        return definition, [definition._event(ev.LABLET_DEFINITION_CREATED, **definition.brief())]

    def same_content(self, other: LabletDefinition) -> bool:
        """Whether `other` was made from the same operator input (the fields a version is made of)."""
        fields = ("lab_topology_yaml", "resource_requirements", "lab_track", "license_affinity",
                  "max_duration_minutes", "description")
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    def brief(self) -> dict[str, Any]:
        return {"lab_track": self.lab_track, "port_names": [p.name for p in self.port_template],
                "resource_requirements": self.resource_requirements.model_dump(),
                "observation_review": self.observation_review}

    def update(self, expected_version: int, content: DefinitionContent, now: datetime, by: str,
               derived: dict[str, Any] | None = None) -> list[DomainEvent]:
        """A new version with the given content (guarded by the version the operator read)."""
        if self.status is D.ARCHIVED:
            raise ConflictError(f"definition {self.id} is archived; it cannot change")
        if expected_version != self.version:
            raise VersionConflict(f"definition {self.id} is at version {self.version}, not {expected_version}; "
                                  "re-read and retry")
        derived = derived if derived is not None else self.derive(content)
        unchanged = all(getattr(self, k) == v for k, v in derived.items())
        if unchanged:
            return []
        for key, value in derived.items():
            setattr(self, key, value)
        self.version += 1
        self.observation_review, self.review_reason = False, None
        self._record("version", str(self.version - 1), str(self.version), now, "updated", by)
        return [self._event(ev.LABLET_DEFINITION_UPDATED, previous_version=self.version - 1, **self.brief())]

    def set_status(self, status: LabletDefinitionStatus, now: datetime, by: str,
                   reason: str | None = None) -> list[DomainEvent]:
        if status is self.status:
            return []
        if self.status is D.ARCHIVED:
            raise ConflictError(f"definition {self.id} is archived")
        old, self.status = self.status, status
        self._record("status", old.value, status.value, now, reason, by)
        kind = {D.ACTIVE: ev.LABLET_DEFINITION_ACTIVATED, D.INACTIVE: ev.LABLET_DEFINITION_DEACTIVATED}.get(
            status, ev.LABLET_DEFINITION_UPDATED)
        return [self._event(kind, previous_status=old.value, by=by)]

    def flag_for_review(self, version: int, reason: str, now: datetime) -> list[DomainEvent]:
        """Observed resources of a session of `version` differ significantly from the declared ones."""
        if version != self.version or (self.observation_review and self.review_reason == reason):
            return []
        self.observation_review, self.review_reason = True, reason
        self._record("observation_review", "false", "true", now, reason, "control-plane-api")
        return [self._event(ev.LABLET_DEFINITION_REVIEW_FLAGGED, reason=reason)]

    def apply_observations(self, expected_version: int, requirements: ResourceRequirements, now: datetime,
                           by: str) -> list[DomainEvent]:
        """An admin's revision from observed values: a new version with these requirements, flag cleared."""
        if expected_version != self.version:
            raise VersionConflict(f"definition {self.id} is at version {self.version}, not {expected_version}; "
                                  "re-read and retry")
        if self.status is D.ARCHIVED:
            raise ConflictError(f"definition {self.id} is archived; it cannot change")
        old = self.resource_requirements
        self.resource_requirements = requirements
        self.version += 1
        self.observation_review, self.review_reason = False, None
        self._record("version", str(self.version - 1), str(self.version), now, "observations applied", by)
        return [self._event(ev.LABLET_DEFINITION_OBSERVATIONS_APPLIED, previous_version=self.version - 1,
                            previous_requirements=old.model_dump(), **self.brief())]
