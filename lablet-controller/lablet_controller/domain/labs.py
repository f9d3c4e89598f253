"""What the lablet-controller reads of a lab on CML, as plain values (no I/O: the CML adapter,
`infrastructure.cml_labs`, builds them), and the hook a change to a lab is made under."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lcm_core.cml.models import Interface, Node, SimulationStats

BeforeChange = Callable[[str], Awaitable[None]]
"""Awaited with a description of the change just before it is made; raises to prevent it."""


@dataclass(frozen=True)
class BootState:
    total: int
    booted: int
    converged: bool

    @property
    def done(self) -> bool:
        return self.total > 0 and self.booted == self.total and self.converged


@dataclass(frozen=True)
class LabReadings:
    """What an observation reads; any part may be missing (None / empty) if CML did not answer it."""

    nodes: list[Node]
    interfaces: dict[str, list[Interface]]
    stats: SimulationStats | None
    layer3: Any
