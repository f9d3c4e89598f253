"""Leader election and the level-triggered reconcile-loop toolkit (docs/architecture.md)."""

from lcm_core.leader.election import ElectionConfig, LeaderElection, Leadership
from lcm_core.leader.loops import LoopStats, PeriodicLoop, ReconcileLoop, ReconcileResult

__all__ = [
    "ElectionConfig",
    "LeaderElection",
    "Leadership",
    "LoopStats",
    "PeriodicLoop",
    "ReconcileLoop",
    "ReconcileResult",
]
