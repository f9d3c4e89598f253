"""The cost ledger's prices and rules (billed states, why a worker stopped, EBS prices), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from control_plane_api.domain.cost_ledger import (
    BilledState,
    HoldingInterval,
    StopReason,
    WorkerInterval,
    billed_state,
    ebs_cost_per_hour,
    running_shortfall,
    saving_rate,
    share_of,
    stop_reason,
)
from control_plane_api.domain.system_settings import EbsSettings
from lcm_core.domain.enums import DesiredStatus, WorkerStatus

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("ebs", "per_month"), [
    (EbsSettings(volume_type="gp3", size_gb=500), 500 * 0.08),
    (EbsSettings(volume_type="gp3", size_gb=20, iops=3000), 20 * 0.08),  # gp3's baseline IOPS are free
    (EbsSettings(volume_type="io1", size_gb=100, iops=1000), 100 * 0.125 + 1000 * 0.065),
    (EbsSettings(volume_type="io1", size_gb=200), 200 * 0.125),
])
def test_ebs_is_priced_per_gb_month_and_per_provisioned_iops_month_over_730_hours(
        ebs: EbsSettings, per_month: float) -> None:
    assert ebs_cost_per_hour(ebs) == pytest.approx(per_month / 730)


@pytest.mark.parametrize(("status", "billed"), [
    (WorkerStatus.RUNNING, BilledState.RUNNING),
    (WorkerStatus.DRAINING, BilledState.RUNNING),
    (WorkerStatus.STOPPING, BilledState.STOPPED),
    (WorkerStatus.STOPPED, BilledState.STOPPED),
    (WorkerStatus.PENDING, None),
    (WorkerStatus.STARTING, None),
    (WorkerStatus.TERMINATING, None),
    (WorkerStatus.TERMINATED, None),
])
def test_which_statuses_are_billed_and_how(status: WorkerStatus, billed: BilledState | None) -> None:
    assert billed_state(status) is billed


@pytest.mark.parametrize(("desired", "reason", "pause", "expected"), [
    (DesiredStatus.STOPPED, "idle_timeout", "idle_timeout", StopReason.IDLE_PAUSE),
    (DesiredStatus.STOPPED, "retired by pool ccna", "manual", StopReason.SCALE_DOWN),
    (DesiredStatus.STOPPED, "drained (retired by pool ccna)", "manual", StopReason.SCALE_DOWN),
    (DesiredStatus.TERMINATED, "retired by pool ccna", None, StopReason.SCALE_DOWN),
    (DesiredStatus.TERMINATED, "retired by the deletion of pool ccna", None, StopReason.OPERATOR),
    (DesiredStatus.STOPPED, "drained (retired by the drain of pool ccna)", "manual", StopReason.OPERATOR),
    (DesiredStatus.STOPPED, "stopped into the warm pool of pool ccna", "manual", StopReason.WARM_POOL),
    (DesiredStatus.STOPPED, "drained (stopped into the warm pool of pool ccna)", "manual", StopReason.WARM_POOL),
    (DesiredStatus.STOPPED, "maintenance", "manual", StopReason.OPERATOR),
    (DesiredStatus.TERMINATED, None, None, StopReason.OPERATOR),
    (DesiredStatus.RUNNING, None, None, StopReason.OTHER),  # stopped outside LCM
    (None, None, None, StopReason.OTHER),
])
def test_why_a_worker_stopped(desired: DesiredStatus | None, reason: str | None, pause: str | None,
                              expected: StopReason) -> None:
    assert stop_reason(desired, reason, pause) is expected


def interval(**changes: object) -> WorkerInterval:
    values: dict[str, object] = {"id": "w1:0", "worker_id": "w1", "worker_name": "w-one", "state": "running",
                                 "start": T0, "priced": True, "cost_per_hour_usd": 4.0,
                                 "ebs_cost_per_hour_usd": 0.05, "declared_cpu_cores": 48, "declared_memory_gb": 192}
    values.update(changes)
    return WorkerInterval.model_validate(values)


def test_a_running_interval_is_billed_at_least_sixty_seconds_per_start() -> None:
    short = interval(end=T0 + timedelta(seconds=20))
    assert running_shortfall(short, T0 + timedelta(hours=1)) == 40
    assert running_shortfall(interval(end=T0 + timedelta(seconds=90)), T0 + timedelta(hours=1)) == 0
    assert running_shortfall(interval(), T0 + timedelta(seconds=5)) == 55  # open: the minimum counts at once
    assert running_shortfall(interval(state="stopped", end=T0 + timedelta(seconds=5)), T0) == 0


def test_a_stopped_hour_saves_the_running_price_less_the_ebs_and_an_unpriced_one_nothing() -> None:
    assert saving_rate(interval(state="stopped")) == pytest.approx(4.0 - 0.05)
    assert saving_rate(interval(state="stopped", priced=False)) == 0


def test_a_session_shares_its_worker_by_cores_or_by_memory_when_no_cores_are_declared() -> None:
    holding = HoldingInterval(id="s1:0", session_id="s1", worker_id="w1", definition_id="d1", definition_name="d",
                              cpu_cores=12, memory_gb=96, start=T0)
    assert share_of(holding, interval()) == pytest.approx(12 / 48)
    assert share_of(holding, interval(declared_cpu_cores=0)) == pytest.approx(96 / 192)
    assert share_of(holding, interval(declared_cpu_cores=0, declared_memory_gb=0)) == 0
    assert share_of(holding, interval(declared_cpu_cores=6)) == 1  # never more than the whole worker


def test_a_scale_down_termination_stays_counted_for_a_day_after_the_end() -> None:
    end = T0 + timedelta(hours=2)
    retired = interval(end=end, terminated_reason="scale_down")
    assert retired.post_termination_savings
    assert retired.final_at() == end + timedelta(hours=24)
    stopped_then_terminated = interval(state="stopped", stop_reason="scale_down", end=end,
                                       terminated_reason="operator")
    assert stopped_then_terminated.post_termination_savings
    operator = interval(end=end, terminated_reason="operator")
    assert not operator.post_termination_savings
    assert operator.final_at() == end
    assert interval().final_at() is None
