"""An EC2 instance as the worker-controller reads it: a plain value, no I/O (the AWS adapter,
`infrastructure.aws`, builds it from EC2's answers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

Guard = Callable[[], None]
"""Runs right before a changing EC2 call is sent (in the AWS thread); raises to cancel it."""


@dataclass(frozen=True)
class Ec2Instance:
    instance_id: str
    region: str
    state: str | None
    instance_type: str | None = None
    image_id: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    launch_time: datetime | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return self.tags.get("Name")
