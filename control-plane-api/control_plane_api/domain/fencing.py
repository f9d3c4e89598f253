"""Leader fencing: who a controller's write comes from, and the tokens a stored aggregate
keeps of the leaders that wrote it (docs/architecture.md, "The leader fence in storage"). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

WORKER_CONTROLLER = "worker-controller"
LABLET_CONTROLLER = "lablet-controller"


@dataclass(frozen=True)
class LeaderCaller:
    """A mutating call of a controller leader: its service and its epoch (the create_revision of its etcd
    election key), verified against etcd when the request came in."""

    service: str
    epoch: int

    @property
    def by(self) -> str:
        """How the aggregates' histories record the caller: `worker-controller@812`."""
        return f"{self.service}@{self.epoch}"

    def __str__(self) -> str:
        return self.by


FenceTokens = Annotated[dict[str, int], Field(
    exclude=True,
    description="The highest leader epoch of each service that wrote the aggregate ({service: epoch}). Kept by "
                "the repositories (a write of a lower epoch of that service is refused); in no view.")]
"""The field a fenced aggregate keeps its tokens in: stored with it, excluded from every dump."""
