"""Lablet definition use cases: create from a topology, new versions, activation, observed-resource
review/apply, and the reads the API serves (over `application.ports`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from control_plane_api.application import versioned
from control_plane_api.application.ports import DefinitionStore, ObservedSessions, Publisher
from control_plane_api.domain.events import DomainEvent, utcnow
from control_plane_api.domain.fencing import LeaderCaller
from control_plane_api.domain.lablet_definition import DefinitionContent, LabletDefinition
from control_plane_api.domain.lablet_observation import aggregate
from control_plane_api.domain.topology_summary import TopologySummary, topology_summary
from lcm_core.domain.lablets import LabletDefinitionStatus, LabletSessionStatus, ResourceRequirements
from lcm_core.errors import ConflictError

DefinitionChange = Callable[[LabletDefinition, datetime], list[DomainEvent]]
T = TypeVar("T")


class OffLoop(Protocol):
    """Runs a pure, CPU-heavy function away from the event loop (the CPA: another process)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T: ...


class InThread:
    """An `OffLoop` in a worker thread: enough where the loop's latency does not matter (tools, unit tests)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

#: Sessions whose observations count as "completed" for the definition's aggregate (docs/lablets.md).
COMPLETED = (LabletSessionStatus.STOPPED, LabletSessionStatus.ARCHIVED, LabletSessionStatus.TERMINATED)


class ObservedStats(BaseModel):
    max: float | None
    avg: float | None
    latest: float | None


class ObservedSession(BaseModel):
    session_id: str
    definition_version: int
    status: LabletSessionStatus
    observed_at: datetime | None
    total_cpu_cores: float
    total_memory_mb: int
    actual_node_count: int
    port_drift_detected: bool


class DefinitionObservations(BaseModel):
    """What the definition's completed sessions were observed to use, against what it declares."""

    definition_id: str
    version: int
    declared: ResourceRequirements
    estimated: ResourceRequirements
    observation_review: bool
    review_reason: str | None
    sessions_observed: int
    cpu_cores: ObservedStats
    memory_gb: ObservedStats
    storage_gb: ObservedStats
    node_count: ObservedStats
    port_drift_sessions: int
    latest_observed_at: datetime | None
    node_definitions_used: list[str]
    sessions: list[ObservedSession]
    """The latest 50 observed sessions."""


