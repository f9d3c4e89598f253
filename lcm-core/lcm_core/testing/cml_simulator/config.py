"""Process-wide settings of the simulator (one set of credentials and timings for every simulated host)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: The API prefix every simulated host serves, as a real CML controller does.
API_PREFIX = "/api/v0"

#: Where the simulated hosts live: `/hosts/{instance_id}` + `API_PREFIX`.
HOSTS_PREFIX = "/hosts"


@dataclass(frozen=True)
class SimulatorConfig:
    """What the command line configures.

    `boot_seconds` is how long a started node takes to reach BOOTED (a fifth of it QUEUED, the rest
    STARTED), so tests can run with a fraction of a second and the local stack with a few seconds.
    The token secret is random per process: tokens die with a restart, as they do on a real controller.
    """

    username: str = "admin"
    password: str = "admin"  # noqa: S105 - the simulator's default, loopback dev use only
    boot_seconds: float = 2.0
    token_ttl_seconds: float = 8 * 3600.0
    registration_seconds: float = 1.0
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    clock: Callable[[], float] = time.time
