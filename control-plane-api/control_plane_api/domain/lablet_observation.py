"""Observation rules: port drift by name, significant resource differences, aggregation over sessions. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lcm_core.domain.lablets import ResourceObservation, ResourceRequirements


@dataclass(frozen=True)
class PortDrift:
    """Allocated vs observed ports, compared by port name (never by position)."""

    missing: dict[str, int] = field(default_factory=dict)
    """Allocated but not observed."""
    changed: dict[str, dict[str, int]] = field(default_factory=dict)
    """Observed under another port: {name: {allocated, observed}}."""
    unexpected: dict[str, int] = field(default_factory=dict)
    """Observed but never allocated (e.g. a node added on CML directly)."""

    @property
    def detected(self) -> bool:
        return bool(self.missing or self.changed or self.unexpected)

    def drifted_ports(self) -> dict[str, int]:
        """Ports CML uses beyond the allocation: to keep out of other sessions' allocations."""
        return {**{n: c["observed"] for n, c in self.changed.items()}, **self.unexpected}

    def as_dict(self) -> dict[str, Any]:
        return {"missing": self.missing, "changed": self.changed, "unexpected": self.unexpected}


def compare_ports(allocated: dict[str, int], observed: dict[str, int]) -> PortDrift:
    return PortDrift(
        missing={n: p for n, p in allocated.items() if n not in observed},
        changed={n: {"allocated": p, "observed": observed[n]} for n, p in allocated.items()
                 if n in observed and observed[n] != p},
        unexpected={n: p for n, p in observed.items() if n not in allocated},
    )


def same_observation(stored: ResourceObservation | None, posted: ResourceObservation) -> bool:
    """Whether `posted` repeats the stored observation (MongoDB keeps timestamps to the millisecond)."""
    if stored is None:
        return False
    def millis(o: ResourceObservation) -> int:
        return int(o.observed_at.timestamp() * 1000)

    return millis(stored) == millis(posted) and (stored.model_dump(exclude={"observed_at"})
                                                 == posted.model_dump(exclude={"observed_at"}))


def significant_difference(declared: ResourceRequirements, observation: ResourceObservation,
                           ratio: float) -> str | None:
    """Why the observation differs from the declaration by more than `ratio` (relative), or None."""
    reasons = []
    for name, want, seen in (("cpu_cores", declared.cpu_cores, observation.total_cpu_cores),
                             ("memory_gb", declared.memory_gb, observation.total_memory_mb / 1024)):
        base = max(want, 1e-9)
        if abs(seen - want) / base > ratio:
            reasons.append(f"{name} observed {seen:.2f}, declared {want:g}")
    if not reasons:
        return None
    return f"observed resources differ from declared by more than {ratio:.0%}: " + "; ".join(reasons)


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"max": None, "avg": None, "latest": None}
    return {"max": round(max(values), 3), "avg": round(sum(values) / len(values), 3), "latest": round(values[-1], 3)}


def aggregate(observations: Sequence[ResourceObservation], drift_count: int) -> dict[str, Any]:
    """Max / avg / latest of the observations (ordered oldest first) of a definition's completed sessions."""
    return {
        "sessions_observed": len(observations),
        "cpu_cores": _stats([o.total_cpu_cores for o in observations]),
        "memory_gb": _stats([o.total_memory_mb / 1024 for o in observations]),
        "storage_gb": _stats([o.total_storage_mb / 1024 for o in observations if o.total_storage_mb is not None]),
        "node_count": _stats([float(o.actual_node_count) for o in observations]),
        "port_drift_sessions": drift_count,
        "latest_observed_at": observations[-1].observed_at if observations else None,
        "node_definitions_used": sorted({d for o in observations for d in o.node_definitions_used}),
    }