class DefinitionService:
    def __init__(self, definitions: DefinitionStore, sessions: ObservedSessions, publisher: Publisher,
                 clock: Callable[[], datetime] = utcnow, max_attempts: int = 8, off_loop: OffLoop | None = None
                 ) -> None:
        self._repo = definitions
        self._off_loop: OffLoop = off_loop or InThread()
        self._sessions = sessions
        self._publisher = publisher
        self._clock = clock
        self._attempts = max_attempts

    # ----------------------------------------------------------------- reads

    async def get(self, definition_id: str, version: int | None = None) -> LabletDefinition:
        """The current version, or version `version` (404 when the definition or that version is unknown)."""
        if version is None:
            return await self._repo.get(definition_id)
        return await self._repo.get_version(definition_id, version)

    async def page(self, status: Sequence[str], lab_track: str | None, offset: int,
                   limit: int) -> tuple[list[LabletDefinition], int]:
        return await self._repo.page(status, lab_track, offset, limit)

    async def versions(self, definition_id: str) -> list[LabletDefinition]:
        """Every stored version, oldest first (404 for an unknown definition rather than an empty list)."""
        await self._repo.get(definition_id)
        return await self._repo.versions(definition_id)

    async def topology(self, definition_id: str, version: int | None = None) -> TopologySummary:
        definition = await self.get(definition_id, version)
        # The summary re-parses the stored topology (up to a megabyte of YAML): off the event loop.
        return await self._off_loop.run(topology_summary, definition)

    # ----------------------------------------------------------------- changes

    async def create(self, name: str, content: DefinitionContent, by: str) -> LabletDefinition:
        """A new definition; asking again for the same name with the same content returns the existing one
        (a retried request), another content under a taken name is a conflict."""
        # Parsing and checking a topology of up to a megabyte takes CPU seconds in the worst case: off the
        # event loop, so the API (health, the controllers' calls) keeps answering meanwhile.
        derived = await self._off_loop.run(LabletDefinition.derive, content)
        definition, events = LabletDefinition.create(name, content, self._clock(), by, derived)
        try:
            await self._repo.insert(definition)
        except ConflictError:
            existing = await self._repo.by_name(name)
            if existing is not None and existing.same_content(definition):
                return existing
            raise
        await self._publisher.publish(events)
        return definition

    async def mutate(self, definition_id: str, change: DefinitionChange,
                     leader: LeaderCaller | None = None) -> LabletDefinition:
        """Load → change → save(revision), re-read after a lost race; publish the events (`versioned.mutate`)."""
        done = await versioned.mutate(self._repo, definition_id, change, clock=self._clock, attempts=self._attempts,
                                      leader=leader, after_commit=self._after_commit)
        return done.aggregate

    async def _after_commit(self, _definition: LabletDefinition, events: list[DomainEvent]) -> None:
        await self._publisher.publish(events)

    async def update(self, definition_id: str, version: int, content: DefinitionContent,
                     by: str) -> LabletDefinition:
        derived = await self._off_loop.run(LabletDefinition.derive, content)  # once, off the loop (see create)
        return await self.mutate(definition_id, lambda d, now: d.update(version, content, now, by, derived))

    async def revise(self, definition_id: str, version: int, given: Mapping[str, Any], by: str) -> LabletDefinition:
        """A new version from the fields an operator gave (`given`: the fields of `DefinitionContent` she set;
        the others are kept). Declared requirements are kept unless given, except that a new topology is
        re-estimated when the requirements were the estimate."""
        current = await self._repo.get(definition_id)
        topology_changed = "lab_topology_yaml" in given and given["lab_topology_yaml"] != current.lab_topology_yaml
        declared_kept = current.resource_requirements != current.estimated_requirements
        requirements = given.get("resource_requirements")
        if requirements is None and not (topology_changed and not declared_kept):
            requirements = current.resource_requirements.model_dump()
        content = DefinitionContent(
            lab_topology_yaml=given.get("lab_topology_yaml") or current.lab_topology_yaml,
            resource_requirements=requirements,
            lab_track=given.get("lab_track", current.lab_track),
            license_affinity=given.get("license_affinity") or current.license_affinity,
            max_duration_minutes=given.get("max_duration_minutes") or current.max_duration_minutes,
            description=given.get("description", current.description),
        )
        return await self.update(definition_id, version, content, by)

    async def set_status(self, definition_id: str, status: LabletDefinitionStatus, by: str) -> LabletDefinition:
        return await self.mutate(definition_id, lambda d, now: d.set_status(status, now, by))

    async def flag_for_review(self, definition_id: str, version: int, reason: str,
                              leader: LeaderCaller | None = None) -> LabletDefinition:
        return await self.mutate(definition_id, lambda d, now: d.flag_for_review(version, reason, now), leader)

    async def apply_observations(self, definition_id: str, version: int, cpu_cores: float | None,
                                 memory_gb: float | None, storage_gb: float | None, by: str) -> LabletDefinition:
        """Revised requirements chosen by an admin (unspecified values stay as declared)."""
        def change(definition: LabletDefinition, now: datetime) -> list[DomainEvent]:
            current = definition.resource_requirements
            revised = ResourceRequirements(
                cpu_cores=current.cpu_cores if cpu_cores is None else cpu_cores,
                memory_gb=current.memory_gb if memory_gb is None else memory_gb,
                storage_gb=current.storage_gb if storage_gb is None else storage_gb,
                node_count=current.node_count)
            return definition.apply_observations(version, revised, now, by)

        return await self.mutate(definition_id, change)

    async def observations(self, definition_id: str) -> DefinitionObservations:
        """Max / avg / latest over the definition's completed, observed sessions."""
        definition = await self._repo.get(definition_id)
        sessions = await self._sessions.observed_for_definition(definition_id, [s.value for s in COMPLETED])
        observed = [s.observed_resources for s in sessions if s.observed_resources is not None]
        return DefinitionObservations.model_validate({
            "definition_id": definition.id, "version": definition.version,
            "declared": definition.resource_requirements, "estimated": definition.estimated_requirements,
            "observation_review": definition.observation_review, "review_reason": definition.review_reason,
            **aggregate(observed, sum(1 for s in sessions if s.port_drift_detected)),
            "sessions": [ObservedSession(
                session_id=s.id, definition_version=s.definition_version, status=s.status,
                observed_at=s.observed_at, total_cpu_cores=s.observed_resources.total_cpu_cores,
                total_memory_mb=s.observed_resources.total_memory_mb,
                actual_node_count=s.observed_resources.actual_node_count,
                port_drift_detected=s.port_drift_detected)
                for s in sessions[-50:] if s.observed_resources is not None],
        })
