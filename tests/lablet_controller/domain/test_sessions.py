"""The next step of a session, from its status and the clock (the reconciler's decision table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lablet_controller.domain.sessions import Step, lab_title, next_step, seconds_until_next_deadline
from lcm_core.domain.lablets import LabletSessionStatus as S
from lcm_core.domain.lablets import SessionWorkView

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def session(status: S, **kw: Any) -> SessionWorkView:
    values: dict[str, Any] = {"id": "s1", "status": status, "version": 1, "definition_id": "d1",
                              "definition_version": 1, "worker_id": "w1", "timeslot_start": START,
                              "timeslot_end": END, "resource_requirements": {"cpu_cores": 1}}
    values.update(kw)
    return SessionWorkView.model_validate(values)


BEFORE, DURING, AFTER = START - timedelta(minutes=5), START + timedelta(minutes=5), END + timedelta(seconds=1)


@pytest.mark.parametrize(("status", "now", "extra", "step"), [
    (S.PENDING, DURING, {}, Step.SCHEDULE),
    (S.SCHEDULED, BEFORE, {}, Step.INSTANTIATE),
    (S.SCHEDULED, AFTER, {}, Step.EXPIRE),
    (S.INSTANTIATING, DURING, {}, Step.AWAIT_BOOT),
    (S.INSTANTIATING, AFTER, {}, Step.ABANDON),
    (S.READY, BEFORE, {}, Step.WAIT_TIMESLOT),
    (S.READY, DURING, {}, Step.START_RUNNING),
    (S.READY, AFTER, {}, Step.COLLECT),
    (S.RUNNING, DURING, {}, Step.WAIT_TIMESLOT),
    (S.RUNNING, DURING, {"observe_requested": True}, Step.OBSERVE),
    (S.READY, BEFORE, {"observe_requested": True}, Step.OBSERVE),
    (S.RUNNING, AFTER, {"observe_requested": True}, Step.COLLECT),  # the end of the slot wins
    (S.RUNNING, AFTER, {}, Step.COLLECT),
    (S.COLLECTING, AFTER, {}, Step.TEAR_DOWN),
    (S.STOPPING, AFTER, {}, Step.TEAR_DOWN),
    (S.RUNNING, DURING, {"terminate_requested": True}, Step.TEAR_DOWN),
    (S.TERMINATED, DURING, {}, Step.CLEAN_UP),
    (S.EXPIRED, AFTER, {}, Step.CLEAN_UP),
    (S.EXPIRED, AFTER, {"worker_id": None}, Step.NOTHING),
    (S.STOPPED, AFTER, {}, Step.NOTHING),
    (S.ARCHIVED, AFTER, {}, Step.NOTHING),
])
def test_next_step(status: S, now: datetime, extra: dict[str, Any], step: Step) -> None:
    assert next_step(session(status, **extra), now) is step


def test_deadlines() -> None:
    assert seconds_until_next_deadline(session(S.READY), BEFORE) == 300
    assert seconds_until_next_deadline(session(S.READY), DURING) == 3300
    assert seconds_until_next_deadline(session(S.RUNNING), DURING) == 3300
    assert seconds_until_next_deadline(session(S.RUNNING), AFTER) == 0


def test_lab_title_fits_cml() -> None:
    assert lab_title("abc") == "lablet-abc"
    assert len(lab_title("x" * 100)) == 64
