"""What the lablet-controller does next for a session, decided from its status and the clock. No I/O.

The reconciler reads the session from the CPA, asks `next_step`, carries the step out (CML calls, CPA
transitions) and comes back later; the step depends only on the state read, so repeating it is harmless.

Decisions recorded here (docs/lablet-controller.md):
- `ready → running` when the timeslot has started (at once if it already has): a lab is built ahead of its
  timeslot and handed to the student when the slot opens.
- the end of the timeslot moves a session that has a lab through `collecting` (observe, best-effort) and
  `stopping` (stop, wipe, delete) to `stopped`; an `instantiating` session whose slot ends goes straight to
  `stopping` (nothing worth observing).
- an operator's terminate (`terminate_requested`) tears the lab down too, then ends in `terminated`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.domain.lablets import SessionWorkView

#: Prefix of the CML lab title of every session's lab (`lablet-<session id>`).
LAB_TITLE_PREFIX = "lablet-"


def lab_title(session_id: str) -> str:
    """The lab's title on CML: how the controller finds a session's lab again after a restart."""
    return f"{LAB_TITLE_PREFIX}{session_id}"[:64]


class Step(StrEnum):
    SCHEDULE = "schedule"
    """pending: the scheduling pass places it."""
    INSTANTIATE = "instantiate"
    """scheduled: import the topology with the allocated ports and start it, then → instantiating."""
    EXPIRE = "expire"
    """scheduled but the timeslot is over: → expired (no lab is built for a slot that has passed)."""
    AWAIT_BOOT = "await_boot"
    """instantiating: wait until every node is BOOTED and the lab converged, then mark it ready."""
    WAIT_TIMESLOT = "wait_timeslot"
    """ready before the timeslot, or running within it: nothing to do until the next deadline."""
    START_RUNNING = "start_running"
    """ready and the timeslot has started: → running."""
    OBSERVE = "observe"
    """ready/running with a manual observation request: observe and post, stay put."""
    COLLECT = "collect"
    """running/ready past the timeslot: → collecting, observe (best-effort), → stopping."""
    TEAR_DOWN = "tear_down"
    """stopping (or collecting after a restart, or an operator terminate): stop, wipe, delete, → stopped."""
    ABANDON = "abandon"
    """instantiating past the timeslot: → stopping (the partial lab is torn down next)."""
    CLEAN_UP = "clean_up"
    """terminated/expired on a worker: make sure no lab of it is left there (no transition)."""
    NOTHING = "nothing"


def next_step(session: SessionWorkView, now: datetime) -> Step:
    status = session.status
    ended = now >= session.timeslot_end
    if status is S.PENDING:
        return Step.SCHEDULE
    if status is S.SCHEDULED:
        return Step.EXPIRE if ended else Step.INSTANTIATE
    if session.terminate_requested and status in (S.INSTANTIATING, S.READY, S.RUNNING, S.COLLECTING,
                                                  S.STOPPING):
        return Step.TEAR_DOWN
    if status is S.INSTANTIATING:
        return Step.ABANDON if ended else Step.AWAIT_BOOT
    if status in (S.READY, S.RUNNING):
        if ended:
            return Step.COLLECT
        if session.observe_requested:
            return Step.OBSERVE
        if status is S.READY and now >= session.timeslot_start:
            return Step.START_RUNNING
        return Step.WAIT_TIMESLOT
    if status in (S.COLLECTING, S.STOPPING):
        return Step.TEAR_DOWN
    if status in (S.TERMINATED, S.EXPIRED) and session.worker_id:
        return Step.CLEAN_UP
    return Step.NOTHING


def seconds_until_next_deadline(session: SessionWorkView, now: datetime) -> float:
    """Until the timeslot starts (ready) or ends (ready/running), so the reconcile comes back on time."""
    deadline = session.timeslot_start if session.status is S.READY and now < session.timeslot_start \
        else session.timeslot_end
    return max(0.0, (deadline - now).total_seconds())
