"""What the lablet-session lists filter and sort by (the repository translates it to its store). No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SESSION_SORTABLE = frozenset({"created_at", "updated_at", "timeslot_start", "timeslot_end", "status"})


@dataclass(frozen=True)
class SessionQuery:
    status: Sequence[str] = ()
    definition_id: str | None = None
    worker_id: str | None = None
    owner: str | None = None
    ids: Sequence[str] = ()
