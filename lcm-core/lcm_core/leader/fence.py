"""The fence a controller passes immediately before every call that changes the fleet (EC2, CML).

The control plane refuses writes from a deposed leader (its epoch check), but EC2 and CML know nothing of
leaders: a replica that was frozen (GC pause, SIGSTOP, a hung thread) past its lease would, on waking up,
carry out a decision another replica may already have overruled. So the leader asks its own election, right
before the call, whether its lease still has a safety margin left by the *local* deadline (the send time of
the last successful renewal plus the TTL). A process that slept through its lease sees that deadline in the
past as soon as it wakes, before any renewal task could run, and the call is never made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from lcm_core.errors import LcmError


class LeadershipLost(LcmError):
    """This replica may no longer lead (lease deadline too close or passed): nothing may be changed."""

    code = "leadership_lost"


class Fence(Protocol):
    """What application code depends on: `check` raises `LeadershipLost` unless acting is still safe."""

    @property
    def margin_seconds(self) -> float: ...

    def check(self, action: str) -> None: ...


class LeaseFence:
    """A `Fence` over an election's local lease deadline.

    `remaining` tells how long (monotonic seconds) the lease is known to last, or None when not leading;
    `margin_seconds` is what must be left for a call to be sent (it covers the time between the check and
    the request reaching AWS or CML).
    """

    def __init__(self, remaining: Callable[[], float | None], margin_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._remaining = remaining
        self._margin = margin_seconds
        self._clock = clock
        self.refused = 0
        """How many actions this fence refused (shown in the controller's status)."""

    @property
    def margin_seconds(self) -> float:
        return self._margin

    def check(self, action: str) -> None:
        left = self._remaining()
        if left is None or left < self._margin:
            self.refused += 1
            state = "not leading" if left is None else f"{max(left, 0.0):.2f}s of lease left"
            raise LeadershipLost(f"refused to {action}: {state} (margin {self._margin:.2f}s)")


class AlwaysLeading:
    """A fence for code run outside an election (tests, one-off tools): every action is allowed."""

    margin_seconds = 0.0

    def check(self, action: str) -> None:
        return None
