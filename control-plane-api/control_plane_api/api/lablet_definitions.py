"""Public lablet-definition routes: viewers read, admins create, version, activate and apply observations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field

from control_plane_api.api.lablet_views import (
    DefinitionPage,
    DefinitionSummary,
    DefinitionView,
    Strict,
    definition_page,
    definition_summary,
    definition_view,
    enum_filter,
    enum_values,
)
from control_plane_api.api.security import CP, Admin, Viewer
from control_plane_api.application.lablet_definitions import DefinitionObservations
from control_plane_api.domain.lablet_definition import DefinitionContent
from control_plane_api.domain.topology_summary import TopologySummary
from lcm_core.domain.lablets import LabletDefinitionStatus, ResourceRequirements, TrackName
from lcm_core.domain.types import Count, Flag, Label, LongText, Number, Text
from lcm_core.errors import InvalidError

router = APIRouter(prefix="/api/lablet-definitions", tags=["lablet-definitions"])

# The pattern admits no control character or line break, so it says all that `Label` checks, and being on
# the string itself it appears in the API's document (a pattern over `Label` is enforced but not documented).
DefinitionName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$")]
Affinity = Annotated[list[Annotated[Label, Field(min_length=1, max_length=64)]], Field(max_length=20)]
if TYPE_CHECKING:
    # `enum_filter`/`csv_filter` build the annotation at run time (validation and the API's document); a type
    # checker cannot follow that, and sees what the parameter holds: the values given, or None.
    DefinitionStatuses = list[str] | None
else:
    DefinitionStatuses = enum_filter(LabletDefinitionStatus, "definition status", "Statuses, comma-separated")
Duration = Annotated[int, Field(ge=5, le=7 * 24 * 60)]


class CreateDefinition(Strict):
    name: DefinitionName
    lab_topology_yaml: Annotated[LongText, Field(min_length=1)]
    """A CML lab topology (YAML, as `/import` takes it). Node tags like `serial:5041` become the port template."""
    lab_track: TrackName | None = None
    license_affinity: Affinity = Field(default_factory=list)
    max_duration_minutes: Duration = 120
    description: Text | None = Field(default=None, max_length=2000)
    resource_requirements: ResourceRequirements | None = None
    """Declared needs; estimated from the topology's nodes when left out."""
    activate: Flag = False


class UpdateDefinition(Strict):
    """A new version: fields given replace the current ones; `version` is the one you read."""

    version: Count
    lab_topology_yaml: Annotated[LongText, Field(min_length=1)] | None = None
    lab_track: TrackName | None = None
    license_affinity: Affinity | None = None
    max_duration_minutes: Duration | None = None
    description: Text | None = Field(default=None, max_length=2000)
    resource_requirements: ResourceRequirements | None = None
    """Declared needs; left out, they are kept (or re-estimated when the topology changes)."""


class ApplyObservations(Strict):
    """Revised requirements an admin chose from the aggregated observations (at least one value)."""

    # "At least one value", written into the document as well (the route checks it).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"type": "number"}}}
        for name in ("cpu_cores", "memory_gb", "storage_gb")]})

    version: Count
    cpu_cores: Number | None = Field(default=None, ge=0, le=10_000)
    memory_gb: Number | None = Field(default=None, ge=0, le=100_000)
    storage_gb: Number | None = Field(default=None, ge=0, le=1_000_000)


@router.get("", summary="List lablet definitions (without their topologies)")
async def list_definitions(
    cp: CP, _who: Viewer,
    status: DefinitionStatuses = None,
    lab_track: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DefinitionPage:
    wanted = enum_values(status, LabletDefinitionStatus, "definition status")
    items, total = await cp.definitions.page(wanted, lab_track, offset, limit)
    return definition_page(items, total, offset, limit)


@router.post("", status_code=201, summary="Create a definition from a CML lab topology (YAML)")
async def create_definition(body: CreateDefinition, cp: CP, who: Admin) -> DefinitionView:
    content = DefinitionContent(**body.model_dump(exclude={"name", "activate"}))
    definition = await cp.definitions.create(body.name, content, by=who.subject)
    if body.activate:
        definition = await cp.definitions.set_status(definition.id, LabletDefinitionStatus.ACTIVE, by=who.subject)
    return definition_view(definition)


@router.get("/{definition_id}", summary="Definition detail (the current version, or `version=N`)")
async def get_definition(definition_id: str, cp: CP, _who: Viewer,
                         version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> DefinitionView:
    return definition_view(await cp.definitions.get(definition_id, version))


@router.get("/{definition_id}/topology", summary="Topology summary: nodes, links, port template (`version=N`)")
async def get_topology(definition_id: str, cp: CP, _who: Viewer,
                       version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> TopologySummary:
    return await cp.definitions.topology(definition_id, version)


@router.get("/{definition_id}/versions", summary="Every stored version of a definition")
async def list_versions(definition_id: str, cp: CP, _who: Viewer) -> list[DefinitionSummary]:
    return [definition_summary(d) for d in await cp.definitions.versions(definition_id)]


@router.put("/{definition_id}", summary="Store a new version (guarded by the version read)")
async def update_definition(definition_id: str, body: UpdateDefinition, cp: CP, who: Admin) -> DefinitionView:
    given = body.model_dump(exclude={"version"}, exclude_unset=True)
    return definition_view(await cp.definitions.revise(definition_id, body.version, given, by=who.subject))


@router.post("/{definition_id}/activate", summary="Accept new sessions (idempotent)")
async def activate(definition_id: str, cp: CP, who: Admin) -> DefinitionView:
    return definition_view(await cp.definitions.set_status(definition_id, LabletDefinitionStatus.ACTIVE,
                                                           by=who.subject))


@router.post("/{definition_id}/deactivate", summary="Stop accepting new sessions (idempotent)")
async def deactivate(definition_id: str, cp: CP, who: Admin) -> DefinitionView:
    return definition_view(await cp.definitions.set_status(definition_id, LabletDefinitionStatus.INACTIVE,
                                                           by=who.subject))


@router.get("/{definition_id}/resource-observations", summary="Observed resources over completed sessions")
async def resource_observations(definition_id: str, cp: CP, _who: Viewer) -> DefinitionObservations:
    return await cp.definitions.observations(definition_id)


@router.post("/{definition_id}/apply-observations", summary="Apply revised requirements (a new version)")
async def apply_observations(definition_id: str, body: ApplyObservations, cp: CP, who: Admin) -> DefinitionView:
    if body.cpu_cores is None and body.memory_gb is None and body.storage_gb is None:
        raise InvalidError("give at least one of cpu_cores, memory_gb, storage_gb")
    definition = await cp.definitions.apply_observations(definition_id, body.version, body.cpu_cores,
                                                         body.memory_gb, body.storage_gb, by=who.subject)
    return definition_view(definition)
