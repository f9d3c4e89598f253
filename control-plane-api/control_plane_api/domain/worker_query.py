"""Which workers a list asks for: the filters of the worker lists (public, internal, the event snapshot)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: What a worker list may be sorted by.
SORTABLE = frozenset({"name", "status", "aws_region", "health_status", "created_at", "updated_at"})


@dataclass(frozen=True)
class WorkerQuery:
    status: Sequence[str] = ()
    aws_region: Sequence[str] = ()
    health_status: Sequence[str] = ()
    ids: Sequence[str] = ()
    search: str | None = None
    """A case-insensitive substring of the name, instance id, worker id or an address."""
    include_terminated: bool = True
    pool_id: str | None = None
    """Only the members of this worker pool."""
