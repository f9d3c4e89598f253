"""JSON shapes of lablet definitions and sessions on the wire, and the request bodies they share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from control_plane_api.domain.lablet_definition import LabletDefinition
from control_plane_api.domain.lablet_session import LabletSession
from lcm_core.domain.lablets import SessionWorkView
from lcm_core.domain.types import Documented
from lcm_core.errors import InvalidError

# A pattern on the string itself, not over `Label`, so that the API's document shows it (it excludes
# control characters and line breaks, all that `Label` checks).
"""A lab track (e.g. `ccna`, `devnet-associate`)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


_VIEW_CONFIG = ConfigDict(from_attributes=True, populate_by_name=True)


def view_of(aggregate: type[BaseModel], name: str, without: frozenset[str] = frozenset()) -> type[BaseModel]:
    """The wire shape of an aggregate: its fields but `without` and those it never dumps (the storage's
    fencing tokens), typed as in the aggregate; built from an aggregate with `model_validate(aggregate)`."""
    fields: dict[str, Any] = {
        field_name: (info.annotation, info) for field_name, info in aggregate.model_fields.items()
        if field_name not in without and not info.exclude}
    return create_model(name, __config__=_VIEW_CONFIG, __doc__=f"A {aggregate.__name__} on the wire.", **fields)


if TYPE_CHECKING:
    # Built at run time from the aggregates' fields (FastAPI documents and validates them); a type checker
    # cannot follow that, and sees pydantic models.
    DefinitionView: TypeAlias = BaseModel
    DefinitionSummary: TypeAlias = BaseModel
    SessionView: TypeAlias = BaseModel
else:
    DefinitionView = view_of(LabletDefinition, "DefinitionView")
    """A lablet definition with its topology and history."""
    DefinitionSummary = view_of(LabletDefinition, "DefinitionSummary",
                                frozenset({"lab_topology_yaml", "state_history"}))
    """A lablet definition in lists and version histories: without the topology and the history."""
    SessionView = view_of(LabletSession, "SessionView", frozenset({"port_template"}))
    """A lablet session (its ports as allocated, not the template they came from)."""


class DefinitionPage(BaseModel):
    items: list[DefinitionSummary]
    total: int
    offset: int
    limit: int


class SessionPage(BaseModel):
    items: list[SessionView]
    total: int
    offset: int
    limit: int


class WorkPage(BaseModel):
    """Sessions as the lablet-controller works on them."""

    items: list[SessionWorkView]
    total: int
    offset: int
    limit: int


def definition_view(definition: LabletDefinition) -> Any:
    return DefinitionView.model_validate(definition)


def definition_summary(definition: LabletDefinition) -> Any:
    return DefinitionSummary.model_validate(definition)


def definition_page(items: Sequence[LabletDefinition], total: int, offset: int, limit: int) -> DefinitionPage:
    return DefinitionPage(items=[definition_summary(d) for d in items], total=total, offset=offset, limit=limit)


def session_view(session: LabletSession) -> Any:
    return SessionView.model_validate(session)


def session_page(items: Sequence[LabletSession], total: int, offset: int, limit: int) -> SessionPage:
    return SessionPage(items=[session_view(s) for s in items], total=total, offset=offset, limit=limit)


def work_view(session: LabletSession) -> SessionWorkView:
    return session.work_view()


def work_page(items: Sequence[LabletSession], total: int, offset: int, limit: int) -> WorkPage:
    return WorkPage(items=[work_view(s) for s in items], total=total, offset=offset, limit=limit)


def csv_pattern(token: str) -> str:
    """What `csv` reads as a list of tokens (stray commas ignored), at least one."""
    return rf"^,*(?:{token})(?:,+(?:{token}))*,*$"


def csv_filter(token: str, what: str, known: str, description: str) -> Any:
    """A query filter of comma-separated (or repeated) values, each matching `token`: the API's document says
    which values are accepted, and an empty or unknown one is a 422 that names the known ones (not a filter
    that silently matches nothing)."""

    def check(value: str) -> str:
        tokens = [t for t in value.split(",") if t]
        if not tokens:
            raise ValueError(f"give at least one {what}")
        bad = next((t for t in tokens if not re.fullmatch(token, t)), None)
        if bad is not None:
            raise ValueError(f"unknown {what} {bad[:40]!r}; {known}")
        return value

    item = Annotated[str, Field(max_length=2000), AfterValidator(check), Documented(pattern=csv_pattern(token))]
    return Annotated[list[item] | None, Query(description=description)]


def enum_filter(kind: type[StrEnum], what: str, description: str) -> Any:
    return csv_filter("|".join(re.escape(member.value) for member in kind), what,
                      "one of " + ", ".join(member.value for member in kind), description)


def csv(values: list[str] | None) -> list[str]:
    return [v for item in values or [] for v in item.split(",") if v]


def enum_values(values: list[str] | None, kind: type[StrEnum], what: str) -> list[str]:
    """Comma-separated filter values of an enum; an unknown one is a 422 that lists the known ones."""
    found = csv(values)
    known = {member.value for member in kind}
    bad = [v for v in found if v not in known]
    if bad:
        raise InvalidError(f"unknown {what} {bad[0][:40]!r}; one of {', '.join(m.value for m in kind)}")
    return found
