"""A placement decision and its reasons (docs/lablet-controller.md, 'Scheduling'). No I/O.

`Decision` is what the scheduler decided for one session (the contract's `SchedulingDecision`); the reasons
name the workers that were refused and why, within the contract's length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Workers named per reason in a "no candidate" reason (the rest are counted).
NAMED_PER_REASON = 3
#: Longest reason recorded on a session (the contract's limit on `SchedulingDecision.reason`).
MAX_REASON = 1000


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of one placement (the contract's SchedulingDecision)."""

    success: bool
    worker_id: str | None
    reason: str
    strategy: str
    candidates_evaluated: int
    latency_ms: float
    scores: dict[str, float] = field(default_factory=dict)
    waiting_for_pool: str | None = None
    """No worker fits and the session's track has a pool that can still give it room: it waits for it."""

    def to_json(self) -> dict[str, Any]:
        return {"success": self.success, "worker_id": self.worker_id, "reason": self.reason,
                "strategy": self.strategy, "candidates_evaluated": self.candidates_evaluated,
                "latency_ms": round(self.latency_ms, 3), "scores": self.scores,
                "waiting_for_pool": self.waiting_for_pool}


def clip(reason: str) -> str:
    """A reason within the contract's length."""
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 3] + "..."


def refusal_summary(refused: Mapping[str, Sequence[str]]) -> str:
    """The workers refused and why, most frequent reason first: "2 workers: health unreachable (cml-1,
    cml-2); worker cml-3: insufficient cpu". Past `NAMED_PER_REASON` workers a reason is counted, not listed."""
    parts = []
    for why, names in sorted(refused.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(names) == 1:
            parts.append(f"worker {names[0]}: {why}")
        else:
            shown = ", ".join(names[:NAMED_PER_REASON]) + (", ..." if len(names) > NAMED_PER_REASON else "")
            parts.append(f"{len(names)} workers: {why} ({shown})")
    return "; ".join(parts)


def no_candidate_reason(refused: Mapping[str, Sequence[str]], total: int) -> str:
    """Why no worker took a session, naming the workers so an operator sees what to fix: "no eligible worker
    among 3: 2 workers: health unreachable (cml-1, cml-2); worker cml-3: insufficient cpu"."""
    if total == 0:
        return "no workers known"
    return clip(f"no eligible worker among {total}: {refusal_summary(refused)}")
